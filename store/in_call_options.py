"""The account's in-call options: key -> operation.

"transfer" and "abort" drive the `#` flow; in its conference the controller may also
"mute" (every other participant, pressed again: unmute) and "remove" (the participant
added last). "none" unbinds a key.
"""

from __future__ import annotations

import psycopg

DEFAULTS = {"#": "transfer", "*": "abort"}
OPERATIONS = ("transfer", "abort", "mute", "remove", "none")


def options(conn: psycopg.Connection, account_sid: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT key, operation FROM in_call_options WHERE account_sid = %s ORDER BY key",
        (account_sid,),
    ).fetchall()
    return {row["key"]: row["operation"] for row in rows} if rows else dict(DEFAULTS)


def set_option(conn: psycopg.Connection, account_sid: str, key: str, operation: str) -> None:
    if len(key) != 1 or key not in "0123456789*#":
        raise ValueError(f"in-call option key {key!r} must be one of 0-9 * #")
    if operation not in OPERATIONS:
        raise ValueError(f"in-call operation {operation!r} must be one of {', '.join(OPERATIONS)}")
    current = options(conn, account_sid)
    current[key] = operation
    conn.execute("DELETE FROM in_call_options WHERE account_sid = %s", (account_sid,))
    for each_key, each_operation in current.items():
        conn.execute(
            "INSERT INTO in_call_options (account_sid, key, operation) VALUES (%s, %s, %s)",
            (account_sid, each_key, each_operation),
        )


def keys_for(bindings: dict[str, str]) -> dict[str, str | None]:
    """The key of each operation of the `#` flow (None: no key does it)."""
    found: dict[str, str | None] = {"transfer": None, "abort": None, "mute": None, "remove": None}
    for key, operation in bindings.items():
        if operation in found and found[operation] is None:
            found[operation] = key
    return found
