"""Measuring test audio with an FFT: the strongest frequencies, the level in a band."""

from __future__ import annotations

import numpy as np

from media.audio import RATE


def peaks(samples: np.ndarray, count: int, rate: int = RATE, apart: float = 30.0) -> list[float]:
    """The `count` strongest frequencies (Hz, ascending), at least `apart` Hz apart."""
    samples = np.asarray(samples, dtype=float)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    found: list[float] = []
    for index in np.argsort(spectrum)[::-1]:
        if all(abs(freqs[index] - f) > apart for f in found):
            found.append(float(freqs[index]))
        if len(found) == count:
            break
    return sorted(found)


def band_db(samples: np.ndarray, freq: float, rate: int = RATE, width: float = 20.0) -> float:
    """Energy within `width` Hz of `freq`, in dB (relative: for comparisons)."""
    samples = np.asarray(samples, dtype=float)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    band = (freqs > freq - width) & (freqs < freq + width)
    return float(10 * np.log10(spectrum[band].sum() + 1e-12))


def tone_amplitude(samples: np.ndarray, freq: float, rate: int = RATE) -> float:
    """Peak amplitude of the sine at `freq` in `samples` (least squares fit)."""
    t = np.arange(len(samples)) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coefficients, *_ = np.linalg.lstsq(basis, np.asarray(samples, dtype=float), rcond=None)
    return float(np.hypot(*coefficients))
