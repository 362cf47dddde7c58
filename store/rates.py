"""Rate decks, their rates, and which deck each account is rated from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from store.sids import new_sid

RATE_COLUMNS = (
    "kind",
    "prefix",
    "description",
    "price_per_minute",
    "connect_fee",
    "first_increment",
    "next_increment",
    "effective_from",
    "effective_until",
)


@dataclass(frozen=True, slots=True)
class DeckRow:
    sid: str
    name: str
    currency: str
    updated_at: datetime  # a new value at every import: what tells a cached deck is stale


def replace_deck(
    conn: psycopg.Connection, name: str, currency: str, rates: Iterable[dict[str, Any]]
) -> DeckRow:
    """Create the deck `name`, or replace all of its rates (in the caller's transaction)."""
    row = conn.execute(
        """INSERT INTO rate_decks (sid, name, currency) VALUES (%s, %s, %s)
           ON CONFLICT (name) DO UPDATE SET currency = excluded.currency,
               updated_at = clock_timestamp()
           RETURNING sid, name, currency, updated_at""",
        (new_sid("rate_deck"), name, currency),
    ).fetchone()
    conn.execute("DELETE FROM rates WHERE deck_sid = %s", (row["sid"],))
    with conn.cursor().copy(f"COPY rates (deck_sid, {', '.join(RATE_COLUMNS)}) FROM STDIN") as copy:
        for rate in rates:
            copy.write_row((row["sid"], *(rate[column] for column in RATE_COLUMNS)))
    return DeckRow(**row)


def find_deck(conn: psycopg.Connection, name: str) -> DeckRow | None:
    row = conn.execute(
        "SELECT sid, name, currency, updated_at FROM rate_decks WHERE name = %s", (name,)
    ).fetchone()
    return DeckRow(**row) if row else None


def get_deck(conn: psycopg.Connection, sid: str) -> DeckRow | None:
    row = conn.execute(
        "SELECT sid, name, currency, updated_at FROM rate_decks WHERE sid = %s", (sid,)
    ).fetchone()
    return DeckRow(**row) if row else None


def deck_rates(conn: psycopg.Connection, deck_sid: str) -> list[dict[str, Any]]:
    return conn.execute(
        f"SELECT {', '.join(RATE_COLUMNS)} FROM rates WHERE deck_sid = %s", (deck_sid,)
    ).fetchall()


def assign_deck(conn: psycopg.Connection, account_sid: str, deck_sid: str | None) -> None:
    cursor = conn.execute(
        "UPDATE accounts SET rate_deck_sid = %s, updated_at = now() WHERE sid = %s",
        (deck_sid, account_sid),
    )
    if cursor.rowcount != 1:
        raise LookupError(f"no account {account_sid}")


def account_deck(conn: psycopg.Connection, account_sid: str) -> DeckRow | None:
    row = conn.execute(
        """SELECT d.sid, d.name, d.currency, d.updated_at FROM accounts a
           JOIN rate_decks d ON d.sid = a.rate_deck_sid WHERE a.sid = %s""",
        (account_sid,),
    ).fetchone()
    return DeckRow(**row) if row else None
