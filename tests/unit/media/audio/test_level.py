"""Levels in dBFS against a full-scale sine, silence, and talk detection with hysteresis."""

from __future__ import annotations

import math

import numpy as np
import pytest

from media.audio import FRAME, RATE
from media.audio.level import DBM0_DBFS, TalkDetector, dbfs, is_silent


def sine(level_dbfs: float, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(FRAME) / RATE
    return np.round(32768 * 10 ** (level_dbfs / 20) * np.sin(2 * np.pi * freq * t)).astype(np.int16)


@pytest.mark.parametrize("level", [-3.0, -20.0, -45.0, -60.0])
def test_a_sine_measures_its_level(level: float) -> None:
    assert dbfs(sine(level)) == pytest.approx(level, abs=0.05)


def test_full_scale_silence_and_empty() -> None:
    assert dbfs(np.full(FRAME, -32768, np.int16)) == pytest.approx(3.01, abs=0.01)  # square
    assert dbfs(np.zeros(FRAME, np.int16)) == -math.inf
    assert dbfs(np.zeros(0, np.int16)) == -math.inf


def test_dbm0_is_about_three_db_below_full_scale() -> None:
    assert -3.4 < DBM0_DBFS < -3.3


def test_silence_threshold() -> None:
    assert is_silent(np.zeros(FRAME, np.int16))
    assert is_silent(sine(-50.0))
    assert not is_silent(sine(-40.0))
    assert is_silent(sine(-40.0), threshold_dbfs=-35.0)


def test_talk_starts_after_60_ms_and_stops_after_400_ms() -> None:
    detector = TalkDetector()
    loud, quiet = sine(-20.0), np.zeros(FRAME, np.int16)
    assert [detector.feed(loud) for _ in range(3)] == [None, None, True]
    assert detector.talking
    changes = [detector.feed(quiet) for _ in range(20)]
    assert changes == [None] * 19 + [False]
    assert not detector.talking


def test_clicks_and_short_pauses_change_nothing() -> None:
    detector = TalkDetector()
    loud, quiet = sine(-20.0), np.zeros(FRAME, np.int16)
    # Two loud frames at a time never start talk: each quiet frame resets the count.
    assert {detector.feed(frame) for frame in [loud, loud, quiet] * 10} == {None}
    for _ in range(3):
        detector.feed(loud)
    # A 300 ms pause between words does not stop it.
    assert {detector.feed(frame) for frame in [quiet] * 15 + [loud]} == {None}
    assert detector.talking


def test_talk_detector_timings_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        TalkDetector(start_ms=0)
    detector = TalkDetector(threshold_dbfs=-30.0, start_ms=20, stop_ms=20)
    assert detector.feed(sine(-35.0)) is None
    assert detector.feed(sine(-25.0)) is True
    assert detector.feed(sine(-35.0)) is False
