"""SIPp as a test peer: run a scenario to completion, or keep a UAS running in the background.

Every run gets a working directory of its own holding the files SIPp writes there:
`stat.csv` (-trace_stat; the last row is the final cumulative statistics),
`<scenario>_<pid>_counts.csv` (-trace_counts; per-element message counts), `errors.log`
(-trace_err), `screen.log` (-trace_screen; the final screens) and `messages.log`
(-trace_msg; every SIP message sent and received), plus a `pcap` link to the pcaps SIPp
ships and a copy of our scenario file, so that pcap plays find their files next to it.

Ports (SIP, media and SIPp's remote-control port, which otherwise defaults to 8888 and
collides between parallel instances) come from `ports.PortAllocator`.
"""

from __future__ import annotations

import contextlib
import csv
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tests.interop.peers.ports import PortAllocator, wait_bound

SIPP = "sipp"
LOOPBACK = "127.0.0.1"
SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
PCAP_DIR = Path("/usr/share/sip-tester")
BUILTIN_SCENARIOS = frozenset(
    {"uac", "uas", "uac_pcap", "regexp", "branchc", "branchs"}
    | {"3pcc-A", "3pcc-B", "3pcc-C-A", "3pcc-C-B"}
)
# SIPp binds media port and media port + 2 and numbers [auto_media_port] from the
# media port in steps of 4 per call: four ports cover one call.
MEDIA_PORTS = 4
EXIT_MEANINGS = {
    0: "all calls succeeded",
    1: "at least one call failed",
    97: "exit on internal command, calls may have been processed",
    99: "normal exit without calls processed",
    254: "fatal error binding a socket",
    255: "fatal error",
}
STAT_FILE = "stat.csv"
ERROR_FILE = "errors.log"
SCREEN_FILE = "screen.log"
MESSAGE_FILE = "messages.log"
INJECTION_FILE = "injection.csv"
MESSAGE_START = re.compile(r"-{47} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n")
LOST_ON_SEND = "UDP message voluntary lost (while sending)."
LOST_ON_RECEIVE = "UDP message lost (recv)."
LOSS_NOTES = re.compile(r"UDP message (?:voluntary )?lost \([a-z ]+\)\.")
# Compact header forms (RFC 3261 7.3.3) a peer other than SIPp may use.
COMPACT_HEADERS = {
    "call-id": "i",
    "contact": "m",
    "content-length": "l",
    "content-type": "c",
    "from": "f",
    "subject": "s",
    "to": "t",
    "via": "v",
}


class SippError(RuntimeError):
    """SIPp could not be started, or died while it should have been running."""


def scenario(name: str) -> Path:
    """Path of one of our scenarios in tests/interop/scenarios, by name with or without .xml."""
    path = SCENARIO_DIR / (name if name.endswith(".xml") else name + ".xml")
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.xml")))
        raise ValueError(f"no scenario {path}; known scenarios: {known}")
    return path


@dataclass(frozen=True)
class SipMessage:
    """One SIP message from SIPp's message log; `lost` if -lost made SIPp drop it."""

    time: str
    direction: Literal["sent", "received"]
    text: str
    lost: bool = False

    @property
    def start_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    @property
    def method(self) -> str | None:
        """The request's method; None for a response."""
        first = self.start_line.split(" ", 1)[0]
        return None if first.startswith("SIP/") else first

    @property
    def status(self) -> int | None:
        """The response's status code; None for a request."""
        parts = self.start_line.split(" ", 2)
        if parts[0].startswith("SIP/") and len(parts) > 1 and parts[1].isdigit():
            return int(parts[1])
        return None

    @property
    def request_uri(self) -> str | None:
        parts = self.start_line.split(" ")
        return parts[1] if self.method is not None and len(parts) > 1 else None

    @property
    def body(self) -> str:
        _, _, body = self.text.partition("\n\n")
        return body

    def header(self, name: str) -> str | None:
        """Value of the first header called `name` (or its compact form), else None."""
        wanted = {name.lower(), COMPACT_HEADERS.get(name.lower(), name.lower())}
        head, _, _ = self.text.partition("\n\n")
        for line in head.split("\n")[1:]:
            field_name, colon, value = line.partition(":")
            if colon and field_name.strip().lower() in wanted:
                return value.strip()
        return None

    @property
    def call_id(self) -> str | None:
        return self.header("Call-ID")

    @property
    def cseq_method(self) -> str | None:
        """The method in CSeq: what a response answers."""
        cseq = self.header("CSeq")
        return cseq.split()[-1] if cseq else None


def parse_message_log(text: str) -> list[SipMessage]:
    """The complete messages of a -trace_msg log (a message still being written is left out).

    With -lost, SIPp logs a message it then pretends to have lost and appends a note
    ("UDP message lost (recv)." or "... voluntary lost (while sending).") to it, with no
    line break before the next separator; such messages come back with `lost` set.
    Some dropped sends leave only the note, so under -lost the log misses messages.
    """
    messages = []
    entries = MESSAGE_START.split(text)
    # split() yields the text before the first separator, then (stamp, entry) pairs.
    for stamp, entry in zip(entries[1::2], entries[2::2], strict=True):
        banner, _, payload = entry.partition("\n\n")
        if " message sent " in banner:
            direction: Literal["sent", "received"] = "sent"
            lost_note = LOST_ON_SEND
        elif " message received " in banner:
            direction = "received"
            lost_note = LOST_ON_RECEIVE
        else:
            continue
        payload = payload.replace("\r\n", "\n")
        lost = lost_note in payload
        payload = LOSS_NOTES.sub("", payload).strip("\n")
        if payload:
            messages.append(SipMessage(stamp, direction, payload + "\n", lost))
    return messages


@dataclass(frozen=True)
class SippResult:
    """What a SIPp run achieved, from its exit status and the files it wrote."""

    returncode: int
    successful_calls: int
    failed_calls: int
    retransmissions: int
    unexpected_messages: int
    timed_out: bool
    statistics: dict[str, str] = field(repr=False)
    message_counts: dict[str, int] = field(repr=False)
    stderr: str = field(repr=False)
    errors: str = field(repr=False)
    screen: str = field(repr=False)
    workdir: Path = field(repr=False)

    @property
    def ok(self) -> bool:
        """Exited by itself, every call successful, nothing unexpected."""
        return (
            not self.timed_out
            and self.returncode == 0
            and self.failed_calls == 0
            and self.unexpected_messages == 0
        )

    def summary(self) -> str:
        """A report for assertion messages: counters, exit status, logs and final screens."""
        meaning = EXIT_MEANINGS.get(self.returncode, "killed" if self.returncode < 0 else "?")
        lines = [
            f"SIPp in {self.workdir}: exit {self.returncode} ({meaning})"
            + (", stopped after its timeout" if self.timed_out else ""),
            f"successful {self.successful_calls}, failed {self.failed_calls}, "
            f"retransmissions {self.retransmissions}, unexpected {self.unexpected_messages}",
        ]
        for title, text in (("stderr", self.stderr), ("errors.log", self.errors)):
            if text.strip():
                lines += [f"--- {title} (last lines)", *text.strip().splitlines()[-15:]]
        if self.screen.strip():
            lines += ["--- final screen", _scenario_screen(self.screen)]
        return "\n".join(lines)


def _scenario_screen(screen: str) -> str:
    """The scenario screen (per-message counts), the most useful of the dumped screens."""
    for part in screen.split("------------------------------ Scenario Screen")[1:]:
        return "Scenario Screen" + part.split("----------------------------- Statistics")[0]
    return screen[-3000:]


class Sipp:
    """One SIPp process playing `scenario`: a built-in name (-sn) or a scenario file (-sf).

    `run()` plays it to the end (a UAC with `calls`); `start()`/`stop()` keep it running
    in the background (a UAS standing in for a carrier or a busy phone), and
    `messages()` tells what it has sent and received so far.
    Options map one to one onto SIPp's: remote (host:port to call), calls (-m),
    rate (-r, calls per second), limit (-l), lost (-lost, percent), service (-s),
    duration_ms (-d, length of <pause/> without milliseconds), injection (-inf; rows
    are written to a SEQUENTIAL csv), keys (-key), variables (-set, globals),
    rtp_echo (-rtp_echo), auto_answer (-aa: 200 to INFO, NOTIFY, OPTIONS, UPDATE).
    """

    def __init__(
        self,
        scenario: str | Path,
        workdir: Path,
        *,
        remote: str | None = None,
        calls: int | None = None,
        rate: float | None = None,
        limit: int | None = None,
        lost: float | None = None,
        service: str | None = None,
        duration_ms: int | None = None,
        injection: Path | Sequence[Sequence[str]] | None = None,
        keys: Mapping[str, str] | None = None,
        variables: Mapping[str, str] | None = None,
        rtp_echo: bool = False,
        auto_answer: bool = False,
        extra_args: Sequence[str] = (),
    ) -> None:
        if isinstance(scenario, str) and scenario not in BUILTIN_SCENARIOS:
            builtins = ", ".join(sorted(BUILTIN_SCENARIOS))
            raise ValueError(
                f"{scenario!r} is not a built-in SIPp scenario ({builtins});"
                " pass a Path for a scenario file, e.g. scenario('uac_cancel')"
            )
        if isinstance(scenario, Path) and not scenario.is_file():
            raise ValueError(f"scenario file {scenario} does not exist")
        self.scenario = scenario
        self.workdir = workdir
        self.remote = remote
        self.calls = calls
        self.rate = rate
        self.limit = limit
        self.lost = lost
        self.service = service
        self.duration_ms = duration_ms
        self.injection = injection
        self.keys = dict(keys or {})
        self.variables = dict(variables or {})
        self.rtp_echo = rtp_echo
        self.auto_answer = auto_answer
        self.extra_args = list(extra_args)

        self._ports = PortAllocator()
        self.port = self._ports.port()
        self.control_port = self._ports.port()
        self.media_port = self._ports.block(MEDIA_PORTS).first
        self._process: subprocess.Popen[bytes] | None = None
        self._result: SippResult | None = None
        self._timed_out = False

    @property
    def address(self) -> str:
        """host:port where this SIPp listens for SIP."""
        return f"{LOOPBACK}:{self.port}"

    def uri(self, user: str = "service") -> str:
        return f"sip:{user}@{self.address}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        """The SIPp command line, relative to the working directory (where it writes the
        injection file from `injection` rows)."""
        if isinstance(self.scenario, Path):
            args = [SIPP, "-sf", self.scenario.name]
        else:
            args = [SIPP, "-sn", self.scenario]
        if self.remote:
            args.append(self.remote)
        args += ["-i", LOOPBACK, "-p", str(self.port), "-cp", str(self.control_port)]
        args += ["-mi", LOOPBACK, "-mp", str(self.media_port), "-nostdin"]
        for option, value in (
            ("-m", self.calls),
            ("-r", self.rate),
            ("-l", self.limit),
            ("-lost", self.lost),
            ("-s", self.service),
            ("-d", self.duration_ms),
        ):
            if value is not None:
                args += [option, _number(value)]
        if self.injection is not None:
            args += ["-inf", str(self._injection_file())]
        for name, value in self.keys.items():
            args += ["-key", name, value]
        for name, value in self.variables.items():
            args += ["-set", name, value]
        if self.rtp_echo:
            args.append("-rtp_echo")
        if self.auto_answer:
            args.append("-aa")
        args += ["-trace_stat", "-stf", STAT_FILE, "-fd", "1"]
        args += ["-trace_counts", "-trace_err", "-error_file", ERROR_FILE]
        args += ["-trace_screen", "-screen_file", SCREEN_FILE]
        args += ["-trace_msg", "-message_file", MESSAGE_FILE]
        return args + self.extra_args

    def run(self, timeout: float = 60.0) -> SippResult:
        """Play the scenario to its end; after `timeout` s SIPp is stopped and the result
        says `timed_out`."""
        process = self._spawn()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._timed_out = True
        return self.stop(grace=0.0)

    def start(self, ready_timeout: float = 5.0) -> Sipp:
        """Start SIPp in the background; returns once its SIP port is bound."""
        process = self._spawn()
        deadline = time.monotonic() + ready_timeout
        while not wait_bound(self.port, "udp", timeout=0.1):
            if process.poll() is not None or time.monotonic() > deadline:
                result = self.stop(grace=0.0)
                raise SippError(f"SIPp did not come up: {self.command()}\n{result.summary()}")
        return self

    def stop(self, grace: float = 1.0, timeout: float = 5.0) -> SippResult:
        """Stop SIPp and collect its result; calling it again returns the same result.

        SIGUSR1 first lets calls in progress finish (for up to `grace` s), then SIGTERM
        makes SIPp write its statistics and quit, and SIGKILL ends one that does not.
        Calls cut short are not counted as successful, including those of a UAS still
        lingering for retransmitted BYEs (uas_trunk.xml lingers 32 s).
        """
        if self._result is not None:
            return self._result
        process = self._process
        if process is not None:
            for sig, wait in ((signal.SIGUSR1, grace), (signal.SIGTERM, timeout)):
                if process.poll() is None and wait > 0:
                    process.send_signal(sig)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(wait)
            if process.poll() is None:
                process.kill()
                process.wait()
        self._ports.release()
        self._result = self._collect(process.returncode if process else -1)
        return self._result

    def messages(self) -> list[SipMessage]:
        """Every SIP message SIPp logged so far, in order."""
        return parse_message_log(_read_text(self.workdir / MESSAGE_FILE))

    def received(self, method: str | None = None) -> list[SipMessage]:
        """Requests (of `method`, if given) and responses that reached SIPp so far,
        including those -lost then made it ignore."""
        return [
            m
            for m in self.messages()
            if m.direction == "received" and (method is None or m.method == method)
        ]

    def sent(self, status: int | None = None) -> list[SipMessage]:
        """Requests and responses (with `status`, if given) SIPp sent so far."""
        return [
            m
            for m in self.messages()
            if m.direction == "sent" and (status is None or m.status == status)
        ]

    def __enter__(self) -> Sipp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _spawn(self) -> subprocess.Popen[bytes]:
        if self._process is not None:
            raise SippError(f"SIPp in {self.workdir} was already started")
        self._prepare_workdir()
        with (
            (self.workdir / "stdout.log").open("wb") as stdout,
            (self.workdir / "stderr.log").open("wb") as stderr,
        ):
            self._process = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        return self._process

    def _prepare_workdir(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        pcap = self.workdir / "pcap"
        if not pcap.exists():
            pcap.symlink_to(PCAP_DIR)
        if isinstance(self.scenario, Path):
            shutil.copyfile(self.scenario, self.workdir / self.scenario.name)

    def _injection_file(self) -> Path:
        if isinstance(self.injection, Path):
            return self.injection.resolve()
        assert self.injection is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        path = self.workdir / INJECTION_FILE
        lines = ["SEQUENTIAL", *(";".join(row) for row in self.injection)]
        path.write_text("\n".join(lines) + "\n")
        return path

    def _collect(self, returncode: int) -> SippResult:
        statistics = _last_csv_row(self.workdir / STAT_FILE)
        counts_files = sorted(self.workdir.glob("*_counts.csv"))
        counts = {
            name: int(value)
            for name, value in (_last_csv_row(counts_files[-1]) if counts_files else {}).items()
            if value.isdigit()
        }
        return SippResult(
            returncode=returncode,
            successful_calls=_int(statistics.get("SuccessfulCall(C)")),
            failed_calls=_int(statistics.get("FailedCall(C)")),
            retransmissions=_int(statistics.get("Retransmissions(C)")),
            unexpected_messages=sum(v for k, v in counts.items() if k.endswith("_Unexp")),
            timed_out=self._timed_out,
            statistics=statistics,
            message_counts=counts,
            stderr=_read_text(self.workdir / "stderr.log"),
            errors=_read_text(self.workdir / ERROR_FILE),
            screen=_read_text(self.workdir / SCREEN_FILE),
            workdir=self.workdir,
        )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _int(text: str | None) -> int:
    return int(text) if text and text.strip().isdigit() else 0


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _last_csv_row(path: Path) -> dict[str, str]:
    """Header and last row of a SIPp statistics CSV (';'-separated) as a dict."""
    try:
        with path.open(newline="") as stream:
            rows = [row for row in csv.reader(stream, delimiter=";") if row]
    except FileNotFoundError:
        return {}
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))
