"""Sample-rate conversion by a rational factor: a polyphase windowed-sinc (Kaiser) filter.

Audio reaches the engine at whatever rate a WAV file or espeak-ng chose; everything
inside runs at 8 kHz. Converting `rate` to `target` is upsampling by ``up`` and
downsampling by ``down`` (``target / rate`` in lowest terms) around one low-pass filter
at the upsampled rate, computed one polyphase branch at a time so that only the input
samples that the filter weights are ever multiplied.

The filter passes up to 85 % of the lower of the two Nyquist frequencies (3.4 kHz, the
telephone band, when going to 8 kHz) and attenuates by 80 dB from that Nyquist
frequency on, so nothing above 4 kHz folds back into the band. It is linear phase and
its delay is compensated: output sample ``m`` is the input at time ``m / target``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

PASSBAND = 0.85
"""Fraction of the lower Nyquist frequency passed without loss."""

STOPBAND_DB = 80.0

_BLOCK_ELEMENTS = 1 << 20  # window rows x taps multiplied at once: bounds the memory


@lru_cache(maxsize=16)
def _branches(up: int, down: int) -> tuple[NDArray[np.float64], int]:
    """The filter as ``(up, taps)`` polyphase branches, each reversed, and its delay.

    Branch ``r`` holds taps ``r, r + up, r + 2 up, ...`` of the filter at the upsampled
    rate, scaled by ``up`` to make up for the zeros upsampling inserts.
    """
    nyquist = 0.5 / max(up, down)  # cycles per upsampled sample
    width = (1 - PASSBAND) * nyquist
    cutoff = nyquist - width / 2
    length = math.ceil((STOPBAND_DB - 7.95) / (2.285 * 2 * math.pi * width)) | 1
    beta = 0.1102 * (STOPBAND_DB - 8.7)
    n = np.arange(length) - (length - 1) / 2
    taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(length, beta) * up
    per_branch = -(-length // up)
    padded = np.zeros(per_branch * up)
    padded[:length] = taps
    branches = padded.reshape(per_branch, up).T[:, ::-1].copy()
    branches.flags.writeable = False
    return branches, (length - 1) // 2


def resample(samples: NDArray, rate: int, target: int) -> NDArray[np.float64]:
    """`samples` taken at `rate` Hz, converted to `target` Hz (float64, same scale).

    The result has ``ceil(len(samples) * target / rate)`` samples.
    """
    if rate <= 0 or target <= 0:
        raise ValueError(f"sample rates must be positive, not {rate} and {target}")
    x = np.asarray(samples, dtype=np.float64)
    if rate == target or x.size == 0:
        return x
    common = math.gcd(rate, target)
    up, down = target // common, rate // common
    branches, delay = _branches(up, down)
    taps = branches.shape[1]
    count = -(-len(x) * up // down)
    # y[m] = sum_t branch[p % up][t] * x[p // up - (taps - 1) + t] with p = m * down + delay;
    # outputs m = r + q * up share a branch and step through the input by `down`.
    lead = taps - 1
    last_start = ((count - 1) * down + delay) // up
    padded = np.zeros(lead + last_start + 1)
    padded[lead : lead + min(len(x), last_start + 1)] = x[: last_start + 1]
    windows = sliding_window_view(padded, taps)
    out = np.empty(count)
    rows = max(1, _BLOCK_ELEMENTS // taps)
    for r in range(min(up, count)):
        p = r * down + delay
        branch, first = branches[p % up], p // up
        total = len(range(r, count, up))
        for start in range(0, total, rows):
            stop = min(total, start + rows)
            block = windows[first + start * down : first + (stop - 1) * down + 1 : down]
            out[r + start * up : r + stop * up : up] = block @ branch
    return out
