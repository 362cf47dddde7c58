"""The Celery application factory and the per-process context tasks run in."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from celery import Celery
from kombu import Queue

from calls.media_client import MediaClient
from interpreter.address_policy import AddressPolicy
from interpreter.runner import ScriptRunner
from interpreter.script import Notify
from interpreter.webhook import WebhookClient
from media.link import media_exchange, media_queue
from settings import Settings
from store.database import Database

log = logging.getLogger(__name__)


def transport_options(settings: Settings) -> dict[str, Any]:
    """Broker options; a short visibility timeout makes Redis redeliver a dead worker's task
    quickly (our tasks are idempotent, so an early redelivery costs nothing but time)."""
    return {
        "visibility_timeout": settings.broker_visibility_timeout,
        "unacked_restore_interval": max(1, int(settings.broker_visibility_timeout / 4)),
        "unacked_restore_throttle": 1,
    }


def create_celery(settings: Settings) -> Celery:
    if not settings.broker_url:
        raise RuntimeError("CELERY_BROKER_URL is not set (manage.py run sets it for you)")
    app = Celery("voice", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=settings.tasks_queue,
        task_queues=[Queue(settings.tasks_queue), Queue(settings.events_queue)],
        task_routes={"worker.apply_event": {"queue": settings.events_queue}},
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        task_acks_late=False,  # per task: only idempotent tasks ack late
        task_reject_on_worker_lost=True,
        broker_transport_options=transport_options(settings),
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    app.voice_settings = settings
    from worker import tasks

    tasks.register(app)
    return app


@dataclass
class Context:
    """What tasks need in a worker process, built once per process (after the fork)."""

    settings: Settings
    db: Database
    runner: ScriptRunner
    webhooks: WebhookClient


_context: tuple[int, Context] | None = None


def context(app: Celery) -> Context:
    global _context
    if _context is None or _context[0] != os.getpid():
        _context = (os.getpid(), build_context(app))
    return _context[1]


def build_context(app: Celery) -> Context:
    settings: Settings = app.voice_settings
    db = Database(settings.database_url).open()
    webhooks = WebhookClient(
        AddressPolicy(allow_networks=settings.webhook_allow_networks),
        connect_timeout=settings.webhook_connect_timeout,
        read_timeout=settings.webhook_read_timeout,
    )

    def publish(node: str, command: dict[str, Any]) -> None:
        with app.producer_or_acquire() as producer:
            producer.publish(
                command,
                exchange=media_exchange(settings.queue_prefix),
                routing_key=node,
                serializer="json",
                declare=[media_queue(settings.queue_prefix, node)],
                retry=True,
            )

    def notify(account_sid: str, callback: Notify) -> None:
        app.send_task(
            "worker.send_status_callback",
            args=[account_sid, callback.url, callback.method, callback.params],
        )

    runner = ScriptRunner(
        db,
        media=MediaClient(db, publish),
        webhooks=webhooks,
        notify=notify,
        public_url=settings.public_url,
        secret_key=settings.resolved_secret_key(),
        rate=lambda call_sid: app.send_task("worker.rate_leg", args=[call_sid]),
    )
    return Context(settings, db, runner, webhooks)
