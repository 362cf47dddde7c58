"""Exactly-once, in-order application of a call's media events, and its command outbox.

A worker that receives an event stores it in the inbox, then takes the call's lock and
applies every stored event that follows the last one applied, in `seq` order. Commands
decided while applying are written to the outbox in the same transaction and sent after
it commits, so a worker that dies at any point leaves nothing half done: the event is
either applied with all its commands queued, or not applied at all; queued commands are
sent by whichever worker touches the call next (the node ignores a repeated `seq`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

from store import calls as store_calls
from store.calls import CallRow
from store.database import Database

log = logging.getLogger(__name__)

T = TypeVar("T")


class CallWork:
    """One transaction's work on one call: its row, the commands and log entries it adds."""

    def __init__(self, conn: psycopg.Connection, call_sid: str, call: CallRow | None) -> None:
        self.conn = conn
        self.call_sid = call_sid
        self.call = call
        self._was_ended = call is not None and call.ended_at is not None
        self.after_commit: list[Callable[[], None]] = []
        # The commands this work queued, (node, message): published as soon as it commits.
        self.queued: list[tuple[str, dict[str, Any]]] = []

    @property
    def ended_now(self) -> bool:
        """This work ended the call (so its leg is to be rated once it commits)."""
        return not self._was_ended and self.call is not None and self.call.ended_at is not None

    def create(self, call: CallRow) -> CallRow:
        store_calls.insert_call(self.conn, call)
        self.call = call
        return call

    def send(self, command: dict[str, Any]) -> int:
        """Queue a media command for the call's node; returns its seq."""
        call = self._require_call()
        seq = call.next_command_seq
        call.next_command_seq += 1
        message = {"v": 1, "call": call.sid, "seq": seq, **command}
        store_calls.queue_media_command(self.conn, call.sid, seq, call.media_node, message)
        self.queued.append((call.media_node, message))
        return seq

    def send_without_call(self, node: str, command: dict[str, Any]) -> None:
        """Answer a call that gets no row (e.g. to a number nobody owns): its only command."""
        message = {"v": 1, "call": self.call_sid, "seq": 1, **command}
        store_calls.queue_media_command(self.conn, self.call_sid, 1, node, message)
        self.queued.append((node, message))

    def log(self, kind: str, **data: Any) -> None:
        call = self._require_call()
        store_calls.append_call_event(self.conn, call.sid, call.next_log_seq, kind, data)
        call.next_log_seq += 1

    def _require_call(self) -> CallRow:
        if self.call is None:
            raise LookupError(f"call {self.call_sid} has no row yet")
        return self.call


def receive(db: Database, event: dict[str, Any]) -> bool:
    """Store an event in the call's inbox; False if it was a duplicate."""
    with db.transaction() as conn:
        return store_calls.store_media_event(conn, event)


def apply_pending(
    db: Database,
    call_sid: str,
    apply: Callable[[CallWork, dict[str, Any]], None],
) -> CallWork:
    """Apply, under the call's lock, every stored event that is next in line, then the
    signals other calls left for it (their `type` starts with "signal.")."""
    with db.transaction() as conn:
        work = CallWork(conn, call_sid, store_calls.lock_call(conn, call_sid))
        after = work.call.last_event_seq if work.call else 0
        for event in store_calls.next_media_events(conn, call_sid, after):
            if work.call is None and event["seq"] != 1:
                break  # events of a call that never got a row (it was refused)
            apply(work, event)
            store_calls.mark_media_event_applied(conn, call_sid, event["seq"])
            if work.call is not None:
                work.call.last_event_seq = event["seq"]
        if work.call is not None:
            for signal_id, signal in store_calls.pending_signals(conn, call_sid):
                apply(work, signal)
                store_calls.mark_signal_applied(conn, signal_id)
            store_calls.save_call(conn, work.call)
    return work


def send_commands(
    db: Database, commands: dict[str, list[dict[str, Any]]]
) -> list[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """Queue media commands for several running calls in one transaction; returns, per
    call, the (node, message) pairs to publish once it commits (ended calls get none).

    Only what sending needs is touched (the seq counter, the outbox), not the call's
    script: this is the short path by which one call's step acts on others. The locks
    are taken in sid order, and the caller holds no call lock, so two of these never
    wait on each other in a cycle.
    """
    queued: list[tuple[str, list[tuple[str, dict[str, Any]]]]] = []
    with db.transaction() as conn:
        for call_sid in sorted(commands):
            store_calls.lock_call_only(conn, call_sid)
            taken = store_calls.take_command_seqs(conn, call_sid, len(commands[call_sid]))
            if taken is None:
                continue
            node, first = taken
            messages = []
            for offset, command in enumerate(commands[call_sid]):
                message = {"v": 1, "call": call_sid, "seq": first + offset, **command}
                store_calls.queue_media_command(conn, call_sid, message["seq"], node, message)
                messages.append((node, message))
            queued.append((call_sid, messages))
    return queued


def create(db: Database, call_sid: str, build: Callable[[CallWork], None]) -> CallWork:
    """Create a call that no media event announced (`build` calls `work.create`)."""
    with db.transaction() as conn:
        work = CallWork(conn, call_sid, store_calls.lock_call(conn, call_sid))
        if work.call is not None:
            raise ValueError(f"call {call_sid} exists already")
        build(work)
        store_calls.save_call(conn, work.call)
    return work


def update(
    db: Database, call_sid: str, change: Callable[[CallWork], T]
) -> tuple[CallWork, T | None]:
    """Run `change` on the call under its lock (for what is not a media event).

    Returns the work and what `change` returned; `change` is not run for a call
    without a row.
    """
    with db.transaction() as conn:
        work = CallWork(conn, call_sid, store_calls.lock_call(conn, call_sid))
        if work.call is None:
            return work, None
        result = change(work)
        store_calls.save_call(conn, work.call)
    return work, result
