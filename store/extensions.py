"""Extensions (employees' SIP accounts) and the registrar's bindings.

A phone names its account by SIP domain (the host of its AOR); the digest realm is that
domain. Passwords are never stored, only their HA1 digests, which the caller computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg


@dataclass(frozen=True, slots=True)
class Extension:
    account_sid: str
    extension: str
    display_name: str
    realm: str
    ha1_md5: str
    ha1_sha256: str


def _extension(row: dict) -> Extension:
    return Extension(
        row["account_sid"],
        row["extension"],
        row["display_name"],
        row["realm"],
        row["ha1_md5"],
        row["ha1_sha256"],
    )


def set_sip_domain(conn: psycopg.Connection, account_sid: str, domain: str) -> None:
    conn.execute(
        "UPDATE accounts SET sip_domain = %s, updated_at = now() WHERE sid = %s",
        (domain.lower(), account_sid),
    )


def sip_domain(conn: psycopg.Connection, account_sid: str) -> str | None:
    row = conn.execute("SELECT sip_domain FROM accounts WHERE sid = %s", (account_sid,)).fetchone()
    return row["sip_domain"] if row else None


def set_extension(
    conn: psycopg.Connection,
    account_sid: str,
    extension: str,
    *,
    realm: str,
    ha1_md5: str,
    ha1_sha256: str,
    display_name: str = "",
) -> Extension:
    row = conn.execute(
        """INSERT INTO extensions (account_sid, extension, display_name, realm, ha1_md5, ha1_sha256)
           VALUES (%s, %s, %s, %s, %s, %s)
           ON CONFLICT (account_sid, extension) DO UPDATE
           SET display_name = EXCLUDED.display_name, realm = EXCLUDED.realm,
               ha1_md5 = EXCLUDED.ha1_md5, ha1_sha256 = EXCLUDED.ha1_sha256, updated_at = now()
           RETURNING *""",
        (account_sid, extension, display_name, realm, ha1_md5, ha1_sha256),
    ).fetchone()
    return _extension(row)


def find_extension(conn: psycopg.Connection, domain: str, extension: str) -> Extension | None:
    """The extension `extension` of the account whose SIP domain is `domain`."""
    row = conn.execute(
        """SELECT e.* FROM extensions e JOIN accounts a ON a.sid = e.account_sid
           WHERE a.sip_domain = %s AND e.extension = %s AND a.status = 'active'""",
        (domain.lower(), extension),
    ).fetchone()
    return _extension(row) if row else None


def get_extension(conn: psycopg.Connection, account_sid: str, extension: str) -> Extension | None:
    row = conn.execute(
        "SELECT * FROM extensions WHERE account_sid = %s AND extension = %s",
        (account_sid, extension),
    ).fetchone()
    return _extension(row) if row else None


def list_extensions(conn: psycopg.Connection, account_sid: str) -> list[Extension]:
    rows = conn.execute(
        "SELECT * FROM extensions WHERE account_sid = %s ORDER BY extension", (account_sid,)
    ).fetchall()
    return [_extension(row) for row in rows]


@dataclass(frozen=True, slots=True)
class Registration:
    contact: str
    expires_at: datetime
    call_id: str
    cseq: int
    received: str | None
    transport: str
    q: float | None
    instance: str | None
    user_agent: str | None
    node: str


def replace_registrations(
    conn: psycopg.Connection,
    account_sid: str,
    extension: str,
    registrations: list[Registration],
) -> None:
    """Make the extension's stored bindings exactly `registrations` (the registrar's view)."""
    conn.execute(
        "DELETE FROM registrations WHERE account_sid = %s AND extension = %s",
        (account_sid, extension),
    )
    for reg in registrations:
        conn.execute(
            """INSERT INTO registrations (account_sid, extension, contact, expires_at, call_id,
                   cseq, received, transport, q, instance, user_agent, node)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                account_sid,
                extension,
                reg.contact,
                reg.expires_at,
                reg.call_id,
                reg.cseq,
                reg.received,
                reg.transport,
                reg.q,
                reg.instance,
                reg.user_agent,
                reg.node,
            ),
        )


def registrations(conn: psycopg.Connection, account_sid: str, extension: str) -> list[Registration]:
    rows = conn.execute(
        """SELECT * FROM registrations WHERE account_sid = %s AND extension = %s
           AND expires_at > %s ORDER BY q DESC NULLS LAST, updated_at DESC""",
        (account_sid, extension, datetime.now(UTC)),
    ).fetchall()
    return [
        Registration(
            r["contact"],
            r["expires_at"],
            r["call_id"],
            r["cseq"],
            r["received"],
            r["transport"],
            r["q"],
            r["instance"],
            r["user_agent"],
            r["node"],
        )
        for r in rows
    ]


def node_registrations(
    conn: psycopg.Connection, node: str
) -> list[tuple[str, str, Registration]]:
    """Every unexpired registration a media node saved: (account, extension, registration)."""
    rows = conn.execute(
        """SELECT * FROM registrations WHERE node = %s AND expires_at > now()
           ORDER BY account_sid, extension, updated_at""",
        (node,),
    ).fetchall()
    return [
        (
            row["account_sid"],
            row["extension"],
            Registration(
                contact=row["contact"],
                expires_at=row["expires_at"],
                call_id=row["call_id"],
                cseq=row["cseq"],
                received=row["received"],
                transport=row["transport"],
                q=row["q"],
                instance=row["instance"],
                user_agent=row["user_agent"],
                node=row["node"],
            ),
        )
        for row in rows
    ]
