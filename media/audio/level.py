"""Levels of frames and talk detection.

Levels are RMS in dBFS against a full-scale sine: a sine of amplitude 32768 is 0 dBFS,
digital silence is minus infinity. G.711's 0 dBm0 sine is `DBM0_DBFS` (-3.3 dBFS).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from media.audio import FRAME, RATE
from media.rtp.dtmf_detector import DBM0_AMPLITUDE

SILENCE_DBFS = -45.0
"""Below this a frame is silence: line noise, not a caller."""

DBM0_DBFS = 20 * math.log10(DBM0_AMPLITUDE / 32768)
"""The level of a 0 dBm0 sine in dBFS."""

_FULL_SCALE_MEAN_SQUARE = 32768.0**2 / 2
_FRAME_MS = FRAME * 1000 // RATE


def dbfs(frame: NDArray[np.int16]) -> float:
    """RMS level of `frame` in dBFS; minus infinity for silence or no samples."""
    samples = np.asarray(frame, dtype=np.float64).ravel()
    if samples.size == 0:
        return -math.inf
    mean_square = float(np.dot(samples, samples)) / samples.size
    if mean_square == 0:
        return -math.inf
    return 10 * math.log10(mean_square / _FULL_SCALE_MEAN_SQUARE)


def is_silent(frame: NDArray[np.int16], threshold_dbfs: float = SILENCE_DBFS) -> bool:
    """True when `frame` is below `threshold_dbfs`."""
    return dbfs(frame) < threshold_dbfs


class TalkDetector:
    """Whether a stream of frames is talk, with hysteresis in time.

    Talk starts after `start_ms` of consecutive frames at or above `threshold_dbfs` and
    stops after `stop_ms` of consecutive frames below it, so a click does not start it
    and the pause between two words does not stop it.
    """

    def __init__(
        self,
        threshold_dbfs: float = SILENCE_DBFS,
        start_ms: int = 60,
        stop_ms: int = 400,
    ) -> None:
        if start_ms < _FRAME_MS or stop_ms < _FRAME_MS:
            raise ValueError(
                f"start_ms and stop_ms must be at least one frame ({_FRAME_MS} ms), "
                f"not {start_ms} and {stop_ms}"
            )
        self.threshold_dbfs = threshold_dbfs
        self.start_frames = math.ceil(start_ms / _FRAME_MS)
        self.stop_frames = math.ceil(stop_ms / _FRAME_MS)
        self.talking = False
        self._run = 0  # consecutive frames that argue for changing state

    def feed(self, frame: NDArray[np.int16]) -> bool | None:
        """Take the next frame; True when talk starts with it, False when it stops,
        None when nothing changes."""
        loud = not is_silent(frame, self.threshold_dbfs)
        if loud == self.talking:
            self._run = 0
            return None
        self._run += 1
        if self._run < (self.stop_frames if self.talking else self.start_frames):
            return None
        self._run = 0
        self.talking = loud
        return loud
