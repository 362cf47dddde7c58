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

    def publish(self, queued: list[tuple[str, dict[str, Any]]]) -> set[int]:
        """Send commands a transaction just committed, straight from memory (no query
        stands between a commit and its commands); returns their seqs for `flush`."""
        for node, command in queued:
            self._publish(node, command)
        return {command["seq"] for _node, command in queued}

    def flush(self, call_sid: str, published: set[int] | frozenset[int] = frozenset()) -> int:
        """Send the call's unsent commands, except those `publish` sent already, and mark
        them all sent; returns how many were sent here."""
        sent = 0
        with self._db.transaction() as conn:
            commands = store_calls.claim_unsent_commands(conn, call_sid)
            for command in commands:
                node = command.pop("node")
                if command["seq"] not in published:
                    self._publish(node, command)
                    sent += 1
            # Marked after publishing: a crash in between resends, which the node absorbs.
            store_calls.mark_commands_sent(conn, call_sid, [c["seq"] for c in commands])
        return sent
