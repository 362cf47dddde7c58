"""Rational resampling: pass band, no aliasing, alignment, lengths."""

from __future__ import annotations

import numpy as np
import pytest

from media.audio import RATE
from media.audio.resample import resample
from tests.unit.media.audio.spectra import band_db


def sine(freq: float, rate: int, seconds: float = 1.0, phase: float = 0.3) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(round(rate * seconds)) / rate + phase)


@pytest.mark.parametrize("rate", [44100, 48000, 22050, 16000, 11025, 12000, 6000, 4000, 8001])
def test_in_band_sines_come_out_unchanged_and_aligned(rate: int) -> None:
    out = resample(sine(1000, rate), rate, RATE)
    assert len(out) == RATE
    expected = sine(1000, RATE)
    middle = slice(200, -200)  # away from the edges, where the filter sees zeros
    assert np.abs(out[middle] - expected[middle]).max() < 1e-4


@pytest.mark.parametrize(("rate", "high"), [(44100, 6000), (48000, 4300), (16000, 5000)])
def test_above_4_khz_nothing_folds_back(rate: int, high: float) -> None:
    out = resample(sine(1000, rate) + sine(high, rate), rate, RATE)
    alias = RATE - high
    assert band_db(out, alias) < band_db(out, 1000) - 75


def test_passband_reaches_the_telephone_band() -> None:
    out = resample(sine(3400, 44100), 44100, RATE)
    assert np.abs(out[200:-200]).max() == pytest.approx(1.0, abs=0.01)


def test_same_rate_and_empty_input_are_returned_as_they_are() -> None:
    samples = np.arange(10.0)
    assert resample(samples, RATE, RATE) is samples
    assert len(resample(np.zeros(0), 44100, RATE)) == 0
    assert len(resample(np.ones(1), 44100, RATE)) == 1
    with pytest.raises(ValueError, match="must be positive"):
        resample(samples, 0, RATE)


def test_odd_lengths_round_up() -> None:
    assert len(resample(np.zeros(1000), 44100, RATE)) == 182  # 181.4
    assert len(resample(np.zeros(1000), 6000, RATE)) == 1334  # 1333.3
