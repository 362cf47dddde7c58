"""Resource identifiers in Twilio's shape: a two-letter prefix and 32 hex digits."""

from __future__ import annotations

import re
import uuid

PREFIXES = {
    "account": "AC",
    "phone_number": "PN",
    "script_bin": "EH",
    "call": "CA",
    "recording": "RE",
    "conference": "CF",
    "rate_deck": "RD",
}

_SID = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")


def new_sid(kind: str) -> str:
    return PREFIXES[kind] + uuid.uuid4().hex


def is_sid(value: str, kind: str | None = None) -> bool:
    if not _SID.match(value):
        return False
    return kind is None or value.startswith(PREFIXES[kind])
