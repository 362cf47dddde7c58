"""Players, WAV files, speech and the recorder, measured with an FFT."""

from __future__ import annotations

import struct
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from media.audio import FRAME, RATE
from media.audio.recorder import Recorder
from media.audio.sources import Samples, Silence, Tone, music_on_hold
from media.audio.tts import synthesize
from media.audio.wav import AudioError, load_audio, load_wav, write_wav
from media.rtp import g711


def frames(source, limit: int = 10_000) -> list[np.ndarray]:
    out = []
    while len(out) < limit:
        frame = source.read()
        if frame is None:
            break
        assert frame.shape == (FRAME,) and frame.dtype == np.int16
        out.append(frame)
    return out


def peaks(samples: np.ndarray, count: int, rate: int = RATE) -> list[float]:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    found: list[float] = []
    for index in np.argsort(spectrum)[::-1]:
        freq = index * rate / len(samples)
        if all(abs(freq - f) > 30 for f in found):
            found.append(freq)
        if len(found) == count:
            break
    return sorted(found)


def level_db(samples: np.ndarray, freq: float, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    band = (freqs > freq - 20) & (freqs < freq + 20)
    return 10 * np.log10(spectrum[band].sum() + 1e-12)


def test_samples_play_their_loops_then_end_and_loop_zero_is_endless() -> None:
    buffer = np.arange(400, dtype=np.int16)
    played = np.concatenate(frames(Samples(buffer, loop=2)))
    assert len(played) == 2 * 480  # each pass padded to whole frames
    assert list(played[:400]) == list(buffer) and not played[400:480].any()
    assert len(frames(Samples(buffer, loop=0), limit=500)) == 500
    assert frames(Samples(np.zeros(0, np.int16))) == []


def test_silence_lasts_its_length() -> None:
    assert len(frames(Silence(1000))) == 50


@pytest.mark.parametrize(
    ("kind", "expected"), [("dial", [350, 440]), ("ringback", [440, 480]), ("busy", [480, 620])]
)
def test_call_progress_tones_have_their_frequencies(kind: str, expected: list[int]) -> None:
    audio = np.concatenate(frames(Tone.named(kind), limit=50))
    assert peaks(audio, 2) == pytest.approx(expected, abs=5)
    assert np.abs(audio).max() < 32767


def test_busy_cadence_is_half_a_second_on_and_off() -> None:
    audio = np.concatenate(frames(Tone.named("busy"), limit=100)).astype(float)
    energy = (audio.reshape(-1, 400) ** 2).mean(axis=1)  # 50 ms blocks
    on = energy > energy.max() / 10
    assert list(on[:20]) == [True] * 10 + [False] * 10


def test_beep_and_error_tones_end() -> None:
    assert 10 <= len(frames(Tone.named("beep"))) <= 15
    error = np.concatenate(frames(Tone.named("error")))
    assert peaks(error, 3) == pytest.approx([913.8, 1370.6, 1776.7], abs=8)
    with pytest.raises(ValueError, match="unknown tone 'chirp'"):
        Tone.named("chirp")


def test_music_on_hold_is_music_not_a_tone() -> None:
    audio = np.concatenate(frames(music_on_hold(), limit=250)).astype(float)
    assert np.sqrt((audio**2).mean()) > 500
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    strongest = np.sort(spectrum)[::-1]
    assert strongest[0] < 0.5 * spectrum.sum()  # not one pure tone


def wav_bytes(samples: np.ndarray, rate: int, channels: int, fmt: int, bits: int) -> bytes:
    if fmt == 3:
        body = samples.astype("<f4").tobytes()
    elif fmt == 7:
        body = g711.encode_pcmu((samples * 32767).astype(np.int16))
    elif fmt == 6:
        body = g711.encode_pcma((samples * 32767).astype(np.int16))
    elif bits == 8:
        body = (samples * 127 + 128).astype(np.uint8).tobytes()
    elif bits == 24:
        values = (samples * (2**23 - 1)).astype("<i4").tobytes()
        body = b"".join(values[i : i + 3] for i in range(0, len(values), 4))
    elif bits == 32:
        body = (samples * (2**31 - 1)).astype("<i4").tobytes()
    else:
        body = (samples * 32767).astype("<i2").tobytes()
    block = channels * bits // 8
    fmt_chunk = struct.pack("<HHIIHH", fmt, channels, rate, rate * block, block, bits)
    return (
        b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt_chunk) + 8 + len(body)) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk
        + b"data" + struct.pack("<I", len(body)) + body
    )  # fmt: skip


@pytest.mark.parametrize(
    ("fmt", "bits", "rate", "channels"),
    [(1, 16, 44100, 2), (1, 8, 8000, 1), (1, 24, 48000, 1), (1, 32, 16000, 1), (3, 32, 22050, 2),
     (7, 8, 8000, 1), (6, 8, 8000, 1)],
)  # fmt: skip
def test_wav_formats_load_as_8khz_mono(fmt: int, bits: int, rate: int, channels: int) -> None:
    t = np.arange(rate) / rate
    mono = 0.5 * np.sin(2 * np.pi * 1000 * t)
    if rate > 16000:
        mono = mono + 0.3 * np.sin(2 * np.pi * 6000 * t)  # above 4 kHz: must not alias
    samples = np.repeat(mono, channels) if channels > 1 else mono
    audio = load_wav(wav_bytes(samples, rate, channels, fmt, bits))
    assert len(audio) == pytest.approx(RATE, abs=2)
    assert peaks(audio, 1) == pytest.approx([1000], abs=3)
    if rate > 16000:  # 6 kHz folds to 2 kHz if resampling does not filter
        assert level_db(audio, 2000) < level_db(audio, 1000) - 40


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a wav at all", "not a WAV file"),
        (b"RIFF\x10\x00\x00\x00WAVEjunk", "without a fmt or data chunk"),
        (b"ID3\x03\x00" + bytes(100), "MP3 is not supported"),
    ],
)
def test_bad_audio_is_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(AudioError, match=message):
        load_audio(data)


def test_unsupported_wav_encoding_is_named() -> None:
    data = wav_bytes(np.zeros(100), 8000, 1, 2, 4)  # ADPCM
    with pytest.raises(AudioError, match="format 2 with 4-bit samples is not supported"):
        load_wav(data)


def test_write_wav_round_trips(tmp_path: Path) -> None:
    samples = (np.sin(np.arange(800) / 5) * 9000).astype(np.int16)
    write_wav(tmp_path / "x.wav", samples)
    with wave.open(str(tmp_path / "x.wav")) as f:
        assert (f.getframerate(), f.getnchannels(), f.getsampwidth()) == (8000, 1, 2)
    assert np.array_equal(load_wav(tmp_path / "x.wav"), samples)


def test_speech_is_speech_length_and_cached() -> None:
    text = "Hello, this is a test of the speech synthesizer."
    audio = synthesize(text)
    assert 1.0 <= len(audio) / RATE <= 4.0
    blocks = audio[: len(audio) // 160 * 160].astype(float).reshape(-1, 160)
    active = (blocks**2).mean(axis=1) > 1e4
    assert active.sum() * 0.02 >= 0.8
    assert synthesize(text) is audio
    assert len(synthesize("")) == 0
    assert len(synthesize("Hallo, wie geht es?", "man", "de-DE")) > RATE // 2
    assert len(synthesize("\x00\x07<speak>odd</speak>", "woman", "xx-XX")) > 0


def test_speech_from_two_threads_at_once() -> None:
    results: list[int] = []

    def speak(n: int) -> None:
        results.append(len(synthesize(f"Thread number {n} is speaking now.")))

    threads = [threading.Thread(target=speak, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and min(results) > RATE


def test_recorder_ends_on_max_length_and_writes_that_length(tmp_path: Path) -> None:
    recorder = Recorder(
        tmp_path / "r.wav", max_length_s=1.0, silence_timeout_s=5, trim_silence=False
    )
    tone = (np.sin(2 * np.pi * 500 * np.arange(160) / 8000) * 8000).astype(np.int16)
    reasons = [recorder.feed(tone) for _ in range(50)]
    assert reasons[:49] == [None] * 49 and reasons[49] == "max_length"
    result = recorder.finish("max_length")
    assert result.duration_s == pytest.approx(1.0)
    assert len(load_wav(result.path)) == 8000


def test_recorder_ends_on_silence_and_trims_it(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "r.wav", max_length_s=60, silence_timeout_s=1.0)
    tone = (np.sin(2 * np.pi * 500 * np.arange(160) / 8000) * 8000).astype(np.int16)
    quiet = np.zeros(160, np.int16)
    for _ in range(25):
        assert recorder.feed(tone) is None
    reasons = [recorder.feed(quiet) for _ in range(50)]
    assert reasons[-1] == "silence" and set(reasons[:-1]) == {None}
    result = recorder.finish("silence")
    assert result.duration_s == pytest.approx(0.5)
