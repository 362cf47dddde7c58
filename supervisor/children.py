"""Supervision of the platform's child processes (web, worker, media).

Each child runs in its own process group, so stopping it also stops what it forked
(gunicorn and Celery workers fork), and asks the kernel to signal it if the supervisor
itself dies, so no child outlives a `kill -9` of `manage.py run`.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass
class Child:
    """One supervised command and its restart bookkeeping."""

    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None
    restarts: list[float] = field(default_factory=list)

    # Restart back-off: 1 s, 2 s, 4 s ... capped; reset once a child stays up a while.
    BACKOFF_MAX = 30.0
    HEALTHY_AFTER = 60.0

    def start(self, now: float) -> None:
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.started_at = now
        self.restart_at = None
        log.info("%s started (pid %s)", self.name, self.process.pid)

    def backoff(self) -> float:
        return min(self.BACKOFF_MAX, 2.0 ** (self.failures - 1))

    def signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)


class Supervisor:
    """Starts children, restarts a dead one with back-off, stops them all on request."""

    def __init__(self, children: list[Child], *, clock=time.monotonic) -> None:
        self.children = children
        self._clock = clock
        self._stopping = False

    def start(self) -> None:
        now = self._clock()
        for child in self.children:
            child.start(now)

    def poll(self) -> None:
        """Notice dead children and restart those whose back-off has passed."""
        now = self._clock()
        for child in self.children:
            if self._stopping:
                return
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts.append(now)
                    child.start(now)
                continue
            if child.process is None or child.process.poll() is None:
                continue
            code = child.process.returncode
            child.signal_group(signal.SIGKILL)  # whatever it forked goes with it
            if now - child.started_at >= Child.HEALTHY_AFTER:
                child.failures = 0
            child.failures += 1
            delay = child.backoff()
            child.restart_at = now + delay
            log.warning("%s exited with %s; restarting in %.0f s", child.name, code, delay)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every child's group, then SIGKILL what is left after `timeout`."""
        self._stopping = True
        for child in self.children:
            child.restart_at = None
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s; killing it", child.name, timeout)
            # Anything still in the group (a stuck grandchild) is killed either way.
            child.signal_group(signal.SIGKILL)
            child.process.wait()
