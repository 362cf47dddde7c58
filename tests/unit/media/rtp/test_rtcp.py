"""Tests for media.rtp.rtcp: SR, RR, SDES, BYE, compound packets, receiver statistics."""

import struct

import pytest

from media.rtp.rtcp import (
    Bye,
    ReceiverReport,
    ReceiverStatistics,
    ReportBlock,
    RtcpParseError,
    RtcpUnknown,
    SdesChunk,
    SenderReport,
    SourceDescription,
    ntp_timestamp,
    parse_compound,
    serialize_compound,
)


def _block(ssrc: int = 0x1234, lost: int = 3) -> ReportBlock:
    return ReportBlock(
        ssrc=ssrc,
        fraction_lost=25,
        packets_lost=lost,
        highest_sequence=70000,
        jitter=42,
        lsr=0xAABBCCDD,
        dlsr=65536,
    )


def test_report_block_wire_format_with_negative_cumulative_loss() -> None:
    data = _block(lost=-1).serialize()
    assert data == bytes.fromhex("00001234 19ffffff 00011170 0000002a aabbccdd 00010000")
    assert ReportBlock.parse(data) == _block(lost=-1)


def test_receiver_report_known_bytes() -> None:
    data = ReceiverReport(ssrc=7, reports=[_block()]).serialize()
    assert data[:8] == bytes.fromhex("81c9 0007 00000007")
    assert len(data) == 32
    (packet,) = parse_compound(data)
    assert packet == ReceiverReport(ssrc=7, reports=[_block()])


def test_sender_report_round_trip() -> None:
    report = SenderReport(
        ssrc=99,
        ntp_timestamp=ntp_timestamp(1_700_000_000.5),
        rtp_timestamp=160_000,
        packet_count=1000,
        octet_count=160_000,
        reports=[_block(1), _block(2, lost=-5)],
    )
    data = report.serialize()
    assert data[:4] == bytes.fromhex("82c8 0012")
    assert parse_compound(data) == [report]


def test_ntp_timestamp_is_32_32_fixed_point_from_1900() -> None:
    assert ntp_timestamp(0.0) == 2_208_988_800 << 32
    assert ntp_timestamp(0.5) & 0xFFFFFFFF == 1 << 31


def test_sdes_cname_known_bytes() -> None:
    sdes = SourceDescription([SdesChunk(0x01020304, [(1, b"user@host")])])
    data = sdes.serialize()
    # 4 header + 4 SSRC + 2 + 9 item + 1 null, padded to 20.
    assert data == bytes.fromhex("81ca 0004 01020304 0109") + b"user@host" + b"\x00"
    (parsed,) = parse_compound(data)
    assert parsed.chunks[0].cname == b"user@host"
    assert parsed == sdes


def test_sdes_chunk_ending_on_a_word_boundary_gets_a_full_null_word() -> None:
    sdes = SourceDescription([SdesChunk(1, [(1, b"ab")]), SdesChunk(2, [(1, b"cd"), (6, b"x")])])
    data = sdes.serialize()
    assert len(data) % 4 == 0
    assert data[8:16] == b"\x01\x02ab\x00\x00\x00\x00"
    assert parse_compound(data) == [sdes]
    assert SdesChunk(3).cname is None


def test_bye_with_reason_round_trip() -> None:
    bye = Bye(sources=[1, 2], reason=b"call ended")
    data = bye.serialize()
    assert data[:4] == bytes.fromhex("82cb 0005")
    assert data[12:23] == b"\x0acall ended"
    assert parse_compound(data) == [bye]


def test_compound_keeps_unknown_packet_types() -> None:
    feedback = RtcpUnknown(packet_type=205, count=1, body=b"\x00\x00\x00\x01\x00\x00\x00\x02")
    packets = [
        ReceiverReport(ssrc=5),
        SourceDescription([SdesChunk(5, [(1, b"me")])]),
        feedback,
        Bye([5]),
    ]
    data = serialize_compound(packets)
    assert parse_compound(data) == packets


def test_padding_on_the_last_packet_is_accepted() -> None:
    data = ReceiverReport(ssrc=5).serialize() + bytes.fromhex("a1cb 0002 00000005 00000004")
    packets = parse_compound(data)
    assert packets[1] == Bye([5])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\xc9", "needs 4"),
        (bytes.fromhex("41c9 0001 00000005"), "version 1"),
        (bytes.fromhex("81c9 0001 00000005"), "report blocks"),
        (bytes.fromhex("80c9 0003 00000005"), "length 3 words"),
        (bytes.fromhex("a0c9 0001 00000005 80c9 0001 00000005"), "not the last packet"),
        (bytes.fromhex("a0c9 0001 00000009"), "padding count is 9"),
        (bytes.fromhex("80c9 0001 00000005 80"), "stray bytes"),
        (bytes.fromhex("81ca 0002 00000001 0109 6162"), "runs past"),
        (bytes.fromhex("81ca 0002 00000001 0102 6162"), "no terminating null"),
        (bytes.fromhex("82cb 0001 00000001"), "announces 2 sources"),
        (bytes.fromhex("81cb 0002 00000001 09616200"), "reason length is 9"),
        (bytes.fromhex("80c8 0001 00000001"), "SR body"),
    ],
)
def test_malformed_rtcp_raises(data: bytes, message: str) -> None:
    with pytest.raises(RtcpParseError, match=message):
        parse_compound(data)


def _feed(stats: ReceiverStatistics, sequence_numbers, start_time: float = 0.0) -> None:
    for index, seq in enumerate(sequence_numbers):
        stats.update(seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, start_time + index * 0.02)


def test_statistics_in_order_stream_has_no_loss() -> None:
    stats = ReceiverStatistics(ssrc=1, clock_rate=8000)
    _feed(stats, range(1000, 1100))
    block = stats.report_block(now=2.0)
    # A.1: the first packet is the probation packet and does not count.
    assert stats.packets_received == 99
    assert block.packets_lost == 0
    assert block.fraction_lost == 0
    assert block.highest_sequence == 1099
    assert block.jitter == 0


def test_statistics_count_losses_and_fraction_per_interval() -> None:
    stats = ReceiverStatistics(ssrc=1, clock_rate=8000)
    sequence = [s for s in range(0, 201) if s % 10 != 5]  # 20 lost out of 200 after base
    _feed(stats, sequence)
    block = stats.report_block(now=4.0)
    assert block.packets_lost == 20
    assert block.fraction_lost == (20 * 256) // 200
    _feed(stats, range(201, 301), start_time=5.0)
    second = stats.report_block(now=7.0)
    assert second.fraction_lost == 0
    assert second.packets_lost == 20


def test_statistics_extended_sequence_counts_cycles() -> None:
    stats = ReceiverStatistics(ssrc=1, clock_rate=8000)
    _feed(stats, range(65500, 65700))
    assert stats.extended_highest_sequence == 65699
    assert stats.report_block(now=4.0).highest_sequence == 65699
    assert stats.cumulative_lost == 0


def test_statistics_duplicates_make_loss_negative() -> None:
    stats = ReceiverStatistics(ssrc=1, clock_rate=8000)
    _feed(stats, [1, 2, 3, 3, 3, 4])
    assert stats.cumulative_lost == -2


def test_statistics_restart_after_a_big_jump_confirmed_by_two_packets() -> None:
    stats = ReceiverStatistics(ssrc=1, clock_rate=8000)
    _feed(stats, range(1, 11))
    assert stats.update(40000, 0, 1.0) is False
    assert stats.update(40001, 160, 1.02) is True
    assert stats.extended_highest_sequence == 40001
    assert stats.cumulative_lost == 0


def test_statistics_jitter_follows_rfc3550_a8() -> None:
    stats = ReceiverStatistics(ssrc=1, clock_rate=8000, probation=0)
    # Every other packet arrives 10 ms (80 units) late: |D| is 80 for every pair.
    for index in range(400):
        arrival = index * 0.02 + (0.01 if index % 2 else 0.0)
        stats.update(index, (2**32 - 8000 + index * 160) & 0xFFFFFFFF, arrival)
    assert stats.jitter == pytest.approx(80.0, rel=1e-3)
    assert stats.report_block(now=8.0).jitter == 79


def test_report_block_carries_lsr_and_dlsr() -> None:
    stats = ReceiverStatistics(ssrc=1, clock_rate=8000)
    ntp = 0x0123456789ABCDEF
    stats.on_sender_report(SenderReport(1, ntp, 0, 0, 0), arrival=10.0)
    block = stats.report_block(now=10.5)
    assert block.lsr == 0x456789AB
    assert block.dlsr == 32768


def test_report_block_serializes() -> None:
    stats = ReceiverStatistics(ssrc=77, clock_rate=8000)
    _feed(stats, range(10))
    data = ReceiverReport(ssrc=1, reports=[stats.report_block(now=1.0)]).serialize()
    assert struct.unpack_from("!I", data, 8)[0] == 77
