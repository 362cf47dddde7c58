"""Sending queued media commands to the node that owns each call."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from store import calls as store_calls
from store.database import Database

log = logging.getLogger(__name__)

Publish = Callable[[str, dict[str, Any]], None]


class MediaClient:
    """Delivers a call's outbox in order through `publish(node, command)`."""

    def __init__(self, db: Database, publish: Publish) -> None:
        self._db = db
        self._publish = publish

    def flush(self, call_sid: str) -> int:
        """Send the call's unsent commands; returns how many were sent."""
        with self._db.transaction() as conn:
            commands = store_calls.claim_unsent_commands(conn, call_sid)
            for command in commands:
                node = command.pop("node")
                self._publish(node, command)
            # Marked after publishing: a crash in between resends, which the node absorbs.
            store_calls.mark_commands_sent(conn, call_sid, [c["seq"] for c in commands])
        return len(commands)
