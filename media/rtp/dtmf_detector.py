"""In-band DTMF detection (Goertzel bins over 102-sample blocks) on 8 kHz linear PCM.

Each 102-sample block (12.75 ms) is measured at the eight DTMF frequencies, at their
second harmonics and, through a Hann window, 0.4 bin below and above each frequency.
The bins are single-frequency DFTs, what the Goertzel recursion computes; here they
come from one matrix product for every block of every channel at once, so the
per-sample work runs in numpy rather than Python. A block is a *hit* for a digit when
all of these hold:

- the strongest row and column bins each stand out by ``min_group_margin_db`` from the
  other bins of their group;
- frequency: each tone's deviation, estimated from the ratio of its two Hann bins, is
  within ``max_deviation`` (default 2.5 %: midway between accepting ±1.5 % and
  rejecting ±3.5 %);
- each tone is at least ``min_level_dbm0``, and the twist is within limits: the column
  (high group) tone at most ``max_normal_twist_db`` weaker and at most
  ``max_reverse_twist_db`` stronger than the row (low group) tone. Defaults are 9 and
  5 dB: the 8 and 4 dB to accept plus 1 dB for measurement error. Levels come from the
  Hann bins, corrected for the deviation, because their leakage from the other tone is
  far below the rectangular bins';
- purity: the two tones carry at least ``min_tone_energy`` of the block's energy,
  measured with the rectangular bins corrected for the deviation (in a block the tone
  only partly fills this is the filled fraction, which keeps short tones out), and
  neither has a second harmonic above ``max_harmonic_db`` relative to it. Speech and
  music spread their energy over many harmonics, which these two checks catch.

Guard times are counted in blocks: a press starts after 2 consecutive hits of one digit
(any tone of 40 ms holds two whole blocks; tones of 20 ms never give two hits) and ends
after 3 consecutive blocks without it (38 ms: a 40 ms pause always separates two
presses, a dropout of up to 15 ms inside a tone never does). Each press is reported
once, when it starts, with the sample index of its first hit block.

`DtmfDetector` takes frames of any size and keeps partial blocks between calls. It can
also carry many channels at once (input of shape ``(channels, n)``): the blocks of all
channels go through one matrix product, blocks that cannot pass the energy share are
dropped before the finer checks, and only channels with hits or a press in progress
are looked at in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

SAMPLE_RATE = 8000
BLOCK_SIZE = 102
ROW_FREQUENCIES = (697.0, 770.0, 852.0, 941.0)
COLUMN_FREQUENCIES = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = "123A456B789C*0#D"
"""Digit at row * 4 + column."""

DBM0_AMPLITUDE = 22_300.0
"""Peak int16 amplitude of a 0 dBm0 sine (G.711: full scale is +3.17 dBm0)."""

START_BLOCKS = 2
RELEASE_BLOCKS = 3

_TONES = np.array(ROW_FREQUENCIES + COLUMN_FREQUENCIES)
# Offset of the two frequency-estimation bins from each tone, in DFT bins of the block.
_SIDE_OFFSET = 0.4
_HANN = 0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(BLOCK_SIZE) + 0.5) / BLOCK_SIZE)


def _basis() -> NDArray[np.float32]:
    n = np.arange(BLOCK_SIZE)
    side = _SIDE_OFFSET * SAMPLE_RATE / BLOCK_SIZE
    frequencies = np.concatenate([_TONES, 2 * _TONES, _TONES - side, _TONES + side])
    windows = np.concatenate([np.ones((16, BLOCK_SIZE)), np.tile(_HANN, (16, 1))])
    phase = 2 * np.pi * np.outer(frequencies, n) / SAMPLE_RATE
    # Columns: 32 cosine parts, then the 32 matching sine parts.
    basis = np.concatenate([windows * np.cos(phase), windows * np.sin(phase)]).T
    return np.ascontiguousarray(basis, dtype=np.float32)


def _deviation_tables() -> tuple[NDArray[np.float64], ...]:
    """For a tone ``eps`` bins off its nominal frequency: the side-bin ratio, the side-bin
    magnitude sum and the power response of the rectangular bin."""
    n = np.arange(BLOCK_SIZE)
    eps = np.linspace(-1.2, 1.2, 481)

    def response(window: NDArray[np.float64], offset: NDArray[np.float64]) -> NDArray:
        return np.abs(np.exp(2j * np.pi * np.outer(offset, n) / BLOCK_SIZE) @ window)

    upper = response(_HANN, eps - _SIDE_OFFSET)
    lower = response(_HANN, eps + _SIDE_OFFSET)
    ratio = (upper - lower) / (upper + lower)
    if not np.all(np.diff(ratio) > 0):
        raise AssertionError("side-bin ratio must be monotonic over the deviation table")
    # Sum of the two side-bin magnitudes, relative to an on-frequency rectangular bin.
    side_sum = (upper + lower) / BLOCK_SIZE
    rectangular_power = (response(np.ones(BLOCK_SIZE), eps) / BLOCK_SIZE) ** 2
    return ratio, eps, side_sum, rectangular_power


def _dirichlet(offset: NDArray[np.float64]) -> NDArray[np.float64]:
    """Magnitude response of a rectangular block bin to a tone ``offset`` bins away."""
    angle = np.pi * offset / BLOCK_SIZE
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.abs(np.sin(np.pi * offset) / (BLOCK_SIZE * np.sin(angle)))
    return np.where(np.abs(angle) < 1e-9, 1.0, value)


_BASIS = _basis()
_RATIO, _EPS, _SIDE_SUM, _RECTANGULAR = _deviation_tables()
_BIN_HZ = SAMPLE_RATE / BLOCK_SIZE


@dataclass(frozen=True, slots=True)
class DtmfTone:
    """A detected press: the digit, the sample index where it was first heard, the channel."""

    digit: str
    start: int
    channel: int = 0


class DtmfDetector:
    """Goertzel-based in-band DTMF detector for one or many 8 kHz channels.

    Feed linear PCM (int16 values; any numeric dtype) with `process`; it returns the
    presses that started in what was fed. Levels are in dBm0, twists in dB, the
    deviation as a fraction of the nominal frequency.
    """

    def __init__(
        self,
        channels: int = 1,
        *,
        min_level_dbm0: float = -36.0,
        max_normal_twist_db: float = 9.0,
        max_reverse_twist_db: float = 5.0,
        max_deviation: float = 0.025,
        min_tone_energy: float = 0.8,
        max_harmonic_db: float = -12.0,
        min_group_margin_db: float = 6.0,
    ) -> None:
        if channels < 1:
            raise ValueError(f"a detector needs at least one channel, not {channels}")
        self.channels = channels
        amplitude = DBM0_AMPLITUDE * 10 ** (min_level_dbm0 / 20)
        # Power of an on-frequency rectangular bin for a tone of that amplitude.
        self._min_power = (BLOCK_SIZE * amplitude / 2) ** 2
        self._normal_twist = 10 ** (max_normal_twist_db / 10)
        self._reverse_twist = 10 ** (max_reverse_twist_db / 10)
        self._max_eps = max_deviation * _TONES / _BIN_HZ
        self._min_tone_energy = min_tone_energy
        # The share test divides by the bin's response to the deviation, which is no
        # smaller than its response at the largest accepted deviation.
        weakest = np.interp(self._max_eps, _EPS, _RECTANGULAR).min()
        self._share_floor = min_tone_energy * weakest * 0.99
        self._harmonic = 10 ** (max_harmonic_db / 10)
        self._group_margin = 10 ** (min_group_margin_db / 10)
        self._pending = np.zeros((channels, 0), dtype=np.float32)
        self._blocks_seen = 0
        self._candidate = [-1] * channels
        self._run = [0] * channels
        self._first = [0] * channels
        self._pressed = [-1] * channels
        self._misses = [0] * channels
        self._busy: set[int] = set()

    def reset(self, channel: int) -> None:
        """Forget a channel's press and silence its partial block (to reuse a bank slot).

        Sample indices of later presses still count from when the detector was made.
        """
        self._pending[channel] = 0
        self._candidate[channel] = -1
        self._run[channel] = 0
        self._pressed[channel] = -1
        self._misses[channel] = 0
        self._busy.discard(channel)

    def process(self, samples: NDArray) -> list[DtmfTone]:
        """Feed the next samples: shape ``(n,)`` for one channel or ``(channels, n)``."""
        samples = np.asarray(samples)
        if samples.ndim == 1:
            samples = samples[np.newaxis, :]
        if samples.shape[0] != self.channels:
            raise ValueError(
                f"detector has {self.channels} channels; got samples of shape {samples.shape}"
            )
        data = np.concatenate([self._pending, samples.astype(np.float32, copy=False)], axis=1)
        count = data.shape[1] // BLOCK_SIZE
        used = count * BLOCK_SIZE
        self._pending = data[:, used:]
        if count == 0:
            return []
        blocks = data[:, :used].reshape(self.channels * count, BLOCK_SIZE)
        hits = self._classify(blocks).reshape(self.channels, count)
        first_block = self._blocks_seen
        self._blocks_seen += count
        active = self._busy.union(np.flatnonzero((hits >= 0).any(axis=1)).tolist())
        tones: list[DtmfTone] = []
        for channel in sorted(active):
            self._track(channel, hits[channel].tolist(), first_block, tones)
        return tones

    def _classify(self, blocks: NDArray[np.float32]) -> NDArray[np.int64]:
        """The digit (0-15 in KEYPAD order) each block is a hit for, or -1."""
        parts = blocks @ _BASIS
        power = parts[:, :32] ** 2 + parts[:, 32:] ** 2
        energy = np.einsum("ij,ij->i", blocks, blocks) * (BLOCK_SIZE / 2)
        rows = power[:, :4]
        columns = power[:, 4:8]
        row = rows.argmax(axis=1)
        column = columns.argmax(axis=1)
        index = np.arange(len(blocks))
        peaks = rows[index, row] + columns[index, column]
        result = np.full(len(blocks), -1)
        # Most blocks (speech, silence) fail the energy share even before the deviation
        # correction; only the rest are measured in full.
        candidates = np.flatnonzero((peaks >= self._share_floor * energy) & (energy > 0))
        if candidates.size == 0:
            return result
        power = power[candidates]
        energy = energy[candidates]
        rows = rows[candidates]
        columns = columns[candidates]
        row = row[candidates]
        column = column[candidates]
        index = np.arange(candidates.size)
        tone = np.stack([row, column + 4])
        tone_power = power[index, tone]
        lower = np.sqrt(power[index, tone + 16])
        upper = np.sqrt(power[index, tone + 24])
        ratio = (upper - lower) / np.maximum(upper + lower, 1e-12)
        eps = np.interp(ratio, _RATIO, _EPS)
        # Levels from the Hann bins; the energy share from the rectangular ones (see the
        # module docstring), both corrected for the estimated deviation.
        true_power = ((upper + lower) / np.interp(eps, _EPS, _SIDE_SUM)) ** 2
        share = (tone_power / np.interp(eps, _EPS, _RECTANGULAR)).sum(axis=0)
        row_power, column_power = true_power
        # A row tone's second harmonic lies 60-90 Hz from a column frequency, so the
        # column tone leaks into that bin; allow for its worst-case leakage.
        position = _TONES[tone] / _BIN_HZ + eps
        leakage = _dirichlet(position[::-1] - 2 * _TONES[tone] / _BIN_HZ) * np.sqrt(
            true_power[::-1]
        )
        harmonic_limit = np.sqrt(self._harmonic * true_power) + leakage
        second_row = np.partition(rows, 2, axis=1)[:, 2]
        second_column = np.partition(columns, 2, axis=1)[:, 2]
        hit = (
            (true_power.min(axis=0) >= self._min_power)
            & (row_power <= self._normal_twist * column_power)
            & (column_power <= self._reverse_twist * row_power)
            & (np.abs(eps) <= self._max_eps[tone]).all(axis=0)
            & (share >= self._min_tone_energy * energy)
            & (np.sqrt(power[index, tone + 8]) <= harmonic_limit).all(axis=0)
            & (rows[index, row] >= self._group_margin * second_row)
            & (columns[index, column] >= self._group_margin * second_column)
        )
        result[candidates] = np.where(hit, row * 4 + column, -1)
        return result

    def _track(self, channel: int, hits: list[int], first_block: int, out: list) -> None:
        candidate = self._candidate[channel]
        run = self._run[channel]
        first = self._first[channel]
        pressed = self._pressed[channel]
        misses = self._misses[channel]
        for offset, digit in enumerate(hits):
            block = first_block + offset
            if digit < 0:
                candidate, run = -1, 0
            elif digit == candidate:
                run += 1
            else:
                candidate, run, first = digit, 1, block
            if pressed >= 0:
                if digit == pressed:
                    misses = 0
                else:
                    misses += 1
                    if misses >= RELEASE_BLOCKS:
                        pressed = -1
            if pressed < 0 and run >= START_BLOCKS:
                pressed, misses = candidate, 0
                out.append(DtmfTone(KEYPAD[candidate], first * BLOCK_SIZE, channel))
        self._candidate[channel] = candidate
        self._run[channel] = run
        self._first[channel] = first
        self._pressed[channel] = pressed
        self._misses[channel] = misses
        if candidate < 0 and pressed < 0:
            self._busy.discard(channel)
        else:
            self._busy.add(channel)
