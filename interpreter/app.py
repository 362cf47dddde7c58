"""The Flask application factory: script bins, recordings, conference participants,
the console and health."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from flask import Flask

from settings import Settings
from store.database import Database


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    drive: Callable[[str], None] | None = None,
) -> Flask:
    """`drive(call_sid)` has a worker apply what the API left for a call (by default a
    `worker.drive_call` task through the broker)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["VOICE_SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    if db is None:
        if not settings.database_url:
            raise RuntimeError("DATABASE_URL is not set (manage.py run sets it for you)")
        db = Database(settings.database_url).open()
    app.extensions["voice_db"] = db
    app.extensions["voice_drive"] = drive or _drive_through_broker(settings)

    from interpreter import bins, console, health, participants, recordings

    app.register_blueprint(health.blueprint)
    app.register_blueprint(bins.blueprint)
    app.register_blueprint(recordings.blueprint)
    app.register_blueprint(console.blueprint)
    app.register_blueprint(participants.blueprint)
    return app


def _drive_through_broker(settings: Settings) -> Callable[[str], None]:
    @cache
    def client():  # type: ignore[no-untyped-def]
        from celery import Celery

        from worker.app import transport_options

        if not settings.broker_url:
            raise RuntimeError("CELERY_BROKER_URL is not set (manage.py run sets it for you)")
        celery = Celery("web", broker=settings.broker_url, set_as_current=False)
        celery.conf.broker_transport_options = transport_options(settings)
        return celery

    def drive(call_sid: str) -> None:
        client().send_task(
            "worker.drive_call", args=[call_sid], queue=settings.events_queue, retry=True
        )

    return drive
