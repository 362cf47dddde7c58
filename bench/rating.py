"""How fast legs are rated, as JSON lines. Target: 100,000 legs in under 10 s.

1. `rating.pure`: the rater alone, `(leg, deck) -> charge`, on legs in memory.
2. `rating.stored`: legs ended in PostgreSQL rated by `charging.rate_ended_legs` (read
   the legs, rate them, write one charge each), as the sweep and re-rating do.
3. `rating.per_leg`: `charging.rate_leg` one transaction per leg, as the worker task
   does when a call ends (a sample; its rate is per worker process).

Each uses a deck of 5,000 prefixes and a mix of legs: numbers of many countries (some in
national format), extensions, unanswered legs and numbers without a rate. PostgreSQL is
embedded unless DATABASE_URL is set.

    python -m bench.rating [--legs 100000] [--per-leg 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from billing.deck import Rate, RateDeck
from billing.rater import Leg, rate

ACCOUNT = "AC" + "0" * 32
START = datetime(2026, 11, 1, tzinfo=UTC)
COUNTRIES = ["1", "44", "49", "33", "7", "86", "91", "61", "81", "55"]


def make_rates(count: int, rng: random.Random) -> list[Rate]:
    rates = {
        code: Rate("number", code, Decimal("0.0300"), 60, 60, description=f"country {code}")
        for code in COUNTRIES
    }
    while len(rates) < count:
        prefix = rng.choice(COUNTRIES) + str(rng.randrange(10, 100_000))
        price = Decimal(rng.randrange(10, 5000)).scaleb(-4)
        first, next_ = rng.choice([(60, 60), (1, 1), (30, 6)])
        rates[prefix] = Rate("number", prefix, price, first, next_, connect_fee=Decimal("0.001"))
    return list(rates.values())


def make_numbers(count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(to_number, to_kind) pairs: mostly E.164, some national, extensions, no rate."""
    out = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.05:
            out.append((str(rng.randrange(100, 110)), "extension"))
        elif roll < 0.15:
            out.append((f"(415) 555-{rng.randrange(10000):04d}", "number"))  # national, US
        elif roll < 0.17:
            out.append((f"+999{rng.randrange(10**8):08d}", "number"))  # no rate
        else:
            out.append((f"+{rng.choice(COUNTRIES)}{rng.randrange(10**9, 10**10)}", "number"))
    return out


def make_legs(count: int, rng: random.Random) -> list[Leg]:
    legs = []
    for index, (to, kind) in enumerate(make_numbers(count, rng)):
        started = START + timedelta(seconds=index)
        seconds = rng.randrange(0, 900)
        answered = None if rng.random() < 0.1 else started + timedelta(seconds=3)
        ended = (answered or started) + timedelta(seconds=seconds)
        legs.append(
            Leg(
                call_sid=f"CA{index:032x}",
                account_sid=ACCOUNT,
                direction="outbound-dial",
                from_number="+15550100",
                to_number=to,
                from_kind="number",
                to_kind=kind,
                started_at=started,
                answered_at=answered,
                ended_at=ended,
                country="US",
            )
        )
    return legs


def bench_pure(legs: int, rng: random.Random) -> dict:
    deck = RateDeck("bench", "USD", make_rates(5000, rng))
    batch = make_legs(legs, rng)
    began = time.perf_counter()
    charges = [rate(leg, deck) for leg in batch]
    elapsed = time.perf_counter() - began
    return {
        "bench": "rating.pure",
        "legs": legs,
        "seconds": round(elapsed, 3),
        "legs_per_second": round(legs / elapsed),
        "unrated": sum(1 for c in charges if c.status == "unrated"),
        "target_seconds_per_100k": 10,
    }


def bench_stored(legs: int, per_leg: int, rng: random.Random) -> list[dict]:
    from billing import charging, ratefile, tariffs
    from store import accounts
    from store.database import Database
    from store.migrate import migrate
    from supervisor.embedded import EmbeddedPostgres

    var = Path(tempfile.mkdtemp(prefix="bench-rating-"))
    postgres = None
    try:
        database_url = os.environ.get("DATABASE_URL")
        if not database_url:
            postgres = EmbeddedPostgres(var / "pg")
            database_url = postgres.start()
        migrate(database_url)
        with Database(database_url, max_size=2) as db:
            with db.transaction() as conn:
                account, _ = accounts.create_account(conn, f"bench {time.time()}", "bench")
            text = ratefile.write(make_rates(5000, rng), "USD")
            name = f"bench {account.sid}"
            tariffs.import_rates(db, text, file_name="b.csv", deck=name, account_sid=account.sid)
            base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
            total = legs + per_leg
            with (
                db.transaction() as conn,
                conn.cursor().copy(
                    "COPY calls (sid, account_sid, direction, from_number, to_number, status,"
                    " media_node, created_at, answered_at, ended_at) FROM STDIN"
                ) as copy,
            ):
                for index, (to, _) in enumerate(make_numbers(total, rng)):
                    created = base + timedelta(milliseconds=index)
                    answered = None if rng.random() < 0.1 else created + timedelta(seconds=3)
                    ended = (answered or created) + timedelta(seconds=rng.randrange(0, 900))
                    sid = f"CA{rng.getrandbits(128):032x}"
                    row = [sid, account.sid, "outbound-dial", "+15550100", to, "completed"]
                    copy.write_row([*row, "bench", created, answered, ended])
            with db.transaction() as conn:
                conn.execute("ANALYZE calls")
                sample = [
                    row["sid"]
                    for row in conn.execute(
                        "SELECT sid FROM calls WHERE account_sid = %s"
                        " ORDER BY created_at DESC LIMIT %s",
                        (account.sid, per_leg),
                    )
                ]
            began = time.perf_counter()
            decks = charging.DeckCache()
            for sid in sample:
                charging.rate_leg(db, sid, decks)
            per_leg_elapsed = time.perf_counter() - began

            began = time.perf_counter()
            added = charging.rate_ended_legs(
                db, since=base, until=base + timedelta(days=1), account_sid=account.sid
            )
            stored_elapsed = time.perf_counter() - began
        return [
            {
                "bench": "rating.stored",
                "legs": added,
                "seconds": round(stored_elapsed, 3),
                "legs_per_second": round(added / stored_elapsed),
                "target_seconds_per_100k": 10,
            },
            {
                "bench": "rating.per_leg",
                "legs": per_leg,
                "ms_per_leg": round(per_leg_elapsed / per_leg * 1e3, 3),
                "legs_per_second": round(per_leg / per_leg_elapsed),
            },
        ]
    finally:
        if postgres is not None:
            postgres.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legs", type=int, default=100_000)
    parser.add_argument("--per-leg", type=int, default=2000, help="legs rated one by one")
    args = parser.parse_args()
    rng = random.Random(6)
    print(json.dumps(bench_pure(args.legs, rng)), flush=True)
    for line in bench_stored(args.legs, args.per_leg, rng):
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
