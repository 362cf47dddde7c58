"""Accounts: creation, authentication and the token that signs their webhooks."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from store import sealing
from store.sids import is_sid, new_sid


@dataclass(frozen=True, slots=True)
class Account:
    sid: str
    friendly_name: str
    status: str
    country: str


def _account(row: dict) -> Account:
    return Account(row["sid"], row["friendly_name"], row["status"], row["country"])


def create_account(
    conn: psycopg.Connection,
    friendly_name: str,
    secret_key: str,
    *,
    token: str | None = None,
    sid: str | None = None,
    country: str = "US",
) -> tuple[Account, str]:
    """Create an account; returns it and its auth token (shown once to its owner)."""
    token = token or sealing.new_token()
    row = conn.execute(
        """INSERT INTO accounts (sid, friendly_name, auth_token_hash, auth_token_sealed, country)
           VALUES (%s, %s, %s, %s, %s) RETURNING *""",
        (
            sid or new_sid("account"),
            friendly_name,
            sealing.token_hash(token),
            sealing.seal(token, secret_key),
            country,
        ),
    ).fetchone()
    return _account(row), token


def get_account(conn: psycopg.Connection, sid: str) -> Account | None:
    row = conn.execute("SELECT * FROM accounts WHERE sid = %s", (sid,)).fetchone()
    return _account(row) if row else None


def find_account(conn: psycopg.Connection, friendly_name: str) -> Account | None:
    row = conn.execute(
        "SELECT * FROM accounts WHERE friendly_name = %s ORDER BY created_at LIMIT 1",
        (friendly_name,),
    ).fetchone()
    return _account(row) if row else None


def authenticate(conn: psycopg.Connection, sid: str, token: str) -> Account | None:
    """The active account whose sid and token these are, else None (same for every miss)."""
    if not is_sid(sid, "account"):
        return None
    row = conn.execute(
        "SELECT * FROM accounts WHERE sid = %s AND status = 'active'", (sid,)
    ).fetchone()
    if row is None or not sealing.token_matches(token, row["auth_token_hash"]):
        return None
    return _account(row)


def auth_token(conn: psycopg.Connection, sid: str, secret_key: str) -> str:
    """The account's auth token in clear, to sign the webhooks we send for it."""
    row = conn.execute("SELECT auth_token_sealed FROM accounts WHERE sid = %s", (sid,)).fetchone()
    if row is None:
        raise LookupError(f"no account {sid}")
    return sealing.unseal(row["auth_token_sealed"], secret_key)
