"""Conferences, their participants and their ordered events (tables of migrations 0003
and 0005; billing reads them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb


@dataclass(frozen=True, slots=True)
class Participant:
    call_sid: str
    role: str
    number: str
    is_controller: bool
    muted: bool
    on_hold: bool
    joined_at: datetime
    left_at: datetime | None


def open_conference(
    conn: psycopg.Connection,
    sid: str,
    account_sid: str,
    *,
    friendly_name: str,
    origin_call_sid: str | None,
    controller_call_sid: str | None,
    origin_number: str | None = None,
) -> bool:
    """Create the running conference unless it exists; True if it was created. The
    controller is the first employee; `origin_number` the number it originally called
    (what billing charges the conference as)."""
    cursor = conn.execute(
        """INSERT INTO conferences (sid, account_sid, friendly_name, status, started_at,
                                    origin_call_sid, controller_call_sid,
                                    first_employee_call_sid, origin_number)
           VALUES (%s, %s, %s, 'in-progress', now(), %s, %s, %s, %s)
           ON CONFLICT (sid) DO NOTHING""",
        (
            sid,
            account_sid,
            friendly_name,
            origin_call_sid,
            controller_call_sid,
            controller_call_sid,
            origin_number,
        ),
    )
    return cursor.rowcount == 1


def add_event(conn: psycopg.Connection, sid: str, kind: str, **data: Any) -> None:
    row = conn.execute(
        """UPDATE conferences SET next_event_seq = next_event_seq + 1 WHERE sid = %s
           RETURNING next_event_seq - 1 AS seq""",
        (sid,),
    ).fetchone()
    conn.execute(
        "INSERT INTO conference_events (conference_sid, seq, kind, data) VALUES (%s, %s, %s, %s)",
        (sid, row["seq"], kind, Jsonb(data)),
    )


def join(
    conn: psycopg.Connection,
    sid: str,
    call_sid: str,
    role: str,
    number: str,
    *,
    controller: bool = False,
) -> None:
    """The call joins (or rejoins) the conference."""
    conn.execute(
        # clock_timestamp(), not now(): several joins in one transaction keep their order.
        """INSERT INTO conference_participants
               (conference_sid, call_sid, role, number, is_controller, joined_at)
           VALUES (%s, %s, %s, %s, %s, clock_timestamp())
           ON CONFLICT (conference_sid, call_sid) DO UPDATE SET left_at = NULL""",
        (sid, call_sid, role, number, controller),
    )
    add_event(conn, sid, "join", call=call_sid, role=role)


def leave(conn: psycopg.Connection, sid: str, call_sid: str) -> None:
    cursor = conn.execute(
        """UPDATE conference_participants SET left_at = clock_timestamp(), is_controller = false
           WHERE conference_sid = %s AND call_sid = %s AND left_at IS NULL""",
        (sid, call_sid),
    )
    if cursor.rowcount:
        add_event(conn, sid, "leave", call=call_sid)


def set_muted(conn: psycopg.Connection, sid: str, call_sid: str, muted: bool) -> None:
    _set_flag(conn, sid, call_sid, "muted", muted, "mute" if muted else "unmute")


def set_on_hold(conn: psycopg.Connection, sid: str, call_sid: str, on_hold: bool) -> None:
    _set_flag(conn, sid, call_sid, "on_hold", on_hold, "hold" if on_hold else "unhold")


def _set_flag(
    conn: psycopg.Connection, sid: str, call_sid: str, column: str, value: bool, event: str
) -> None:
    assert column in ("muted", "on_hold")
    cursor = conn.execute(
        f"""UPDATE conference_participants SET {column} = %s
            WHERE conference_sid = %s AND call_sid = %s AND left_at IS NULL""",
        (value, sid, call_sid),
    )
    if cursor.rowcount:
        add_event(conn, sid, event, call=call_sid)


def set_controller(conn: psycopg.Connection, sid: str, call_sid: str) -> None:
    conn.execute(
        "UPDATE conference_participants SET is_controller = false WHERE conference_sid = %s",
        (sid,),
    )
    conn.execute(
        """UPDATE conference_participants SET is_controller = true
           WHERE conference_sid = %s AND call_sid = %s""",
        (sid, call_sid),
    )
    conn.execute("UPDATE conferences SET controller_call_sid = %s WHERE sid = %s", (call_sid, sid))
    add_event(conn, sid, "controller", call=call_sid)


def close(conn: psycopg.Connection, sid: str, reason: str) -> None:
    """End the conference: every participant still in it leaves now."""
    cursor = conn.execute(
        """UPDATE conferences
           SET status = 'completed', ended_at = clock_timestamp(), end_reason = %s
           WHERE sid = %s AND ended_at IS NULL""",
        (reason, sid),
    )
    if cursor.rowcount:
        conn.execute(
            """UPDATE conference_participants SET left_at = clock_timestamp()
               WHERE conference_sid = %s AND left_at IS NULL""",
            (sid,),
        )
        add_event(conn, sid, "end", reason=reason)


def participants(conn: psycopg.Connection, sid: str) -> list[Participant]:
    rows = conn.execute(
        """SELECT call_sid, role, number, is_controller, muted, on_hold, joined_at, left_at
           FROM conference_participants WHERE conference_sid = %s ORDER BY joined_at, call_sid""",
        (sid,),
    ).fetchall()
    return [Participant(**row) for row in rows]


def get(conn: psycopg.Connection, sid: str) -> dict | None:
    return conn.execute("SELECT * FROM conferences WHERE sid = %s", (sid,)).fetchone()


def events(conn: psycopg.Connection, sid: str) -> list[dict]:
    return conn.execute(
        "SELECT seq, kind, data, at FROM conference_events WHERE conference_sid = %s ORDER BY seq",
        (sid,),
    ).fetchall()


def open_for_call(conn: psycopg.Connection, call_sid: str) -> list[str]:
    """The running conferences the call is in."""
    rows = conn.execute(
        """SELECT p.conference_sid FROM conference_participants p
           JOIN conferences c ON c.sid = p.conference_sid
           WHERE p.call_sid = %s AND p.left_at IS NULL AND c.ended_at IS NULL""",
        (call_sid,),
    ).fetchall()
    return [row["conference_sid"] for row in rows]
