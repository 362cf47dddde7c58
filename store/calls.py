"""Calls and what flows through them: the media-event inbox, the command outbox, the log.

`lock_call` serialises all work on one call across workers; together with the inbox's
primary key and `calls.last_event_seq` it is what makes every media event apply exactly
once and in order, whichever worker receives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb


@dataclass(slots=True)
class CallRow:
    sid: str
    account_sid: str
    parent_call_sid: str | None
    direction: str
    from_number: str
    to_number: str
    status: str
    phone_number_sid: str | None
    media_node: str
    created_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    last_event_seq: int
    next_command_seq: int
    next_log_seq: int
    script: dict[str, Any]
    # What each end is ('extension', 'number', 'sip', 'client'); None: not said, and
    # billing infers it.
    from_kind: str | None = None
    to_kind: str | None = None


_COLUMNS = tuple(CallRow.__dataclass_fields__)


def lock_call(conn: psycopg.Connection, call_sid: str) -> CallRow | None:
    """Take the call's lock for this transaction (even before its row exists) and load it."""
    lock_call_only(conn, call_sid)
    return get_call(conn, call_sid)


def lock_call_only(conn: psycopg.Connection, call_sid: str) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (call_sid,))


def get_call(conn: psycopg.Connection, call_sid: str) -> CallRow | None:
    row = conn.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM calls WHERE sid = %s", (call_sid,)
    ).fetchone()
    return CallRow(**row) if row else None


def insert_call(conn: psycopg.Connection, call: CallRow) -> None:
    values = {name: getattr(call, name) for name in _COLUMNS}
    values["script"] = Jsonb(call.script)
    conn.execute(
        f"INSERT INTO calls ({', '.join(_COLUMNS)}) "
        f"VALUES ({', '.join(f'%({name})s' for name in _COLUMNS)})",
        values,
    )


def save_call(conn: psycopg.Connection, call: CallRow) -> None:
    """Write back everything that changes while a call runs."""
    conn.execute(
        """UPDATE calls SET status = %(status)s, answered_at = %(answered_at)s,
                  ended_at = %(ended_at)s, end_reason = %(end_reason)s,
                  last_event_seq = %(last_event_seq)s, next_command_seq = %(next_command_seq)s,
                  next_log_seq = %(next_log_seq)s, script = %(script)s
           WHERE sid = %(sid)s""",
        {
            "sid": call.sid,
            "status": call.status,
            "answered_at": call.answered_at,
            "ended_at": call.ended_at,
            "end_reason": call.end_reason,
            "last_event_seq": call.last_event_seq,
            "next_command_seq": call.next_command_seq,
            "next_log_seq": call.next_log_seq,
            "script": Jsonb(call.script),
        },
    )


def store_media_event(conn: psycopg.Connection, event: dict[str, Any]) -> bool:
    """Put an event in the inbox; False if that (call, seq) was already there."""
    cursor = conn.execute(
        """INSERT INTO media_events (call_sid, seq, node, type, payload)
           VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
        (event["call"], event["seq"], event["node"], event["type"], Jsonb(event)),
    )
    return cursor.rowcount == 1


def next_media_events(conn: psycopg.Connection, call_sid: str, after_seq: int) -> list[dict]:
    """The unapplied events that directly follow `after_seq`, stopping at the first gap."""
    rows = conn.execute(
        """SELECT seq, payload FROM media_events
           WHERE call_sid = %s AND seq > %s AND applied_at IS NULL ORDER BY seq""",
        (call_sid, after_seq),
    ).fetchall()
    events = []
    expected = after_seq + 1
    for row in rows:
        if row["seq"] != expected:
            break
        events.append(row["payload"])
        expected += 1
    return events


def mark_media_event_applied(conn: psycopg.Connection, call_sid: str, seq: int) -> None:
    conn.execute(
        "UPDATE media_events SET applied_at = now() WHERE call_sid = %s AND seq = %s",
        (call_sid, seq),
    )


def take_command_seqs(
    conn: psycopg.Connection, call_sid: str, count: int
) -> tuple[str, int] | None:
    """Reserve `count` command seqs of a running call (its lock held); returns its node and
    the first seq, or None if the call has ended or has no row."""
    row = conn.execute(
        """UPDATE calls SET next_command_seq = next_command_seq + %s
           WHERE sid = %s AND ended_at IS NULL
           RETURNING media_node, next_command_seq - %s AS first""",
        (count, call_sid, count),
    ).fetchone()
    return (row["media_node"], row["first"]) if row else None


def queue_media_command(
    conn: psycopg.Connection, call_sid: str, seq: int, node: str, command: dict[str, Any]
) -> None:
    conn.execute(
        """INSERT INTO media_commands (call_sid, seq, node, type, payload)
           VALUES (%s, %s, %s, %s, %s)""",
        (call_sid, seq, node, command["type"], Jsonb(command)),
    )


def claim_unsent_commands(conn: psycopg.Connection, call_sid: str) -> list[dict]:
    """Unsent commands of the call in order; one sender per call at a time keeps the order."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", (call_sid,))
    rows = conn.execute(
        """SELECT seq, node, payload FROM media_commands
           WHERE call_sid = %s AND sent_at IS NULL ORDER BY seq""",
        (call_sid,),
    ).fetchall()
    return [dict(row["payload"], node=row["node"]) for row in rows]


def mark_commands_sent(conn: psycopg.Connection, call_sid: str, seqs: list[int]) -> None:
    conn.execute(
        "UPDATE media_commands SET sent_at = now() WHERE call_sid = %s AND seq = ANY(%s)",
        (call_sid, seqs),
    )


def append_call_event(
    conn: psycopg.Connection, call_sid: str, seq: int, kind: str, data: dict[str, Any]
) -> None:
    conn.execute(
        "INSERT INTO call_events (call_sid, seq, kind, data) VALUES (%s, %s, %s, %s)",
        (call_sid, seq, kind, Jsonb(data)),
    )


def call_events(conn: psycopg.Connection, call_sid: str, after_seq: int = 0) -> list[dict]:
    return conn.execute(
        """SELECT seq, kind, data, created_at FROM call_events
           WHERE call_sid = %s AND seq > %s ORDER BY seq""",
        (call_sid, after_seq),
    ).fetchall()


def media_commands(conn: psycopg.Connection, call_sid: str) -> list[dict]:
    return conn.execute(
        """SELECT seq, node, type, payload, created_at, sent_at FROM media_commands
           WHERE call_sid = %s ORDER BY seq""",
        (call_sid,),
    ).fetchall()


def insert_recording(
    conn: psycopg.Connection, sid: str, account_sid: str, call_sid: str, path: str, duration: int
) -> None:
    conn.execute(
        """INSERT INTO recordings (sid, account_sid, call_sid, path, duration)
           VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
        (sid, account_sid, call_sid, path, duration),
    )


def find_recording(conn: psycopg.Connection, account_sid: str, sid: str) -> dict | None:
    return conn.execute(
        "SELECT * FROM recordings WHERE sid = %s AND account_sid = %s", (sid, account_sid)
    ).fetchone()


def recent_calls(conn: psycopg.Connection, account_sid: str, limit: int = 50) -> list[CallRow]:
    rows = conn.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM calls WHERE account_sid = %s "
        "ORDER BY created_at DESC LIMIT %s",
        (account_sid, limit),
    ).fetchall()
    return [CallRow(**row) for row in rows]


def add_signal(conn: psycopg.Connection, call_sid: str, payload: dict[str, Any]) -> None:
    """Leave a signal for another call (applied under that call's lock)."""
    conn.execute(
        "INSERT INTO call_signals (call_sid, payload) VALUES (%s, %s)", (call_sid, Jsonb(payload))
    )


def pending_signals(conn: psycopg.Connection, call_sid: str) -> list[tuple[int, dict]]:
    rows = conn.execute(
        """SELECT id, payload FROM call_signals
           WHERE call_sid = %s AND applied_at IS NULL ORDER BY id""",
        (call_sid,),
    ).fetchall()
    return [(row["id"], row["payload"]) for row in rows]


def mark_signal_applied(conn: psycopg.Connection, signal_id: int) -> None:
    conn.execute("UPDATE call_signals SET applied_at = now() WHERE id = %s", (signal_id,))
