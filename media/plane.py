"""The media plane of a node: every leg's audio, moved by one drift-free 20 ms clock.

Each tick: mix all conferences of the node in one numpy pass (from what arrived in the
last tick); send each leg its frame, chosen in this order: a prompt it is being played,
music on hold, the other party of its bridge, its conference mix, silence; then, for
every leg (`Channel`), take in what arrived (RTP into the jitter buffer, RFC 4733
presses), play out the frame that is due, look for in-band digits when the peer
negotiated no telephone-event, feed a recording. A leg with nothing to hear still gets
silence, so carriers keep the call up. Sending comes first because a tick's receiving
work varies; the packets of a leg leave 20 ms apart.

Latency of what a leg hears when a command changes it: the frame goes out at once
(`_send_early`) and the next tick skips that leg; a leg joining a conference is mixed at
once with the last frame it sent, and every member gets the new mix then. Sockets are
also read between ticks, every 4 ms up to 6 ms before the next (on nodes with up to
SUBTICK_READ_LEGS legs), so a key press waits at most 8 ms.

Ticks are scheduled at absolute times (start + n x 20 ms) on the engine's clock, never
by sleeping per stream; a late tick is caught up at once, more than a few behind are
skipped. Slow work (speech synthesis, fetching a WAV) runs off the clock through
`run_blocking`, and its prompt plays silence until the audio is there.

The plane reports through `emit(leg, type, fields)`: dtmf, play_done, collected,
record_done, talking. It knows nothing of SIP: the engine attaches a stream when a
leg's media is agreed and detaches it when the leg ends.
"""

from __future__ import annotations

import logging
import math
import select
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from media.audio import FRAME
from media.audio.mixer import Mixer
from media.audio.recorder import Recorder
from media.audio.sources import Samples, Silence, Source, Tone, music_on_hold
from media.audio.tts import synthesize
from media.audio.wav import load_audio
from media.fetch import fetch_audio
from media.metronome import Metronome
from media.rtp import g711
from media.rtp.batch import (
    EPOLL_STRIDE,
    RTCP,
    RTP,
    build_forwarded,
    poll_ready,
    pop_frames,
    receive_ready,
    send_built,
    send_frames,
    warm_up,
)
from media.rtp.dtmf_detector import DtmfDetector
from media.rtp.packet import FIXED_HEADER_SIZE
from media.rtp.stream import RtpStream, SocketEndpoint, StreamParameters
from media.rtp.table import (
    H_LENGTH,
    H_PAYLOAD_TYPE,
    S_CONNECTED,
    X_BY_STREAM,
    X_NEXT_REPORT,
    StreamTable,
    shared,
)
from media.sip.clock import Clock, LoopClock, TimerHandle

log = logging.getLogger(__name__)

TICK = 0.020
# A tick is armed `spin` early and waits out the rest spinning (see `MediaPlane.spin`).
SPIN_LEAST = 0.0005
SPIN_MOST = 0.004
LATENESS_WINDOW = 250  # wake-ups (5 s) whose lateness sets `spin`
MAX_READS = 16  # datagrams per socket per tick
DATAGRAM = 2048  # bytes read per datagram
MAX_AHEAD = 3  # frames a leg may be sent ahead of the clock when what it hears changes
# Up to this many legs the sockets are also read between ticks, every TICK / READS_PER_TICK
# but not in the last READ_GUARD before a tick (a late read must not delay its sends), so a
# key press waits at most 8 ms; with more legs those reads could delay a tick's sends.
SUBTICK_READ_LEGS = 200
READ_GUARD = 0.006
REPLAN_TICKS = 10  # (see `_Plan`)
READS_PER_TICK = 5
MAX_CATCH_UP = 5
DTMF_FREQUENCIES = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}  # fmt: skip

Emit = Callable[[str, str, dict[str, Any]], None]
RunBlocking = Callable[[Callable[[], Any], Callable[[Any, BaseException | None], None]], None]


def run_inline(work: Callable[[], Any], done: Callable[[Any, BaseException | None], None]) -> None:
    """`run_blocking` for tests: do the work at once."""
    try:
        result = work()
    except Exception as error:
        done(None, error)
        return
    done(result, None)


# ---------------------------------------------------------------------- prompts


class _Pending:
    """A source whose audio is still being made (speech, a download): silence until then."""

    def __init__(self) -> None:
        self.inner: Source | None = None
        self.failed = False

    def read(self) -> NDArray[np.int16] | None:
        if self.failed:
            return None
        if self.inner is None:
            return _SILENT_FRAME
        return self.inner.read()


class _Digit:
    """One RFC 4733 press sent by the stream; silence while it goes out."""

    def __init__(self, channel: Channel, digit: str) -> None:
        self.channel = channel
        self.digit = digit
        self.started = False

    def read(self) -> NDArray[np.int16] | None:
        stream = self.channel.stream
        if not self.started:
            self.started = True
            if stream is None or not stream.send_digits(self.digit):
                return None
        if stream is not None and stream.sending_digits:
            return _SILENT_FRAME
        return None


_SILENT_FRAME = np.zeros(FRAME, dtype=np.int16)
_FRAME_SHAPE = (FRAME,)
_ENCODE_TABLES = {"PCMU": g711.PCMU_ENCODE_TABLE, "PCMA": g711.PCMA_ENCODE_TABLE}
_DECODE_TABLES = {0: g711.PCMU_DECODE_TABLE, 8: g711.PCMA_DECODE_TABLE}
# One G.711 law's byte to the other's: [0] PCMU to PCMA, [1] PCMA to PCMU.
_CONVERT = np.stack(
    [
        g711.PCMA_ENCODE_TABLE[g711.PCMU_DECODE_TABLE.view(np.uint16)],
        g711.PCMU_ENCODE_TABLE[g711.PCMA_DECODE_TABLE.view(np.uint16)],
    ]
)


@dataclass
class Prompt:
    ref: str | None
    sources: deque[Any]
    on_done: Callable[[str | None], None] | None = None  # interrupted_by digit or None

    def read(self) -> NDArray[np.int16] | None:
        while self.sources:
            frame = self.sources[0].read()
            if frame is not None:
                return frame
            self.sources.popleft()
        return None


@dataclass
class Collection:
    ref: str
    finish_on_key: str
    num_digits: int | None
    timeout: float
    inter_digit_timeout: float
    barge_in: bool
    digits: str = ""
    deadline: float | None = None  # armed once the prompts are over
    early: list[str] = field(default_factory=list)  # pressed during prompts without barge-in


@dataclass
class Recording:
    ref: str
    recorder: Any
    finish_on_key: str
    started: bool = False
    # A call recording (<Dial record>): what the leg said and what it heard, mixed or
    # (two channels) side by side, until `stop` or the hang-up.
    call: bool = False


# ---------------------------------------------------------------------- channels


@dataclass(slots=True)
class _Plan:
    """Which legs the tick forwards in one compiled pass (`forward_frames`: plain
    two-party bridges, see `MediaPlane._make_plan`) and which it handles one by one.

    Made at the first tick after a change (a command, a key press, a leg attached or
    gone, a frame that is not in the table), and every REPLAN_TICKS while bridged legs
    are handled one by one.
    """

    tick: int  # made at
    forwarded: list[Channel]
    peers_heard: list[Channel]  # each forwarded leg's peer
    rows: NDArray[np.int64]
    peers: NDArray[np.int64]
    rest: list[Channel]
    # Bridged legs among the rest: one may become plain without a change the plane sees
    # (a prompt or a frame sent early is over), so the plan is made again now and then.
    waiting: bool


class Channel:
    """The audio side of one leg."""

    def __init__(self, leg: str) -> None:
        self.leg = leg
        self.stream: RtpStream | None = None
        self.input: NDArray[np.int16] | None = None
        # When `input` was one packet's payload decoded: that payload and its codec, so a
        # bridged leg with the same codec is sent the payload as it came (no re-encoding).
        self.payload: bytes | None = None
        self.payload_codec: str | None = None
        self.polled = False  # its stream's sockets are in the plane's epoll
        # `input` (and `payload`) not yet taken from the frame its stream popped into the
        # table's `held` in the last tick: `MediaPlane._settle` does when they are read.
        self.held = False
        self.in_table = False  # the frame due in the last tick is in `held` (not odd)
        self.heard: NDArray[np.int16] | None = None  # sent this tick, for a call recording
        self.ahead = 0  # frames sent ahead of the clock (see `_send_early`)
        self.prompts: deque[Prompt] = deque()
        self.collection: Collection | None = None
        self.recording: Recording | None = None
        self.peer: Channel | None = None
        self.conference: str | None = None
        self.slot: int | None = None
        self.music: Source | None = None
        self.inband: DtmfDetector | None = None
        self.muted = False  # in a bridge: the other party does not hear it

    @property
    def busy(self) -> bool:
        return bool(self.prompts or self.collection or self.recording)


class MediaPlane:
    def __init__(
        self,
        clock: Clock,
        emit: Emit,
        *,
        recordings: Path,
        run_blocking: RunBlocking = run_inline,
        fetch: Callable[[str], tuple[bytes, str]] | None = None,
        precise: bool = False,
    ) -> None:
        self.clock = clock
        self.emit = emit
        self.recordings = recordings
        self.run_blocking = run_blocking
        self.fetch = fetch or fetch_audio
        # On a real clock the tick wakes on a timerfd (`Metronome`), and still some
        # tenths of a millisecond late, at times several (a halted virtual CPU woken by
        # its host, another callback of the loop): it is armed `spin` early and waits
        # out the rest spinning, so packets leave 20 ms apart. `spin` follows the
        # lateness of the last LATENESS_WINDOW wake-ups (1.25 x their 99th percentile,
        # between SPIN_LEAST and SPIN_MOST): a quiet machine pays a few percent of a
        # core, a noisy one more; a rare long stall is not worth spinning for. (Only on
        # the loop's clock: a `ManualClock` stands still while one spins.)
        self.precise = precise and isinstance(clock, LoopClock)
        self.spin = SPIN_LEAST if self.precise else 0.0
        self._lateness = np.zeros(LATENESS_WINDOW)  # a ring
        self._wakes = 0
        self._armed_for: float | None = None  # when the tick's timer was armed to fire
        self._metronome: Metronome | None = None
        self.channels: dict[str, Channel] = {}
        self.mixer = Mixer()
        self.slots: dict[int, Channel] = {}
        self._tick_timer: TimerHandle | None = None
        self._read_timer: TimerHandle | None = None
        self._start: float = 0.0
        self._ticks = 0
        self.skipped_ticks = 0
        self._audio_cache: OrderedDict[tuple, NDArray[np.int16]] = OrderedDict()
        # Legs on real sockets are polled together: one epoll for all of them, read only
        # where something arrived (no failed read per idle socket per tick).
        self._poller = select.epoll() if hasattr(select, "epoll") else None
        self._polled: dict[int, tuple[Channel, RtpStream, bool]] = {}  # fd -> (.., is RTCP)
        # Buffers of the compiled receive passes (`media.rtp.batch`).
        self._scratch = np.zeros(DATAGRAM, np.uint8)
        self._packet = np.zeros(DATAGRAM, np.uint8)
        self._queue = np.zeros((0, DATAGRAM), np.uint8)  # what a pass leaves to Python
        self._queued = np.zeros((0, 2), np.int64)

        # By file descriptor: the stream's row in the table, RTP or RTCP, the call of
        # `_read_sockets` that last read it and how often it did.
        self._fd_row = np.zeros(0, np.int64)
        self._fd_kind = np.zeros(0, np.int8)
        self._fd_mark = np.zeros(0, np.int64)
        self._fd_reads = np.zeros(0, np.int64)
        self._round = 0
        self._plan: _Plan | None = None
        # The forwarded legs' next packets and sockets, and the plan they were built for.
        self._built: _Plan | None = None
        self._built_packets = np.zeros((0, FIXED_HEADER_SIZE + FRAME), np.uint8)
        self._built_fds = np.zeros(0, np.int64)
        self._events = np.zeros(0, np.int32)  # room for epoll_wait's answers
        self._ready = self._ready_rows = self._rest = np.zeros(0, np.int64)
        warm_up()

    # ------------------------------------------------------------------ legs

    def channel(self, leg: str) -> Channel:
        channel = self.channels.get(leg)
        if channel is None:
            channel = self.channels[leg] = Channel(leg)
            self._ensure_ticking()
        return channel

    def attach(self, leg: str, stream: RtpStream) -> None:
        self._plan = None  # (see `_Plan`)
        channel = self.channel(leg)
        if channel.stream is not None and channel.stream is not stream:
            self._close_stream(channel)
        channel.stream = stream
        self._configure_inband(channel)
        endpoint = stream.endpoint
        if self._poller is not None and isinstance(endpoint, SocketEndpoint):
            for sock, rtcp in ((endpoint.rtp, False), (endpoint.rtcp, True)):
                if sock is not None:
                    fd = sock.fileno()
                    self._poller.register(fd, select.EPOLLIN)
                    self._polled[fd] = (channel, stream, rtcp)
                    if fd >= len(self._fd_row):
                        size = max(64, 2 * fd)
                        self._fd_row = _grown(self._fd_row, size)
                        self._fd_kind = _grown(self._fd_kind, size)
                        self._fd_mark = _grown(self._fd_mark, size)
                        self._fd_reads = _grown(self._fd_reads, size)
                    self._fd_row[fd] = stream.row
                    self._fd_kind[fd] = RTCP if rtcp else RTP
            channel.polled = True

    def _close_stream(self, channel: Channel) -> None:
        stream = channel.stream
        if stream is None:
            return
        endpoint = stream.endpoint
        if self._poller is not None and isinstance(endpoint, SocketEndpoint):
            for sock in (endpoint.rtp, endpoint.rtcp):
                if sock is not None and self._polled.pop(sock.fileno(), None) is not None:
                    self._poller.unregister(sock.fileno())
                    self._fd_kind[sock.fileno()] = 0
        stream.close(self.clock.now())
        channel.stream = None
        channel.polled = False

    def update(self, leg: str, params: StreamParameters) -> None:
        self._plan = None  # (see `_Plan`)
        channel = self.channels.get(leg)
        if channel is not None and channel.stream is not None:
            channel.stream.configure(params)
            self._configure_inband(channel)

    @staticmethod
    def _configure_inband(channel: Channel) -> None:
        # In-band detection only for peers without telephone-event: one that negotiated
        # it sends RFC 4733, and often the tones in audio as well (one press, not two).
        stream = channel.stream
        wants = stream is not None and stream.params.telephone_event_pt is None
        if wants and channel.inband is None:
            channel.inband = DtmfDetector()
        elif not wants:
            channel.inband = None

    def detach(self, leg: str) -> None:
        """The leg ended: finish what it was doing (with reason hangup) and free it."""
        self._plan = None  # (see `_Plan`)
        channel = self.channels.pop(leg, None)
        if channel is None:
            return
        if channel.collection is not None:
            collection, channel.collection = channel.collection, None
            self.emit(
                leg,
                "collected",
                {
                    "ref": collection.ref,
                    "digits": collection.digits,
                    "reason": "hangup",
                    "finish_key": None,
                },
            )
        if channel.recording is not None:
            self._finish_recording(channel, "hangup", "")
        channel.prompts.clear()
        self._unbridge(channel)
        self._leave(channel)
        self._close_stream(channel)
        if not self.channels and self._tick_timer is not None:
            self._tick_timer.cancel()
            self._tick_timer = None
        if not self.channels and self._metronome is not None:
            self._metronome.close()
            self._metronome = None
        if not self.channels and self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    # -------------------------------------------------------------- commands

    def command(self, leg: str, command: dict[str, Any]) -> bool:
        """Carry out a media command; False if it is not one."""
        self._plan = None  # (see `_Plan`)
        kind = command["type"]
        handler = getattr(self, f"_cmd_{kind}", None)
        if handler is None:
            return False
        handler(self.channel(leg), command)
        return True

    def _cmd_say(self, channel: Channel, command: dict[str, Any]) -> None:
        self._prompt(channel, command["ref"], [command])

    _cmd_play = _cmd_say
    _cmd_pause = _cmd_say
    _cmd_tone = _cmd_say

    def _cmd_send_dtmf(self, channel: Channel, command: dict[str, Any]) -> None:
        self._prompt(channel, command["ref"], [command])

    def _cmd_stop(self, channel: Channel, command: dict[str, Any]) -> None:
        ref = command.get("ref")
        recording = channel.recording
        if recording is not None and ref is not None and recording.ref == ref:
            self._finish_recording(channel, "stopped", "")
            return
        for prompt in list(channel.prompts):
            if ref is None or prompt.ref == ref:
                channel.prompts.remove(prompt)
                if prompt.on_done is not None:
                    prompt.on_done(None)

    def _cmd_collect(self, channel: Channel, command: dict[str, Any]) -> None:
        if channel.collection is not None:
            self._end_collection(channel, "timeout")
        channel.collection = Collection(
            ref=command["ref"],
            finish_on_key=command.get("finish_on_key", "#"),
            num_digits=command.get("num_digits"),
            timeout=float(command.get("timeout", 5)),
            inter_digit_timeout=float(
                command.get("inter_digit_timeout", command.get("timeout", 5))
            ),
            barge_in=bool(command.get("barge_in", True)),
        )
        if command.get("prompts"):
            self._prompt(channel, None, command["prompts"], on_done=self._collect_prompts_done)
        else:
            self._arm_collection(channel)

    def _cmd_record(self, channel: Channel, command: dict[str, Any]) -> None:
        self.recordings.mkdir(parents=True, exist_ok=True)
        path = self.recordings / f"{channel.leg}-{command['ref']}.wav"
        call = command.get("mode") == "call"
        recorder = Recorder(
            path,
            max_length_s=float(command.get("max_length", 3600)),
            silence_timeout_s=float(command.get("timeout", 0 if call else 5)),
            trim_silence=bool(command.get("trim", not call)),
            channels=2 if call and command.get("channels") == 2 else 1,
        )
        if channel.recording is not None:
            self._finish_recording(channel, "stopped", "")
        channel.recording = Recording(
            command["ref"], recorder, command.get("finish_on_key", ""), call=call
        )
        if command.get("play_beep", True):
            self._prompt(
                channel,
                None,
                [{"type": "tone", "name": "beep"}],
                on_done=lambda recorded, _digit: self._start_recording(recorded),
            )
        else:
            channel.recording.started = True

    def _cmd_bridge(self, channel: Channel, command: dict[str, Any]) -> None:
        other = self.channel(command["peer"])
        self._unbridge(channel)
        self._unbridge(other)
        self._leave(channel)
        self._leave(other)
        channel.peer, other.peer = other, channel
        self._send_early(channel)
        self._send_early(other)

    def _cmd_unbridge(self, channel: Channel, command: dict[str, Any]) -> None:
        self._unbridge(channel)

    def _cmd_join(self, channel: Channel, command: dict[str, Any]) -> None:
        self._unbridge(channel)
        self._leave(channel)
        channel.conference = command["conference"]
        channel.slot = self.mixer.join(command["conference"])
        self.slots[channel.slot] = channel
        coach = command.get("coach")
        coach_of = None
        if coach:
            target = self.channels.get(coach)
            coach_of = target.slot if target is not None else None
        self.mixer.set(
            channel.slot,
            muted=bool(command.get("muted", False)),
            deaf=bool(command.get("deaf", False)),
            hold=channel.music is not None,
            coach_of=coach_of,
        )
        self._settle([channel])
        if channel.input is not None:  # heard in the very next mix
            self.mixer.input[channel.slot] = channel.input
        self._mix_now(channel.conference)
        if command.get("beep"):
            for slot in self.mixer.members(channel.conference):
                member = self.slots.get(slot)
                if member is not None:
                    self._prompt(member, None, [{"type": "tone", "name": "beep"}])

    def _cmd_leave(self, channel: Channel, command: dict[str, Any]) -> None:
        conference = channel.conference
        self._leave(channel)
        if command.get("beep") and conference is not None:
            for slot in self.mixer.members(conference):
                member = self.slots.get(slot)
                if member is not None:
                    self._prompt(member, None, [{"type": "tone", "name": "beep"}])

    def _cmd_mute(self, channel: Channel, command: dict[str, Any]) -> None:
        channel_muted = bool(command.get("muted", True))
        if channel.slot is not None:
            self.mixer.set(channel.slot, muted=channel_muted, deaf=command.get("deaf"))
        channel.muted = channel_muted

    def music_hold(self, leg: str, on: bool) -> None:
        """Music on hold for the leg; it is not heard by its bridge or conference."""
        self._plan = None  # (see `_Plan`)
        channel = self.channel(leg)
        channel.music = music_on_hold() if on else None
        if channel.slot is not None:
            self.mixer.set(channel.slot, hold=on)
        self._send_early(channel)

    # ------------------------------------------------------------- internals

    def _prompt(
        self,
        channel: Channel,
        ref: str | None,
        items: list[dict[str, Any]],
        *,
        on_done: Callable[[Channel, str | None], None] | None = None,
    ) -> None:
        sources: deque[Any] = deque()
        for item in items:
            sources.extend(self._sources(channel, item))

        def done(interrupted_by: str | None) -> None:
            if ref is not None:
                self.emit(channel.leg, "play_done", {"ref": ref, "interrupted_by": interrupted_by})
            if on_done is not None:
                on_done(channel, interrupted_by)

        channel.prompts.append(Prompt(ref, sources, done))
        if len(channel.prompts) == 1:
            self._send_early(channel)

    def _sources(self, channel: Channel, item: dict[str, Any]) -> list[Any]:
        loop = int(item.get("loop", 1) or 0)
        match item["type"]:
            case "pause":
                return [Silence(int(float(item["length"]) * 1000))]
            case "tone":
                tone = Tone.named(item["name"])
                duration = item.get("duration")
                if duration:
                    return [_Limited(tone, int(float(duration) / TICK))]
                return [tone]
            case "send_dtmf":
                result: list[Any] = []
                for digit in item["digits"]:
                    if digit.lower() == "w":
                        result.append(Silence(500))
                    elif channel.stream is not None and channel.stream.events_out is not None:
                        result.append(_Digit(channel, digit.upper()))
                    else:
                        result.append(Samples(_dtmf_tone(digit.upper())))
                        result.append(Silence(100))
                return result
            case "say":
                key = ("say", item["text"], item.get("voice", ""), item.get("language", ""))
                return [
                    self._loaded(
                        key,
                        lambda: synthesize(
                            item["text"],
                            item.get("voice") or "woman",
                            item.get("language") or "en-US",
                        ),
                        loop,
                    )
                ]
            case "play":
                url = item["url"]
                if url.startswith("tone:"):
                    return [Tone.named(url[5:])]
                return [self._loaded(("play", url), lambda: load_audio(*self.fetch(url)), loop)]
        log.warning("leg %s: prompt %r is not known", channel.leg, item.get("type"))
        return []

    def _loaded(self, key: tuple, make: Callable[[], NDArray[np.int16]], loop: int) -> Any:
        cached = self._audio_cache.get(key)
        if cached is not None:
            self._audio_cache.move_to_end(key)
            return Samples(cached, loop=loop)
        pending = _Pending()

        def ready(audio: Any, error: BaseException | None) -> None:
            if error is not None:
                log.warning("audio %s could not be made: %s", key[:2], error)
                pending.failed = True
                return
            self._audio_cache[key] = audio
            while len(self._audio_cache) > 256:
                self._audio_cache.popitem(last=False)
            pending.inner = Samples(audio, loop=loop)

        self.run_blocking(make, ready)
        return pending

    def _collect_prompts_done(self, channel: Channel, interrupted_by: str | None) -> None:
        collection = channel.collection
        if collection is None:
            return
        early, collection.early = collection.early, []
        self._arm_collection(channel)
        for digit in early:
            if channel.collection is not collection:
                break
            self._collect_digit(channel, digit)

    def _arm_collection(self, channel: Channel) -> None:
        collection = channel.collection
        assert collection is not None
        collection.deadline = self.clock.now() + collection.timeout

    def _collect_digit(self, channel: Channel, digit: str) -> None:
        collection = channel.collection
        assert collection is not None
        if digit in collection.finish_on_key:
            self._end_collection(channel, "finish_key", digit)
            return
        collection.digits += digit
        if collection.num_digits and len(collection.digits) >= collection.num_digits:
            self._end_collection(channel, "num_digits")
            return
        collection.deadline = self.clock.now() + collection.inter_digit_timeout

    def _end_collection(self, channel: Channel, reason: str, finish_key: str | None = None) -> None:
        collection, channel.collection = channel.collection, None
        assert collection is not None
        self.emit(
            channel.leg,
            "collected",
            {
                "ref": collection.ref,
                "digits": collection.digits,
                "reason": reason,
                "finish_key": finish_key,
            },
        )

    def _start_recording(self, channel: Channel) -> None:
        if channel.recording is not None:
            channel.recording.started = True

    def _finish_recording(self, channel: Channel, reason: str, digits: str) -> None:
        recording, channel.recording = channel.recording, None
        assert recording is not None
        result = recording.recorder.finish(reason)
        self.emit(
            channel.leg,
            "record_done",
            {
                "ref": recording.ref,
                "path": str(result.path),
                "duration": round(result.duration_s, 3),
                "digits": digits,
                "reason": reason,
                "channels": recording.recorder.channels,
            },
        )

    def _unbridge(self, channel: Channel) -> None:
        peer = channel.peer
        if peer is not None:
            peer.peer = None
            channel.peer = None

    def _leave(self, channel: Channel) -> None:
        if channel.slot is not None:
            self.mixer.leave(channel.slot)
            self.slots.pop(channel.slot, None)
            channel.slot = None
            channel.conference = None

    # ------------------------------------------------------------------ digits

    def info_digit(self, leg: str, digit: str) -> None:
        self._plan = None  # (see `_Plan`)
        channel = self.channels.get(leg)
        if channel is not None:
            self._digit(channel, digit, "info")

    def _digit(self, channel: Channel, digit: str, source: str) -> None:
        self._plan = None  # (see `_Plan`)
        self.emit(channel.leg, "dtmf", {"digit": digit, "source": source})
        collection = channel.collection
        recording = channel.recording
        if recording is not None and recording.started and digit in recording.finish_on_key:
            self._finish_recording(channel, "finish_key", digit)
            return
        if collection is None:
            return
        if collection.deadline is None:  # its prompts are playing
            if not collection.barge_in:
                collection.early.append(digit)
                return
            # Barge-in: the press stops the prompts and counts.
            while channel.prompts:
                prompt = channel.prompts.popleft()
                if prompt.on_done is not None:
                    prompt.on_done(digit)
                if channel.collection is not collection or collection.deadline is not None:
                    break
            if channel.collection is not collection:
                return
            if collection.deadline is None:
                self._arm_collection(channel)
            # `_collect_prompts_done` replayed the early presses; now this one.
        self._collect_digit(channel, digit)

    # ------------------------------------------------------------------- clock

    def _ensure_ticking(self) -> None:
        if self._tick_timer is None:
            self._start = self.clock.now()
            self._ticks = 0
            self._arm_tick(self._start + TICK)

    def _arm_tick(self, due: float) -> None:
        """Fire `_on_tick` `spin` before ``due``."""
        clock = self.clock
        at = due - self.spin
        now = clock.now()
        # (lateness is measured only from a timer armed ahead: a tick armed when its time
        # had passed, after a long tick, fires at once and is late for other reasons)
        self._armed_for = at if at > now else None
        if self.precise:
            if self._metronome is None:
                self._metronome = Metronome(clock.loop, self._on_tick)  # type: ignore[attr-defined]
            self._metronome.arm(at)
            self._tick_timer = self._metronome
        else:
            self._tick_timer = clock.call_later(max(0.0, at - now), self._on_tick)

    def _on_tick(self) -> None:
        self._tick_timer = None
        self._ticks += 1
        due = self._start + self._ticks * TICK
        if self.spin:
            if self._armed_for is not None:
                self._follow_lateness(self.clock.now() - self._armed_for)
            while self.clock.now() < due:
                pass
        now = self.clock.now()
        behind = int((now - (self._start + self._ticks * TICK)) / TICK)
        if behind > MAX_CATCH_UP:
            self.skipped_ticks += behind
            self._ticks += behind
        try:
            self.tick(now)
        except Exception:
            log.exception("media tick failed")
        if self.channels:
            self._arm_tick(self._start + (self._ticks + 1) * TICK)
            if (
                self._polled
                and len(self.channels) <= SUBTICK_READ_LEGS
                and self._read_timer is None
            ):
                self._schedule_read(1)

    def _follow_lateness(self, late: float) -> None:
        lateness = self._lateness
        lateness[self._wakes % LATENESS_WINDOW] = late
        self._wakes += 1
        rank = LATENESS_WINDOW - 1 - LATENESS_WINDOW // 100
        high = np.partition(lateness, rank)[rank]
        self.spin = min(SPIN_MOST, max(SPIN_LEAST, 1.25 * float(high)))

    def _schedule_read(self, step: int) -> None:
        at = self._start + (self._ticks + step / READS_PER_TICK) * TICK
        self._read_timer = self.clock.call_later(
            max(0.0, at - self.clock.now()), lambda: self._on_read(step)
        )

    def _on_read(self, step: int) -> None:
        self._read_timer = None
        try:
            self._read_sockets(self.clock.now())
        except Exception:
            log.exception("media read failed")
        if (step + 1) * TICK / READS_PER_TICK <= TICK - READ_GUARD and self.channels:
            self._schedule_read(step + 1)

    def tick(self, now: float) -> None:
        plan = self._plan
        if plan is None:  # something changed since the last tick made it (`_prepare`)
            plan = self._plan = self._make_plan()
        # 1. Every conference of the node at once, from what arrived in the last tick:
        # mixed just before sending (one numpy pass, a fraction of a millisecond), so a
        # leg that joined since then is heard in the mix and hears it in this tick.
        if self.slots:
            self._mix()
        self._send(plan, now)
        for channel in plan.rest:  # (a forwarded leg collects no digits)
            collection = channel.collection
            deadline = collection.deadline if collection is not None else None
            if deadline is not None and now >= deadline:
                self._end_collection(channel, "timeout")
        self._receive(plan, now)
        self._prepare()

    def _prepare(self) -> None:
        """The next tick's plan and forwarded packets, made now that this tick's frames
        are in: at the tick, only their sends remain (a change before then makes them
        again)."""
        plan = self._plan
        if plan is None or (plan.waiting and self._ticks + 1 >= plan.tick + REPLAN_TICKS):
            plan = self._plan = self._make_plan()
        self._build(plan)

    def _build(self, plan: _Plan) -> None:
        count = len(plan.rows)
        if len(self._built_fds) < count:
            self._built_packets = np.zeros((2 * count, FIXED_HEADER_SIZE + FRAME), np.uint8)
            self._built_fds = np.zeros(2 * count, np.int64)
        table = shared()
        build_forwarded(
            plan.rows, plan.peers, table.ints, table.held, _CONVERT,
            self._built_packets[:count], self._built_fds[:count],
        )  # fmt: skip
        self._built = plan

    def _make_plan(self) -> _Plan:
        """Which legs are in plain two-party bridges (see `_Plan`), the rest one by one.

        Plain: the leg hears its peer and nothing else (no prompt, music, conference,
        mute), nothing listens to what it says (recording, in-band detection, digit
        collection), both its frame and its peer's are in the table (`in_table`) and its
        stream is latched with nothing of its own to send.
        """
        candidates: list[Channel] = []
        rest: list[Channel] = []
        for channel in self.channels.values():
            peer = channel.peer
            stream = channel.stream
            if (
                peer is not None
                and channel.in_table
                and peer.in_table
                and not channel.ahead
                and not channel.prompts
                and channel.music is None
                and channel.recording is None
                and channel.collection is None
                and channel.inband is None
                and channel.slot is None
                and peer.music is None
                and not peer.muted
                and stream is not None
                and not stream.pressing
                and peer.stream is not None
            ):
                candidates.append(channel)
            else:
                rest.append(channel)
        ints = shared().ints
        count = len(candidates)
        rows = np.fromiter((c.stream.row for c in candidates), np.int64, count)  # type: ignore[union-attr]
        peers = np.fromiter((c.peer.stream.row for c in candidates), np.int64, count)  # type: ignore[union-attr]
        plain = (ints[rows, S_CONNECTED] == 1) & (ints[rows, X_BY_STREAM] == 0)
        rest.extend(candidates[index] for index in np.flatnonzero(~plain).tolist())
        forwarded = [candidates[index] for index in np.flatnonzero(plain).tolist()]
        return _Plan(
            self._ticks,
            forwarded,
            [channel.peer for channel in forwarded],  # type: ignore[misc]
            rows[plain],
            peers[plain],
            rest,
            any(channel.peer is not None for channel in rest),
        )

    def _send_early(self, channel: Channel) -> None:
        """Send the leg the frame due at the next tick now: what it hears just changed.

        A command (music on hold, a prompt, a new bridge, a conference join) arrives
        between ticks; waiting for the next one would add up to 20 ms to every such
        change. The next tick then skips this leg, so it still gets one packet per 20 ms
        on average. Several changes in one interval send at most MAX_AHEAD frames ahead
        (the peer's jitter buffer holds them until their time). Nothing is sent early
        when the leg would only hear silence.
        """
        self._plan = None  # (see `_Plan`)
        stream = channel.stream
        if stream is None or channel.ahead >= MAX_AHEAD or not self._tick_timer:
            return
        out = self._output(channel)
        if out is None:
            return
        if channel.recording is not None:
            channel.heard = out
        channel.ahead += 1
        stream.send(out, self.clock.now())

    def _mix_now(self, conference: str) -> None:
        """Mix every conference now from the frames the next tick would mix, and send
        the members of `conference` their new mix at once (see `_send_early`)."""
        members = [
            self.slots[slot] for slot in self.mixer.members(conference) if slot in self.slots
        ]
        if len(members) < 2:
            return
        saved = self.mixer.input.copy()
        self._mix()
        self.mixer.input[...] = saved  # the tick mixes them again, for everyone else
        for member in members:
            self._send_early(member)

    def _mix(self) -> None:
        for slot, talking in self.mixer.tick():
            member = self.slots.get(slot)
            if member is not None:
                self.emit(
                    member.leg, "talking", {"conference": member.conference, "talking": talking}
                )

    def _send(self, plan: _Plan, now: float) -> None:
        """2. What each leg hears, sent first.

        A tick's receiving work varies, so sending before it keeps every leg's packets
        20 ms apart. The audio passed between legs is what arrived in the previous tick
        (one frame of latency). Frames are encoded together, one numpy step per codec,
        and a payload that only passes from one leg to another in the same codec is not
        encoded at all.
        """
        count = len(plan.rows)
        if count:
            # (before any Python per leg: these packets leave at the same point of
            # every tick, built ahead)
            table = shared()
            if self._built is not plan:
                self._build(plan)
            self._built = None
            send_built(plan.rows, table.ints, self._built_packets[:count], self._built_fds[:count])
            for index in np.flatnonzero(table.floats[plan.rows, X_NEXT_REPORT] <= now).tolist():
                plan.forwarded[index].stream.report_when_due(now)  # type: ignore[union-attr]
        streams: list[RtpStream] = []
        payloads: list[Any] = []
        batches: dict[str, list[int]] = {"PCMU": [], "PCMA": []}
        # What the legs' peers said, decoded together (`_output` reads it).
        self._settle([channel.peer for channel in plan.rest if channel.peer is not None])
        for channel in plan.rest:
            if channel.ahead:
                channel.ahead -= 1
                continue
            out = self._output(channel)
            if channel.recording is not None:
                channel.heard = out
            stream = channel.stream
            if stream is None:
                continue
            streams.append(stream)
            if out is None:
                payloads.append(None)
                continue
            codec = stream.params.codec
            peer = channel.peer
            if peer is not None and out is peer.input and peer.payload_codec == codec:
                payloads.append(peer.payload)
            elif out.shape == _FRAME_SHAPE and out.dtype == np.int16:
                batches[codec].append(len(payloads))
                payloads.append(out)
            else:
                payloads.append(stream._encode(out))
        for codec, indices in batches.items():
            if indices:
                codes = _ENCODE_TABLES[codec][
                    np.stack([payloads[index] for index in indices]).view(np.uint16)
                ].tobytes()
                for row, index in enumerate(indices):
                    payloads[index] = codes[row * FRAME : (row + 1) * FRAME]
        if streams:
            self._send_frames(streams, payloads, now)

    def _send_frames(self, streams: list[RtpStream], payloads: list[Any], now: float) -> None:
        """Latched streams' frames of 20 ms go out in one compiled pass (`send_frames`);
        the others (not latched yet, a digit being sent, an odd frame) one by one."""
        table = shared()
        ints = table.ints
        count = len(streams)
        rows = np.fromiter((stream.row for stream in streams), np.int64, count)
        for index, payload in enumerate(payloads):
            if payload is None:
                payloads[index] = streams[index].silence
        sizes = np.fromiter(map(len, payloads), np.int64, count)
        batch = (ints[rows, S_CONNECTED] == 1) & (ints[rows, X_BY_STREAM] == 0) & (sizes == FRAME)
        indices = np.flatnonzero(batch).tolist()
        if indices:
            frames = np.frombuffer(b"".join([payloads[i] for i in indices]), np.uint8)
            send_frames(
                rows[batch], frames.reshape(len(indices), FRAME), sizes[batch], ints, self._packet
            )
            for index in np.flatnonzero(batch & (table.floats[rows, X_NEXT_REPORT] <= now)):
                streams[index].report_when_due(now)
        for index in np.flatnonzero(~batch).tolist():
            streams[index].send_payload(payloads[index], now)

    def _read_sockets(self, now: float) -> None:
        """Datagrams from every ready socket into their streams; key presses reported.

        The sockets of latched streams (connected to their peers) are read in one
        compiled pass (`receive_ready`, at most MAX_READS datagrams each; the kernel drops
        the rest of a flood); a stream not yet latched, and RTCP, are read here, one
        datagram per round (a socket with more stays ready for the next).
        """
        poller = self._poller
        polled = self._polled
        if poller is None or not polled:
            return
        table = shared()
        self._round += 1
        mark = self._round  # sockets read by the compiled pass in this call are marked
        if len(self._events) < EPOLL_STRIDE * len(polled):
            self._events = np.zeros(2 * EPOLL_STRIDE * len(polled), np.int32)
            self._ready = np.zeros(2 * len(polled), np.int64)
            self._ready_rows = np.zeros(2 * len(polled), np.int64)
            self._rest = np.zeros(2 * len(polled), np.int64)
            self._queue = np.zeros((2 * len(polled), DATAGRAM), np.uint8)
            self._queued = np.zeros((2 * len(polled), 2), np.int64)
        # Rounds: one datagram per ready socket each (a socket with more stays ready).
        for _round in range(MAX_READS):
            batched, others = poll_ready(
                poller.fileno(), self._events, EPOLL_STRIDE, self._fd_row, self._fd_kind,
                self._fd_mark, self._fd_reads, mark, MAX_READS, table.ints, self._ready,
                self._ready_rows, self._rest,
            )  # fmt: skip
            if not batched and not others:
                break
            for fd in self._rest[:others].tolist():
                entry = polled.get(fd)
                if entry is None:
                    continue
                channel, stream, rtcp = entry
                if channel.stream is not stream:
                    continue
                endpoint: SocketEndpoint = stream.endpoint  # type: ignore[assignment]
                if rtcp:
                    data = endpoint.read_rtcp()
                    if data is not None:
                        stream.take_rtcp(data, now)
                elif endpoint.connected is None:
                    received = endpoint.read()
                    if received is not None:
                        for press in stream.take(received[0], received[1], now):
                            self._digit(channel, press.digit, "rfc4733")
            if batched:
                self._receive_ready(table, self._ready[:batched], self._ready_rows[:batched], now)

    def _receive_ready(
        self,
        table: StreamTable,
        fds: NDArray[np.int64],
        rows: NDArray[np.int64],
        now: float,
    ) -> None:
        queued = receive_ready(
            fds, rows, *table.arrays, self._scratch, self._queue, self._queued, now
        )
        # What the pass left to the streams themselves: RFC 4733 events and the unusual.
        queue = self._queue
        for position, (index, size) in enumerate(self._queued[:queued].tolist()):
            channel, stream, _rtcp = self._polled[int(fds[index])]
            endpoint: SocketEndpoint = stream.endpoint  # type: ignore[assignment]
            data = queue[position, :size].tobytes()
            for press in stream.take(data, endpoint.connected, now):  # type: ignore[arg-type]
                self._digit(channel, press.digit, "rfc4733")

    def _receive(self, plan: _Plan, now: float) -> None:
        """3. What each leg said: datagrams in, then the frame due for playout."""
        self._read_sockets(now)
        table = shared()
        due: list[Channel] = []  # legs whose next frame is a packet in the table
        for channel in plan.rest:
            stream = channel.stream
            channel.held = False
            channel.payload = None
            if stream is None:
                channel.input = None
                channel.in_table = False
                continue
            presses = (
                stream.flush_events(now)
                if channel.polled and self._poller is not None
                else stream.receive(now)
            )
            for press in presses:
                self._digit(channel, press.digit, "rfc4733")
            if not len(stream.pending):
                due.append(channel)
            else:
                channel.in_table = False
                self._take_audio(channel, stream.next_audio(now), now)
        self._pop_frames(table, plan, due, now)
        if not all(peer.in_table for peer in plan.peers_heard):
            self._plan = None  # a forwarded leg's peer is not (see `_make_plan`)
        mixer = self.mixer
        listening = [
            channel
            for channel in plan.rest
            if channel.inband is not None
            or channel.recording is not None
            or channel.slot is not None
        ]
        self._settle(listening)
        for channel in listening:
            frame = channel.input
            if frame is not None and channel.inband is not None:
                for tone in channel.inband.process(frame):
                    self._digit(channel, tone.digit, "inband")
            recording = channel.recording
            if recording is not None and recording.started:
                said = frame if frame is not None else _SILENT_FRAME
                recorder = recording.recorder
                if not recording.call:
                    ended = recorder.feed(said)
                else:
                    heard = channel.heard if channel.heard is not None else _SILENT_FRAME
                    if recorder.channels == 2:
                        ended = recorder.feed_pair(said, heard)
                    else:
                        both = said.astype(np.int32) + heard
                        ended = recorder.feed(np.clip(both, -32768, 32767).astype(np.int16))
                if ended is not None:
                    self._finish_recording(channel, ended, "")
            if channel.slot is not None and frame is not None:
                mixer.input[channel.slot] = frame

    def _take_audio(
        self, channel: Channel, audio: tuple[int, bytes] | NDArray[np.int16] | None, now: float
    ) -> None:
        if audio.__class__ is tuple:
            payload_type, payload = audio  # type: ignore[misc]
            channel.payload = payload
            channel.input = _DECODE_TABLES[payload_type][np.frombuffer(payload, np.uint8)]
            channel.payload_codec = "PCMU" if payload_type == 0 else "PCMA"
        else:
            channel.input = audio  # type: ignore[assignment]
            channel.payload_codec = None

    def _pop_frames(self, table: StreamTable, plan: _Plan, due: list[Channel], now: float) -> None:
        """Every leg's packet due for playout into the table's `held`, in one compiled pass:
        the forwarded legs' and those of `due`. A frame of 20 ms stays there until
        something reads the leg's `input` (or it is forwarded); a packet of another
        length is decoded by its stream."""
        rows = np.fromiter((channel.stream.row for channel in due), np.int64, len(due))  # type: ignore[union-attr]
        if len(plan.rows):
            rows = np.concatenate((plan.rows, rows))
        if not len(rows):
            return
        ints, floats, _low, _high, slots, data = table.arrays
        pop_frames(rows, ints, floats, slots, data, table.held, now)
        for channel in plan.forwarded:
            channel.held = True
        for channel in due:
            channel.held = True
            if not channel.in_table:  # it may be forwarded now
                channel.in_table = True
                self._plan = None
        lengths = ints[rows, H_LENGTH]
        odd = (ints[rows, H_PAYLOAD_TYPE] >= 0) & (lengths != FRAME)
        channels = plan.forwarded + due
        for index in np.flatnonzero(odd).tolist():
            channel = channels[index]
            stream: RtpStream = channel.stream  # type: ignore[assignment]
            payload = table.held[rows[index], : lengths[index]].tobytes()
            stream.pending = stream.decode(int(ints[rows[index], H_PAYLOAD_TYPE]), payload)
            channel.held = channel.in_table = False
            channel.payload = None
            channel.input = stream.frame(now)
            channel.payload_codec = None
            self._plan = None

    def _settle(self, channels: list[Channel]) -> None:
        """Give legs whose frame is still in the table's `held` their `input` and
        `payload`, decoded one numpy step per codec."""
        waiting = [channel for channel in channels if channel.held]
        if not waiting:
            return
        table = shared()
        rows = np.fromiter((channel.stream.row for channel in waiting), np.int64, len(waiting))  # type: ignore[union-attr]
        payload_types = table.ints[rows, H_PAYLOAD_TYPE]
        frames = table.held[rows, :FRAME]
        decoded = np.zeros((len(waiting), FRAME), np.int16)
        for payload_type in (0, 8):
            selected = payload_types == payload_type
            if selected.any():
                decoded[selected] = _DECODE_TABLES[payload_type][frames[selected]]
        payloads = frames.tobytes()
        for index, (channel, payload_type) in enumerate(
            zip(waiting, payload_types.tolist(), strict=True)
        ):
            channel.held = False
            if payload_type < 0:  # nothing was due
                channel.input = None
                channel.payload = None
                channel.payload_codec = None
            else:
                channel.input = decoded[index]
                channel.payload = payloads[index * FRAME : (index + 1) * FRAME]
                channel.payload_codec = "PCMU" if payload_type == 0 else "PCMA"

    def _output(self, channel: Channel) -> NDArray[np.int16] | None:
        while channel.prompts:
            prompt = channel.prompts[0]
            frame = prompt.read()
            if frame is not None:
                return frame
            channel.prompts.popleft()
            if prompt.on_done is not None:
                prompt.on_done(None)
        if channel.music is not None:
            return channel.music.read()
        peer = channel.peer
        if peer is not None:
            if peer.music is not None or peer.muted:
                return None
            if peer.held:
                self._settle([peer])
            return peer.input
        if channel.slot is not None:
            return self.mixer.output[channel.slot]
        return None


def _grown(array: NDArray[Any], size: int) -> NDArray[Any]:
    grown = np.zeros(size, array.dtype)
    grown[: len(array)] = array
    return grown


class _Limited:
    def __init__(self, source: Source, frames: int) -> None:
        self.source = source
        self.frames = frames

    def read(self) -> NDArray[np.int16] | None:
        if self.frames <= 0:
            return None
        self.frames -= 1
        return self.source.read()


def _dtmf_tone(digit: str, ms: int = 100) -> NDArray[np.int16]:
    low, high = DTMF_FREQUENCIES[digit]
    t = np.arange(8 * ms) / 8000
    amplitude = 0.2 * 32767  # about -17 dBm0 per tone
    wave = amplitude * (np.sin(2 * math.pi * low * t) + np.sin(2 * math.pi * high * t))
    return wave.astype(np.int16)
