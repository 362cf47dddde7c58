"""Fixtures shared by all tests: real PostgreSQL and a real broker for those that need them.

`TEST_DATABASE_URL` (an existing database on a server where we may create databases)
and `TEST_BROKER_URL` select external services; without them an embedded PostgreSQL and
an embedded Redis are started once per test session. Each session works in a database
and under queue names of its own, so sessions never see each other's data.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from settings import Settings  # noqa: E402
from store.database import Database  # noqa: E402
from store.migrate import migrate  # noqa: E402


@dataclass(frozen=True)
class Services:
    database_url: str
    broker_url: str
    queue_prefix: str
    var_dir: Path

    def settings(self, **changes: object) -> Settings:
        base = Settings(
            var_dir=self.var_dir,
            database_url=self.database_url,
            broker_url=self.broker_url,
            queue_prefix=self.queue_prefix,
            secret_key="test secret key",
            broker_visibility_timeout=8.0,
        )
        return base.with_(**changes)

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a child process (`manage.py ...`) using these services."""
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "WEBHOOK_ALLOW_NETWORKS")
        }
        env.update(
            DATABASE_URL=self.database_url,
            CELERY_BROKER_URL=self.broker_url,
            QUEUE_PREFIX=self.queue_prefix,
            VAR_DIR=str(self.var_dir),
            SECRET_KEY="test secret key",
            BROKER_VISIBILITY_TIMEOUT="8",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    from supervisor.embedded import EmbeddedPostgres, EmbeddedRedis

    # Not under pytest's own temporary directories: pytest removes old ones when another
    # session starts on the machine, which would pull the data directory out from under a
    # running embedded PostgreSQL.
    var_dir = Path(tempfile.mkdtemp(prefix="voice-test-var-"))
    postgres = redis = None
    admin_url = os.environ.get("TEST_DATABASE_URL")
    if not admin_url:
        postgres = EmbeddedPostgres(var_dir / "pg")
        admin_url = postgres.start("postgres")
    name = f"voice_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = with_database(admin_url, name)
    migrate(database_url)

    broker_url = os.environ.get("TEST_BROKER_URL")
    if not broker_url:
        redis = EmbeddedRedis(var_dir / "redis")
        broker_url = redis.start()
    try:
        yield Services(database_url, broker_url, f"test{uuid.uuid4().hex[:8]}", var_dir)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(var_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def db(services: Services) -> Iterator[Database]:
    with Database(services.database_url, max_size=8) as database:
        yield database


@dataclass(frozen=True)
class AccountCredentials:
    sid: str
    token: str


@pytest.fixture
def account(db: Database, services: Services) -> AccountCredentials:
    """A fresh account per test: tests share a database but never each other's rows."""
    from store.accounts import create_account

    with db.transaction() as conn:
        created, token = create_account(
            conn, f"test {uuid.uuid4().hex[:6]}", services.settings().resolved_secret_key()
        )
    return AccountCredentials(created.sid, token)


_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # CI sets VOICE_FORBID_SKIPS: a test that could not run (a missing SIP peer or
    # browser) must fail the run, not pass it quietly.
    if os.environ.get("VOICE_FORBID_SKIPS") and _skipped:
        print(f"\n{len(_skipped)} test(s) skipped, which VOICE_FORBID_SKIPS forbids:")
        for nodeid in _skipped:
            print(f"  {nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
