"""The Flask application factory: script bins, recordings, the console and health."""

from __future__ import annotations

from flask import Flask

from settings import Settings
from store.database import Database


def create_app(settings: Settings | None = None, *, db: Database | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["VOICE_SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    if db is None:
        if not settings.database_url:
            raise RuntimeError("DATABASE_URL is not set (manage.py run sets it for you)")
        db = Database(settings.database_url).open()
    app.extensions["voice_db"] = db

    from interpreter import bins, console, health, recordings

    app.register_blueprint(health.blueprint)
    app.register_blueprint(bins.blueprint)
    app.register_blueprint(recordings.blueprint)
    app.register_blueprint(console.blueprint)
    return app
