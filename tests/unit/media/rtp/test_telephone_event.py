"""Tests for media.rtp.telephone_event: RFC 4733 payloads, receiver and sender."""

import math

import pytest

from media.rtp.packet import RtpPacket, RtpParseError
from media.rtp.telephone_event import (
    EVENT_DIGITS,
    DigitPress,
    TelephoneEvent,
    TelephoneEventReceiver,
    TelephoneEventSender,
    event_for_digit,
)


def test_payload_known_bytes() -> None:
    event = TelephoneEvent(event=5, end=True, volume=10, duration=800)
    assert event.serialize() == bytes.fromhex("058a0320")
    assert TelephoneEvent.parse(bytes.fromhex("058a0320")) == event
    assert TelephoneEvent.parse(bytes.fromhex("0b3f0000")) == TelephoneEvent(11, False, 63, 0)


def test_payload_reserved_bit_is_ignored() -> None:
    assert TelephoneEvent.parse(bytes.fromhex("01ca00a0")) == TelephoneEvent(1, True, 10, 160)


def test_short_payload_raises() -> None:
    with pytest.raises(RtpParseError, match="needs 4"):
        TelephoneEvent.parse(b"\x01\x0a\x00")


@pytest.mark.parametrize("volume", [-1, 64])
def test_serialize_rejects_bad_volume(volume: int) -> None:
    with pytest.raises(ValueError, match="volume"):
        TelephoneEvent(1, volume=volume).serialize()


def test_event_codes_of_digits() -> None:
    assert [event_for_digit(d) for d in "0123456789*#ABCD"] == list(range(16))
    assert event_for_digit("a") == 12
    assert TelephoneEvent(10).digit == "*"
    assert TelephoneEvent(11).digit == "#"
    assert TelephoneEvent(16).digit is None
    with pytest.raises(ValueError, match="0123456789"):
        event_for_digit("E")


def packet(
    event: int,
    seq: int,
    timestamp: int,
    duration: int,
    end: bool = False,
    marker: bool = False,
    ssrc: int = 0x1111,
    payload_type: int = 101,
) -> RtpPacket:
    payload = TelephoneEvent(event, end, 10, duration).serialize()
    return RtpPacket(payload_type, seq, timestamp, ssrc, marker, payload)


def sipp_pcap_digit(event: int, ssrc: int, seq: int = 100, timestamp: int = 8000) -> list:
    """The shape of SIPp's dtmf_2833 pcaps: marker first, durations growing by 320,
    three identical end packets that repeat one sequence number."""
    packets = [
        packet(event, seq + i, timestamp, 320 * (i + 1), marker=i == 0, ssrc=ssrc) for i in range(7)
    ]
    end = packet(event, seq + 7, timestamp, 2240, end=True, ssrc=ssrc)
    return [*packets, end, end, end]


def feed(receiver: TelephoneEventReceiver, packets, start: float = 0.0) -> list[DigitPress]:
    presses: list[DigitPress] = []
    for index, item in enumerate(packets):
        presses.extend(receiver.receive(item, start + 0.02 * index))
    return presses


def test_sipp_pcap_shape_gives_one_press() -> None:
    receiver = TelephoneEventReceiver(payload_type=101)
    presses = feed(receiver, sipp_pcap_digit(7, ssrc=0xABCD))
    assert presses == [DigitPress("7", 0xABCD, 8000, 2240, 10, ended=True)]


def test_each_sipp_digit_with_its_own_ssrc_is_its_own_press() -> None:
    receiver = TelephoneEventReceiver(payload_type=101)
    stream = []
    for index, event in enumerate([1, 2, 11, 10]):
        # Each pcap replays its own SSRC, sequence numbers and timestamps.
        stream += sipp_pcap_digit(event, ssrc=1000 + index, seq=5, timestamp=480)
    presses = feed(receiver, stream)
    assert [p.digit for p in presses] == ["1", "2", "#", "*"]
    assert [p.ssrc for p in presses] == [1000, 1001, 1002, 1003]


def test_end_packets_with_incrementing_sequence_numbers_give_one_press() -> None:
    receiver = TelephoneEventReceiver(payload_type=96)
    packets = [packet(3, 10 + i, 1600, 160 * (i + 1), payload_type=96) for i in range(5)]
    packets += [packet(3, 15 + i, 1600, 960, end=True, payload_type=96) for i in range(3)]
    presses = feed(receiver, packets)
    assert [(p.digit, p.duration, p.ended) for p in presses] == [("3", 960, True)]


def test_marker_bit_is_not_needed() -> None:
    receiver = TelephoneEventReceiver(payload_type=101)
    first = [packet(1, i, 0, 160 * (i + 1)) for i in range(3)]
    second = [packet(1, 3 + i, 1600, 160 * (i + 1)) for i in range(3)]
    ends = [packet(1, 6 + i, 1600, 480, end=True) for i in range(3)]
    presses = feed(receiver, [*first, *second, *ends])
    # The first press's end packets were lost; the second press's start reports it.
    assert [(p.digit, p.timestamp, p.ended) for p in presses] == [
        ("1", 0, False),
        ("1", 1600, True),
    ]


def test_receiver_ignores_other_payload_types() -> None:
    receiver = TelephoneEventReceiver(payload_type=96)
    assert feed(receiver, sipp_pcap_digit(4, ssrc=1)) == []
    with pytest.raises(ValueError, match="0 to 127"):
        TelephoneEventReceiver(payload_type=128)


def test_lost_end_packets_are_reported_by_flush_after_the_timeout() -> None:
    receiver = TelephoneEventReceiver(payload_type=101, timeout=0.5)
    updates = sipp_pcap_digit(9, ssrc=5)[:7]
    assert feed(receiver, updates, start=10.0) == []
    last_arrival = 10.0 + 0.02 * 6
    assert receiver.flush(last_arrival + 0.49) == ()
    (press,) = receiver.flush(last_arrival + 0.5)
    assert (press.digit, press.duration, press.ended) == ("9", 2240, False)
    assert receiver.flush(last_arrival + 5.0) == ()
    # A straggling update of the same event after the flush is not a new press.
    assert receiver.receive(updates[-1], last_arrival + 0.6) == ()


def test_flush_with_infinity_closes_everything_at_hangup() -> None:
    receiver = TelephoneEventReceiver(payload_type=101)
    feed(receiver, [packet(0, 1, 160, 160)])
    assert [p.digit for p in receiver.flush(math.inf)] == ["0"]


def test_duplicate_and_late_end_packets_after_the_next_press_started() -> None:
    receiver = TelephoneEventReceiver(payload_type=101)
    first = sipp_pcap_digit(5, ssrc=1, seq=0, timestamp=0)
    second = sipp_pcap_digit(6, ssrc=1, seq=20, timestamp=4000)
    # The first press's end packets arrive late, interleaved with the second press.
    stream = first[:7] + second[:2] + first[7:] + second[2:]
    presses = feed(receiver, stream)
    assert [(p.digit, p.ended) for p in presses] == [("5", False), ("6", True)]


def test_end_packet_overtaking_the_updates_still_gives_one_press() -> None:
    receiver = TelephoneEventReceiver(payload_type=101)
    packets = sipp_pcap_digit(8, ssrc=3)
    stream = [packets[0], packets[7], *packets[1:7], packets[8], packets[9]]
    presses = feed(receiver, stream)
    assert [(p.digit, p.duration) for p in presses] == [("8", 2240)]


def test_only_end_packets_received_still_gives_one_press() -> None:
    receiver = TelephoneEventReceiver(payload_type=101)
    presses = feed(receiver, sipp_pcap_digit(2, ssrc=3)[7:])
    assert [(p.digit, p.duration, p.ended) for p in presses] == [("2", 2240, True)]


def test_same_digit_twice_is_two_presses() -> None:
    receiver = TelephoneEventReceiver(payload_type=101)
    stream = sipp_pcap_digit(4, ssrc=1, seq=0, timestamp=0) + sipp_pcap_digit(
        4, ssrc=1, seq=10, timestamp=4000
    )
    assert [p.timestamp for p in feed(receiver, stream)] == [0, 4000]


def test_timestamps_across_the_wrap() -> None:
    receiver = TelephoneEventReceiver(payload_type=101)
    start = 2**32 - 800
    stream = sipp_pcap_digit(1, ssrc=1, seq=65530, timestamp=start) + sipp_pcap_digit(
        2, ssrc=1, seq=65540 & 0xFFFF, timestamp=(start + 4000) & 0xFFFFFFFF
    )
    presses = feed(receiver, stream)
    assert [(p.digit, p.timestamp) for p in presses] == [("1", start), ("2", 3200)]
    # A stale packet from before the wrap is ignored.
    assert receiver.receive(packet(1, 65531, start, 640, ssrc=1), 9.0) == ()


def test_long_event_split_into_segments_is_one_press() -> None:
    receiver = TelephoneEventReceiver(payload_type=101)
    stream = [
        packet(0, 1, 1000, 32000, marker=True),
        packet(0, 2, 1000, 65535),
        packet(0, 3, 1000 + 65535, 8000),
        packet(0, 4, 1000 + 65535, 9000, end=True),
        packet(0, 5, 1000 + 65535, 9000, end=True),
    ]
    presses = feed(receiver, stream)
    assert [(p.digit, p.timestamp, p.duration) for p in presses] == [("0", 1000, 74535)]


def test_non_dtmf_events_are_not_reported() -> None:
    receiver = TelephoneEventReceiver(payload_type=101)
    assert feed(receiver, [packet(16, 1, 0, 800, end=True)]) == []
    assert [p.digit for p in feed(receiver, [packet(12, 2, 1600, 800, end=True)])] == ["A"]


def test_old_sources_are_forgotten_beyond_max_sources() -> None:
    receiver = TelephoneEventReceiver(payload_type=101, max_sources=2)
    for ssrc in (1, 2, 3):
        feed(receiver, sipp_pcap_digit(1, ssrc=ssrc))
    # Source 1 has been forgotten: its replayed end packet counts as a new press.
    replay = sipp_pcap_digit(1, ssrc=1)[-1]
    assert [p.ssrc for p in receiver.receive(replay, 5.0)] == [1]
    # Source 3 is remembered: its replay is a duplicate.
    assert receiver.receive(sipp_pcap_digit(1, ssrc=3)[-1], 5.1) == ()


def test_sender_produces_the_baresip_and_sipp_shape() -> None:
    sender = TelephoneEventSender(payload_type=101, ssrc=0xCAFE)
    packets = sender.packets("#", sequence_number=65534, timestamp=2**32 - 80, duration=800)
    events = [TelephoneEvent.parse(p.payload) for p in packets]
    assert [p.marker for p in packets] == [True] + [False] * 6
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {e.event for e in events} == {11}
    assert [p.sequence_number for p in packets] == [65534, 65535, 0, 1, 2, 3, 4]
    assert {p.timestamp for p in packets} == {2**32 - 80}
    assert {(p.payload_type, p.ssrc) for p in packets} == {(101, 0xCAFE)}


def test_sender_short_press_still_starts_with_a_non_end_packet() -> None:
    packets = TelephoneEventSender(payload_type=96, ssrc=1).packets("5", 0, 0, duration=100)
    assert [TelephoneEvent.parse(p.payload).end for p in packets] == [False, True, True, True]


def test_sender_rejects_bad_digit_and_duration() -> None:
    sender = TelephoneEventSender(payload_type=96, ssrc=1)
    with pytest.raises(ValueError, match="digit"):
        sender.packets("X", 0, 0)
    with pytest.raises(ValueError, match="65535"):
        sender.packets("1", 0, 0, duration=70000)


def test_sender_output_through_the_wire_to_the_receiver() -> None:
    sender = TelephoneEventSender(payload_type=96, ssrc=42)
    receiver = TelephoneEventReceiver(payload_type=96)
    presses = []
    seq, timestamp = 1000, 50_000
    for digit in EVENT_DIGITS:
        wire = [p.serialize() for p in sender.packets(digit, seq, timestamp, duration=1600)]
        presses += feed(receiver, [RtpPacket.parse(data) for data in wire])
        seq += len(wire)
        timestamp += 3200
    assert "".join(p.digit for p in presses) == EVENT_DIGITS
    assert all(p.ended and p.duration == 1600 for p in presses)
