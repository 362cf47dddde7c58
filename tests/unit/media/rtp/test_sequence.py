"""Tests for media.rtp.sequence: wrap-around comparisons and unwrapping."""

import pytest

from media.rtp.sequence import (
    Unwrapper,
    seq_delta,
    seq_newer,
    timestamp_delta,
    timestamp_newer,
)


@pytest.mark.parametrize(
    ("a", "b", "delta"),
    [(5, 3, 2), (3, 5, -2), (0, 65535, 1), (65535, 0, -1), (100, 65500, 136), (0, 32768, -32768)],
)
def test_seq_delta_is_signed_distance_modulo_2_16(a: int, b: int, delta: int) -> None:
    assert seq_delta(a, b) == delta
    assert seq_newer(a, b) is (delta > 0)


def test_seq_newer_is_false_for_equal_numbers() -> None:
    assert not seq_newer(7, 7)


def test_timestamp_delta_across_wrap() -> None:
    assert timestamp_delta(10, 2**32 - 150) == 160
    assert timestamp_delta(2**32 - 150, 10) == -160
    assert timestamp_newer(10, 2**32 - 150)
    assert not timestamp_newer(2**32 - 150, 10)


def test_unwrapper_counts_through_the_wrap() -> None:
    unwrapper = Unwrapper(16)
    values = [(65530 + i) & 0xFFFF for i in range(20)]
    assert [unwrapper.unwrap(v) for v in values] == list(range(65530, 65550))


def test_unwrapper_places_reordered_values_before_the_wrap() -> None:
    unwrapper = Unwrapper(16)
    assert unwrapper.unwrap(65534) == 65534
    assert unwrapper.unwrap(1) == 65537
    assert unwrapper.unwrap(65535) == 65535
    assert unwrapper.unwrap(2) == 65538


def test_unwrapper_32_bit_timestamps() -> None:
    unwrapper = Unwrapper(32)
    assert unwrapper.unwrap(2**32 - 160) == 2**32 - 160
    assert unwrapper.unwrap(0) == 2**32
    assert unwrapper.unwrap(160) == 2**32 + 160
