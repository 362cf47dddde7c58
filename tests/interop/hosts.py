"""What interop tests point real SIP peers at.

- `EngineHost`: our SIP engine in this process (its own asyncio loop in a thread, real
  sockets on 127.0.0.1), with a controller that plays the worker's part through the
  command/event protocol: the engine is tested exactly as a worker drives it.
- `Platform`: the whole platform as separate processes (`manage.py worker` and
  `manage.py media`) on the test session's PostgreSQL and broker, for tests where the
  worker's own decisions matter.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from media.engine import DirectoryEntry, Engine, EngineConfig, TrunkConfig
from media.protocol import check_event
from media.sip.clock import LoopClock
from media.sip.digest import ha1
from media.sip.registrar import Binding
from media.sip.uri import SipUri
from tests.interop.peers.ports import PortAllocator

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "127.0.0.1"


class MemoryDirectory:
    """Extensions given as {extension: password}, all of one account."""

    def __init__(self, passwords: dict[str, str], owner: str = "ACinterop") -> None:
        self.owner = owner
        self.entries = {
            ext: DirectoryEntry(
                owner, ext, DOMAIN, {alg: ha1(ext, DOMAIN, pw, alg) for alg in ("MD5", "SHA-256")}
            )
            for ext, pw in passwords.items()
        }
        self.bindings: dict[str, list[Binding]] = {}

    def extension(self, domain: str, user: str) -> DirectoryEntry | None:
        return self.entries.get(user) if domain.lower() == DOMAIN else None

    def owner_extension(self, owner: str, extension: str) -> DirectoryEntry | None:
        return self.entries.get(extension) if owner == self.owner else None

    def save_bindings(self, owner: str, extension: str, bindings: list[Binding]) -> None:
        self.bindings[extension] = bindings


Controller = Callable[["EngineHost", dict[str, Any]], None]


class EngineHost:
    def __init__(
        self,
        port: int,
        *,
        passwords: dict[str, str] | None = None,
        trunk: str | None = None,
        trunk_credentials: tuple[str, str] | None = None,
        rtp_ports: tuple[int, int] = (40000, 40999),
        controller: Controller | None = None,
        recordings: Path | None = None,
    ) -> None:
        self.port = port
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.history: list[dict[str, Any]] = []
        self.controller = controller
        self.directory = MemoryDirectory(passwords or {})
        self.seq: dict[str, int] = {}
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        trunk_config = None
        if trunk:
            username, password = trunk_credentials or (None, None)
            trunk_config = TrunkConfig(SipUri.parse(trunk), username, password)
        config = EngineConfig(
            node="interop",
            sip_host="127.0.0.1",
            sip_port=port,
            rtp_ports=rtp_ports,
            trunk=trunk_config,
            recordings=recordings or Path(tempfile.mkdtemp(prefix="interop-recordings-")),
            fetch_allow_networks=("127.0.0.0/8",),
        )

        async def build() -> Engine:
            engine = Engine(
                config,
                directory=self.directory,
                emit=self._emit,
                clock=LoopClock(asyncio.get_running_loop()),
            )
            await engine.start()
            return engine

        self.engine = asyncio.run_coroutine_threadsafe(build(), self.loop).result(10)

    # Runs on the engine's loop.
    def _emit(self, event: dict[str, Any]) -> None:
        check_event(event)
        self.history.append(event)
        self.events.put(event)
        if self.controller is not None:
            self.controller(self, event)

    def command(self, call: str, type_: str, **fields: Any) -> None:
        """Send a command as a worker would (safe from any thread)."""
        self.seq[call] = self.seq.get(call, 0) + 1
        message = {"v": 1, "call": call, "seq": self.seq[call], "type": type_, **fields}
        if threading.current_thread() is self._thread:
            self.engine.execute(message)
        else:
            self.loop.call_soon_threadsafe(self.engine.execute, message)

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no such event in {timeout} s; saw {self.history[-10:]}")
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if predicate(event):
                return event

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.engine.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


def answer_everything(host: EngineHost, event: dict[str, Any]) -> None:
    """A controller that answers each incoming call and hangs up nothing."""
    if event["type"] == "incoming":
        host.command(event["call"], "answer")


class Bridge:
    """A controller that connects an extension's call to the extension it dialled, as the
    worker's Dial does: ring the callee's phones, answer the caller when one answers,
    pass hold and resume across, and end one side when the other hangs up."""

    def __init__(self) -> None:
        self.peer: dict[str, str] = {}

    def __call__(self, host: EngineHost, event: dict[str, Any]) -> None:
        call = event["call"]
        match event["type"]:
            case "incoming" if event.get("origin") == "extension":
                callee = "CA" + uuid.uuid4().hex
                self.peer[call], self.peer[callee] = callee, call
                host.command(
                    callee,
                    "originate",
                    target={"extension": event["to"], "account": event["account"]},
                    **{"from": {"user": event["extension"]}},
                    timeout=30,
                )
            case "incoming":
                host.command(call, "reject", reason="forbidden")
            case "answered" if call in self.peer:
                host.command(self.peer[call], "answer")
            case "held" | "resumed" if event["by"] == "remote" and call in self.peer:
                host.command(self.peer[call], "hold" if event["type"] == "held" else "resume")
            case "hangup" if call in self.peer:
                other = self.peer.pop(call)
                self.peer.pop(other, None)
                host.command(other, "hangup")


class Platform:
    """`manage.py worker` and `manage.py media` on the test session's services."""

    def __init__(
        self,
        services: Any,
        log_dir: Path,
        *,
        sip_port: int,
        trunk_uri: str | None,
        rtp_ports: tuple[int, int] = (41000, 41999),
    ) -> None:
        self.sip_port = sip_port
        self.node = f"node-{uuid.uuid4().hex[:6]}"
        env = services.env(
            SIP_PORT=str(sip_port),
            SIP_HOST="127.0.0.1",
            MEDIA_NODE=self.node,
            RTP_PORT_MIN=str(rtp_ports[0]),
            RTP_PORT_MAX=str(rtp_ports[1]),
            WEBHOOK_ALLOW_NETWORKS="127.0.0.0/8",
            LOG_LEVEL="INFO",
            **({"TRUNK_URI": trunk_uri} if trunk_uri else {}),
        )
        self.env = env
        self.logs = {name: log_dir / f"{name}.log" for name in ("worker", "media")}
        self.processes = [self._spawn(name) for name in ("worker", "media")]
        self._wait_ready()

    def _spawn(self, name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                name,
                *(["--concurrency", "2"] if name == "worker" else []),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=open(self.logs[name], "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def restart_media(self) -> None:
        """Stop the media node (SIGTERM) and start it again on the same port."""
        media = self.processes[1]
        os.killpg(media.pid, signal.SIGTERM)
        media.wait(20)
        self.processes[1] = self._spawn("media")
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            media = self.logs["media"].read_text(errors="replace")
            worker = self.logs["worker"].read_text(errors="replace")
            if "ready" in media and "ready" in worker:
                return
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a platform process exited:\n{self.tail()}")
            time.sleep(0.1)
        raise RuntimeError(f"the platform did not start:\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(
            f"--- {name}\n{path.read_text(errors='replace')[-3000:]}"
            for name, path in self.logs.items()
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextmanager
def running_platform(
    services: Any, log_dir: Path, *, trunk_uri: str | None = None
) -> Iterator[Platform]:
    """A `Platform` on free SIP and RTP ports, stopped when the block ends."""
    with PortAllocator() as ports:
        rtp = ports.block(64)
        platform = Platform(
            services,
            log_dir,
            sip_port=ports.port(),
            trunk_uri=trunk_uri,
            rtp_ports=(rtp.first, rtp.last),
        )
        try:
            yield platform
        finally:
            platform.stop()
