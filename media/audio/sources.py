"""Sources of audio frames: buffers, tones, music on hold, silence.

A source hands out the next 20 ms frame (160 int16 samples at 8 kHz) each time `read`
is called, or None once it is finished; the media plane calls it once per tick.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from media.audio import FRAME, RATE

# Level of each tone of a call-progress signal: -13 dBm0 (0 dBm0 is 3.14 dB below a
# full-scale sine in G.711).
TONE_DBM0 = -13.0


def _amplitude(dbm0: float) -> float:
    return 32768 * 10 ** ((dbm0 - 3.14) / 20) * math.sqrt(2)


class Source(Protocol):
    def read(self) -> NDArray[np.int16] | None: ...


class Samples:
    """A buffer played `loop` times (0: for ever, as in TwiML)."""

    def __init__(self, samples: NDArray[np.int16], loop: int = 1) -> None:
        self.samples = np.asarray(samples, dtype=np.int16)
        self.loop = loop
        self.position = 0
        self.played = 0

    def read(self) -> NDArray[np.int16] | None:
        size = len(self.samples)
        if size == 0 or (self.loop and self.played >= self.loop):
            return None
        end = self.position + FRAME
        if end <= size:
            frame = self.samples[self.position : end]
            self.position = end
        else:
            frame = np.zeros(FRAME, dtype=np.int16)
            frame[: size - self.position] = self.samples[self.position :]
            self.position = size
        if self.position >= size:
            self.position = 0
            self.played += 1
        return frame


class Silence:
    def __init__(self, duration_ms: int) -> None:
        self.frames = max(0, round(duration_ms / 20))

    def read(self) -> NDArray[np.int16] | None:
        if self.frames <= 0:
            return None
        self.frames -= 1
        return np.zeros(FRAME, dtype=np.int16)


# (frequencies, [(on_ms, off_ms), ...] cadence, total duration in ms or None for ever)
_TONES: dict[str, dict[str, tuple[tuple[float, ...], tuple[tuple[int, int], ...], int | None]]] = {
    "us": {
        "dial": ((350, 440), ((1000, 0),), None),
        "ringback": ((440, 480), ((2000, 4000),), None),
        "busy": ((480, 620), ((500, 500),), None),
        "error": ((913.8, 1370.6, 1776.7), ((274, 0), (274, 0), (380, 0)), 928),
        "beep": ((1000,), ((250, 0),), 250),
    },
    "uk": {
        "dial": ((350, 440), ((1000, 0),), None),
        "ringback": ((400, 450), ((400, 200), (400, 2000)), None),
        "busy": ((400,), ((375, 375),), None),
        "error": ((913.8, 1370.6, 1776.7), ((274, 0), (274, 0), (380, 0)), 928),
        "beep": ((1000,), ((250, 0),), 250),
    },
    "eu": {
        "dial": ((425,), ((1000, 0),), None),
        "ringback": ((425,), ((1000, 4000),), None),
        "busy": ((425,), ((500, 500),), None),
        "error": ((913.8, 1370.6, 1776.7), ((274, 0), (274, 0), (380, 0)), 928),
        "beep": ((1000,), ((250, 0),), 250),
    },
}
TONE_NAMES = tuple(_TONES["us"])


class Tone:
    """A call-progress tone, generated phase-continuously frame by frame."""

    def __init__(
        self,
        frequencies: tuple[float, ...],
        on_ms: int,
        off_ms: int = 0,
        level_dbm0: float = TONE_DBM0,
        duration_ms: int | None = None,
        *,
        cadence: tuple[tuple[int, int], ...] | None = None,
        sequential: bool = False,
    ) -> None:
        self.frequencies = tuple(frequencies)
        self.cadence = cadence or ((on_ms, off_ms),)
        self.amplitude = _amplitude(level_dbm0)
        self.sequential = sequential  # SIT: one frequency per cadence step
        period = sum(on + off for on, off in self.cadence)
        self.period_samples = max(1, period * RATE // 1000)
        self.total = None if duration_ms is None else duration_ms * RATE // 1000
        self.sample = 0

    @classmethod
    def named(cls, kind: str, region: str = "us") -> Tone:
        tones = _TONES.get(region, _TONES["us"])
        if kind not in tones:
            raise ValueError(f"unknown tone {kind!r}; known tones are {', '.join(TONE_NAMES)}")
        frequencies, cadence, duration = tones[kind]
        return cls(
            frequencies, 0, 0, duration_ms=duration, cadence=cadence, sequential=kind == "error"
        )

    def read(self) -> NDArray[np.int16] | None:
        if self.total is not None and self.sample >= self.total:
            return None
        n = np.arange(self.sample, self.sample + FRAME)
        self.sample += FRAME
        position = (n % self.period_samples) * 1000 / RATE  # ms into the cadence
        out = np.zeros(FRAME)
        start = 0
        for index, (on, off) in enumerate(self.cadence):
            active = (position >= start) & (position < start + on)
            if active.any():
                if self.sequential:
                    freqs = (self.frequencies[index % len(self.frequencies)],)
                else:
                    freqs = self.frequencies
                t = n / RATE
                wave = sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs) ** 0.5
                out = np.where(active, wave * self.amplitude / max(1, len(freqs)) ** 0.5, out)
            start += on + off
        if self.total is not None and self.sample > self.total:
            out[FRAME - (self.sample - self.total) :] = 0
        return np.clip(out, -32768, 32767).astype(np.int16)


@lru_cache(maxsize=1)
def _music_loop() -> NDArray[np.int16]:
    """About 16 s of a slow arpeggio over soft chords: harmonic notes with envelopes."""
    chords = [(220.0, 277.18, 329.63), (196.0, 246.94, 293.66), (174.61, 220.0, 261.63),
              (196.0, 246.94, 329.63)]  # fmt: skip
    note_seconds = 0.5
    notes = []
    for chord in chords:
        for _ in range(2):
            for frequency in (*chord, chord[1] * 2):
                t = np.arange(int(note_seconds * RATE)) / RATE
                envelope = np.minimum(1, t / 0.03) * np.exp(-3 * t)
                note = (
                    sum(np.sin(2 * np.pi * frequency * k * t) / k**1.5 for k in (1, 2, 3))
                    * envelope
                )
                pad = sum(np.sin(2 * np.pi * f * t) for f in chord) * 0.15
                notes.append(note + pad)
    music = np.concatenate(notes)
    music = music / np.max(np.abs(music)) * _amplitude(-16.0)
    return music.astype(np.int16)


def music_on_hold() -> Samples:
    """Endless music on hold (generated once per process)."""
    return Samples(_music_loop(), loop=0)
