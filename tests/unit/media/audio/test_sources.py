"""Frame sources: buffers and their loops, silence, call-progress tones, music on hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from media.audio import FRAME, RATE
from media.audio.level import DBM0_DBFS, dbfs
from media.audio.sources import (
    TONE_DBFS,
    Samples,
    Silence,
    Source,
    Tone,
    ToneStep,
    music_on_hold,
)
from media.audio.wav import write_wav
from tests.unit.media.audio.spectra import band_db, peaks, tone_amplitude


def frames(source: Source, limit: int = 10_000) -> list[np.ndarray]:
    out = []
    while len(out) < limit:
        frame = source.read()
        if frame is None:
            break
        assert frame.shape == (FRAME,) and frame.dtype == np.int16
        out.append(frame)
    return out


def play(source: Source, seconds: float) -> np.ndarray:
    return np.concatenate(frames(source, limit=round(seconds * RATE / FRAME))).astype(float)


def on_off(audio: np.ndarray, block_ms: int = 50) -> list[bool]:
    block = block_ms * RATE // 1000
    energy = (audio[: len(audio) // block * block].reshape(-1, block) ** 2).mean(axis=1)
    return list(energy > energy.max() / 10)


# ---------------------------------------------------------------------------- Samples


def test_samples_play_loop_times_each_pass_padded_to_whole_frames() -> None:
    buffer = np.arange(1, 401, dtype=np.int16)
    played = np.concatenate(frames(Samples(buffer, loop=2)))
    assert len(played) == 2 * 480
    for start in (0, 480):
        assert list(played[start : start + 400]) == list(buffer)
        assert not played[start + 400 : start + 480].any()


def test_loop_zero_plays_for_ever_and_whole_frames_have_no_gap() -> None:
    buffer = np.arange(1, 321, dtype=np.int16)
    played = np.concatenate(frames(Samples(buffer, loop=0), limit=500))
    assert len(played) == 500 * FRAME
    assert np.array_equal(played, np.tile(buffer, 250))


def test_samples_edge_cases() -> None:
    assert frames(Samples(np.zeros(0, np.int16), loop=0)) == []
    assert len(frames(Samples(np.ones(1, np.int16)))) == 1
    with pytest.raises(ValueError, match="loop must be 0"):
        Samples(np.ones(10, np.int16), loop=-1)
    with pytest.raises(ValueError, match="one channel"):
        Samples(np.ones((10, 2), np.int16))


@pytest.mark.parametrize(("ms", "count"), [(1000, 50), (30, 2), (20, 1), (0, 0)])
def test_silence_lasts_its_length_in_whole_frames(ms: int, count: int) -> None:
    played = frames(Silence(ms))
    assert len(played) == count and not any(frame.any() for frame in played)


# ------------------------------------------------------------------------------ tones


@pytest.mark.parametrize(
    ("kind", "region", "expected"),
    [
        ("dial", "us", [350, 440]),
        ("ringback", "us", [440, 480]),
        ("busy", "us", [480, 620]),
        ("dial", "uk", [350, 450]),
        ("ringback", "uk", [400, 450]),
        ("dial", "eu", [425]),
        ("busy", "eu", [425]),
    ],
)
def test_call_progress_tones_have_their_frequencies(
    kind: str, region: str, expected: list[int]
) -> None:
    audio = play(Tone.named(kind, region), 1.0)
    assert peaks(audio, len(expected)) == pytest.approx(expected, abs=3)


@pytest.mark.parametrize(
    ("kind", "frequencies"), [("dial", (350, 440)), ("busy", (480, 620)), ("beep", (1000,))]
)
def test_each_frequency_is_at_minus_13_dbm0(kind: str, frequencies: tuple[int, ...]) -> None:
    audio = play(Tone.named(kind), 0.2)[400:1600]  # inside the first burst
    expected = 32768 * 10 ** ((DBM0_DBFS - 13) / 20)
    for freq in frequencies:
        assert 20 * np.log10(tone_amplitude(audio, freq) / expected) == pytest.approx(0, abs=0.2)
    assert -16.4 < TONE_DBFS < -16.3


def test_us_cadences() -> None:
    busy = on_off(play(Tone.named("busy"), 2.0))
    assert busy == ([True] * 10 + [False] * 10) * 2
    ringback = on_off(play(Tone.named("ringback"), 12.0), block_ms=500)
    assert ringback == ([True] * 4 + [False] * 8) * 2
    assert all(on_off(play(Tone.named("dial"), 3.0)))


def test_uk_ringback_rings_twice() -> None:
    rings = on_off(play(Tone.named("ringback", "uk"), 3.0))
    assert rings == [True] * 8 + [False] * 4 + [True] * 8 + [False] * 40


def test_special_information_tone_rises_in_three_steps_then_ends() -> None:
    audio = play(Tone.named("error"), 5.0)
    assert len(audio) == 47 * FRAME  # 274 + 274 + 380 ms
    steps = [(50, 250, 913.8), (324, 524, 1370.6), (598, 898, 1776.7)]  # ms
    for start, end, freq in steps:
        assert peaks(audio[start * 8 : end * 8], 1, apart=1) == pytest.approx([freq], abs=15)
    assert not audio[928 * 8 :].any()


def test_beep_is_a_quarter_second_at_1000_hz() -> None:
    audio = play(Tone.named("beep"), 5.0)
    assert len(audio) == 13 * FRAME
    assert peaks(audio, 1) == pytest.approx([1000], abs=10)
    assert not audio[2000:].any()


def test_tones_are_phase_continuous_from_frame_to_frame() -> None:
    audio = play(Tone.named("dial"), 1.0)
    t = np.arange(len(audio)) / RATE
    amplitude = 32768 * 10 ** (TONE_DBFS / 20)
    expected = amplitude * (np.sin(2 * np.pi * 350 * t) + np.sin(2 * np.pi * 440 * t))
    assert np.abs(audio - expected)[32:].max() <= 1.0  # after the first 4 ms ramp


def test_bursts_ramp_instead_of_clicking() -> None:
    audio = play(Tone.named("busy"), 4.0)
    # A hard-gated 480+620 Hz tone spreads energy over the band; ramps keep it near.
    assert band_db(audio, 2500, width=1000) < band_db(audio, 550, width=100) - 60


def test_custom_tone_level_cadence_and_duration() -> None:
    tone = Tone((697, 1209), on_ms=100, off_ms=100, level_dbfs=-20.0, duration_ms=1000)
    audio = play(tone, 5.0)
    assert len(audio) == 50 * FRAME
    assert on_off(audio) == [True, True, False, False] * 5
    burst = audio[100:700]
    assert 20 * np.log10(tone_amplitude(burst, 697) / 32768) == pytest.approx(-20, abs=0.2)
    assert dbfs(burst.astype(np.int16)) == pytest.approx(-17, abs=0.2)  # two tones: +3 dB


def test_tone_steps_of_their_own() -> None:
    tone = Tone((500,), 200, 0, then=[ToneStep((1500,), 200, 100)])
    audio = play(tone, 1.0)
    assert peaks(audio[200:1400], 1) == pytest.approx([500], abs=10)
    assert peaks(audio[1800:3000], 1) == pytest.approx([1500], abs=10)
    assert not audio[3300:3900].any()
    assert peaks(audio[4200:5400], 1) == pytest.approx([500], abs=10)  # and again


def test_tone_errors_name_what_is_valid() -> None:
    with pytest.raises(ValueError, match="unknown tone 'chirp'; known tones are dial"):
        Tone.named("chirp")
    with pytest.raises(ValueError, match="unknown tone region 'mars'; known are us, uk, eu"):
        Tone.named("dial", "mars")
    with pytest.raises(ValueError, match=r"would clip; use at most -6\.0 dBFS"):
        Tone((350, 440), 1000, level_dbfs=-3.0)
    with pytest.raises(ValueError, match="between 0 and 4000 Hz"):
        Tone((5000,), 1000)


# ---------------------------------------------------------------------- music on hold


def test_music_on_hold_is_music_not_silence_nor_one_tone() -> None:
    audio = play(music_on_hold(), 16.0)
    assert dbfs(audio.astype(np.int16)) == pytest.approx(-20, abs=1)
    seconds = audio.reshape(16, RATE)
    assert min(dbfs(second.astype(np.int16)) for second in seconds) > -30  # never drops out
    assert np.abs(audio).max() < 32767
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    assert np.sort(spectrum)[::-1][0] < 0.1 * spectrum.sum()
    # Many notes: at least eight distinct frequencies within 20 dB of the strongest.
    strong = peaks(audio, 8, apart=20)
    assert min(band_db(audio, f, width=3) for f in strong) > band_db(audio, strong[0], width=3) - 20
    # Its own second halves differ: it moves, it is not a steady chord.
    first, second = (np.abs(np.fft.rfft(half)) for half in seconds[:2])
    assert np.corrcoef(first, second)[0, 1] < 0.9


def test_music_on_hold_loops_without_a_seam_and_is_made_once() -> None:
    source = music_on_hold()
    loop = play(source, 16.0)
    again = play(source, 1.0)
    assert np.array_equal(loop[:RATE], again)
    assert abs(loop[-1] - loop[0]) < 2000
    assert music_on_hold().samples is source.samples


def test_music_on_hold_from_a_wav_file(tmp_path: Path) -> None:
    tune = (np.sin(2 * np.pi * 300 * np.arange(4000) / RATE) * 8000).astype(np.int16)
    write_wav(tmp_path / "hold.wav", tune)
    audio = play(music_on_hold(tmp_path / "hold.wav"), 2.0)
    assert np.array_equal(audio[: 4 * 4000], np.tile(tune, 4))
