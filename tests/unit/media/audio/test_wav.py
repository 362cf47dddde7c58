"""WAV files of every common kind load as 8 kHz mono; bad ones fail with a clear message."""

from __future__ import annotations

import re
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from media.audio import RATE
from media.audio.wav import AudioError, load_audio, load_wav, write_wav
from media.rtp import g711
from tests.unit.media.audio.spectra import band_db, peaks, tone_amplitude

PCM, FLOAT, ALAW, MULAW, EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")


def riff(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"".join(
        name + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)
        for name, data in chunks
    )
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def fmt_chunk(fmt: int, channels: int, rate: int, bits: int, extensible: bool = False) -> bytes:
    block = channels * bits // 8
    head = struct.pack("<HHIIHH", EXTENSIBLE if extensible else fmt, channels, rate,
                       rate * block, block, bits)  # fmt: skip
    if not extensible:
        return head
    return head + struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", fmt) + GUID_TAIL


def encode(samples: np.ndarray, fmt: int, bits: int) -> bytes:
    """`samples` (full scale 1.0, interleaved) in the given encoding."""
    if fmt == FLOAT:
        return samples.astype("<f4" if bits == 32 else "<f8").tobytes()
    if fmt in (MULAW, ALAW):
        pcm = np.round(samples * 32767).astype(np.int16)
        return g711.encode_pcmu(pcm) if fmt == MULAW else g711.encode_pcma(pcm)
    if bits == 8:
        return np.round(samples * 127 + 128).astype(np.uint8).tobytes()
    if bits == 24:
        values = np.round(samples * (2**23 - 1)).astype("<i4").tobytes()
        return b"".join(values[i : i + 3] for i in range(0, len(values), 4))
    return np.round(samples * (2 ** (bits - 1) - 1)).astype(f"<i{bits // 8}").tobytes()


def wav_bytes(samples: np.ndarray, rate: int, channels: int, fmt: int, bits: int,
              extensible: bool = False) -> bytes:  # fmt: skip
    return riff(
        (b"fmt ", fmt_chunk(fmt, channels, rate, bits, extensible)),
        (b"LIST", b"INFOISFT\x06\x00\x00\x00tests\x00"),
        (b"data", encode(samples, fmt, bits)),
    )


def tones(rate: int, *freqs: float) -> np.ndarray:
    t = np.arange(rate) / rate
    return sum(
        amplitude * np.sin(2 * np.pi * f * t)
        for f, amplitude in zip(freqs, (0.5, 0.3)[: len(freqs)], strict=True)
    )


@pytest.mark.parametrize(
    ("fmt", "bits", "rate", "channels", "extensible"),
    [
        (PCM, 16, 44100, 2, False),
        (PCM, 8, 8000, 1, False),
        (PCM, 24, 48000, 1, False),
        (PCM, 32, 16000, 1, False),
        (FLOAT, 32, 22050, 2, False),
        (FLOAT, 64, 11025, 1, False),
        (MULAW, 8, 8000, 1, False),
        (ALAW, 8, 8000, 1, False),
        (PCM, 24, 48000, 2, True),
        (FLOAT, 32, 96000, 6, True),
        (MULAW, 8, 8000, 1, True),
    ],
)
def test_formats_load_as_8khz_mono(
    fmt: int, bits: int, rate: int, channels: int, extensible: bool
) -> None:
    mono = tones(rate, 1000, 6000) if rate > 12000 else tones(rate, 1000)
    samples = np.repeat(mono, channels)  # the same in every channel
    audio = load_wav(wav_bytes(samples, rate, channels, fmt, bits, extensible))
    assert audio.dtype == np.int16 and len(audio) == RATE
    assert peaks(audio, 1) == pytest.approx([1000], abs=1)
    middle = audio[100:-100]
    assert tone_amplitude(middle, 1000) == pytest.approx(16384, rel=0.01)
    if rate > 12000:  # 6 kHz folds to 2 kHz unless resampling filters it out
        assert band_db(audio, 2000) < band_db(audio, 1000) - 70


def test_channels_are_averaged() -> None:
    t = np.arange(16000) / 16000
    left, right = 0.6 * np.sin(2 * np.pi * 500 * t), 0.6 * np.sin(2 * np.pi * 1500 * t)
    stereo = np.stack([left, right], axis=1).ravel()
    audio = load_wav(wav_bytes(stereo, 16000, 2, PCM, 16))[100:-100]
    assert tone_amplitude(audio, 500) == pytest.approx(0.3 * 32768, rel=0.01)
    assert tone_amplitude(audio, 1500) == pytest.approx(0.3 * 32768, rel=0.01)


def test_a_stdlib_written_file_loads_from_its_path(tmp_path: Path) -> None:
    t = np.arange(44100) / 44100
    left = np.round(12000 * np.sin(2 * np.pi * 1000 * t)).astype("<i2")
    with wave.open(str(tmp_path / "music.wav"), "wb") as file:
        file.setnchannels(2)
        file.setsampwidth(2)
        file.setframerate(44100)
        file.writeframes(np.stack([left, left], axis=1).tobytes())
    audio = load_wav(tmp_path / "music.wav")
    assert len(audio) == RATE
    assert tone_amplitude(audio[100:-100], 1000) == pytest.approx(12000, rel=0.01)
    assert load_wav(str(tmp_path / "music.wav")).tolist() == audio.tolist()


def test_sample_values_and_signs_are_exact_at_8khz() -> None:
    values = np.array([-0.5, -0.25, 0.0, 0.25, 0.5])
    expected = [-16384, -8192, 0, 8192, 16384]
    body = np.array([-(2**22), -(2**21), 0, 2**21, 2**22], "<i4").tobytes()
    packed = b"".join(body[i : i + 3] for i in range(0, len(body), 4))
    assert load_wav(riff((b"fmt ", fmt_chunk(PCM, 1, RATE, 24)), (b"data", packed))).tolist() == (
        expected
    )
    eight = bytes([64, 96, 128, 160, 192])
    assert load_wav(riff((b"fmt ", fmt_chunk(PCM, 1, RATE, 8)), (b"data", eight))).tolist() == (
        expected
    )
    floats = np.append(values, [np.nan, np.inf, -3.0]).astype("<f4").tobytes()
    loaded = load_wav(riff((b"fmt ", fmt_chunk(FLOAT, 1, RATE, 32)), (b"data", floats)))
    assert loaded.tolist() == [*expected, 0, 32767, -32768]


def test_a_streamed_wav_of_unknown_length_plays_to_its_end() -> None:
    data = wav_bytes(np.full(800, 0.25), RATE, 1, PCM, 16)
    streamed = data[:-1604] + struct.pack("<I", 0xFFFFFFFF) + data[-1600:]
    assert load_wav(streamed).tolist() == [8192] * 800


def test_write_wav_round_trips_through_the_stdlib(tmp_path: Path) -> None:
    samples = (np.sin(np.arange(800) / 5) * 9000).astype(np.int16)
    write_wav(tmp_path / "x.wav", samples)
    with wave.open(str(tmp_path / "x.wav")) as file:
        assert (file.getframerate(), file.getnchannels(), file.getsampwidth()) == (RATE, 1, 2)
        assert np.array_equal(np.frombuffer(file.readframes(1000), "<i2"), samples)
    assert np.array_equal(load_wav(tmp_path / "x.wav"), samples)
    write_wav(tmp_path / "y.wav", samples, rate=16000)
    assert len(load_wav(tmp_path / "y.wav")) == 400


FMT = fmt_chunk(PCM, 1, RATE, 16)
DATA = (b"data", bytes(320))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a WAV file: it does not start with a RIFF/WAVE header"),
        (b"RIFF\x10\x00\x00\x00AVI LIST", "not a WAV file"),
        (riff((b"LIST", b"info")), "without a fmt chunk"),
        (riff((b"fmt ", FMT)), "without a data chunk"),
        (riff(DATA, (b"fmt ", FMT)), "data chunk comes before the fmt chunk"),
        (
            riff((b"fmt ", FMT), DATA)[:-100],
            "truncated: its data chunk says 320 bytes but only 220",
        ),
        (riff((b"fmt ", FMT), (b"LIST", bytes(50)))[:-20], "truncated: chunk 'LIST' says 50"),
        (riff((b"fmt ", FMT[:14]), DATA), "fmt chunk is 14 bytes; at least 16"),
        (riff((b"fmt ", fmt_chunk(PCM, 1, RATE, 16, True)[:30]), DATA), "EXTENSIBLE is 30 bytes"),
        (
            riff((b"fmt ", fmt_chunk(PCM, 1, RATE, 16, True)[:-1] + b"\x01"), DATA),
            "sub-format GUID is not one of the standard",
        ),
        (riff((b"fmt ", fmt_chunk(2, 1, RATE, 4)), DATA), "format 2 with 4-bit samples is not"),
        (riff((b"fmt ", fmt_chunk(PCM, 1, RATE, 12)), DATA), "PCM with 12-bit samples is not"),
        (riff((b"fmt ", fmt_chunk(FLOAT, 1, RATE, 16)), DATA), "IEEE float with 16-bit samples"),
        (riff((b"fmt ", fmt_chunk(PCM, 0, RATE, 16)), DATA), "WAV has 0 channels; 1 to 64"),
        (riff((b"fmt ", fmt_chunk(PCM, 300, RATE, 16)), DATA), "WAV has 300 channels"),
        (riff((b"fmt ", fmt_chunk(PCM, 1, 100, 16)), DATA), "rate is 100 Hz; 1000 to 768000"),
        (riff((b"fmt ", fmt_chunk(PCM, 1, 10**7, 16)), DATA), "rate is 10000000 Hz"),
        (riff((b"fmt ", FMT[:12] + b"\x03\x00" + FMT[14:]), DATA), "block align is 3; 1 channels"),
    ],
)
def test_bad_wavs_say_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(AudioError, match=re.escape(message)):
        load_wav(data)


def test_the_length_limit_is_ten_minutes_or_what_the_caller_says() -> None:
    two_seconds = wav_bytes(np.zeros(2 * RATE), RATE, 1, PCM, 8)
    assert len(load_wav(two_seconds)) == 2 * RATE
    with pytest.raises(AudioError, match=r"WAV is 2 s long; the longest audio .* is 1 s"):
        load_wav(two_seconds, max_seconds=1)
    long = riff((b"fmt ", fmt_chunk(PCM, 1, 1000, 8)), (b"data", bytes(601_000)))
    with pytest.raises(AudioError, match=r"WAV is 601 s long; the longest audio .* is 600 s"):
        load_wav(long)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"missing\.wav: cannot be read \(No such file"):
        load_wav(tmp_path / "missing.wav")
    (tmp_path / "song.mp3").write_bytes(b"ID3\x03" + bytes(100))
    with pytest.raises(AudioError, match=r"song\.mp3: not a WAV file"):
        load_wav(tmp_path / "song.mp3")


def test_load_audio_takes_wav_whatever_the_content_type_says() -> None:
    data = wav_bytes(np.full(160, 0.5), RATE, 1, PCM, 16)
    for content_type in (None, "audio/wav", "application/octet-stream", "audio/basic"):
        assert load_audio(data, content_type).tolist() == [16384] * 160


def test_load_audio_takes_raw_mu_law_as_audio_basic() -> None:
    pcm = (np.sin(np.arange(800) / 3) * 10000).astype(np.int16)
    audio = load_audio(g711.encode_pcmu(pcm), "audio/basic; rate=8000")
    assert np.array_equal(audio, g711.decode_pcmu(g711.encode_pcmu(pcm)))


@pytest.mark.parametrize(
    ("data", "content_type", "message"),
    [
        (b"ID3\x03\x00" + bytes(100), None, "MP3 is not supported; use WAV"),
        (b"\xff\xfb\x90\x00" + bytes(100), None, "MP3 is not supported; use WAV"),
        (bytes(100), "audio/mpeg", "MP3 is not supported; use WAV"),
        (b"<html>nope</html>", "text/html; charset=utf-8", "not a WAV file (text/html); <Play>"),
        (b"OggS" + bytes(100), None, "not a WAV file (no content type)"),
    ],
)
def test_load_audio_refuses_what_it_cannot_play(
    data: bytes, content_type: str | None, message: str
) -> None:
    with pytest.raises(AudioError, match=re.escape(message)):
        load_audio(data, content_type)
