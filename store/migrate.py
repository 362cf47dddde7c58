"""Applying the SQL migrations in `store/migrations` with yoyo."""

from __future__ import annotations

from pathlib import Path

from yoyo import get_backend, read_migrations

MIGRATIONS = Path(__file__).with_name("migrations")


def _yoyo_url(url: str) -> str:
    # yoyo picks its driver from the scheme; we use psycopg 3 everywhere.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def migrate(url: str) -> list[str]:
    """Apply every pending migration under yoyo's lock; return the ids applied."""
    backend = get_backend(_yoyo_url(url))
    migrations = read_migrations(str(MIGRATIONS))
    try:
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
    finally:
        backend.connection.close()
    return [migration.id for migration in pending]
