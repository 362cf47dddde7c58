"""Phone numbers: which account owns a number and which script answers it."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from store.sids import new_sid


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    sid: str
    account_sid: str
    number: str
    voice_url: str | None
    voice_method: str
    voice_fallback_url: str | None
    voice_fallback_method: str
    status_callback: str | None
    status_callback_method: str


_FIELDS = (
    "voice_url",
    "voice_method",
    "voice_fallback_url",
    "voice_fallback_method",
    "status_callback",
    "status_callback_method",
)


def _number(row: dict) -> PhoneNumber:
    return PhoneNumber(
        row["sid"], row["account_sid"], row["number"], *(row[field] for field in _FIELDS)
    )


def set_number(
    conn: psycopg.Connection,
    account_sid: str,
    number: str,
    **fields: str | None,
) -> PhoneNumber:
    """Create the number for the account or update it; refuses another account's number."""
    unknown = set(fields) - set(_FIELDS)
    if unknown:
        raise TypeError(f"unknown phone number fields: {', '.join(sorted(unknown))}")
    existing = conn.execute(
        "SELECT * FROM phone_numbers WHERE number = %s FOR UPDATE", (number,)
    ).fetchone()
    if existing and existing["account_sid"] != account_sid:
        raise PermissionError(f"{number} belongs to another account")
    if existing is None:
        conn.execute(
            "INSERT INTO phone_numbers (sid, account_sid, number) VALUES (%s, %s, %s)",
            (new_sid("phone_number"), account_sid, number),
        )
    if fields:
        assignments = ", ".join(f"{name} = %({name})s" for name in fields)
        conn.execute(
            f"UPDATE phone_numbers SET {assignments}, updated_at = now() WHERE number = %(number)s",
            {**fields, "number": number},
        )
    return find_number(conn, number)  # type: ignore[return-value]


def find_number(conn: psycopg.Connection, number: str) -> PhoneNumber | None:
    row = conn.execute("SELECT * FROM phone_numbers WHERE number = %s", (number,)).fetchone()
    return _number(row) if row else None
