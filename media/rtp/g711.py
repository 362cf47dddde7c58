"""G.711 PCMU (mu-law) and PCMA (A-law): 16-bit linear PCM <-> 8-bit codes by table.

Every conversion is one numpy lookup over a whole frame (or a whole stack of frames:
the tables work on arrays of any shape, so a mixer can encode all its outputs at once).
The tables are built at import from the G.711 segment rules, applied to every possible
input. 16-bit input is reduced to the 14-bit (mu-law) or 13-bit (A-law) magnitude of
G.711 with the one's complement for negative values, which keeps the quantiser
symmetric about -0.5 (a sample ``x`` stands for the amplitude ``x + 1/2``). PCMU<->PCMA
transcoding maps each code to the nearest level of the other law, stored as a 256-byte
table for ``bytes.translate``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

PCMU_PAYLOAD_TYPE = 0
PCMA_PAYLOAD_TYPE = 8
SILENCE_PCMU = 0xFF
SILENCE_PCMA = 0xD5


def _magnitude(values: NDArray[np.int32], shift: int) -> NDArray[np.int32]:
    return np.where(values < 0, ~values, values) >> shift


def _segment(magnitude: NDArray[np.int32], first_threshold: int) -> NDArray[np.int32]:
    segment = np.zeros_like(magnitude)
    for step in range(7):
        segment += magnitude >= (first_threshold << step)
    return segment


def _build_pcmu_encode() -> NDArray[np.uint8]:
    values = np.arange(1 << 16, dtype=np.uint16).view(np.int16).astype(np.int32)
    # 14-bit magnitude plus the mu-law bias of 33; 8158 + 33 is the top of segment 7.
    biased = np.minimum(_magnitude(values, 2), 8158) + 33
    segment = _segment(biased, 64)
    mantissa = (biased >> (segment + 1)) & 0x0F
    sign = np.where(values < 0, 0x80, 0)
    return ((sign | (segment << 4) | mantissa) ^ 0xFF).astype(np.uint8)


def _build_pcmu_decode() -> NDArray[np.int16]:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    segment = (code >> 4) & 0x07
    magnitude = ((((code & 0x0F) << 3) + 0x84) << segment) - 0x84
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.int16)


def _build_pcma_encode() -> NDArray[np.uint8]:
    values = np.arange(1 << 16, dtype=np.uint16).view(np.int16).astype(np.int32)
    magnitude = _magnitude(values, 3)
    segment = _segment(magnitude, 32)
    mantissa = (magnitude >> np.maximum(segment, 1)) & 0x0F
    mask = np.where(values < 0, 0x55, 0xD5)
    return (((segment << 4) | mantissa) ^ mask).astype(np.uint8)


def _build_pcma_decode() -> NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (code >> 4) & 0x07
    step = ((code & 0x0F) << 4) + np.where(segment == 0, 8, 0x108)
    magnitude = step << np.maximum(segment - 1, 0)
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


PCMU_ENCODE_TABLE: NDArray[np.uint8] = _build_pcmu_encode()
"""PCMU code for each int16 sample, indexed by the sample viewed as uint16."""
PCMU_DECODE_TABLE: NDArray[np.int16] = _build_pcmu_decode()
"""Linear int16 value of each PCMU code."""
PCMA_ENCODE_TABLE: NDArray[np.uint8] = _build_pcma_encode()
"""PCMA code for each int16 sample, indexed by the sample viewed as uint16."""
PCMA_DECODE_TABLE: NDArray[np.int16] = _build_pcma_decode()
"""Linear int16 value of each PCMA code."""


def _nearest_level(
    source: NDArray[np.int16], target: NDArray[np.int16], encode: NDArray[np.uint8]
) -> bytes:
    """For each source code, the target code whose level is nearest to its level.

    Encoding the decoded value is not quite that: G.711's decision values at segment
    edges are not midway between levels, so a level of one law that falls just past a
    segment edge of the other would cost up to twice the error. Ties keep what the
    encoder picks.
    """
    distance = np.abs(source.astype(np.int32)[:, None] - target.astype(np.int32)[None, :])
    table = encode[source.view(np.uint16)].copy()
    best = distance.min(axis=1)
    worse = distance[np.arange(256), table] > best
    table[worse] = distance[worse].argmin(axis=1)
    return table.tobytes()


_PCMU_TO_PCMA = _nearest_level(PCMU_DECODE_TABLE, PCMA_DECODE_TABLE, PCMA_ENCODE_TABLE)
_PCMA_TO_PCMU = _nearest_level(PCMA_DECODE_TABLE, PCMU_DECODE_TABLE, PCMU_ENCODE_TABLE)


def _as_int16(samples: NDArray[np.int16]) -> NDArray[np.uint16]:
    if samples.dtype != np.int16:
        raise TypeError(f"G.711 encodes int16 samples, not {samples.dtype}; clip and convert first")
    return samples.view(np.uint16)


def encode_pcmu(samples: NDArray[np.int16]) -> bytes:
    """PCMU payload for int16 samples (any shape, C order)."""
    return PCMU_ENCODE_TABLE[_as_int16(samples)].tobytes()


def encode_pcma(samples: NDArray[np.int16]) -> bytes:
    """PCMA payload for int16 samples (any shape, C order)."""
    return PCMA_ENCODE_TABLE[_as_int16(samples)].tobytes()


def decode_pcmu(payload: bytes | bytearray | memoryview) -> NDArray[np.int16]:
    """int16 samples of a PCMU payload (a new array)."""
    return PCMU_DECODE_TABLE[np.frombuffer(payload, dtype=np.uint8)]


def decode_pcma(payload: bytes | bytearray | memoryview) -> NDArray[np.int16]:
    """int16 samples of a PCMA payload (a new array)."""
    return PCMA_DECODE_TABLE[np.frombuffer(payload, dtype=np.uint8)]


def pcmu_to_pcma(payload: bytes) -> bytes:
    """Transcode a PCMU payload to PCMA without going through an array."""
    return payload.translate(_PCMU_TO_PCMA)


def pcma_to_pcmu(payload: bytes) -> bytes:
    """Transcode a PCMA payload to PCMU without going through an array."""
    return payload.translate(_PCMA_TO_PCMU)
