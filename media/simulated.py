"""A media node without sockets: the script simulator and the platform's test double.

It speaks the real command/event protocol (`media.protocol`), so the worker cannot tell
it from the SIP/RTP engine. Calls are objects; a caller's key presses are a script
given up front ("12#" presses 1, 2, #; "w" stands for a silence long enough to end a
collection by timeout); prompts complete at once while a virtual clock advances by
their nominal length, so a simulated call runs as fast as the worker can follow it.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from media.protocol import VERSION

# Nominal lengths that move the virtual clock (the simulator does not synthesise speech).
SECONDS_PER_CHARACTER = 0.075
PLAY_SECONDS = 1.0
DIGIT_SECONDS = 0.2
RECORDING_SECONDS = 1.0
# A leg the script dials answers at once and hangs up after this long; a number ending
# in 486 is busy, one ending in 408 does not answer.
DIALLED_SECONDS = 5.0

Emit = Callable[[dict[str, Any]], None]


@dataclass
class SimulatedCall:
    sid: str
    from_number: str
    to_number: str
    keys: list[str]
    next_event_seq: int = 1
    last_command_seq: int = 0
    held_commands: dict[int, dict[str, Any]] = field(default_factory=dict)
    answered: bool = False
    ended: bool = False
    commands: list[dict[str, Any]] = field(default_factory=list)
    # A call recording (<Dial record>) in progress: its record command and start time.
    recording: tuple[dict[str, Any], float] | None = None


class SimulatedNode:
    def __init__(
        self,
        name: str,
        emit: Emit,
        *,
        recordings: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.emit = emit
        self.recordings = recordings
        self._clock = clock
        self._virtual = 0.0
        self._lock = threading.RLock()  # the broker thread and the caller's thread
        self.calls: dict[str, SimulatedCall] = {}

    # ------------------------------------------------------------------ the outside

    def incoming(self, from_number: str, to_number: str, keys: str = "") -> str:
        """A caller rings the node; returns the call id. `keys` is what the caller presses."""
        sid = "CA" + uuid.uuid4().hex
        with self._lock:
            self.calls[sid] = SimulatedCall(sid, from_number, to_number, list(keys))
            self._event(self.calls[sid], "incoming", **{"from": from_number, "to": to_number})
        return sid

    def attach(self, from_number: str, to_number: str, keys: str = "") -> str:
        """A call the platform starts itself (no `incoming` event); returns its id."""
        sid = "CA" + uuid.uuid4().hex
        with self._lock:
            self.calls[sid] = SimulatedCall(sid, from_number, to_number, list(keys))
        return sid

    def caller_hangs_up(self, sid: str) -> None:
        with self._lock:
            call = self.calls[sid]
            if not call.ended:
                call.ended = True
                self._end_call_recording(call, "hangup")
                self._event(call, "hangup", cause="remote")

    def execute(self, command: dict[str, Any]) -> None:
        """Run one command (checked against the protocol), in `seq` order, once."""
        with self._lock:
            self._execute(command)

    def _execute(self, command: dict[str, Any]) -> None:
        call = self.calls.get(command["call"])
        if call is None and command["type"] == "originate" and command["seq"] == 1:
            self._originate(command)
            return
        if call is None:
            return
        seq = command["seq"]
        if seq <= call.last_command_seq or seq in call.held_commands:
            return  # a resend after a worker crash: done already
        call.held_commands[seq] = command
        while call.last_command_seq + 1 in call.held_commands:
            call.last_command_seq += 1
            ready = call.held_commands.pop(call.last_command_seq)
            call.commands.append(ready)
            if not call.ended:
                self._run(call, ready)

    # ------------------------------------------------------------------- internals

    def _now(self) -> float:
        self._virtual = max(self._virtual, self._clock())
        return self._virtual

    def _advance(self, seconds: float) -> None:
        self._virtual = self._now() + seconds

    def _event(self, call: SimulatedCall, type_: str, **fields: Any) -> None:
        event = {
            "v": VERSION,
            "type": type_,
            "call": call.sid,
            "seq": call.next_event_seq,
            "node": self.name,
            "at": self._now(),
            **fields,
        }
        call.next_event_seq += 1
        self.emit(event)

    def _run(self, call: SimulatedCall, command: dict[str, Any]) -> None:
        match command["type"]:
            case "answer":
                call.answered = True
                self._event(call, "answered")
            case "reject" | "hangup":
                call.ended = True
                self._end_call_recording(call, "hangup")
                cause = "rejected" if command["type"] == "reject" else "local"
                self._event(call, "hangup", cause=cause)
            case "stop":
                if call.recording is not None and call.recording[0]["ref"] == command.get("ref"):
                    self._end_call_recording(call, "stopped")
            case "say" | "play" | "pause" | "send_dtmf":
                self._advance(_prompt_seconds(command))
                self._event(call, "play_done", ref=command["ref"], interrupted_by=None)
            case "collect":
                self._collect(call, command)
            case "record":
                self._record(call, command)

    def _originate(self, command: dict[str, Any]) -> None:
        target = command["target"]
        dialled = str(target.get("number") or target.get("extension") or target.get("uri"))
        call = SimulatedCall(
            command["call"], str(command.get("from", {}).get("user", "")), dialled, []
        )
        call.last_command_seq = 1
        call.commands.append(command)
        self.calls[call.sid] = call
        self._event(call, "ringing")
        if dialled.endswith("486"):
            call.ended = True
            self._event(call, "hangup", cause="busy", sip_code=486)
            return
        if dialled.endswith("408"):
            self._advance(float(command.get("timeout") or 30))
            call.ended = True
            self._event(call, "hangup", cause="no-answer", sip_code=408)
            return
        call.answered = True
        self._event(call, "answered")
        self._advance(DIALLED_SECONDS)
        call.ended = True
        self._event(call, "hangup", cause="remote")

    def _collect(self, call: SimulatedCall, command: dict[str, Any]) -> None:
        for prompt in command["prompts"]:
            if command["barge_in"] and call.keys and call.keys[0] != "w":
                break  # the first key press stops the prompts
            self._advance(_prompt_seconds(prompt))
        digits, reason, finish_key = "", "timeout", None
        while call.keys:
            key = call.keys.pop(0)
            if key == "w":
                break
            self._advance(DIGIT_SECONDS)
            if key in command["finish_on_key"]:
                reason, finish_key = "finish_key", key
                break
            digits += key
            if command["num_digits"] and len(digits) >= command["num_digits"]:
                reason = "num_digits"
                break
        if reason == "timeout":
            self._advance(command["timeout"])
        self._event(
            call,
            "collected",
            ref=command["ref"],
            digits=digits,
            reason=reason,
            finish_key=finish_key,
        )

    def _end_call_recording(self, call: SimulatedCall, reason: str) -> None:
        if call.recording is None:
            return
        command, started = call.recording
        call.recording = None
        seconds = round(self._now() - started, 3)
        if reason == "stopped":
            # Stopped when the dialled leg ended: in the simulation a dialled leg's whole
            # life passes before the caller's commands about it run, so the recording
            # gets the length that leg had.
            seconds = max(seconds, DIALLED_SECONDS)
        self._recorded(call, command, seconds, reason, "")

    def _recorded(
        self, call: SimulatedCall, command: dict[str, Any], seconds: float, reason: str, digits: str
    ) -> None:
        """Write the recording (a 440 Hz tone) and report it."""
        channels = command.get("channels", 1)
        path = self.recordings / f"{call.sid}-{command['ref']}.wav"
        _write_tone(path, 440.0, seconds, channels=channels)
        self._event(
            call,
            "record_done",
            ref=command["ref"],
            path=str(path),
            duration=seconds,
            digits=digits,
            reason=reason,
            channels=channels,
        )

    def _record(self, call: SimulatedCall, command: dict[str, Any]) -> None:
        self.recordings.mkdir(parents=True, exist_ok=True)
        if command.get("mode") == "call":
            # Records until `stop` or the hang-up, as the real plane does.
            call.recording = (command, self._now())
            return
        self._advance(RECORDING_SECONDS)
        reason, digits = "silence", ""
        if call.keys and call.keys[0] != "w" and call.keys[0] in command["finish_on_key"]:
            reason, digits = "finish_key", call.keys.pop(0)
        elif call.keys and call.keys[0] == "w":
            call.keys.pop(0)
        self._recorded(call, command, RECORDING_SECONDS, reason, digits)


def _prompt_seconds(prompt: dict[str, Any]) -> float:
    loops = prompt.get("loop", 1) or 1
    match prompt["type"]:
        case "say":
            return len(prompt["text"]) * SECONDS_PER_CHARACTER * loops
        case "play":
            return PLAY_SECONDS * loops
        case "pause":
            return float(prompt["length"])
        case "send_dtmf":
            return DIGIT_SECONDS * len(prompt["digits"])
    return 0.0


def _write_tone(
    path: Path, frequency: float, seconds: float, rate: int = 8000, channels: int = 1
) -> None:
    t = np.arange(math.ceil(seconds * rate)) / rate
    samples = np.repeat((np.sin(2 * np.pi * frequency * t) * 8000).astype("<i2"), channels)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
