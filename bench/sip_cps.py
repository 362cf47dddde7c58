"""Calls per second our SIP engine carries on one core (INVITE, 200, ACK, BYE; no RTP).

The engine runs in a child process pinned to one CPU, answering every call itself (the
controller a worker would be, minus the broker); SIPp's built-in `uac` scenario runs on
the other CPU at rising rates until a step has a failed call. Prints one JSON line: the
highest rate with zero failures and the engine's CPU use at that rate. Target: 300.

    python -m bench.sip_cps [--start 100] [--step 50] [--seconds 6] [--max 1200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def serve(port: int, stats: Path) -> None:
    """The child: an engine that answers every call at once, until SIGTERM, writing how
    its calls ended to `stats` every half second."""
    import logging

    from media.engine import Engine, EngineConfig
    from media.sip.clock import LoopClock

    logging.basicConfig(level=logging.WARNING)

    class NoDirectory:
        def extension(self, domain: str, user: str) -> None:
            return None

        def owner_extension(self, owner: str, extension: str) -> None:
            return None

        def save_bindings(self, owner: str, extension: str, bindings: list) -> None:
            pass

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ended: dict[str, int] = {}
        engine: Engine

        def emit(event: dict) -> None:
            if event["type"] == "incoming":
                engine.execute({"v": 1, "call": event["call"], "seq": 1, "type": "answer"})
            elif event["type"] == "hangup":
                ended[event["cause"]] = ended.get(event["cause"], 0) + 1

        async def report() -> None:
            while True:
                stats.write_text(json.dumps(ended))
                await asyncio.sleep(0.5)

        engine = Engine(
            EngineConfig(
                node="bench", sip_host="127.0.0.1", sip_port=port, rtp_ports=(42000, 60000)
            ),
            directory=NoDirectory(),
            emit=emit,
            clock=LoopClock(loop),
        )
        await engine.start()
        reporter = asyncio.ensure_future(report())
        stopped = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        print("ready", flush=True)
        await stopped.wait()
        reporter.cancel()
        await engine.stop()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_step(engine_port: int, rate: int, seconds: int, workdir: Path) -> dict:
    calls = rate * seconds
    stat = workdir / f"rate{rate}.csv"
    command = [
        "sipp",
        "-sn",
        "uac",
        f"127.0.0.1:{engine_port}",
        "-s",
        "15550100",
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-r",
        str(rate),
        "-m",
        str(calls),
        "-l",
        str(max(rate * 4, 100)),
        "-nostdin",
        "-timeout",
        str(seconds + 40),
        "-trace_stat",
        "-stf",
        str(stat),
        "-fd",
        "1",
        "-recv_timeout",
        "10000",
        "-mi",
        "127.0.0.1",
        "-mp",
        str(free_port()),
    ]
    sipp = subprocess.Popen(
        command,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.sched_setaffinity(0, {1 % os.cpu_count()}),
    )
    sipp.wait(seconds + 60)
    rows = [line.split(";") for line in stat.read_text().splitlines() if line.strip()]
    header, last = rows[0], rows[-1]
    value = dict(zip(header, last, strict=False))
    return {
        "rate": rate,
        "calls": calls,
        "successful": int(value.get("SuccessfulCall(C)", 0)),
        "failed": int(value.get("FailedCall(C)", 0)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=int, default=100)
    parser.add_argument("--step", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--max", type=int, default=1200)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.stats)
        return
    if shutil.which("sipp") is None:
        raise SystemExit("sipp is not installed (Debian package sip-tester)")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="sip-cps-"))
    stats = workdir / "engine.json"
    engine = subprocess.Popen(
        [sys.executable, "-m", "bench.sip_cps", "--serve", str(port), "--stats", str(stats)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}),
    )
    assert engine.stdout is not None and engine.stdout.readline().strip() == "ready"
    process = psutil.Process(engine.pid)
    best: dict | None = None
    steps = []

    def engine_ended() -> dict[str, int]:
        time.sleep(0.6)
        return json.loads(stats.read_text()) if stats.exists() else {}

    try:
        rate = args.start
        while rate <= args.max:
            before, ended_before = process.cpu_times(), engine_ended()
            began = time.monotonic()
            result = run_step(port, rate, args.seconds, workdir)
            elapsed = time.monotonic() - began
            after, ended_after = process.cpu_times(), engine_ended()
            cpu = (after.user + after.system - before.user - before.system) / elapsed
            result["engine_cpu"] = round(cpu, 3)
            result["achieved_rate"] = round(result["successful"] / elapsed, 1)
            # A call the engine had to end itself (no ACK, timeouts) failed too.
            result["engine_failed"] = sum(
                ended_after.get(cause, 0) - ended_before.get(cause, 0)
                for cause in ended_after
                if cause not in ("remote", "local")
            )
            steps.append(result)
            if (
                result["failed"]
                or result["engine_failed"]
                or result["successful"] < result["calls"]
                or result["achieved_rate"] < 0.9 * rate
            ):
                break
            best = result
            rate += args.step
            time.sleep(2)  # let the previous step's transactions drain
    finally:
        engine.send_signal(signal.SIGTERM)
        engine.wait(30)
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        json.dumps(
            {
                "bench": "sip_cps",
                "max_rate_without_failures": best["rate"] if best else 0,
                "engine_cpu_at_that_rate": best["engine_cpu"] if best else None,
                "target": 300,
                "steps": steps,
                "cores_for_engine": 1,
                "note": re.sub(
                    r"\s+",
                    " ",
                    "engine pinned to CPU 0, SIPp to CPU 1; calls answered "
                    "by the engine itself (signalling only)",
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
