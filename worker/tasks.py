"""The tasks. Each decodes its message and calls one domain function."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Celery
from celery.signals import worker_ready

from billing import charging
from media.protocol import ProtocolError, check_event
from store import accounts

log = logging.getLogger(__name__)

SWEEP_DAYS = 7


def register(app: Celery) -> None:
    from worker.app import context

    # Idempotent (the inbox absorbs repeats), so acknowledged only when done: a worker
    # killed mid-task gets its event redelivered to another.
    @app.task(name="worker.apply_event", acks_late=True)
    def apply_event(event: dict[str, Any]) -> None:
        try:
            check_event(event)
        except ProtocolError as error:
            log.error("dropped a malformed media event: %s (%r)", error, event)
            return
        context(app).runner.handle(event)

    # A call has signals to apply (the REST API left them): idempotent, like any drive.
    @app.task(name="worker.drive_call", acks_late=True)
    def drive_call(call_sid: str) -> None:
        context(app).runner.drive(call_sid)

    # Not idempotent for the receiver (an HTTP request), so acknowledged on receipt.
    @app.task(name="worker.send_status_callback")
    def send_status_callback(
        account_sid: str, url: str, method: str, params: dict[str, str]
    ) -> None:
        ctx = context(app)
        with ctx.db.transaction() as conn:
            token = accounts.auth_token(conn, account_sid, ctx.settings.resolved_secret_key())
        result = ctx.webhooks.notify(url, method, params, token)
        if not result.ok:
            log.warning("status callback to %s failed: %s", url, result.error)

    # ---- billing: rating a leg once it has ended (`calls` enqueues worker.rate_leg after
    # the transaction that ended it commits). Idempotent (a leg's charge is keyed by its
    # sid), so acknowledged only when done: a worker killed mid-rating loses nothing.
    decks = charging.DeckCache()

    @app.task(name="worker.rate_leg", acks_late=True)
    def rate_leg(call_sid: str) -> None:
        charge = charging.rate_leg(context(app).db, call_sid, decks)
        if charge is not None and charge.status == "unrated":
            log.warning("leg %s is unrated: %s", call_sid, charge.reason)

    # The sweep for legs whose rate_leg was never enqueued (a worker died between ending
    # the call and enqueuing): rates every ended leg of the period that has no charge.
    @app.task(name="worker.rate_ended_legs", acks_late=True)
    def rate_ended_legs(since: str, until: str) -> None:
        added = charging.rate_ended_legs(
            context(app).db,
            since=datetime.fromisoformat(since),
            until=datetime.fromisoformat(until),
            decks=decks,
        )
        if added:
            log.warning("rated %d leg(s) whose rating had not been enqueued", added)

    # A worker that starts sweeps the last week: legs whose rating task was lost (a worker
    # died between ending a call and enqueuing) are rated now rather than never.
    @worker_ready.connect(weak=False)
    def sweep_on_start(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", app) is not app:
            return
        now = datetime.now(UTC)
        since = now - timedelta(days=SWEEP_DAYS)
        app.send_task("worker.rate_ended_legs", args=[since.isoformat(), now.isoformat()])
