"""The interpreter's two costs, as one JSON line each.

1. `step`: the pure step function per verb (microseconds, median and p99), and the same
   with the state's JSON round trip the worker adds (it lives in PostgreSQL).
2. `round_trip`: from a media node publishing an event to it receiving the command that
   answers it, through the real broker, a real Celery worker and real PostgreSQL
   (embedded unless DATABASE_URL / CELERY_BROKER_URL are set). Targets: p99 under 10 ms
   round trip on embedded Redis; under 0.2 ms per verb step.

    python bench/interpreter.py [--calls 5] [--verbs 100]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interpreter import script
from interpreter.script import (
    CallInfo,
    Collected,
    Command,
    Fetch,
    Fetched,
    PromptDone,
    RecordDone,
    ScriptState,
    Start,
)

ROOT = Path(__file__).resolve().parent.parent
CALL = CallInfo(
    sid="CA" + "1" * 32,
    account_sid="AC" + "2" * 32,
    from_number="+15550111",
    to_number="+15550100",
    voice_url="https://customer.example/voice",
)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summary(samples: list[float], scale: float) -> dict[str, float]:
    return {
        "median": round(statistics.median(samples) * scale, 3),
        "p99": round(percentile(samples, 0.99) * scale, 3),
    }


# ---------------------------------------------------------------------- step function

VERBS = {
    "Say": "<Say>Hello there</Say>",
    "Play": "<Play>https://customer.example/a.wav</Play>",
    "Pause": "<Pause length='1'/>",
    "Gather": "<Gather numDigits='4' action='/next'><Say>PIN</Say></Gather>",
    "Record": "<Record action='/rec' maxLength='30'/>",
    "Redirect": "<Redirect>/again</Redirect>",
    "Hangup": "<Hangup/>",
}


def _completion(state: ScriptState, commands: list) -> object | None:
    """The event that ends the verb just started (what a node would send back)."""
    payloads = [a.payload for a in commands if isinstance(a, Command)]
    fetches = [a for a in commands if isinstance(a, Fetch)]
    if fetches:
        body = "<Response>" + "<Say>x</Say>" * 2 + "</Response>"
        return Fetched(fetch_id=fetches[-1].id, ok=True, url=fetches[-1].url, body=body)
    for payload in payloads:
        match payload["type"]:
            case "say" | "play" | "pause":
                return PromptDone(ref=payload["ref"], at=2.0)
            case "collect":
                return Collected(ref=payload["ref"], digits="1234", reason="num_digits", at=2.0)
            case "record":
                return RecordDone(payload["ref"], "RE" + "3" * 32, "u", 3, "", "silence", 2.0)
    return None


def bench_step(rounds: int) -> dict:
    results = {}
    for name, verb in VERBS.items():
        document = "<Response>" + verb * 50 + "</Response>"
        plain: list[float] = []
        persisted: list[float] = []
        for _ in range(max(1, rounds // 50)):
            state, actions = script.step(script.new_state(CALL), Start(at=1.0))
            event = Fetched(fetch_id=actions[0].id, ok=True, url=CALL.voice_url, body=document)
            for _ in range(50):
                if event is None:
                    break
                began = time.perf_counter()
                state, actions = script.step(state, event)
                plain.append(time.perf_counter() - began)
                began = time.perf_counter()
                restored = ScriptState.from_json(json.loads(json.dumps(state.to_json())))
                persisted.append(time.perf_counter() - began + plain[-1])
                state = restored
                event = _completion(state, actions)
        results[name] = {
            "step_us": summary(plain, 1e6),
            "step_with_json_us": summary(persisted, 1e6),
        }
    return {"bench": "interpreter.step", "verbs": results, "target_us": 200}


# ------------------------------------------------------------------ broker round trip


def bench_round_trip(calls: int, verbs: int) -> dict:
    from media.link import BrokerLink
    from media.simulated import SimulatedNode
    from settings import Settings
    from store import bins, numbers
    from store import calls as store_calls
    from store.accounts import create_account
    from store.database import Database
    from store.migrate import migrate
    from supervisor.embedded import EmbeddedPostgres, EmbeddedRedis
    from worker.app import transport_options

    var = Path(tempfile.mkdtemp(prefix="bench-interpreter-"))
    postgres = redis = worker = None
    try:
        database_url = os.environ.get("DATABASE_URL")
        if not database_url:
            postgres = EmbeddedPostgres(var / "pg")
            database_url = postgres.start()
        broker_url = os.environ.get("CELERY_BROKER_URL")
        if not broker_url:
            redis = EmbeddedRedis(var / "redis")
            broker_url = redis.start()
        migrate(database_url)
        prefix = f"bench{uuid.uuid4().hex[:6]}"
        settings = Settings(
            database_url=database_url,
            broker_url=broker_url,
            queue_prefix=prefix,
            secret_key="bench",
            var_dir=var,
        )
        env = dict(
            os.environ,
            DATABASE_URL=database_url,
            CELERY_BROKER_URL=broker_url,
            QUEUE_PREFIX=prefix,
            SECRET_KEY="bench",
            VAR_DIR=str(var),
            LOG_LEVEL="WARNING",
        )
        worker = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "worker", "--concurrency", "1"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        with Database(database_url) as db:
            with db.transaction() as conn:
                account, _ = create_account(conn, "bench", "bench")
                body = "<Response>" + "<Say>x</Say>" * verbs + "</Response>"
                saved = bins.save_bin(conn, account.sid, "bench", body)
                number = "+1555" + str(uuid.uuid4().int)[:7]
                numbers.set_number(
                    conn, account.sid, number, voice_url=f"{settings.public_url}/bins/{saved.sid}"
                )

            sent_at: dict[str, float] = {}
            samples: list[float] = []
            link = BrokerLink(
                broker_url,
                "bench-node",
                prefix=prefix,
                transport_options=transport_options(settings),
            )

            def emit(event: dict) -> None:
                sent_at[event["call"]] = time.perf_counter()
                link.publish_event(event)

            node = SimulatedNode("bench-node", emit, recordings=var / "recordings")

            def execute(command: dict) -> None:
                began = sent_at.get(command["call"])
                if began is not None and command["type"] == "say":
                    samples.append(time.perf_counter() - began)
                node.execute(command)

            thread = threading.Thread(target=link.run, args=(execute,), daemon=True)
            thread.start()
            for index in range(calls + 1):  # the first call warms the worker up
                if index == 1:
                    samples.clear()
                sid = node.incoming("+15550111", number)
                deadline = time.monotonic() + 120
                while True:
                    with db.transaction() as conn:
                        row = store_calls.get_call(conn, sid)
                    if row is not None and row.status == "completed":
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError("the benchmark call did not complete")
                    time.sleep(0.05)
            link.stop()
            thread.join(5)
        return {
            "bench": "interpreter.round_trip",
            "broker": broker_url.split(":")[0],
            "samples": len(samples),
            "round_trip_ms": summary(samples, 1e3),
            "target_p99_ms": 10,
        }
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000, help="steps per verb")
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--verbs", type=int, default=100, help="Say verbs per call")
    args = parser.parse_args()
    print(json.dumps(bench_step(args.rounds)))
    print(json.dumps(bench_round_trip(args.calls, args.verbs)))


if __name__ == "__main__":
    main()
