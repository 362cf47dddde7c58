"""Reading and writing WAV files as 8 kHz mono int16, the engine's audio."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from media.audio import RATE
from media.rtp.g711 import decode_pcma, decode_pcmu

MAX_SECONDS = 600.0

_PCM, _FLOAT, _ALAW, _MULAW, _EXTENSIBLE = 1, 3, 6, 7, 0xFFFE


class AudioError(ValueError):
    """Audio we cannot play: the message says what is wrong with it."""


def _chunks(data: bytes) -> dict[bytes, bytes]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("not a WAV file (no RIFF/WAVE header)")
    chunks: dict[bytes, bytes] = {}
    offset = 12
    while offset + 8 <= len(data):
        name, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body = data[offset + 8 : offset + 8 + size]
        if name not in chunks:
            chunks[name] = body
        offset += 8 + size + (size & 1)
    if b"fmt " not in chunks or b"data" not in chunks:
        raise AudioError("WAV file without a fmt or data chunk (truncated?)")
    return chunks


def load_wav(source: bytes | str | Path, *, max_seconds: float = MAX_SECONDS) -> NDArray[np.int16]:
    """Any common WAV (PCM 8/16/24/32-bit, float, A-law, mu-law; any rate and channel
    count) as 8 kHz mono int16."""
    data = Path(source).read_bytes() if isinstance(source, str | Path) else bytes(source)
    chunks = _chunks(data)
    fmt = chunks[b"fmt "]
    if len(fmt) < 16:
        raise AudioError("WAV fmt chunk is too short")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack_from("<H", fmt, 24)[0]
    if channels < 1 or rate < 1000 or rate > 384000:
        raise AudioError(f"WAV with {channels} channels at {rate} Hz cannot be played")
    body = chunks[b"data"]
    frames = len(body) // max(1, block_align)
    if frames / rate > max_seconds:
        raise AudioError(f"WAV is {frames / rate:.0f} s long; the limit is {max_seconds:.0f} s")
    body = body[: frames * block_align]
    if tag == _PCM and bits == 8:
        samples = (np.frombuffer(body, np.uint8).astype(np.float64) - 128) / 128
    elif tag == _PCM and bits == 16:
        samples = np.frombuffer(body, "<i2").astype(np.float64) / 32768
    elif tag == _PCM and bits == 24:
        raw = np.frombuffer(body, np.uint8).reshape(-1, 3).astype(np.int32)
        values = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        values = np.where(values >= 1 << 23, values - (1 << 24), values)
        samples = values.astype(np.float64) / (1 << 23)
    elif tag == _PCM and bits == 32:
        samples = np.frombuffer(body, "<i4").astype(np.float64) / 2**31
    elif tag == _FLOAT and bits in (32, 64):
        samples = np.frombuffer(body, "<f4" if bits == 32 else "<f8").astype(np.float64)
        samples = np.nan_to_num(samples)
    elif tag == _MULAW and bits == 8:
        samples = decode_pcmu(body).astype(np.float64) / 32768
    elif tag == _ALAW and bits == 8:
        samples = decode_pcma(body).astype(np.float64) / 32768
    else:
        raise AudioError(
            f"WAV format {tag} with {bits}-bit samples is not supported; use PCM, float, "
            "A-law or mu-law"
        )
    samples = samples.reshape(-1, channels).mean(axis=1)
    return _to_int16(resample(samples, rate, RATE))


def resample(samples: NDArray[np.float64], rate: int, target: int = RATE) -> NDArray[np.float64]:
    """Band-limited resampling through the spectrum (cut at the lower Nyquist frequency)."""
    if rate == target or len(samples) == 0:
        return samples
    length = max(1, round(len(samples) * target / rate))
    spectrum = np.fft.rfft(samples)
    keep = min(len(spectrum), length // 2 + 1)
    cut = np.zeros(length // 2 + 1, dtype=complex)
    cut[:keep] = spectrum[:keep]
    if rate > target:  # taper the last 5 % of the band to avoid ringing at the cut
        taper = max(1, keep // 20)
        cut[keep - taper : keep] *= np.linspace(1, 0, taper)
    return np.fft.irfft(cut, length) * (length / len(samples))


def _to_int16(samples: NDArray[np.float64]) -> NDArray[np.int16]:
    return np.clip(np.round(samples * 32768), -32768, 32767).astype(np.int16)


def load_audio(data: bytes, content_type: str | None = None) -> NDArray[np.int16]:
    """Audio fetched for <Play>: a WAV, or raw mu-law (audio/basic)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if data[:4] == b"RIFF":
        return load_wav(data)
    if kind == "audio/basic":
        return decode_pcmu(data)
    if (
        data[:3] == b"ID3"
        or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")
        or kind
        in (
            "audio/mpeg",
            "audio/mp3",
        )
    ):
        raise AudioError("MP3 is not supported; use WAV")
    raise AudioError(f"not a WAV file ({kind or 'unknown type'})")


def write_wav(path: str | Path, samples: NDArray[np.int16], rate: int = RATE) -> None:
    """16-bit mono PCM."""
    pcm = np.asarray(samples, dtype="<i2").tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, _PCM, 1, rate, rate * 2, 2, 16,
        b"data", len(pcm),
    )  # fmt: skip
    Path(path).write_bytes(header + pcm)
