"""The recorder: ends on max length and on silence, trims silence, writes a readable WAV."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from media.audio import FRAME, RATE
from media.audio.recorder import MAX_LENGTH, SILENCE, Recorder
from media.audio.wav import load_wav

TONE = (np.sin(2 * np.pi * 500 * np.arange(FRAME) / RATE) * 8000).astype(np.int16)
QUIET = np.zeros(FRAME, np.int16)
HISS = np.random.default_rng(1).normal(0, 100, FRAME).astype(np.int16)  # about -50 dBFS


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as file:
        assert (file.getframerate(), file.getnchannels(), file.getsampwidth()) == (RATE, 1, 2)
        return file.getnframes() / RATE


def test_ends_on_max_length_and_writes_that_length(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "r.wav", 1.0, 5, trim_silence=False)
    reasons = [recorder.feed(TONE) for _ in range(50)]
    assert reasons == [None] * 49 + [MAX_LENGTH]
    result = recorder.finish(MAX_LENGTH)
    assert (result.path, result.duration_s, result.reason) == (
        tmp_path / "r.wav",
        1.0,
        "max_length",
    )
    assert wav_seconds(result.path) == 1.0
    assert np.array_equal(load_wav(result.path), np.tile(TONE, 50))


def test_ends_on_silence_after_speech_and_trims_it(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "r.wav", max_length_s=60, silence_timeout_s=1.0)
    assert {recorder.feed(TONE) for _ in range(25)} == {None}
    reasons = [recorder.feed(frame) for frame in [QUIET, HISS] * 25]
    assert reasons == [None] * 49 + [SILENCE]
    result = recorder.finish(SILENCE)
    assert result.duration_s == 0.5 and wav_seconds(result.path) == 0.5


def test_silence_counts_from_the_start(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "r.wav", max_length_s=60, silence_timeout_s=2.0)
    assert [recorder.feed(QUIET) for _ in range(100)][-2:] == [None, SILENCE]
    result = recorder.finish(SILENCE)
    assert result.duration_s == 0 and wav_seconds(result.path) == 0


def test_leading_silence_is_trimmed_too_and_pauses_inside_are_kept(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "sub" / "r.wav", max_length_s=60, silence_timeout_s=1.0)
    for frame in [QUIET] * 40 + [TONE] * 10 + [QUIET] * 40 + [TONE] * 5 + [QUIET] * 10:
        assert recorder.feed(frame) is None
    result = recorder.finish("finish_key")
    assert result.duration_s == pytest.approx((10 + 40 + 5) * FRAME / RATE)
    assert result.reason == "finish_key"
    audio = load_wav(result.path)
    assert np.array_equal(audio[:FRAME], TONE) and np.array_equal(audio[-FRAME:], TONE)


def test_untrimmed_keeps_everything(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "r.wav", 60, 5, trim_silence=False)
    for frame in [QUIET] * 10 + [TONE] * 10 + [QUIET] * 10:
        recorder.feed(frame)
    assert recorder.finish("hangup").duration_s == pytest.approx(0.6)


def test_timeout_zero_never_ends_on_silence(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "r.wav", max_length_s=3, silence_timeout_s=0)
    assert [recorder.feed(QUIET) for _ in range(150)] == [None] * 149 + [MAX_LENGTH]


def test_max_length_cuts_a_frame_that_goes_past_it(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "r.wav", max_length_s=0.03, silence_timeout_s=5)
    assert recorder.feed(TONE) is None
    assert recorder.feed(TONE) == MAX_LENGTH
    assert recorder.finish(MAX_LENGTH).duration_s == pytest.approx(0.03)


def test_a_length_of_nothing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_length_s must be more than 0, not 0"):
        Recorder(tmp_path / "r.wav", 0, 5)
