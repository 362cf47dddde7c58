"""Script bins: TwiML (or VoiceXML) documents stored on the platform."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from store.sids import new_sid


@dataclass(frozen=True, slots=True)
class ScriptBin:
    sid: str
    account_sid: str
    friendly_name: str
    language: str
    body: str


def _bin(row: dict) -> ScriptBin:
    return ScriptBin(
        row["sid"], row["account_sid"], row["friendly_name"], row["language"], row["body"]
    )


def save_bin(
    conn: psycopg.Connection,
    account_sid: str,
    friendly_name: str,
    body: str,
    *,
    language: str = "twiml",
) -> ScriptBin:
    """Create the named bin for the account, or replace its body (its sid stays)."""
    row = conn.execute(
        """INSERT INTO script_bins (sid, account_sid, friendly_name, language, body)
           VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (account_sid, friendly_name)
           DO UPDATE SET body = EXCLUDED.body, language = EXCLUDED.language,
                         updated_at = now()
           RETURNING *""",
        (new_sid("script_bin"), account_sid, friendly_name, language, body),
    ).fetchone()
    return _bin(row)


def get_bin(conn: psycopg.Connection, sid: str) -> ScriptBin | None:
    row = conn.execute("SELECT * FROM script_bins WHERE sid = %s", (sid,)).fetchone()
    return _bin(row) if row else None
