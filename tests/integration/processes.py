"""`manage.py worker` processes for integration tests, killed like a dying machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """One Celery worker (concurrency 1) on the test session's services, logging to `log`."""

    def __init__(self, services, log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "worker", "--concurrency", "1"],
            cwd=ROOT,
            env=services.env(WEBHOOK_ALLOW_NETWORKS="127.0.0.0/8"),
            stdout=open(log, "ab"),  # noqa: SIM115 - the child owns it
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """kill -9 of the worker and the processes it forked, as a machine dying would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
