"""Tests for media.rtp.g711 against a scalar G.711 written from the recommendation's tables.

The reference below follows ITU-T G.711 tables 1a (A-law) and 2a (mu-law): the
segment boundaries and step sizes of the positive half, reconstruction values at the
middle of each interval (mu-law's first interval reconstructs to 0), and the even-bit
inversion (A-law) or full inversion (mu-law) of the transmitted character. A 16-bit
sample ``x`` stands for the amplitude ``x + 1/2`` so the quantiser is symmetric.
"""

import bisect

import numpy as np
import pytest

from media.rtp.g711 import (
    PCMA_DECODE_TABLE,
    PCMA_ENCODE_TABLE,
    PCMU_DECODE_TABLE,
    PCMU_ENCODE_TABLE,
    SILENCE_PCMA,
    SILENCE_PCMU,
    decode_pcma,
    decode_pcmu,
    encode_pcma,
    encode_pcmu,
    pcma_to_pcmu,
    pcmu_to_pcma,
)


def _mu_law_intervals() -> tuple[list[float], list[float]]:
    """Lower decision value and reconstruction value of magnitudes 0-127 (14-bit units)."""
    lower = [0.0] + [1.0 + 2 * i for i in range(15)]
    output = [0.0] + [2.0 + 2 * i for i in range(15)]
    start, step = 31.0, 4.0
    for _segment in range(7):
        for i in range(16):
            lower.append(start + step * i)
            output.append(start + step * i + step / 2)
        start += 16 * step
        step *= 2
    return lower, output


def _a_law_intervals() -> tuple[list[float], list[float]]:
    """Lower decision value and reconstruction value of magnitudes 0-127 (13-bit units)."""
    lower, output = [], []
    start, step = 0.0, 2.0
    for segment in range(8):
        for i in range(16):
            lower.append(start + step * i)
            output.append(start + step * i + step / 2)
        start += 16 * step
        if segment >= 1:
            step *= 2
    return lower, output


MU_LOWER, MU_OUTPUT = _mu_law_intervals()
A_LOWER, A_OUTPUT = _a_law_intervals()


def reference_mu_encode(x: int) -> int:
    amplitude = (x + 0.5) / 4
    index = bisect.bisect_right(MU_LOWER, abs(amplitude)) - 1
    return (0xFF if amplitude > 0 else 0x7F) - index


def reference_mu_decode(code: int) -> int:
    inverted = code ^ 0xFF
    value = round(MU_OUTPUT[inverted & 0x7F] * 4)
    return -value if inverted & 0x80 else value


def reference_a_encode(x: int) -> int:
    amplitude = (x + 0.5) / 8
    index = bisect.bisect_right(A_LOWER, abs(amplitude)) - 1
    return ((0x80 if amplitude > 0 else 0) | index) ^ 0x55


def reference_a_decode(code: int) -> int:
    character = code ^ 0x55
    value = round(A_OUTPUT[character & 0x7F] * 8)
    return value if character & 0x80 else -value


ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int32)


def test_reference_tables_end_where_g711_says() -> None:
    assert MU_LOWER[-1] + 256 == 8159  # top of the mu-law range, 14-bit units
    assert A_LOWER[-1] + 128 == 4096  # top of the A-law range, 13-bit units
    assert MU_OUTPUT[-1] * 4 == 32124
    assert A_OUTPUT[-1] * 8 == 32256


@pytest.mark.parametrize(
    ("table", "code", "value"),
    [
        (PCMU_DECODE_TABLE, 0x80, 32124),
        (PCMU_DECODE_TABLE, 0x00, -32124),
        (PCMU_DECODE_TABLE, 0xFF, 0),
        (PCMU_DECODE_TABLE, 0x7F, 0),
        (PCMU_DECODE_TABLE, 0xF0, 120),
        (PCMU_DECODE_TABLE, 0xEF, 132),
        (PCMA_DECODE_TABLE, 0xD5, 8),
        (PCMA_DECODE_TABLE, 0x55, -8),
        (PCMA_DECODE_TABLE, 0xAA, 32256),
        (PCMA_DECODE_TABLE, 0x2A, -32256),
        (PCMA_DECODE_TABLE, 0xC5, 264),
    ],
)
def test_known_codes(table: np.ndarray, code: int, value: int) -> None:
    assert table[code] == value


def test_silence_encodes_to_the_usual_idle_codes() -> None:
    assert encode_pcmu(np.zeros(3, dtype=np.int16)) == bytes([SILENCE_PCMU]) * 3 == b"\xff" * 3
    assert encode_pcma(np.zeros(3, dtype=np.int16)) == bytes([SILENCE_PCMA]) * 3 == b"\xd5" * 3


def test_pcmu_decode_matches_reference_for_every_code() -> None:
    assert PCMU_DECODE_TABLE.tolist() == [reference_mu_decode(c) for c in range(256)]


def test_pcma_decode_matches_reference_for_every_code() -> None:
    assert PCMA_DECODE_TABLE.tolist() == [reference_a_decode(c) for c in range(256)]


def test_pcmu_encode_matches_reference_for_every_sample() -> None:
    expected = [reference_mu_encode(int(x)) for x in ALL_SAMPLES]
    got = PCMU_ENCODE_TABLE[ALL_SAMPLES.astype(np.int16).view(np.uint16)]
    assert got.tolist() == expected


def test_pcma_encode_matches_reference_for_every_sample() -> None:
    expected = [reference_a_encode(int(x)) for x in ALL_SAMPLES]
    got = PCMA_ENCODE_TABLE[ALL_SAMPLES.astype(np.int16).view(np.uint16)]
    assert got.tolist() == expected


@pytest.mark.parametrize(
    ("encode", "decode", "lower", "scale"),
    [(encode_pcmu, decode_pcmu, MU_LOWER, 4), (encode_pcma, decode_pcma, A_LOWER, 8)],
)
def test_round_trip_stays_in_the_sample_s_quantisation_interval(
    encode, decode, lower, scale
) -> None:
    bounds = np.array([*lower, 2 * lower[-1] - lower[-2]]) * scale
    amplitude = np.abs(ALL_SAMPLES + 0.5)
    decoded = np.abs(decode(encode(ALL_SAMPLES.astype(np.int16))).astype(np.float64))
    inside = amplitude < bounds[-1]
    interval = np.searchsorted(bounds, amplitude[inside], side="right") - 1
    assert np.all(bounds[interval] <= decoded[inside])
    assert np.all(decoded[inside] <= bounds[interval + 1])
    assert np.diff(bounds).max() == 1024
    # Beyond the last decision value the code saturates at the extreme level.
    assert np.all(decoded[~inside] == decoded.max())


@pytest.mark.parametrize("encode, decode", [(encode_pcmu, decode_pcmu), (encode_pcma, decode_pcma)])
@pytest.mark.parametrize("level_db", [-30.0, -20.0, -10.0, 0.0])
def test_sine_signal_to_quantisation_noise_is_about_38_db(encode, decode, level_db) -> None:
    t = np.arange(8000) / 8000
    sine = 22300 * 10 ** (level_db / 20) * np.sin(2 * np.pi * 1004 * t + 0.3)
    samples = np.round(sine).astype(np.int16)
    noise = decode(encode(samples)).astype(np.float64) - samples
    snr = 10 * np.log10(np.mean(samples.astype(np.float64) ** 2) / np.mean(noise**2))
    assert 35.0 <= snr <= 40.0


def test_encode_works_on_stacked_frames() -> None:
    rng = np.random.default_rng(1)
    frames = rng.integers(-32768, 32767, size=(4, 160), dtype=np.int16)
    payload = encode_pcmu(frames)
    assert payload == b"".join(encode_pcmu(frame) for frame in frames)
    assert decode_pcmu(payload).reshape(4, 160).tolist() == [
        decode_pcmu(encode_pcmu(frame)).tolist() for frame in frames
    ]


def test_encode_rejects_other_dtypes() -> None:
    with pytest.raises(TypeError, match="int16"):
        encode_pcma(np.zeros(160, dtype=np.float32))


def test_decode_accepts_bytearray_and_memoryview() -> None:
    payload = bytes(range(256))
    assert decode_pcma(bytearray(payload)).tolist() == decode_pcma(memoryview(payload)).tolist()


def test_transcoding_keeps_silence_and_sign() -> None:
    assert pcmu_to_pcma(b"\xff") == b"\xd5"
    assert pcma_to_pcmu(b"\xd5\x55") == encode_pcmu(np.array([8, -8], dtype=np.int16))
    codes = bytes(range(256))
    for source, target, result in [
        (PCMU_DECODE_TABLE, PCMA_DECODE_TABLE, pcmu_to_pcma(codes)),
        (PCMA_DECODE_TABLE, PCMU_DECODE_TABLE, pcma_to_pcmu(codes)),
    ]:
        for code, value in zip(codes, result, strict=True):
            assert int(source[code]) * int(target[value]) >= 0


@pytest.mark.parametrize(
    ("transcode", "source_table", "target_table"),
    [
        (pcmu_to_pcma, PCMU_DECODE_TABLE, PCMA_DECODE_TABLE),
        (pcma_to_pcmu, PCMA_DECODE_TABLE, PCMU_DECODE_TABLE),
    ],
)
def test_transcoding_picks_the_nearest_level_of_the_target_law(
    transcode, source_table, target_table
) -> None:
    levels = target_table.astype(np.int32)
    for code, result in zip(range(256), transcode(bytes(range(256))), strict=True):
        value = int(source_table[code])
        distance = np.abs(levels - value)
        assert abs(int(levels[result]) - value) == distance.min()
