"""Extensions: an employee's SIP account, set from a password that is never stored."""

from __future__ import annotations

import re
import secrets

import psycopg

from media.sip.digest import ha1
from store import extensions
from store.extensions import Extension

EXTENSION = re.compile(r"[0-9]{2,8}")


def new_password() -> str:
    return secrets.token_urlsafe(12)


def set_extension(
    conn: psycopg.Connection,
    account_sid: str,
    extension: str,
    password: str,
    *,
    display_name: str = "",
) -> Extension:
    """Create or update the extension; its realm is the account's SIP domain."""
    if not EXTENSION.fullmatch(extension):
        raise ValueError(f"extension {extension!r} must be 2 to 8 digits")
    if len(password) < 8:
        raise ValueError("an extension's password needs at least 8 characters")
    realm = extensions.sip_domain(conn, account_sid)
    if realm is None:
        raise ValueError(f"account {account_sid} has no SIP domain; set one first")
    return extensions.set_extension(
        conn,
        account_sid,
        extension,
        realm=realm,
        ha1_md5=ha1(extension, realm, password, "MD5"),
        ha1_sha256=ha1(extension, realm, password, "SHA-256"),
        display_name=display_name,
    )
