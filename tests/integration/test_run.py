"""`manage.py run` (what `make run` starts) on a fresh machine: embedded services, the
three lines, a working console, and nothing left behind after Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def related(var_dir: Path, pids: set[int]) -> list[psutil.Process]:
    """Live processes that are ours: a recorded pid, or anything running over var_dir."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(process.info["cmdline"] or [])
            if process.pid in pids or str(var_dir) in cmdline:
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


def start_platform(
    tmp_path: Path, command: tuple[str, ...] = (sys.executable, "manage.py", "run")
) -> tuple[subprocess.Popen, dict[str, str], Path, int]:
    var_dir = tmp_path / "var"
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "WEBHOOK_ALLOW_NETWORKS")
    }
    env.update(
        VAR_DIR=str(var_dir),
        PORT=str(port),
        SIP_PORT=str(free_port(socket.SOCK_DGRAM)),
        PYTHONUNBUFFERED="1",
        WEB_CONCURRENCY="1",
        WORKER_CONCURRENCY="1",
    )
    process = subprocess.Popen(
        list(command),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "run.log", "wb"),  # noqa: SIM115 - closed with the process
        text=True,
        start_new_session=True,
    )
    lines: dict[str, str] = {}
    deadline = time.monotonic() + 180
    while "AuthToken" not in lines:
        assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()[-3000:]
        line = process.stdout.readline()
        assert line, "manage.py run exited: " + (tmp_path / "run.log").read_text()[-3000:]
        key, _, value = line.strip().partition(": ")
        lines[key] = value
    return process, lines, var_dir, port


def wait_healthy(port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "the web process never answered"
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("command", "stop_signal"),
    [
        (("make", "--no-print-directory", "run"), signal.SIGINT),  # Ctrl-C in a terminal
        ((sys.executable, "manage.py", "run"), signal.SIGTERM),  # a service manager's stop
    ],
)
def test_run_prints_the_lines_serves_and_stops_cleanly(
    tmp_path: Path, command: tuple[str, ...], stop_signal: signal.Signals
) -> None:
    process, lines, var_dir, port = start_platform(tmp_path, command)
    try:
        assert lines["console"] == f"http://127.0.0.1:{port}"
        assert lines["sip"].startswith("udp:127.0.0.1:")
        assert lines["AccountSid"].startswith("AC") and len(lines["AccountSid"]) == 34
        wait_healthy(port)
        console = f"http://127.0.0.1:{port}/"
        assert requests.get(console, timeout=5).status_code == 401
        page = requests.get(console, auth=(lines["AccountSid"], lines["AuthToken"]), timeout=5)
        assert page.status_code == 200
        children = {p.pid for p in psutil.Process(process.pid).children(recursive=True)}
        names = " ".join(" ".join(psutil.Process(pid).cmdline()) for pid in children)
        for child in ("manage.py web", "manage.py worker", "manage.py media", "redis-server"):
            assert child in names
        # The media node's clock runs realtime where it may (here: as root), its other
        # threads ordinary.
        deadline = time.monotonic() + 120
        while "media node node-1 ready" not in (tmp_path / "run.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()[-3000:]
            time.sleep(0.2)
        media = next(
            pid for pid in children if "manage.py media" in " ".join(psutil.Process(pid).cmdline())
        )
        clock_policy = os.sched_getscheduler(media) & ~os.SCHED_RESET_ON_FORK
        assert clock_policy == (os.SCHED_FIFO if os.geteuid() == 0 else os.SCHED_OTHER)
        others = {thread.id for thread in psutil.Process(media).threads()} - {media}
        assert others and all(os.sched_getscheduler(tid) == os.SCHED_OTHER for tid in others)
        ours = {p.pid for p in related(var_dir, children | {process.pid})}
        assert any("postgres" in " ".join(psutil.Process(pid).cmdline()) for pid in ours)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    # Ctrl-C reaches the terminal's whole foreground group; SIGTERM only the supervisor.
    if stop_signal == signal.SIGINT:
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGTERM)
    assert process.wait(90) in (0, -signal.SIGINT, 128 + signal.SIGINT, 2)
    deadline = time.monotonic() + 15
    while (left := related(var_dir, ours)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == [], [p.info["cmdline"] for p in left]


def test_a_second_start_reuses_the_data(tmp_path: Path) -> None:
    process, first, *_ = start_platform(tmp_path)
    process.send_signal(signal.SIGTERM)
    process.wait(90)
    process, second, *_ = start_platform(tmp_path)
    try:
        assert second["AccountSid"] == first["AccountSid"]
        assert second["AuthToken"] == first["AuthToken"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(90)
