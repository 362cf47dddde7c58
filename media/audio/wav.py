"""Reading and writing WAV files, and recognising the audio a <Play> URL returns.

Whatever a WAV holds (PCM of 8 to 32 bits, IEEE float, A-law or mu-law, plain or
WAVE_FORMAT_EXTENSIBLE, any rate, any number of channels) comes out as the engine's
audio: 8 kHz mono int16. Channels are averaged; other rates are resampled with
anti-aliasing (`media.audio.resample`). Files we write are 16-bit mono PCM.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from media.audio import RATE
from media.audio.resample import resample
from media.rtp.g711 import decode_pcma, decode_pcmu

MAX_SECONDS = 600.0
"""Longest audio `load_wav` accepts by default: ten minutes."""

MAX_CHANNELS = 64
MIN_RATE, MAX_RATE = 1000, 768_000

PCM, ALAW, MULAW, IEEE_FLOAT, EXTENSIBLE = 1, 6, 7, 3, 0xFFFE
_FORMAT_NAMES = {PCM: "PCM", ALAW: "A-law", MULAW: "mu-law", IEEE_FLOAT: "IEEE float"}
_SUPPORTED = {PCM: (8, 16, 24, 32), IEEE_FLOAT: (32, 64), ALAW: (8,), MULAW: (8,)}
# The GUID of a WAVE_FORMAT_EXTENSIBLE sub-format is the format tag followed by these.
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
# Writers that stream leave the data size unknown: to the end of the file.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


class AudioError(ValueError):
    """Audio we cannot play: the message says what is wrong with it."""


def load_wav(
    source: bytes | bytearray | memoryview | str | Path, *, max_seconds: float = MAX_SECONDS
) -> NDArray[np.int16]:
    """The WAV in `source` (its bytes, or a file path) as 8 kHz mono int16.

    Raises AudioError for anything that is not a WAV we can play, or that is longer
    than `max_seconds`; for a path, the message starts with the path.
    """
    if isinstance(source, str | Path):
        try:
            return load_wav(Path(source).read_bytes(), max_seconds=max_seconds)
        except OSError as error:
            raise AudioError(f"{source}: cannot be read ({error.strerror})") from error
        except AudioError as error:
            raise AudioError(f"{source}: {error}") from error
    data = memoryview(bytes(source))
    fmt, body = _chunks(data)
    tag, channels, rate, bits = _format(fmt)
    width = bits // 8
    if len(body) % (channels * width):
        body = body[: len(body) - len(body) % (channels * width)]  # a partial last frame
    frames = len(body) // (channels * width)
    if frames > max_seconds * rate:
        raise AudioError(
            f"WAV is {frames / rate:.0f} s long; the longest audio that can be played is "
            f"{max_seconds:.0f} s"
        )
    mono = _decode(body, tag, bits, channels)
    return to_int16(resample(mono, rate, RATE))


def _chunks(data: memoryview) -> tuple[memoryview, memoryview]:
    """The fmt and data chunks of a RIFF/WAVE file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("not a WAV file: it does not start with a RIFF/WAVE header")
    fmt: memoryview | None = None
    offset = 12
    while offset + 8 <= len(data):
        name = bytes(data[offset : offset + 4])
        (size,) = struct.unpack_from("<I", data, offset + 4)
        start = offset + 8
        available = len(data) - start
        if name == b"data":
            if fmt is None:
                raise AudioError("WAV data chunk comes before the fmt chunk")
            if size in _UNKNOWN_SIZES:
                size = available
            elif size > available:
                raise AudioError(
                    f"WAV is truncated: its data chunk says {size} bytes but only "
                    f"{available} follow"
                )
            return fmt, data[start : start + size]
        if size > available:
            raise AudioError(
                f"WAV is truncated: chunk {name.decode('latin-1')!r} says {size} bytes but only "
                f"{available} follow"
            )
        if name == b"fmt ":
            fmt = data[start : start + size]
        offset = start + size + (size & 1)
    if fmt is None:
        raise AudioError("WAV file without a fmt chunk (truncated, or not a WAV?)")
    raise AudioError("WAV file without a data chunk (truncated?)")


def _format(fmt: memoryview) -> tuple[int, int, int, int]:
    """(format tag, channels, sample rate, bits per sample) from a fmt chunk, checked."""
    if len(fmt) < 16:
        raise AudioError(f"WAV fmt chunk is {len(fmt)} bytes; at least 16 are needed")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == EXTENSIBLE:
        if len(fmt) < 40:
            raise AudioError(
                f"WAV fmt chunk of WAVE_FORMAT_EXTENSIBLE is {len(fmt)} bytes; 40 are needed"
            )
        tag, tail = struct.unpack_from("<H", fmt, 24)[0], bytes(fmt[26:40])
        if tail != _GUID_TAIL:
            raise AudioError(
                "WAV sub-format GUID is not one of the standard audio formats; use PCM, "
                "IEEE float, A-law or mu-law"
            )
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"WAV has {channels} channels; 1 to {MAX_CHANNELS} can be played")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"WAV sample rate is {rate} Hz; {MIN_RATE} to {MAX_RATE} Hz can be played")
    if bits not in _SUPPORTED.get(tag, ()):
        supported = "; ".join(
            f"{_FORMAT_NAMES[t]} {'/'.join(map(str, b))}-bit" for t, b in _SUPPORTED.items()
        )
        name = _FORMAT_NAMES.get(tag, f"format {tag}")
        raise AudioError(
            f"WAV {name} with {bits}-bit samples is not supported; supported are {supported}"
        )
    if block_align != channels * bits // 8:
        raise AudioError(
            f"WAV block align is {block_align}; {channels} channels of {bits} bits need "
            f"{channels * bits // 8}"
        )
    return tag, channels, rate, bits


def _decode(body: memoryview, tag: int, bits: int, channels: int) -> NDArray[np.float64]:
    """Samples of `body` averaged over the channels, full scale at 1.0."""
    if tag == PCM and bits == 24:
        raw = np.frombuffer(body, np.uint8).reshape(-1, 3).astype(np.int32)
        values = (raw[:, 0] << 8 | raw[:, 1] << 16 | raw[:, 2] << 24) >> 8
        scale = 2.0**23
    elif tag == PCM:
        values = np.frombuffer(body, {8: np.uint8, 16: "<i2", 32: "<i4"}[bits])
        scale = 2.0 ** (bits - 1)
    elif tag == IEEE_FLOAT:
        values = np.frombuffer(body, "<f4" if bits == 32 else "<f8")
        scale = 1.0
    else:
        values = (decode_pcmu if tag == MULAW else decode_pcma)(bytes(body))
        scale = 32768.0
    mono = values.reshape(-1, channels).mean(axis=1, dtype=np.float64)
    if tag == PCM and bits == 8:
        mono -= 128  # 8-bit PCM is unsigned
    if tag == IEEE_FLOAT:
        mono = np.clip(np.nan_to_num(mono, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    return mono / scale


def to_int16(samples: NDArray[np.float64]) -> NDArray[np.int16]:
    """Samples with full scale at 1.0 as int16, rounded and clipped."""
    return np.clip(np.round(samples * 32768), -32768, 32767).astype(np.int16)


def load_audio(data: bytes, content_type: str | None = None) -> NDArray[np.int16]:
    """Audio fetched for <Play>: a WAV, or raw mu-law (``audio/basic``), as 8 kHz mono.

    A WAV is recognised by its header whatever the content type says; MP3 is refused
    with a message saying so.
    """
    kind = (content_type or "").split(";")[0].strip().lower()
    if data[:4] == b"RIFF":
        return load_wav(data)
    if kind == "audio/basic":
        if len(data) > MAX_SECONDS * RATE:
            raise AudioError(
                f"audio is {len(data) / RATE:.0f} s long; the longest audio that can be played "
                f"is {MAX_SECONDS:.0f} s"
            )
        return decode_pcmu(data)
    if kind in ("audio/mpeg", "audio/mp3") or data[:3] == b"ID3" or _mp3_frame(data):
        raise AudioError("MP3 is not supported; use WAV")
    raise AudioError(
        f"not a WAV file ({kind or 'no content type'}); <Play> takes WAV or audio/basic"
    )


def _mp3_frame(data: bytes) -> bool:
    """Whether `data` starts with an MPEG audio frame sync (11 bits set)."""
    return len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0


def write_wav(
    path: str | Path, samples: NDArray[np.int16], rate: int = RATE, channels: int = 1
) -> None:
    """Write `samples` as a 16-bit PCM WAV (with `channels` > 1: interleaved frames)."""
    pcm = np.asarray(samples, dtype="<i2").tobytes()
    block = 2 * channels
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, PCM, channels, rate, rate * block,
        block, 16, b"data", len(pcm),
    )  # fmt: skip
    Path(path).write_bytes(header + pcm)
