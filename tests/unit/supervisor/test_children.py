"""Supervision with real child processes: restart with back-off, and stopping whole groups."""

from __future__ import annotations

import os
import sys
import time

import psutil

from supervisor.children import Child, Supervisor


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_dead_child_is_restarted_after_a_growing_back_off() -> None:
    clock = Clock()
    child = Child("dies", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))
    supervisor = Supervisor([child], clock=clock)
    supervisor.start()
    try:
        delays = []
        for _ in range(3):
            wait_for(lambda: child.process.poll() is not None)
            supervisor.poll()
            delays.append(child.restart_at - clock.now)
            clock.now = child.restart_at
            supervisor.poll()  # restarts it now
        assert delays == [1.0, 2.0, 4.0]
        assert len(child.restarts) == 3
    finally:
        supervisor.stop()


def test_a_child_that_ran_long_enough_starts_its_back_off_again() -> None:
    clock = Clock()
    child = Child("dies", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))
    supervisor = Supervisor([child], clock=clock)
    supervisor.start()
    child.failures = 4
    clock.now = Child.HEALTHY_AFTER + 1
    wait_for(lambda: child.process.poll() is not None)
    supervisor.poll()
    assert child.restart_at - clock.now == 1.0
    supervisor.stop()


def test_stop_ends_the_child_and_what_it_forked() -> None:
    # The child forks a grandchild that ignores SIGTERM: both must be gone after stop().
    code = (
        "import os, signal, time\n"
        "if os.fork() == 0:\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "    time.sleep(600)\n"
        "time.sleep(600)\n"
    )
    child = Child("forks", [sys.executable, "-c", code], dict(os.environ))
    supervisor = Supervisor([child])
    supervisor.start()
    wait_for(lambda: len(psutil.Process(child.process.pid).children()) == 1)
    (grandchild,) = psutil.Process(child.process.pid).children()
    supervisor.stop(timeout=2.0)
    wait_for(lambda: not grandchild.is_running() or grandchild.status() == psutil.STATUS_ZOMBIE)
    assert child.process.poll() is not None
