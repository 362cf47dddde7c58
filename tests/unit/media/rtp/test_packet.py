"""Tests for media.rtp.packet: RTP header parsing and serialising (RFC 3550 5.1)."""

import struct

import pytest

from media.rtp.packet import HeaderExtension, RtpPacket, RtpParseError


def test_parse_known_bytes() -> None:
    data = bytes.fromhex("80e1 04d2 0001e240 deadbeef") + b"\x01\x02\x03"
    packet = RtpPacket.parse(data)
    assert packet.payload_type == 97
    assert packet.marker is True
    assert packet.sequence_number == 1234
    assert packet.timestamp == 123456
    assert packet.ssrc == 0xDEADBEEF
    assert packet.payload == b"\x01\x02\x03"
    assert packet.csrc == ()
    assert packet.extension is None
    assert packet.padding_size == 0
    assert packet.serialize() == data


def test_round_trip_with_csrcs_extension_and_padding() -> None:
    packet = RtpPacket(
        payload_type=8,
        sequence_number=65535,
        timestamp=2**32 - 1,
        ssrc=1,
        marker=False,
        payload=bytes(range(160)),
        csrc=(10, 20, 30),
        extension=HeaderExtension(0xBEDE, b"\x10\xff\x00\x00"),
        padding_size=4,
    )
    data = packet.serialize()
    assert len(data) == 12 + 12 + 4 + 4 + 160 + 4
    assert data[0] == 0x80 | 0x20 | 0x10 | 3
    assert data[-4:] == b"\x00\x00\x00\x04"
    assert RtpPacket.parse(data) == packet


def test_extension_is_skipped_so_the_payload_starts_after_it() -> None:
    header = bytes.fromhex("9000 0001 00000000 00000001")
    extension = struct.pack("!HH", 0x1000, 2) + b"ABCDEFGH"
    packet = RtpPacket.parse(header + extension + b"payload")
    assert packet.extension == HeaderExtension(0x1000, b"ABCDEFGH")
    assert packet.payload == b"payload"


def test_padding_is_removed_from_the_payload() -> None:
    data = bytes.fromhex("a000 0001 00000000 00000001") + b"xy" + b"\x00\x00\x03"
    packet = RtpPacket.parse(data)
    assert packet.payload == b"xy"
    assert packet.padding_size == 3


def test_padding_can_fill_the_whole_body() -> None:
    data = bytes.fromhex("a000 0001 00000000 00000001") + b"\x00\x00\x00\x04"
    assert RtpPacket.parse(data).payload == b""


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"", "fixed header"),
        (bytes.fromhex("8000 0001 00000000 000000"), "fixed header"),
        (bytes.fromhex("4000 0001 00000000 00000001"), "version"),
        (bytes.fromhex("c000 0001 00000000 00000001"), "version"),
        (bytes.fromhex("8200 0001 00000000 00000001 00000002"), "CSRC count"),
        (bytes.fromhex("9000 0001 00000000 00000001 1000"), "extension header"),
        (bytes.fromhex("9000 0001 00000000 00000001 10000002 00000000"), "extension length"),
        (bytes.fromhex("a000 0001 00000000 00000001 aabb00"), "padding count is 0"),
        (bytes.fromhex("a000 0001 00000000 00000001 aabb09"), "padding count is 9"),
        (bytes.fromhex("a000 0001 00000000 00000001"), "padding count"),
    ],
)
def test_malformed_packets_raise_a_value_error_naming_the_field(data: bytes, field: str) -> None:
    with pytest.raises(RtpParseError, match=field):
        RtpPacket.parse(data)
    assert issubclass(RtpParseError, ValueError)


def test_padding_count_may_not_reach_into_the_header_extension() -> None:
    data = bytes.fromhex("b000 0001 00000000 00000001 10000001 00000000 05")
    with pytest.raises(RtpParseError, match="padding count is 5; valid is 1 to 1"):
        RtpPacket.parse(data)


def test_serialize_rejects_extension_data_not_in_words() -> None:
    packet = RtpPacket(extension=HeaderExtension(1, b"abc"))
    with pytest.raises(ValueError, match="multiple of 4"):
        packet.serialize()


def test_serialize_rejects_too_many_csrcs() -> None:
    with pytest.raises(ValueError, match="at most 15 CSRCs"):
        RtpPacket(csrc=tuple(range(16))).serialize()


def test_parse_accepts_memoryview_and_bytearray() -> None:
    data = RtpPacket(payload_type=0, sequence_number=9, payload=b"abc").serialize()
    assert RtpPacket.parse(memoryview(data)) == RtpPacket.parse(bytearray(data))
