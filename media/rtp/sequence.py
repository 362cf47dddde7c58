"""Wrap-around arithmetic for RTP sequence numbers (16 bit) and timestamps (32 bit).

RFC 3550 counters wrap; "newer" is decided on the shorter way round the circle, and an
`Unwrapper` turns a wrapping counter into a monotonic integer for use as a dict key.
"""

from __future__ import annotations


def seq_delta(a: int, b: int) -> int:
    """Signed distance ``a - b`` between two sequence numbers, in [-32768, 32767]."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def seq_newer(a: int, b: int) -> bool:
    """True if sequence number ``a`` comes after ``b`` (modulo 2**16)."""
    return ((a - b + 0x8000) & 0xFFFF) > 0x8000


def timestamp_delta(a: int, b: int) -> int:
    """Signed distance ``a - b`` between two RTP timestamps, in [-2**31, 2**31 - 1]."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def timestamp_newer(a: int, b: int) -> bool:
    """True if RTP timestamp ``a`` comes after ``b`` (modulo 2**32)."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) > 0x80000000


class Unwrapper:
    """Extends a wrapping ``bits``-wide counter to an unbounded integer.

    Each value is placed on the side of the last one it is closest to, so reordered
    values just before a wrap and values just after it both land correctly. The first
    value maps to itself.
    """

    __slots__ = ("_half", "_last", "_mask")

    def __init__(self, bits: int) -> None:
        self._mask = (1 << bits) - 1
        self._half = 1 << (bits - 1)
        self._last: int | None = None

    def unwrap(self, value: int) -> int:
        """The extended value of ``value``; the newest extended value seen is remembered."""
        last = self._last
        if last is None:
            self._last = value
            return value
        extended = last + (((value - last + self._half) & self._mask) - self._half)
        if extended > last:
            self._last = extended
        return extended
