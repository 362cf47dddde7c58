"""baresip as a test peer: a headless user agent driven over its ctrl_tcp module.

Each `Baresip` has a config directory of its own: the modules PEERS.md lists (g711,
ausine as the microphone playing one tone, aubridge as a null speaker, sndfile recording
both directions of every call, account, menu, ctrl_tcp), loopback-only SIP, control and
RTP ports from `ports.PortAllocator`, and one account.

ctrl_tcp speaks netstring-framed JSON: commands `{"command", "params", "token"}` get
a response carrying the same token; events (`{"event": true, "type": ...}`) arrive at any
time. A reader thread files both; `wait_for()` hands each event out once.

baresip habits that tests must know (see also PEERS.md):
- an auto-answered call emits no CALL_INCOMING: wait for CALL_ESTABLISHED;
- events sent before the control connection is up are lost (often REGISTER_OK), so
  `registered()` polls `reginfo`;
- it registers a Contact user like `101-0x55a0c7583470` and answers only that user or
  the account user;
- hold and resume emit no event of their own: the holder sees CALL_REMOTE_SDP "answer",
  the other side CALL_REMOTE_SDP "offer"; `calls()` shows "(on hold)";
- recordings are named by the second a call started: calls started within the same
  second share (and overwrite) one pair of files;
- after a hold/resume sndfile stops writing the call's `dec` file.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tests.interop.peers.ports import PortAllocator

BARESIP = "baresip"
LOOPBACK = "127.0.0.1"
MODULE_PATH = Path("/usr/lib/baresip/modules")
# Two ports per RTP stream (RTP, RTCP); room for a few calls at once.
RTP_PORTS = 16
MODULES = ("g711.so", "ausine.so", "aubridge.so", "sndfile.so")
APP_MODULES = ("account.so", "menu.so", "ctrl_tcp.so")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
CALL_LINE = re.compile(
    r"^(?P<current>>)?\s*\[line (?P<line>\d+)\]\s+(?P<duration>\d+:\d{2}:\d{2})\s+"
    r"(?P<state>\S+)\s+(?P<on_hold>\(on hold\)\s+)?(?P<peer>\S+)"
)
RECORDING_NAME = re.compile(r"^dump-(?P<started>[\d-]+)-(?P<kind>dec|enc)\.wav$")


class BaresipError(RuntimeError):
    """baresip did not start, refused a command, or did not do what we waited for."""


@dataclass(frozen=True)
class Account:
    """The one account of a baresip instance (a line of its `accounts` file).

    Without `registrar` the account is local (`sip:USER@127.0.0.1:SIP_PORT`, no
    REGISTER) and reachable directly by `Baresip.uri`. With `registrar` ("host:port")
    the AOR is `sip:USER@registrar` and it registers every `regint` seconds.
    """

    user: str = "101"
    password: str | None = None
    registrar: str | None = None
    outbound_proxy: str | None = None
    answermode: Literal["auto", "manual"] = "auto"
    audio_codecs: tuple[str, ...] = ("PCMU", "PCMA")
    regint: int = 60

    def line(self, sip_address: str) -> str:
        if self.registrar is None:
            params = [f"<sip:{self.user}@{sip_address}>", "regint=0"]
        else:
            params = [f"<sip:{self.user}@{self.registrar}>", f"regint={self.regint}"]
        if self.password is not None:
            params.append(f"auth_pass={self.password}")
        if self.outbound_proxy is not None:
            params.append(f'outbound="{self.outbound_proxy}"')
        params.append(f"answermode={self.answermode}")
        params.append("audio_codecs=" + ",".join(self.audio_codecs))
        return ";".join(params)


@dataclass(frozen=True)
class Event:
    """One ctrl_tcp event, e.g. CALL_ESTABLISHED; `call_id` is the SIP Call-ID."""

    type: str
    call_id: str | None
    param: str | None
    peer_uri: str | None
    direction: str | None
    account_aor: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, message: dict[str, Any]) -> Event:
        return cls(
            type=str(message.get("type", "")),
            call_id=message.get("id"),
            param=message.get("param"),
            peer_uri=message.get("peeruri"),
            direction=message.get("direction"),
            account_aor=message.get("accountaor"),
            raw=message,
        )


@dataclass(frozen=True)
class Call:
    """A call as `listcalls` shows it."""

    line: int
    duration: str
    state: str
    on_hold: bool
    peer_uri: str
    current: bool


@dataclass(frozen=True)
class Recording:
    """The sndfile pair of one call: `dec` is what baresip heard, `enc` what it sent."""

    started: str
    dec: Path | None
    enc: Path | None


class Baresip:
    """A baresip user agent in `home`, playing a `tone_hz` sine as its microphone."""

    def __init__(
        self,
        home: Path,
        *,
        account: Account | None = None,
        tone_hz: int = 440,
        extra_config: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home
        self.account = account or Account()
        self.tone_hz = tone_hz
        self.extra_config = dict(extra_config or {})
        self._ports = PortAllocator()
        # baresip also listens (TCP) on SIP port + 1.
        self.sip_port = self._ports.block(2).first
        self.ctrl_port = self._ports.port()
        self.rtp_ports = self._ports.block(RTP_PORTS)
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Condition()
        self._send_lock = threading.Lock()
        self._events: list[Event] = []
        self._handed_out: set[int] = set()
        self._responses: dict[str, dict[str, Any]] = {}
        self._closed = False
        self._token = 0

    # --- addresses and files

    @property
    def sip_address(self) -> str:
        return f"{LOOPBACK}:{self.sip_port}"

    @property
    def uri(self) -> str:
        """Where to call this instance directly, bypassing any registrar."""
        return f"sip:{self.account.user}@{self.sip_address}"

    @property
    def snd_path(self) -> Path:
        return self.home / "snd"

    @property
    def log_path(self) -> Path:
        return self.home / "baresip.log"

    @property
    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def config(self) -> str:
        """Text of the `config` file."""
        settings = {
            "sip_listen": self.sip_address,
            "net_interface": LOOPBACK,
            "rtp_ports": f"{self.rtp_ports.first}-{self.rtp_ports.last}",
            "audio_player": "aubridge,nil",
            "audio_alert": "aubridge,nil",
            "audio_source": f"ausine,{self.tone_hz}",
            # ausine in 1.0.0 fails ("Operation not supported") at any other format.
            "ausrc_srate": "48000",
            "ausrc_channels": "2",
            "module_path": str(MODULE_PATH),
            "ctrl_tcp_listen": f"{LOOPBACK}:{self.ctrl_port}",
            "snd_path": str(self.snd_path),
        }
        settings.update(self.extra_config)
        lines = [f"{name} {value}" for name, value in settings.items()]
        lines += [f"module {name}" for name in MODULES]
        lines += [f"module_app {name}" for name in APP_MODULES]
        return "\n".join(lines) + "\n"

    # --- process

    def start(self, timeout: float = 10.0) -> Baresip:
        """Write the config, start baresip and connect to its control port."""
        if self._process is not None:
            raise BaresipError(f"baresip in {self.home} was already started")
        self.snd_path.mkdir(parents=True, exist_ok=True)
        (self.home / "config").write_text(self.config())
        (self.home / "accounts").write_text(self.account.line(self.sip_address) + "\n")
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [BARESIP, "-f", str(self.home)],
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while self._socket is None:
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BaresipError(f"baresip in {self.home} did not come up:\n{self.log}")
            with contextlib.suppress(OSError):
                self._socket = socket.create_connection((LOOPBACK, self.ctrl_port), 0.5)
            if self._socket is None:
                time.sleep(0.05)
        self._socket.settimeout(None)
        self._reader = threading.Thread(
            target=self._read, name=f"baresip-ctrl-{self.ctrl_port}", daemon=True
        )
        self._reader.start()
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 3.0) -> None:
        """Quit baresip (kill it if it has not exited after `timeout` s) and release its
        ports; safe to repeat.

        Quitting un-registers first; with the registrar gone that waits for a reply that
        never comes (SIGTERM quits the same way), hence the kill.
        """
        process = self._process
        if process is not None and process.poll() is None:
            if self._socket is not None:
                with contextlib.suppress(OSError, BaresipError):
                    self._send("quit", None)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout)
            if process.poll() is None:
                process.kill()
                process.wait()
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
            self._socket.close()
        if self._reader is not None:
            self._reader.join(timeout)
        self._ports.release()

    def __enter__(self) -> Baresip:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- commands

    def command(self, command: str, params: str | None = None, timeout: float = 5.0) -> str:
        """Run a ctrl_tcp command and return its response text (ANSI colours removed)."""
        token = self._send(command, params)
        deadline = time.monotonic() + timeout
        with self._lock:
            while token not in self._responses:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    raise BaresipError(
                        f"no response to {command!r} {params or ''} from baresip in "
                        f"{self.home}{' (connection closed)' if self._closed else ''}"
                    )
                self._lock.wait(remaining)
            response = self._responses.pop(token)
        data = ANSI_ESCAPE.sub("", str(response.get("data", "")))
        if not response.get("ok", False):
            raise BaresipError(f"baresip refused {command!r} {params or ''}: {data.strip()}")
        return data

    def dial(self, uri: str) -> None:
        self.command("dial", uri)

    def accept(self) -> None:
        self.command("accept")

    def hangup(self) -> None:
        self.command("hangup")

    def hold(self) -> None:
        self.command("hold")

    def resume(self) -> None:
        self.command("resume")

    def send_digits(self, digits: str, gap: float = 0.3) -> None:
        """Send each digit as an RFC 4733 event (`sndcode`), `gap` seconds apart."""
        for index, digit in enumerate(digits):
            if index:
                time.sleep(gap)
            self.command("sndcode", digit)

    def set_answermode(self, mode: Literal["auto", "manual"]) -> None:
        self.command("answermode", mode)

    def reginfo(self) -> str:
        return self.command("reginfo")

    def callstat(self) -> str:
        return self.command("callstat")

    def registered(self, timeout: float = 10.0) -> bool:
        """Whether the account is registered (reginfo shows OK) within `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            accounts = [
                line for line in self.reginfo().splitlines() if line.lstrip().startswith(">")
            ]
            if accounts and all(" OK " in line + " " for line in accounts):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def calls(self) -> list[Call]:
        """The calls in progress, from `listcalls`."""
        calls = []
        for line in self.command("listcalls").splitlines():
            match = CALL_LINE.match(line.strip())
            if match:
                calls.append(
                    Call(
                        line=int(match["line"]),
                        duration=match["duration"],
                        state=match["state"],
                        on_hold=bool(match["on_hold"]),
                        peer_uri=match["peer"],
                        current=bool(match["current"]),
                    )
                )
        return calls

    def recordings(self) -> list[Recording]:
        """The sndfile recordings of every call so far, oldest first."""
        found: dict[str, dict[str, Path]] = {}
        for path in self.snd_path.glob("dump-*.wav"):
            match = RECORDING_NAME.match(path.name)
            if match:
                found.setdefault(match["started"], {})[match["kind"]] = path
        return [
            Recording(started, files.get("dec"), files.get("enc"))
            for started, files in sorted(found.items())
        ]

    # --- events

    def events(self, event_type: str | None = None) -> list[Event]:
        """Every event received so far (of `event_type`, if given), handed out or not."""
        with self._lock:
            return [e for e in self._events if event_type in (None, e.type)]

    def wait_for(
        self,
        event_type: str,
        timeout: float = 10.0,
        *,
        call_id: str | None = None,
        param: str | None = None,
        where: Callable[[Event], bool] | None = None,
    ) -> Event:
        """The oldest event of `event_type` (and `call_id`, `param`, `where`, if given) that
        no earlier `wait_for` returned, waiting up to `timeout` s for it to arrive."""

        def matches(event: Event) -> bool:
            return (
                event.type == event_type
                and call_id in (None, event.call_id)
                and param in (None, event.param)
                and (where is None or where(event))
            )

        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for index, event in enumerate(self._events):
                    if index not in self._handed_out and matches(event):
                        self._handed_out.add(index)
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    seen = ", ".join(f"{e.type}({e.param or ''})" for e in self._events)
                    raise BaresipError(
                        f"baresip {self.uri}: no {event_type} (call_id={call_id}, "
                        f"param={param}) within {timeout} s; events so far: {seen or 'none'}"
                        f"\n--- log tail\n{self.log[-2000:]}"
                    )
                self._lock.wait(remaining)

    # --- ctrl_tcp plumbing

    def _send(self, command: str, params: str | None) -> str:
        if self._socket is None:
            raise BaresipError(f"baresip in {self.home} is not started")
        with self._send_lock:
            self._token += 1
            token = str(self._token)
            message: dict[str, str] = {"command": command, "token": token}
            if params is not None:
                message["params"] = params
            payload = json.dumps(message).encode()
            self._socket.sendall(str(len(payload)).encode() + b":" + payload + b",")
        return token

    def _read(self) -> None:
        assert self._socket is not None
        buffer = b""
        try:
            while True:
                chunk = self._socket.recv(65536)
                if not chunk:
                    break
                buffer += chunk
                while True:
                    message, buffer = _take_netstring(buffer)
                    if message is None:
                        break
                    self._file(json.loads(message))
        except OSError:
            pass
        finally:
            with self._lock:
                self._closed = True
                self._lock.notify_all()

    def _file(self, message: dict[str, Any]) -> None:
        with self._lock:
            if message.get("event"):
                self._events.append(Event.from_json(message))
            elif message.get("response"):
                self._responses[str(message.get("token"))] = message
            self._lock.notify_all()


def _take_netstring(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Split one complete netstring (`LEN:DATA,`) off `buffer`."""
    length, colon, rest = buffer.partition(b":")
    if not colon:
        return None, buffer
    if not length.isdigit():
        raise ValueError(f"bad netstring length {length[:20]!r} from ctrl_tcp")
    size = int(length)
    if len(rest) < size + 1:
        return None, buffer
    if rest[size : size + 1] != b",":
        raise ValueError("netstring from ctrl_tcp does not end with ','")
    return rest[:size], rest[size + 1 :]
