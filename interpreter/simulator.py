"""Calls on a simulated media node, run in-process: the script simulator.

The worker's own code (`ScriptRunner`) applies the node's events and the node executes
the runner's commands, passed hand to hand instead of through the broker, so a script
runs to its end in one call and its whole story is in the call's event log.
Used by `manage.py simulate`, the console's simulator and the tests.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

from calls.media_client import MediaClient
from interpreter.runner import ScriptRunner
from interpreter.script import CallInfo, Notify
from interpreter.webhook import WebhookClient
from media.protocol import check_command, check_event
from media.simulated import SimulatedNode
from store import accounts
from store.database import Database

NODE = "simulator"


class Simulator:
    def __init__(
        self,
        db: Database,
        *,
        webhooks: WebhookClient,
        public_url: str,
        secret_key: str,
        recordings: Path,
    ) -> None:
        self.db = db
        self.webhooks = webhooks
        self.secret_key = secret_key
        self._messages: deque[tuple[str, dict[str, Any]]] = deque()
        self.node = SimulatedNode(
            NODE, lambda event: self._messages.append(("event", event)), recordings=recordings
        )
        self.runner = ScriptRunner(
            db,
            media=MediaClient(
                db, lambda _node, command: self._messages.append(("command", command))
            ),
            webhooks=webhooks,
            notify=self._notify,
            public_url=public_url,
            secret_key=secret_key,
        )

    def incoming(self, from_number: str, to_number: str, keys: str = "") -> str:
        """A caller dials one of the platform's numbers; runs the call to its end."""
        sid = self.node.incoming(from_number, to_number, keys)
        self.run()
        return sid

    def start(
        self,
        account_sid: str,
        voice_url: str,
        *,
        from_number: str,
        to_number: str,
        keys: str = "",
        method: str = "POST",
        at: float,
    ) -> str:
        """Run the script at `voice_url` as if a call to `to_number` had come in."""
        sid = self.node.attach(from_number, to_number, keys)
        self.runner.start_call(
            CallInfo(
                sid=sid,
                account_sid=account_sid,
                from_number=from_number,
                to_number=to_number,
                voice_url=voice_url,
                voice_method=method,
            ),
            node=NODE,
            at=at,
        )
        self.run()
        return sid

    def run(self) -> None:
        """Pass messages between node and runner until both are quiet."""
        while self._messages:
            kind, message = self._messages.popleft()
            if kind == "command":
                self.node.execute(check_command(message))
            else:
                self.runner.handle(check_event(message))

    def _notify(self, account_sid: str, callback: Notify) -> None:
        with self.db.transaction() as conn:
            token = accounts.auth_token(conn, account_sid, self.secret_key)
        self.webhooks.notify(callback.url, callback.method, callback.params, token)
