"""Billing on real PostgreSQL, a real broker and real Celery workers: the seed's
conference bill end to end, exactly one charge per leg even when a worker is killed
while it rates, rate files refused whole, re-rating, CDRs and totals.

Conferences cannot yet be driven through real SIP here, so the legs and the conference
are written with the store functions the conference feature uses (`store.calls`,
`store.conferences`), shaped as it shapes them; the rating runs in a real worker and the
bill is read with `manage.py bill`.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from billing import charging, tariffs
from provisioning.extensions import set_extension
from store import calls as store_calls
from store import conferences, extensions
from store.calls import CallRow
from store.charges import charge_revisions
from store.sids import new_sid
from tests.integration.processes import Worker

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

DECK = """prefix,description,price_per_minute,connect_fee,increments,currency
1,USA and Canada,0.014,0,60/60,USD
44,United Kingdom,0.030,0,60/60,USD
"""


def manage(services, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=services.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def deck_name() -> str:
    return f"deck-{uuid.uuid4().hex[:8]}"


def import_deck(db, account_sid: str, text: str = DECK) -> str:
    name = deck_name()
    tariffs.import_rates(db, text, file_name="deck.csv", deck=name, account_sid=account_sid)
    return name


def add_leg(
    conn,
    account_sid: str,
    to: str,
    seconds: int | None,
    *,
    start: datetime,
    direction: str = "outbound-dial",
    from_: str = "+15550100",
    parent: str | None = None,
) -> str:
    """An ended leg, as the call code writes it (answered `seconds` after ringing 2 s)."""
    answered = None if seconds is None else start + timedelta(seconds=2)
    ended = answered + timedelta(seconds=seconds) if answered else start + timedelta(seconds=20)
    sid = new_sid("call")
    store_calls.insert_call(
        conn,
        CallRow(
            sid=sid,
            account_sid=account_sid,
            parent_call_sid=parent,
            direction=direction,
            from_number=from_,
            to_number=to,
            status="completed" if answered else "no-answer",
            phone_number_sid=None,
            media_node="node-1",
            created_at=start,
            answered_at=answered,
            ended_at=ended,
            end_reason="remote",
            last_event_seq=0,
            next_command_seq=1,
            next_log_seq=1,
            script={},
        ),
    )
    return sid


def charge_counts(db, sids: list[str]) -> dict[str, int]:
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT call_sid, count(*) AS n FROM charges WHERE call_sid = ANY(%s)"
            " GROUP BY call_sid",
            (sids,),
        ).fetchall()
    return {row["call_sid"]: row["n"] for row in rows}


def amounts(db, sids: list[str]) -> dict[str, Decimal]:
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT call_sid, amount FROM charges WHERE call_sid = ANY(%s)", (sids,)
        ).fetchall()
    return {row["call_sid"]: row["amount"] for row in rows}


# ----------------------------------------------------------------- real workers


@pytest.fixture
def workers(services, tmp_path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


@pytest.fixture
def celery(services):
    from worker.app import create_celery

    app = create_celery(services.settings())
    yield app
    app.close()


def wait_until(check, timeout: float, log: Path, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
            pytest.fail(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.1)


# ------------------------------------------------------------ the seed's example


def test_the_seeds_conference_bill_end_to_end(
    db, account, services, celery, workers, tmp_path
) -> None:
    """Employee 101 dials +14155550100 (answered 95 s), adds 011 44 20 7946 0000 on the
    keypad (200 s) and extension 102: three legs, 0.0280 + 0.1200 + 0 = 0.1480."""
    import_deck(db, account.sid)
    start = datetime.now(UTC) - timedelta(minutes=10)
    with db.transaction() as conn:
        extensions.set_sip_domain(conn, account.sid, f"{uuid.uuid4().hex[:8]}.example")
        for extension in ("101", "102"):
            set_extension(conn, account.sid, extension, "a password 123")
        # The employee's phone calls out; the account's outbound script dials the number.
        own = add_leg(
            conn, account.sid, "+14155550100", 400, start=start, direction="inbound", from_="101"
        )
        subscriber = add_leg(conn, account.sid, "+14155550100", 95, start=start, parent=own)
        later = start + timedelta(seconds=20)
        external = add_leg(
            conn, account.sid, "011442079460000", 200, start=later, parent=subscriber
        )
        colleague = add_leg(conn, account.sid, "102", 150, start=later, parent=subscriber)
        conference = "CF" + uuid.uuid4().hex
        assert conferences.open_conference(
            conn,
            conference,
            account.sid,
            friendly_name=conference,
            origin_call_sid=subscriber,
            controller_call_sid=own,
            origin_number="+14155550100",
        )
        conferences.join(conn, conference, subscriber, "subscriber", "+14155550100")
        conferences.join(conn, conference, own, "employee", "101", controller=True)
    with db.transaction() as conn:
        conferences.join(conn, conference, external, "external", "011442079460000")
    with db.transaction() as conn:
        conferences.join(conn, conference, colleague, "employee", "102")
    with db.transaction() as conn:
        conferences.close(conn, conference, "subscriber-hung-up")

    legs = [own, subscriber, external, colleague]
    workers.append(Worker(services, tmp_path / "worker.log"))
    for sid in legs:
        celery.send_task("worker.rate_leg", args=[sid])
    wait_until(
        lambda: len(charge_counts(db, legs)) == 4, 90, tmp_path / "worker.log", "four charges"
    )

    result = manage(services, "bill", conference, "--json")
    assert result.returncode == 0, result.stderr
    bill = json.loads(result.stdout)
    assert bill["total"] == "0.1480" and bill["currency"] == "USD"
    assert bill["complete"] is True
    lines = [
        (leg["number"], leg["role"], leg["duration"], leg["billable_seconds"], leg["cost"])
        for leg in bill["legs"]
    ]
    assert lines == [
        ("+14155550100", "subscriber", 95, 120, "0.0280"),
        ("+442079460000", "external", 200, 240, "0.1200"),
        ("102", "employee", 150, 0, "0.0000"),
    ]
    first, second, third = bill["legs"]
    assert first["rate"]["prefix"] == "1" and first["rate"]["price_per_minute"] == "0.014"
    assert first["rate"]["increments"] == "60/60"
    assert second["rate"]["prefix"] == "44" and second["status"] == "rated"
    assert third["status"] == "free" and "extension legs are free" in third["reason"]
    assert "+14155550100" in bill["basis"]

    text = manage(services, "bill", conference)
    assert text.returncode == 0, text.stderr
    assert "total: 0.1480 USD" in text.stdout
    assert "44 United Kingdom 0.030/min 60/60" in text.stdout

    # The employee's call, every leg placed for it: the same money, four legs.
    call = json.loads(manage(services, "bill", own, "--json").stdout)
    assert (len(call["legs"]), call["total"]) == (4, "0.1480")


def test_a_leg_still_in_progress_is_pending_and_the_bill_incomplete(db, account) -> None:
    from billing.bill import bill

    import_deck(db, account.sid)
    with db.transaction() as conn:
        sid = add_leg(conn, account.sid, "+14155550100", 80, start=datetime.now(UTC))
        conn.execute("UPDATE calls SET ended_at = NULL WHERE sid = %s", (sid,))
    assert charging.rate_leg(db, sid) is None  # not ended: nothing to rate yet
    pending = bill(db, sid)
    assert (pending.lines[0].status, pending.complete) == ("pending", False)
    assert pending.to_json()["total"] == "0.0000"


# ------------------------------------------------------------------ exactly once


def test_rating_twice_or_concurrently_leaves_one_charge(db, account) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import_deck(db, account.sid)
    with db.transaction() as conn:
        sid = add_leg(conn, account.sid, "+14155550100", 80, start=datetime.now(UTC))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: charging.rate_leg(db, sid), range(8)))
    assert sum(1 for r in results if r is not None) == 1
    assert charging.rate_leg(db, sid) is None
    assert charge_counts(db, [sid]) == {sid: 1}
    assert amounts(db, [sid]) == {sid: Decimal("0.0280")}


def test_killing_the_worker_while_it_rates_leaves_exactly_one_charge_per_leg(
    db, account, services, celery, workers, tmp_path
) -> None:
    import_deck(db, account.sid)
    start = datetime.now(UTC) - timedelta(hours=1)
    with db.transaction() as conn:
        legs = [
            add_leg(conn, account.sid, f"+1415555{index:04d}", 60 + index, start=start)
            for index in range(12)
        ]
    expected = {
        sid: Decimal("0.0140") if i == 0 else Decimal("0.0280") for i, sid in enumerate(legs)
    }
    log = tmp_path / "worker.log"

    # Hold leg 6's lock (the one every piece of work on a call takes): the worker that
    # reaches it stops there, inside its rating task.
    blocker = psycopg.connect(services.database_url, row_factory=dict_row)
    store_calls.lock_call(blocker, legs[6])
    try:
        first = Worker(services, log)
        workers.append(first)
        for sid in legs:
            celery.send_task("worker.rate_leg", args=[sid])

        def stuck_on_leg_6() -> bool:
            waiting = blocker.execute(
                "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()["n"]
            return waiting > 0 and len(charge_counts(db, legs)) == 6

        wait_until(stuck_on_leg_6, 90, log, "the worker to rate 6 legs and wait on the 7th")
        first.kill()
    finally:
        blocker.rollback()
        blocker.close()
    time.sleep(0.5)
    assert legs[6] not in charge_counts(db, legs), "the killed task must not have committed"

    # The unacknowledged task comes back to a new worker; duplicates change nothing.
    workers.append(Worker(services, log))
    for sid in legs[:6]:
        celery.send_task("worker.rate_leg", args=[sid])
    wait_until(lambda: len(charge_counts(db, legs)) == 12, 120, log, "all twelve charges")
    time.sleep(1)
    assert charge_counts(db, legs) == {sid: 1 for sid in legs}
    assert amounts(db, legs) == expected
    with db.transaction() as conn:
        revisions = conn.execute(
            "SELECT count(*) AS n FROM charges WHERE call_sid = ANY(%s) AND revision <> 1",
            (legs,),
        ).fetchone()["n"]
    assert revisions == 0


def test_the_sweep_rates_legs_whose_task_was_lost(db, account) -> None:
    import_deck(db, account.sid)
    start = datetime.now(UTC) - timedelta(days=3)
    with db.transaction() as conn:
        legs = [add_leg(conn, account.sid, "+14155550100", 80, start=start) for _ in range(3)]
    charging.rate_leg(db, legs[0])
    period = {"since": start - timedelta(seconds=1), "until": start + timedelta(seconds=1)}
    assert charging.rate_ended_legs(db, **period, account_sid=account.sid, batch=1) == 2
    assert charging.rate_ended_legs(db, **period, account_sid=account.sid) == 0
    assert charge_counts(db, legs) == {sid: 1 for sid in legs}


# ---------------------------------------------------------------- rate files


def test_a_rate_file_with_bad_rows_is_refused_whole(db, account, services, tmp_path) -> None:
    name = deck_name()
    good = tmp_path / "good.csv"
    good.write_text(DECK)
    imported = manage(
        services, "rates", "import", str(good), "--deck", name, "--account", account.sid
    )
    assert imported.returncode == 0, imported.stderr
    assert "2 rate(s) in USD" in imported.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "prefix,description,price_per_minute,connect_fee,increments,currency\n"
        "33,France,0.02,0,60/60,USD\n"
        ",Nowhere,0.01,0,60/60,USD\n"
        "34,Spain,-0.02,0,60/60,USD\n"
        "49,Germany,0.02,0,60/0,USD\n"
        "33,France again,0.03,0,60/60,USD\n"
    )
    refused = manage(services, "rates", "import", str(bad), "--deck", name)
    assert refused.returncode == 1
    for line in (3, 4, 5, 6):
        assert f"{bad}:{line}: " in refused.stderr
    assert f"{bad}:2:" not in refused.stderr
    assert "4 bad line(s); nothing was imported" in refused.stderr

    exported = manage(services, "rates", "export", "--deck", name)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["prefix"], r["price_per_minute"]) for r in rows] == [
        ("1", "0.014"), ("44", "0.030"),
    ]  # fmt: skip


def test_an_old_charge_keeps_its_rate_until_a_rerating_changes_it(
    db, account, services, tmp_path
) -> None:
    name = import_deck(db, account.sid)
    start = datetime(2026, 3, 10, 12, tzinfo=UTC)
    with db.transaction() as conn:
        uk = add_leg(conn, account.sid, "+442079460000", 200, start=start)
        nowhere = add_leg(conn, account.sid, "+8613800138000", 60, start=start)
    charging.rate_leg(db, uk)
    charging.rate_leg(db, nowhere)
    assert amounts(db, [uk, nowhere]) == {uk: Decimal("0.1200"), nowhere: None}

    cheaper = tmp_path / "cheaper.csv"
    cheaper.write_text(DECK.replace("0.030", "0.020") + "86,China,0.05,0.01,1/1,USD\n")
    result = manage(services, "rates", "import", str(cheaper), "--deck", name)
    assert result.returncode == 0, result.stderr
    assert amounts(db, [uk]) == {uk: Decimal("0.1200")}  # a deck change alters no old bill

    period = ("--since", "2026-03-10", "--until", "2026-03-11", "--account", account.sid)
    dry = manage(services, "rates", "rerate", *period, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "2 changed (dry run: nothing saved)" in dry.stdout
    assert amounts(db, [uk]) == {uk: Decimal("0.1200")}

    rerated = manage(services, "rates", "rerate", *period)
    assert rerated.returncode == 0, rerated.stderr
    assert f"{uk} +442079460000: 0.1200 USD -> 0.0800 USD" in rerated.stdout
    assert f"{nowhere} +8613800138000: unrated -> 0.0600 USD" in rerated.stdout
    assert "total USD: 0.1200 -> 0.1400" in rerated.stdout
    assert amounts(db, [uk, nowhere]) == {uk: Decimal("0.0800"), nowhere: Decimal("0.0600")}
    with db.transaction() as conn:
        (old,) = charge_revisions(conn, uk)
    assert (old["revision"], old["charge"]["amount"], old["charge"]["price_per_minute"]) == (
        1, "0.1200", "0.030",
    )  # fmt: skip

    again = manage(services, "rates", "rerate", *period)
    assert "0 changed" in again.stdout


# ------------------------------------------------------------ CDRs and totals


def test_cdr_export_and_totals_by_day_and_by_call(db, account, services, tmp_path) -> None:
    import_deck(db, account.sid)
    day1 = datetime(2026, 5, 1, 9, tzinfo=UTC)
    day2 = datetime(2026, 5, 2, 23, 59, tzinfo=UTC)
    with db.transaction() as conn:
        root = add_leg(
            conn, account.sid, "+15550100", 300, start=day1, direction="inbound", from_="+4420"
        )
        child = add_leg(conn, account.sid, "+14155550100", 80, start=day1, parent=root)
        missed = add_leg(conn, account.sid, "+14155550100", None, start=day1 + timedelta(hours=1))
        other = add_leg(conn, account.sid, "+442079460000", 200, start=day2)
    for sid in (root, child, missed, other):
        charging.rate_leg(db, sid)

    period = ("--since", "2026-05-01", "--until", "2026-05-03", "--account", account.sid)
    out = tmp_path / "cdr.csv"
    result = manage(services, "cdr", *period, "--output", str(out))
    assert result.returncode == 0, result.stderr
    rows = {row["call_sid"]: row for row in csv.DictReader(out.open())}
    assert set(rows) == {root, child, missed, other}
    assert (rows[child]["amount"], rows[child]["billable_seconds"]) == ("0.0280", "120")
    assert rows[child]["parent_call_sid"] == root and rows[child]["increments"] == "60/60"
    assert (rows[missed]["charge_status"], rows[missed]["reason"]) == ("free", "not answered")
    assert (rows[root]["class"], rows[root]["amount"]) == ("inbound", "0.0000")

    daily = manage(services, "totals", *period, "--json")
    assert daily.returncode == 0, daily.stderr
    days = [json.loads(line) for line in daily.stdout.splitlines()]
    assert [(d["day"], d["legs"], d["amount"]) for d in days] == [
        ("2026-05-01", 3, "0.0280"), ("2026-05-02", 1, "0.1200"),
    ]  # fmt: skip

    per_call = manage(services, "totals", *period, "--per-call", "--json")
    calls = [json.loads(line) for line in per_call.stdout.splitlines()]
    assert [(c["call_sid"], c["legs"], c["amount"]) for c in calls] == [
        (root, 2, "0.0280"), (missed, 1, "0.0000"), (other, 1, "0.1200"),
    ]  # fmt: skip


def test_a_starting_worker_rates_the_legs_whose_task_was_lost(
    db, account, services, workers, tmp_path
) -> None:
    import_deck(db, account.sid)
    start = datetime.now(UTC) - timedelta(hours=5)
    with db.transaction() as conn:
        leg = add_leg(conn, account.sid, "+14155550100", 80, start=start)
    workers.append(Worker(services, tmp_path / "worker.log"))
    wait_until(lambda: charge_counts(db, [leg]) == {leg: 1}, 60, tmp_path / "worker.log", "sweep")
    assert amounts(db, [leg]) == {leg: Decimal("0.0280")}
