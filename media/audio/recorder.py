"""Recording a leg to a WAV file (8 kHz, 16-bit), as <Record> and <Dial record> ask for.

A recorder is mono, or two channels fed one pair of frames at a time (`feed_pair`: a
call recording with what the leg said on the left and what it heard on the right).

The recording ends on `max_length_s` of audio, or on `silence_timeout_s` of unbroken
silence counted from its start (TwiML's ``timeout``: a caller who never speaks is cut
off too), or when the engine calls `finish` for its own reasons (a key, a hang-up).
With `trim_silence` (TwiML's ``trim="trim-silence"``) the silence before the first and
after the last frame of sound is left out of the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from media.audio import RATE
from media.audio.level import SILENCE_DBFS, is_silent
from media.audio.wav import write_wav

MAX_LENGTH = "max_length"
SILENCE = "silence"


@dataclass(frozen=True, slots=True)
class RecordingResult:
    path: Path
    duration_s: float
    """Length of the audio written, after trimming."""
    reason: str


class Recorder:
    """Takes frames with `feed` until `finish`; `feed` says when a limit ends it.

    A `silence_timeout_s` of 0 or less never ends the recording on silence.
    """

    def __init__(
        self,
        path: str | Path,
        max_length_s: float,
        silence_timeout_s: float,
        trim_silence: bool = True,
        silence_dbfs: float = SILENCE_DBFS,
        channels: int = 1,
    ) -> None:
        if max_length_s <= 0:
            raise ValueError(f"max_length_s must be more than 0, not {max_length_s}")
        self.path = Path(path)
        self.max_samples = round(max_length_s * RATE)
        self.silence_samples = round(silence_timeout_s * RATE) if silence_timeout_s > 0 else None
        self.trim_silence = trim_silence
        self.silence_dbfs = silence_dbfs
        self.channels = channels
        self._pcm = bytearray()
        self._sound: tuple[int, int] | None = None  # first and end sample with sound
        self._quiet_since = 0

    @property
    def recorded_samples(self) -> int:
        """Samples (per channel) taken so far, before any trimming."""
        return len(self._pcm) // (2 * self.channels)

    def feed_pair(self, left: NDArray[np.int16], right: NDArray[np.int16]) -> str | None:
        """Add one frame per channel of a two-channel recording; as `feed`."""
        start = self.recorded_samples
        room = self.max_samples - start
        pair = np.stack((left[:room], right[:room]), axis=1)
        self._pcm += pair.astype("<i2").tobytes()
        return self._after(start, np.concatenate((left[:room], right[:room])))

    def feed(self, frame: NDArray[np.int16]) -> str | None:
        """Add a frame; `MAX_LENGTH` or `SILENCE` when that ends the recording."""
        start = self.recorded_samples
        frame = np.asarray(frame, dtype=np.int16)[: self.max_samples - start]
        self._pcm += frame.astype("<i2").tobytes()
        return self._after(start, frame)

    def _after(self, start: int, frame: NDArray[np.int16]) -> str | None:
        if not is_silent(frame, self.silence_dbfs):
            first = start if self._sound is None else self._sound[0]
            self._sound = (first, self.recorded_samples)
            self._quiet_since = self.recorded_samples
        if self.recorded_samples >= self.max_samples:
            return MAX_LENGTH
        if self.silence_samples is not None and (
            self.recorded_samples - self._quiet_since >= self.silence_samples
        ):
            return SILENCE
        return None

    def finish(self, reason: str) -> RecordingResult:
        """Write the file (creating its folder) and say how long it is."""
        samples = np.frombuffer(bytes(self._pcm), dtype="<i2")
        if self.trim_silence:
            first, end = self._sound or (0, 0)
            samples = samples[first * self.channels : end * self.channels]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(self.path, samples, channels=self.channels)
        return RecordingResult(self.path, len(samples) / self.channels / RATE, reason)
