"""Levels of frames: RMS in dBFS (a full-scale sine is 0 dBFS)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

SILENCE_DBFS = -45.0


def dbfs(frame: NDArray[np.int16]) -> float:
    samples = np.asarray(frame, dtype=np.float64)
    if samples.size == 0:
        return -math.inf
    mean_square = float(np.dot(samples, samples)) / samples.size
    return 10 * math.log10(2 * mean_square / 32768**2) if mean_square > 0 else -math.inf


def is_silent(frame: NDArray[np.int16], threshold_dbfs: float = SILENCE_DBFS) -> bool:
    return dbfs(frame) <= threshold_dbfs
