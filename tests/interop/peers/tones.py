"""Audio measurements for acceptance tests: which tones a peer heard, how loud, and when.

Levels are in dBFS with the usual sine convention: a sine whose peaks touch full scale
is 0 dBFS, so a sine of amplitude A (full scale = 1.0) measures 20·log10(A). Samples are
float arrays in [-1, 1). Spectra use a Hann window; a tone's level is the power of the
bins within a few hertz of it, which makes it independent of where the tone falls
between bins.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# Half width of the band summed for a tone: covers the Hann main lobe at any length,
# plus a little drift of the tone itself.
TONE_HALF_WIDTH_HZ = 4.0
TONE_HALF_WIDTH_BINS = 3
# Below this a frequency is treated as DC or rumble, never a tone.
LOWEST_TONE_HZ = 20.0


def read_wav(path: Path | str) -> tuple[np.ndarray, int]:
    """Samples (mono float64 in [-1, 1); channels averaged) and sample rate of a WAV file.

    Reads 16-bit PCM at any rate. A recording cut short (its writer killed before it
    fixed up the header) is read up to the end of the file.
    """
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int] | None = None
    position = 12
    while position + 8 <= len(data):
        chunk_id = data[position : position + 4]
        (size,) = struct.unpack_from("<I", data, position + 4)
        body_start = position + 8
        if chunk_id == b"fmt ":
            tag, channels, rate = struct.unpack_from("<HHI", data, body_start)
            (bits,) = struct.unpack_from("<H", data, body_start + 14)
            if tag == WAVE_FORMAT_EXTENSIBLE and size >= 26:
                (tag,) = struct.unpack_from("<H", data, body_start + 24)
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError(f"{path}: data chunk before the fmt chunk")
            # A writer that died leaves 0 (or a bogus size): take what is there.
            end = len(data) if size == 0 else min(body_start + size, len(data))
            return _pcm16(path, fmt, data[body_start:end])
        position = body_start + size + (size & 1)
    raise ValueError(f"{path}: no data chunk")


def _pcm16(path: Path, fmt: tuple[int, int, int, int], payload: bytes) -> tuple[np.ndarray, int]:
    tag, channels, rate, bits = fmt
    if tag != WAVE_FORMAT_PCM or bits != 16 or channels < 1:
        raise ValueError(
            f"{path}: format tag {tag:#06x}, {bits} bits, {channels} channels;"
            " only 16-bit PCM is supported"
        )
    frame_bytes = 2 * channels
    usable = len(payload) - len(payload) % frame_bytes
    pcm = np.frombuffer(payload[:usable], dtype="<i2").reshape(-1, channels)
    samples = pcm.astype(np.float64).mean(axis=1) / 32768.0
    return samples, rate


def write_wav(path: Path | str, samples: np.ndarray, rate: int, channels: int = 1) -> None:
    """Write mono float samples as 16-bit PCM, copied to `channels` channels."""
    pcm = np.clip(np.round(np.asarray(samples) * 32768.0), -32768, 32767).astype("<i2")
    frames = np.repeat(pcm[:, None], channels, axis=1).tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(frames),
        b"WAVE",
        b"fmt ",
        16,
        WAVE_FORMAT_PCM,
        channels,
        rate,
        rate * 2 * channels,
        2 * channels,
        16,
        b"data",
        len(frames),
    )
    Path(path).write_bytes(header + frames)


def tone(freq: float, seconds: float, rate: int, dbfs: float = -10.0) -> np.ndarray:
    """A sine of `freq` Hz at `dbfs`, for building test signals."""
    t = np.arange(round(seconds * rate)) / rate
    return 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t)


def tone_levels(
    samples: np.ndarray,
    rate: int,
    freqs: list[float],
    *,
    window: tuple[float, float] | None = None,
) -> dict[float, float]:
    """Level in dBFS of each frequency in `freqs`; `window` limits it to (start_s, end_s)."""
    spectrum = _Spectrum(_excerpt(samples, rate, window), rate)
    return {freq: spectrum.level(freq) for freq in freqs}


def dominant_frequency(samples: np.ndarray, rate: int) -> float | None:
    """The strongest frequency above 20 Hz, to a fraction of a bin; None for silence."""
    spectrum = _Spectrum(np.asarray(samples, dtype=np.float64), rate)
    return spectrum.peak()


def has_tone(
    samples: np.ndarray,
    rate: int,
    freq: float,
    *,
    min_db_above_floor: float = 20.0,
    min_dbfs: float = -60.0,
) -> bool:
    """Whether `freq` stands out: its strongest bin at least `min_db_above_floor` dB over
    the median bin of the spectrum, and its level at least `min_dbfs`."""
    spectrum = _Spectrum(np.asarray(samples, dtype=np.float64), rate)
    return (
        spectrum.level(freq) >= min_dbfs
        and spectrum.peak_above_floor_db(freq) >= min_db_above_floor
    )


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level in dBFS (a full-scale sine is 0 dBFS); -inf for digital silence."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.size == 0:
        return -math.inf
    mean_square = float(np.mean(samples**2))
    return 10 * math.log10(2 * mean_square) if mean_square > 0 else -math.inf


def active_seconds(
    samples: np.ndarray, rate: int, threshold_dbfs: float = -40.0, *, frame_ms: float = 20.0
) -> float:
    """Total duration of the `frame_ms` frames whose RMS level reaches `threshold_dbfs`."""
    samples = np.asarray(samples, dtype=np.float64)
    frame = max(1, round(rate * frame_ms / 1000))
    count = samples.size // frame
    if count == 0:
        return 0.0
    frames = samples[: count * frame].reshape(count, frame)
    mean_squares = np.mean(frames**2, axis=1)
    threshold = 10 ** (threshold_dbfs / 10) / 2
    return float(np.count_nonzero(mean_squares >= threshold) * frame / rate)


@dataclass(frozen=True)
class Segment:
    """A stretch of a signal, [start, end) in seconds, with the measurements above."""

    start: float
    end: float
    samples: np.ndarray
    rate: int

    @property
    def rms_dbfs(self) -> float:
        return rms_dbfs(self.samples)

    def tone_levels(self, freqs: list[float]) -> dict[float, float]:
        return tone_levels(self.samples, self.rate, freqs)

    def has_tone(self, freq: float, **thresholds: float) -> bool:
        return has_tone(self.samples, self.rate, freq, **thresholds)

    def dominant_frequency(self) -> float | None:
        return dominant_frequency(self.samples, self.rate)

    def active_seconds(self, threshold_dbfs: float = -40.0) -> float:
        return active_seconds(self.samples, self.rate, threshold_dbfs)


def segments(
    samples: np.ndarray,
    rate: int,
    seconds: float = 0.5,
    *,
    start: float = 0.0,
    end: float | None = None,
) -> list[Segment]:
    """Consecutive `seconds`-long segments of [start, end); a shorter tail is dropped.

    E.g. "no 440 Hz between 2 and 4 s":
    `not any(s.has_tone(440) for s in segments(x, rate, 0.5, start=2, end=4))`.
    """
    if seconds <= 0:
        raise ValueError(f"segment length must be positive, not {seconds}")
    samples = np.asarray(samples, dtype=np.float64)
    total = samples.size / rate
    end = total if end is None else min(end, total)
    length = round(seconds * rate)
    result = []
    first = round(start * rate)
    while first + length <= round(end * rate):
        result.append(
            Segment(first / rate, (first + length) / rate, samples[first : first + length], rate)
        )
        first += length
    return result


def _excerpt(samples: np.ndarray, rate: int, window: tuple[float, float] | None) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float64)
    if window is None:
        return samples
    start, end = window
    if not 0 <= start < end:
        raise ValueError(f"window must be (start, end) seconds with 0 <= start < end: {window}")
    return samples[round(start * rate) : round(end * rate)]


class _Spectrum:
    """One-sided power spectrum of a Hann-windowed signal, calibrated in dBFS."""

    def __init__(self, samples: np.ndarray, rate: int) -> None:
        self.rate = rate
        self.size = samples.size
        if self.size < 2:
            self.power = np.zeros(1)
            self.freqs = np.zeros(1)
            return
        window = np.hanning(self.size)
        self.power = np.abs(np.fft.rfft(samples * window)) ** 2
        self.freqs = np.fft.rfftfreq(self.size, 1 / rate)
        # A sine of amplitude A puts A²·N·Σw²/4 into its positive-frequency bins
        # (Parseval), so this scale turns a band's power into A², i.e. dBFS.
        self.scale = 4 / (self.size * float(np.sum(window**2)))

    def _band(self, freq: float) -> slice:
        bin_hz = self.rate / self.size if self.size else self.rate
        half_width = max(TONE_HALF_WIDTH_HZ, TONE_HALF_WIDTH_BINS * bin_hz)
        low = int(np.searchsorted(self.freqs, freq - half_width, side="left"))
        high = int(np.searchsorted(self.freqs, freq + half_width, side="right"))
        return slice(low, max(high, low + 1))

    def level(self, freq: float) -> float:
        if self.size < 2:
            return -math.inf
        band_power = float(np.sum(self.power[self._band(freq)])) * self.scale
        return 10 * math.log10(band_power) if band_power > 0 else -math.inf

    def peak_above_floor_db(self, freq: float) -> float:
        if self.size < 2:
            return -math.inf
        peak = float(np.max(self.power[self._band(freq)]))
        floor = float(np.median(self.power[self.freqs >= LOWEST_TONE_HZ]))
        if peak <= 0:
            return -math.inf
        if floor <= 0:
            return math.inf
        return 10 * math.log10(peak / floor)

    def peak(self) -> float | None:
        if self.size < 2:
            return None
        audible = np.flatnonzero(self.freqs >= LOWEST_TONE_HZ)
        if audible.size == 0:
            return None
        index = int(audible[np.argmax(self.power[audible])])
        if self.power[index] <= 0:
            return None
        offset = 0.0
        if 0 < index < self.power.size - 1:
            # Parabola through the log powers of the peak and its neighbours.
            left, centre, right = np.log(self.power[index - 1 : index + 2] + 1e-300)
            curvature = left - 2 * centre + right
            if curvature < 0:
                offset = 0.5 * (left - right) / curvature
        return float((index + offset) * self.rate / self.size)
