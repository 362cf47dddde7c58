"""Sources of audio frames: buffers, call-progress tones, music on hold, silence.

A source hands out its next 20 ms frame (exactly `FRAME` int16 samples at 8 kHz) each
time `read` is called and None once it is finished; the media plane calls it once per
tick. Sources never read a clock: a frame is 20 ms of their own time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from media.audio import FRAME, RATE
from media.audio.level import DBM0_DBFS
from media.audio.wav import load_wav


class Source(Protocol):
    def read(self) -> NDArray[np.int16] | None:
        """The next frame of `FRAME` samples, or None when the source is finished."""
        ...


class Samples:
    """A buffer played `loop` times; ``loop=0`` plays it for ever (TwiML's meaning).

    Each pass ends on a whole frame: the last frame of a pass is padded with silence.
    Frames may be views of the buffer, which is shared, not copied.
    """

    def __init__(self, samples: NDArray[np.int16], loop: int = 1) -> None:
        if loop < 0:
            raise ValueError(f"loop must be 0 (for ever) or a number of passes, not {loop}")
        self.samples = np.asarray(samples, dtype=np.int16)
        if self.samples.ndim != 1:
            raise ValueError(f"samples must be one channel, not of shape {self.samples.shape}")
        self.loop = loop
        self.position = 0
        self.passes = 0

    def read(self) -> NDArray[np.int16] | None:
        size = len(self.samples)
        if size == 0 or (self.loop and self.passes >= self.loop):
            return None
        end = self.position + FRAME
        if end <= size:
            frame = self.samples[self.position : end]
        else:
            frame = np.zeros(FRAME, dtype=np.int16)
            frame[: size - self.position] = self.samples[self.position :]
        self.position = end
        if self.position >= size:
            self.position = 0
            self.passes += 1
        return frame


class Silence:
    """`duration_ms` of silence, rounded up to whole frames."""

    def __init__(self, duration_ms: float) -> None:
        self.frames = max(0, math.ceil(duration_ms * RATE / 1000 / FRAME))

    def read(self) -> NDArray[np.int16] | None:
        if self.frames <= 0:
            return None
        self.frames -= 1
        return np.zeros(FRAME, dtype=np.int16)


# ------------------------------------------------------------------------------ tones

TONE_DBFS = DBM0_DBFS - 13.0
"""Level of each frequency of a call-progress tone: -13 dBm0."""

RAMP_MS = 4.0
"""Rise and fall time of each burst of a tone: no clicks at the cadence's edges."""
_RAMP = RAMP_MS * RATE / 1000  # in samples


@dataclass(frozen=True, slots=True)
class ToneStep:
    """One step of a cadence: `frequencies` together for `on_ms`, then `off_ms` quiet."""

    frequencies: tuple[float, ...]
    on_ms: int
    off_ms: int = 0


# North American values (ANSI T1.401, Telcordia SR-2275) for "us"; BT's SIN 350 for
# "uk"; ETSI TR 101 041 / CEPT for "eu". "error" is the SIT (Special Information Tone),
# three rising tones once; "beep" is the start-of-recording beep.
_SIT = (ToneStep((913.8,), 274), ToneStep((1370.6,), 274), ToneStep((1776.7,), 380))
_BEEP = (ToneStep((1000.0,), 250),)
_CADENCES: dict[str, dict[str, tuple[ToneStep, ...]]] = {
    "us": {
        "dial": (ToneStep((350.0, 440.0), 1000),),
        "ringback": (ToneStep((440.0, 480.0), 2000, 4000),),
        "busy": (ToneStep((480.0, 620.0), 500, 500),),
        "error": _SIT,
        "beep": _BEEP,
    },
    "uk": {
        "dial": (ToneStep((350.0, 450.0), 1000),),
        "ringback": (ToneStep((400.0, 450.0), 400, 200), ToneStep((400.0, 450.0), 400, 2000)),
        "busy": (ToneStep((400.0,), 375, 375),),
        "error": _SIT,
        "beep": _BEEP,
    },
    "eu": {
        "dial": (ToneStep((425.0,), 1000),),
        "ringback": (ToneStep((425.0,), 1000, 4000),),
        "busy": (ToneStep((425.0,), 500, 500),),
        "error": _SIT,
        "beep": _BEEP,
    },
}
_FINITE = {"error", "beep"}
TONE_NAMES = tuple(_CADENCES["us"])
REGIONS = tuple(_CADENCES)


class Tone:
    """A tone of `frequencies` (each at `level_dbfs`), `on_ms` on then `off_ms` off,
    repeated for `duration_ms` (for ever when None).

    `then` adds further steps to the cadence, which repeats as a whole. Every frequency
    keeps its phase from frame to frame, and each burst rises and falls in `RAMP_MS`.
    """

    def __init__(
        self,
        frequencies: Sequence[float],
        on_ms: int,
        off_ms: int = 0,
        level_dbfs: float = TONE_DBFS,
        duration_ms: int | None = None,
        *,
        then: Sequence[ToneStep] = (),
    ) -> None:
        steps = (ToneStep(tuple(frequencies), on_ms, off_ms), *then)
        for step in steps:
            if not step.frequencies or step.on_ms <= 0 or step.off_ms < 0:
                raise ValueError(f"a tone step needs frequencies and on_ms > 0, not {step}")
            if any(not 0 < f < RATE / 2 for f in step.frequencies):
                raise ValueError(f"tone frequencies must be between 0 and {RATE // 2} Hz")
        amplitude = 32768 * 10 ** (level_dbfs / 20)
        loudest = max(len(step.frequencies) for step in steps)
        if amplitude * loudest > 32767:
            raise ValueError(
                f"{loudest} frequencies at {level_dbfs} dBFS each would clip; use at most "
                f"{20 * math.log10(32767 / 32768 / loudest):.1f} dBFS"
            )
        self.steps = steps
        self.amplitude = amplitude
        self.total = None if duration_ms is None else round(duration_ms * RATE / 1000)
        self.sample = 0
        self._envelope, self._step_at = _cadence(steps)

    @classmethod
    def named(cls, kind: str, region: str = "us") -> Tone:
        """A call-progress tone: "dial", "ringback", "busy", "error" (SIT) or "beep"."""
        if region not in _CADENCES:
            raise ValueError(f"unknown tone region {region!r}; known are {', '.join(REGIONS)}")
        steps = _CADENCES[region].get(kind)
        if steps is None:
            raise ValueError(f"unknown tone {kind!r}; known tones are {', '.join(TONE_NAMES)}")
        first, *then = steps
        once = sum(step.on_ms + step.off_ms for step in steps)
        return cls(
            first.frequencies,
            first.on_ms,
            first.off_ms,
            duration_ms=once if kind in _FINITE else None,
            then=then,
        )

    def read(self) -> NDArray[np.int16] | None:
        if self.total is not None and self.sample >= self.total:
            return None
        n = np.arange(self.sample, self.sample + FRAME)
        self.sample += FRAME
        position = n % len(self._envelope)
        envelope = self._envelope[position] * np.clip((n + 0.5) / _RAMP, 0, 1)
        if self.total is not None:
            envelope *= np.clip((self.total - n - 0.5) / _RAMP, 0, 1)
        out = np.zeros(FRAME)
        t = n / RATE  # phase from the tone's own start: continuous across frames
        steps = self._step_at[position]
        for index in np.unique(steps):
            wave = sum(np.sin(2 * np.pi * f * t) for f in self.steps[index].frequencies)
            out = np.where(steps == index, wave, out)
        return np.round(out * envelope * self.amplitude).astype(np.int16)


def _cadence(steps: tuple[ToneStep, ...]) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Gain and step index of each sample of one period of the cadence.

    A burst ramps up unless the step before it ends sounding the same frequencies, and
    down unless the step after it starts with them: a continuous tone never dips.
    """
    envelope, step_at = [], []
    for index, step in enumerate(steps):
        on = round(step.on_ms * RATE / 1000)
        off = round(step.off_ms * RATE / 1000)
        before = steps[index - 1]
        after = steps[(index + 1) % len(steps)]
        gain = np.ones(on)
        k = np.arange(on) + 0.5
        if before.off_ms or before.frequencies != step.frequencies:
            gain = np.minimum(gain, k / _RAMP)
        if step.off_ms or after.frequencies != step.frequencies:
            gain = np.minimum(gain, (on - k) / _RAMP)
        envelope += [0.5 - 0.5 * np.cos(np.pi * np.clip(gain, 0, 1)), np.zeros(off)]
        step_at.append(np.full(on + off, index))
    return np.concatenate(envelope), np.concatenate(step_at)


# ----------------------------------------------------------------------- music on hold

MUSIC_DBFS = -20.0
"""RMS level of the generated music on hold."""


def music_on_hold(path: str | Path | None = None) -> Samples:
    """Endless music on hold: the WAV at `path` looped, or by default a generated
    16-second piece (made once per process)."""
    if path is not None:
        return Samples(load_wav(path), loop=0)
    return Samples(_generated_music(), loop=0)


@lru_cache(maxsize=1)
def _generated_music() -> NDArray[np.int16]:
    """A slow arpeggio over C - Am - F - G with a soft pad and bass: 16 s at 60 bpm.

    Notes are a few harmonics under a plucked envelope (upper harmonics fade first),
    all below 3.4 kHz. Everything is laid into a circular buffer, so notes that ring
    past the end continue at the start and the loop has no seam.
    """
    seconds, beats_per_chord, notes_per_beat = 16, 4, 2
    length = seconds * RATE
    out = np.zeros(length)
    # MIDI note numbers: (bass, pad/arpeggio chord tones).
    progression = [(48, (60, 64, 67)), (45, (57, 60, 64)), (41, (57, 60, 65)), (43, (59, 62, 67))]
    pattern = (0, 1, 2, 3, 2, 1, 0, 1)  # index into chord tones plus the octave above
    chord_samples = beats_per_chord * RATE  # one beat a second
    step = RATE // notes_per_beat
    for chord_index, (bass, chord) in enumerate(progression):
        start = chord_index * chord_samples
        tones = (*chord, chord[0] + 12)
        for n, choice in enumerate(pattern):
            _add(out, start + n * step, _pluck(_hz(tones[choice] + 12), 1.6, 0.5))
        _add(out, start, _pluck(_hz(bass), 3.5, 0.6))
        for note in chord:  # a second longer than the chord: pads cross-fade
            _add(out, start - RATE // 2, _pad(_hz(note), beats_per_chord + 1, 0.12))
    rms = np.sqrt(np.mean(out**2))
    music = np.round(out * 32768 * 10 ** (MUSIC_DBFS / 20) / (rms * math.sqrt(2)))
    result = np.clip(music, -32768, 32767).astype(np.int16)
    result.flags.writeable = False
    return result


def _hz(midi: int) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _pluck(frequency: float, seconds: float, gain: float) -> NDArray[np.float64]:
    """A plucked note: four harmonics, each decaying faster than the one below."""
    t = np.arange(round(seconds * RATE)) / RATE
    attack = np.minimum(1, t / 0.01)
    note = np.zeros_like(t)
    for harmonic, weight in ((1, 1.0), (2, 0.35), (3, 0.15), (4, 0.06)):
        if frequency * harmonic < 3400:
            note += (
                weight
                * np.exp(-t * (1.5 + harmonic))
                * np.sin(2 * np.pi * frequency * harmonic * t)
            )
    fade = np.minimum(1, (t[-1] - t) / 0.05)
    return gain * attack * fade * note


def _pad(frequency: float, seconds: float, gain: float) -> NDArray[np.float64]:
    """A sustained soft note that swells in and out over a second at each end."""
    t = np.arange(round(seconds * RATE)) / RATE
    swell = np.clip(np.minimum(t, t[-1] - t), 0, 1)
    vibrato = 1 + 0.002 * np.sin(2 * np.pi * 5 * t)
    tone = np.sin(2 * np.pi * frequency * np.cumsum(vibrato) / RATE)
    return gain * (0.5 - 0.5 * np.cos(np.pi * swell)) * tone


def _add(buffer: NDArray[np.float64], start: int, sound: NDArray[np.float64]) -> None:
    """Mix `sound` into `buffer` from `start`, wrapping round its end."""
    start %= len(buffer)
    head = min(len(sound), len(buffer) - start)
    buffer[start : start + head] += sound[:head]
    if head < len(sound):
        _add(buffer, 0, sound[head:])
