"""Recording a leg to a WAV file (8 kHz, 16-bit mono), as <Record> asks for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from media.audio import FRAME, RATE
from media.audio.level import SILENCE_DBFS, dbfs
from media.audio.wav import write_wav


@dataclass(frozen=True, slots=True)
class RecordingResult:
    path: Path
    duration_s: float
    reason: str


class Recorder:
    """Takes frames with `feed` until `finish`; `feed` says when a limit ends it."""

    def __init__(
        self,
        path: Path,
        *,
        max_length_s: float,
        silence_timeout_s: float,
        trim_silence: bool = True,
        silence_dbfs: float = SILENCE_DBFS,
    ) -> None:
        self.path = Path(path)
        self.max_frames = max(1, round(max_length_s * RATE / FRAME))
        self.silence_frames = max(1, round(silence_timeout_s * RATE / FRAME))
        self.trim_silence = trim_silence
        self.silence_dbfs = silence_dbfs
        self.frames: list[NDArray[np.int16]] = []
        self.loud: list[bool] = []
        self.quiet_run = 0

    def feed(self, frame: NDArray[np.int16]) -> str | None:
        self.frames.append(np.asarray(frame, dtype=np.int16))
        loud = dbfs(frame) > self.silence_dbfs
        self.loud.append(loud)
        self.quiet_run = 0 if loud else self.quiet_run + 1
        if len(self.frames) >= self.max_frames:
            return "max_length"
        if self.quiet_run >= self.silence_frames:
            return "silence"
        return None

    def finish(self, reason: str) -> RecordingResult:
        frames = self.frames
        if self.trim_silence:
            loud = [i for i, flag in enumerate(self.loud) if flag]
            frames = frames[loud[0] : loud[-1] + 1] if loud else []
        samples = np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(self.path, samples)
        return RecordingResult(self.path, len(samples) / RATE, reason)
