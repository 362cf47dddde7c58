"""Charges: one per ended leg (the primary key is the leg's sid), their revisions, and
the legs, bills, totals and call detail records read from them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

# The columns a rating writes.
CHARGE_COLUMNS = (
    "call_sid",
    "account_sid",
    "status",
    "reason",
    "leg_class",
    "number",
    "started_at",
    "duration",
    "billable_seconds",
    "deck_sid",
    "deck_name",
    "prefix",
    "description",
    "price_per_minute",
    "connect_fee",
    "first_increment",
    "next_increment",
    "currency",
    "amount",
)

# A leg as the rater needs it: the call row, its account's country and deck.
_LEG = """SELECT c.sid AS call_sid, c.account_sid, c.direction, c.from_number, c.to_number,
                 c.from_kind, c.to_kind, c.created_at, c.answered_at, c.ended_at,
                 a.country, a.rate_deck_sid
          FROM calls c JOIN accounts a ON a.sid = c.account_sid"""

# What a bill shows of each leg: the call's facts and its charge (NULLs while pending).
_BILL_LEG = """c.sid AS call_sid, c.parent_call_sid, c.direction, c.from_number, c.to_number,
               c.status AS call_status, c.created_at, c.answered_at, c.ended_at,
               ch.status, ch.reason, ch.leg_class, ch.number, ch.duration,
               ch.billable_seconds, ch.deck_name, ch.prefix, ch.description,
               ch.price_per_minute, ch.connect_fee, ch.first_increment, ch.next_increment,
               ch.currency, ch.amount, ch.revision"""


def leg(conn: psycopg.Connection, call_sid: str) -> dict[str, Any] | None:
    return conn.execute(f"{_LEG} WHERE c.sid = %s", (call_sid,)).fetchone()


def ended_legs(
    conn: psycopg.Connection,
    *,
    since: datetime,
    until: datetime,
    account_sid: str | None = None,
    after: tuple[datetime, str] | None = None,
    without_charge: bool = False,
    limit: int = 5000,
) -> list[dict[str, Any]]:
    """Ended legs that started in [since, until), oldest first, from after `after`
    (a leg's created_at and sid: the last of the previous batch)."""
    conditions = ["c.ended_at IS NOT NULL", "c.created_at >= %(since)s", "c.created_at < %(until)s"]
    if account_sid is not None:
        conditions.append("c.account_sid = %(account)s")
    if after is not None:
        conditions.append("(c.created_at, c.sid) > (%(after_at)s, %(after_sid)s)")
    if without_charge:
        conditions.append("NOT EXISTS (SELECT 1 FROM charges ch WHERE ch.call_sid = c.sid)")
    return conn.execute(
        f"{_LEG} WHERE {' AND '.join(conditions)} ORDER BY c.created_at, c.sid LIMIT %(limit)s",
        {
            "since": since,
            "until": until,
            "account": account_sid,
            "after_at": after[0] if after else None,
            "after_sid": after[1] if after else None,
            "limit": limit,
        },
    ).fetchall()


def insert_charges(conn: psycopg.Connection, charges: list[dict[str, Any]]) -> int:
    """Insert the charges of legs that have none; returns how many were new.

    Many at a time: COPY into a session-local staging table, then one INSERT that skips
    the legs charged already (COPY itself cannot skip a conflicting row).
    """
    if not charges:
        return 0
    columns = ", ".join(CHARGE_COLUMNS)
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS charges_staged"
        " (LIKE charges INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    with conn.cursor().copy(f"COPY charges_staged ({columns}) FROM STDIN") as copy:
        for charge in charges:
            copy.write_row([charge[column] for column in CHARGE_COLUMNS])
    inserted = conn.execute(
        f"""INSERT INTO charges ({columns}) SELECT {columns} FROM charges_staged
            ON CONFLICT (call_sid) DO NOTHING"""
    )
    conn.execute("DELETE FROM charges_staged")
    return inserted.rowcount


def charges(conn: psycopg.Connection, call_sids: list[str]) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        f"SELECT {', '.join(CHARGE_COLUMNS)}, revision, rated_at FROM charges"
        " WHERE call_sid = ANY(%s)",
        (call_sids,),
    ).fetchall()
    return {row["call_sid"]: row for row in rows}


def revise_charge(conn: psycopg.Connection, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Replace a charge by a re-rated one, keeping the old one as a revision."""
    conn.execute(
        "INSERT INTO charge_revisions (call_sid, revision, charge) VALUES (%s, %s, %s)",
        (
            old["call_sid"],
            old["revision"],
            Jsonb(old, dumps=lambda value: json.dumps(value, default=str)),
        ),
    )
    changed = [c for c in CHARGE_COLUMNS if c != "call_sid"]
    cursor = conn.execute(
        f"""UPDATE charges SET {", ".join(f"{c} = %({c})s" for c in changed)},
                   revision = revision + 1, rated_at = now()
            WHERE call_sid = %(call_sid)s AND revision = %(old_revision)s""",
        {**new, "old_revision": old["revision"]},
    )
    if cursor.rowcount != 1:
        raise RuntimeError(f"the charge of {old['call_sid']} changed while it was re-rated")


def charge_revisions(conn: psycopg.Connection, call_sid: str) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT revision, charge, replaced_at FROM charge_revisions"
        " WHERE call_sid = %s ORDER BY revision",
        (call_sid,),
    ).fetchall()


def call_tree_legs(conn: psycopg.Connection, call_sid: str) -> list[dict[str, Any]]:
    """The call's leg and every leg placed for it (children, theirs, ...), oldest first."""
    return conn.execute(
        f"""WITH RECURSIVE tree AS (
                SELECT sid, 0 AS depth FROM calls WHERE sid = %s
                UNION ALL
                SELECT c.sid, t.depth + 1 FROM calls c JOIN tree t ON c.parent_call_sid = t.sid
                WHERE t.depth < 32
            )
            SELECT c.account_sid, {_BILL_LEG}
            FROM tree JOIN calls c ON c.sid = tree.sid
            LEFT JOIN charges ch ON ch.call_sid = c.sid
            ORDER BY c.created_at, c.sid""",
        (call_sid,),
    ).fetchall()


def conference_legs(conn: psycopg.Connection, conference_sid: str) -> list[dict[str, Any]]:
    """The legs of a conference's participants in joining order, each leg once and only
    in the first conference it joined (so no leg is ever on two conference bills)."""
    return conn.execute(
        f"""WITH first_joined AS (
                SELECT DISTINCT ON (p.call_sid) p.call_sid, p.conference_sid
                FROM conference_participants p
                WHERE p.call_sid IN (SELECT call_sid FROM conference_participants
                                     WHERE conference_sid = %(sid)s)
                ORDER BY p.call_sid, p.joined_at, p.conference_sid
            )
            SELECT p.role, p.number AS participant_number, p.is_controller, p.joined_at,
                   p.left_at, {_BILL_LEG}
            FROM conference_participants p
            JOIN first_joined f
              ON f.call_sid = p.call_sid AND f.conference_sid = p.conference_sid
            JOIN calls c ON c.sid = p.call_sid
            LEFT JOIN charges ch ON ch.call_sid = p.call_sid
            WHERE p.conference_sid = %(sid)s
            ORDER BY p.joined_at, p.call_sid""",
        {"sid": conference_sid},
    ).fetchall()


def daily_totals(
    conn: psycopg.Connection, account_sid: str, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Per UTC day and currency: ended legs, their amount, how many are unrated and how
    many wait for rating."""
    return conn.execute(
        """SELECT (c.created_at AT TIME ZONE 'UTC')::date AS day, ch.currency,
                  count(*) AS legs, coalesce(sum(ch.amount), 0)::numeric(20, 4) AS amount,
                  count(*) FILTER (WHERE ch.status = 'unrated') AS unrated,
                  count(*) FILTER (WHERE ch.call_sid IS NULL) AS pending
           FROM calls c LEFT JOIN charges ch ON ch.call_sid = c.sid
           WHERE c.account_sid = %s AND c.created_at >= %s AND c.created_at < %s
             AND c.ended_at IS NOT NULL
           GROUP BY 1, 2 ORDER BY 1, 2""",
        (account_sid, since, until),
    ).fetchall()


def call_totals(
    conn: psycopg.Connection, account_sid: str, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Per call (a leg nobody placed, with every leg placed for it) that started in the
    period, and currency: its UTC day, legs, amount, unrated and pending legs."""
    return conn.execute(
        """WITH RECURSIVE tree AS (
               SELECT sid, sid AS root, created_at AS root_at, 0 AS depth FROM calls
               WHERE account_sid = %s AND parent_call_sid IS NULL
                 AND created_at >= %s AND created_at < %s
               UNION ALL
               SELECT c.sid, t.root, t.root_at, t.depth + 1
               FROM calls c JOIN tree t ON c.parent_call_sid = t.sid WHERE t.depth < 32
           )
           SELECT t.root AS call_sid, (t.root_at AT TIME ZONE 'UTC')::date AS day,
                  ch.currency, count(*) AS legs,
                  coalesce(sum(ch.amount), 0)::numeric(20, 4) AS amount,
                  count(*) FILTER (WHERE ch.status = 'unrated') AS unrated,
                  count(*) FILTER (WHERE ch.call_sid IS NULL) AS pending
           FROM tree t JOIN calls c ON c.sid = t.sid
           LEFT JOIN charges ch ON ch.call_sid = t.sid
           WHERE c.ended_at IS NOT NULL
           GROUP BY t.root, t.root_at, ch.currency ORDER BY t.root_at, t.root, ch.currency""",
        (account_sid, since, until),
    ).fetchall()


def detail_records(
    conn: psycopg.Connection, account_sid: str | None, since: datetime, until: datetime
) -> psycopg.ServerCursor:
    """Every ended leg that started in the period with its charge, oldest first (a
    server-side cursor, to read in the same transaction)."""
    condition = "AND c.account_sid = %(account)s" if account_sid else ""
    cursor = conn.cursor(name="detail_records")  # server-side: rows arrive as they are read
    return cursor.execute(
        f"""SELECT c.account_sid, {_BILL_LEG}, c.end_reason
            FROM calls c LEFT JOIN charges ch ON ch.call_sid = c.sid
            WHERE c.created_at >= %(since)s AND c.created_at < %(until)s
              AND c.ended_at IS NOT NULL {condition}
            ORDER BY c.created_at, c.sid""",
        {"account": account_sid, "since": since, "until": until},
    )
