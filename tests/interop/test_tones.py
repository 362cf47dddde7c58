"""The audio measurements of the interop harness, checked on generated signals."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest

from tests.interop.peers.tones import (
    active_seconds,
    dominant_frequency,
    has_tone,
    read_wav,
    rms_dbfs,
    segments,
    tone,
    tone_levels,
    write_wav,
)

RATE = 8000


def noise(seconds: float, rate: int, dbfs: float, seed: int = 7) -> np.ndarray:
    """White noise whose RMS level is `dbfs` (sine convention)."""
    samples = np.random.default_rng(seed).standard_normal(round(seconds * rate))
    return samples * 10 ** (dbfs / 20) / math.sqrt(2)


def mixture(rate: int = RATE, seconds: float = 2.0) -> np.ndarray:
    return (
        tone(440, seconds, rate, -10)
        + tone(1000, seconds, rate, -20)
        + tone(1400, seconds, rate, -30)
        + noise(seconds, rate, -60)
    )


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (16000, 2), (48000, 2)])
def test_read_wav_round_trips_rates_and_channels(tmp_path: Path, rate: int, channels: int) -> None:
    signal = tone(1000, 0.5, rate, -6)
    path = tmp_path / "x.wav"
    write_wav(path, signal, rate, channels)

    samples, read_rate = read_wav(path)

    assert read_rate == rate
    assert samples.shape == signal.shape
    assert np.max(np.abs(samples - signal)) <= 1 / 32768


def test_read_wav_of_a_recording_whose_writer_died(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    write_wav(path, tone(440, 0.25, RATE), RATE)
    data = bytearray(path.read_bytes())
    data[40:44] = struct.pack("<I", 0)  # data size never fixed up
    path.write_bytes(bytes(data))

    samples, _ = read_wav(path)

    assert samples.size == RATE // 4


def test_read_wav_names_the_file_it_cannot_read(tmp_path: Path) -> None:
    not_wav = tmp_path / "notes.txt"
    not_wav.write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.txt: not a RIFF/WAVE file"):
        read_wav(not_wav)

    eight_bit = tmp_path / "u8.wav"
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        40,
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        8000,
        8000,
        1,
        8,
        b"data",
        4,
    )
    eight_bit.write_bytes(header + bytes(4))
    with pytest.raises(ValueError, match=r"u8\.wav: .*8 bits.*only 16-bit PCM"):
        read_wav(eight_bit)


def test_tone_levels_of_a_mixture_are_within_two_db() -> None:
    levels = tone_levels(mixture(), RATE, [440, 1000, 1400, 2000])

    assert levels[440] == pytest.approx(-10, abs=2)
    assert levels[1000] == pytest.approx(-20, abs=2)
    assert levels[1400] == pytest.approx(-30, abs=2)
    assert levels[2000] < -55


def test_tone_levels_do_not_depend_on_where_the_tone_falls_between_bins() -> None:
    for freq in (440.0, 440.37, 440.5, 997.3):
        signal = tone(freq, 0.3, RATE, -12)
        assert tone_levels(signal, RATE, [freq])[freq] == pytest.approx(-12, abs=0.5), freq


def test_tone_levels_in_a_window() -> None:
    signal = np.concatenate([tone(440, 1, RATE, -10), tone(1000, 1, RATE, -10)])

    first = tone_levels(signal, RATE, [440, 1000], window=(0.0, 1.0))
    second = tone_levels(signal, RATE, [440, 1000], window=(1.0, 2.0))

    assert first[440] == pytest.approx(-10, abs=2) and first[1000] < -50
    assert second[1000] == pytest.approx(-10, abs=2) and second[440] < -50
    with pytest.raises(ValueError, match="window"):
        tone_levels(signal, RATE, [440], window=(1.0, 0.5))


def test_dominant_frequency() -> None:
    assert dominant_frequency(mixture(), RATE) == pytest.approx(440, abs=0.5)
    assert dominant_frequency(tone(1234.5, 1, 48000), 48000) == pytest.approx(1234.5, abs=0.5)
    assert dominant_frequency(np.zeros(RATE), RATE) is None


def test_has_tone_against_the_spectral_floor() -> None:
    signal = mixture()
    assert has_tone(signal, RATE, 440)
    assert has_tone(signal, RATE, 1400)
    assert not has_tone(signal, RATE, 700)

    # A -35 dBFS tone in -20 dBFS white noise still stands out of the median bin...
    buried = tone(1000, 2, RATE, -35) + noise(2, RATE, -20)
    assert has_tone(buried, RATE, 1000)
    # ...but not when asked for more margin than it has.
    assert not has_tone(buried, RATE, 1000, min_db_above_floor=60)


def test_has_tone_in_silence_and_below_the_level_floor() -> None:
    assert not has_tone(np.zeros(RATE), RATE, 440)
    whisper = tone(440, 1, RATE, -70)
    assert not has_tone(whisper, RATE, 440)
    assert has_tone(whisper, RATE, 440, min_dbfs=-80)


def test_rms_dbfs_uses_the_sine_convention() -> None:
    assert rms_dbfs(tone(1000, 1, RATE, 0)) == pytest.approx(0, abs=0.01)
    assert rms_dbfs(tone(1000, 1, RATE, -20)) == pytest.approx(-20, abs=0.01)
    assert rms_dbfs(np.zeros(10)) == -math.inf


def test_active_seconds_counts_only_non_silent_audio() -> None:
    signal = np.concatenate(
        [
            tone(440, 1.0, RATE, -20),
            noise(1.0, RATE, -70),
            tone(1000, 0.5, RATE, -30),
        ]
    )

    assert active_seconds(signal, RATE) == pytest.approx(1.5, abs=0.02)
    assert active_seconds(signal, RATE, threshold_dbfs=-25) == pytest.approx(1.0, abs=0.02)
    assert active_seconds(np.zeros(RATE), RATE) == 0.0


def test_segments_show_when_a_tone_was_absent() -> None:
    signal = np.concatenate(
        [tone(440, 2, RATE), noise(2, RATE, -65), tone(440, 2, RATE) + tone(1000, 2, RATE)]
    )

    parts = segments(signal, RATE, 0.5)
    held = segments(signal, RATE, 0.5, start=2, end=4)

    assert len(parts) == 12
    assert (parts[4].start, parts[4].end) == (2.0, 2.5)
    assert [s.has_tone(440) for s in parts] == [True] * 4 + [False] * 4 + [True] * 4
    assert not any(s.has_tone(440) for s in held) and len(held) == 4
    assert all(s.rms_dbfs < -60 for s in held)
    assert parts[-1].tone_levels([1000])[1000] == pytest.approx(-10, abs=2)
    assert parts[0].dominant_frequency() == pytest.approx(440, abs=1)
    assert parts[0].active_seconds() == 0.5
    assert len(segments(signal, RATE, 4)) == 1  # the 2 s tail is dropped
    with pytest.raises(ValueError, match="positive"):
        segments(signal, RATE, 0)
