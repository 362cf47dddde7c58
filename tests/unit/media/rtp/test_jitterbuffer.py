"""Tests for media.rtp.jitterbuffer: reordering, drops, bounds, adaptation, loss recovery."""

import numpy as np
import pytest

from media.rtp.jitterbuffer import JitterBuffer
from media.rtp.packet import RtpPacket

FRAME = 0.02


def rtp(seq: int, ssrc: int = 1, start_ts: int = 0) -> RtpPacket:
    return RtpPacket(
        payload_type=0,
        sequence_number=seq & 0xFFFF,
        timestamp=(start_ts + seq * 160) & 0xFFFFFFFF,
        ssrc=ssrc,
        payload=bytes([seq & 0xFF]) * 160,
    )


def drain(buffer: JitterBuffer, now: float) -> list[int]:
    out = []
    while (item := buffer.pop(now)) is not None:
        out.append(item.sequence_number)
    return out


def run(buffer: JitterBuffer, arrivals: dict[int, float], ticks: int) -> list[tuple]:
    """Put packets at their arrival times and pop on a 20 ms tick.

    Returns (sequence number, tick time, arrival) for each packet played.
    """
    events = sorted((t, seq) for seq, t in arrivals.items())
    played = []
    index = 0
    for tick in range(ticks):
        now = tick * FRAME
        while index < len(events) and events[index][0] <= now:
            buffer.put(rtp(events[index][1]), events[index][0])
            index += 1
        for seq in drain(buffer, now):
            played.append((seq, now, arrivals[seq]))
    return played


def test_pop_without_packets_returns_none() -> None:
    buffer = JitterBuffer()
    assert buffer.pop(100.0) is None
    assert len(buffer) == 0


def test_packets_are_released_in_order_at_their_playout_time() -> None:
    buffer = JitterBuffer(min_delay=0.04)
    for seq, arrival in [(0, 0.0), (2, 0.045), (1, 0.05), (3, 0.06)]:
        assert buffer.put(rtp(seq), arrival)
    assert drain(buffer, 0.039) == []
    assert drain(buffer, 0.04) == [0]
    assert drain(buffer, 0.06) == [1]
    assert drain(buffer, 0.1) == [2, 3]
    assert buffer.stats.played == 4


def test_duplicates_and_late_packets_are_dropped() -> None:
    buffer = JitterBuffer(min_delay=0.02)
    buffer.put(rtp(0), 0.0)
    buffer.put(rtp(2), 0.04)
    assert not buffer.put(rtp(2), 0.041)
    assert drain(buffer, 0.07) == [0, 2]
    # Packet 1's slot was skipped at its playout time; it arrives too late to play.
    assert not buffer.put(rtp(1), 0.075)
    assert not buffer.put(rtp(0), 0.08)
    stats = buffer.stats
    assert (stats.duplicates, stats.late, stats.lost) == (1, 2, 1)


def test_capacity_bounds_what_is_held() -> None:
    buffer = JitterBuffer(capacity=16)
    for seq in range(100):
        buffer.put(rtp(seq), seq * FRAME)
    assert len(buffer) == 16
    assert buffer.stats.overflow == 84
    assert drain(buffer, 10.0) == list(range(84, 100))


def test_one_lost_packet_costs_one_frame_and_no_latency() -> None:
    buffer = JitterBuffer(min_delay=0.04, max_delay=0.2)
    arrivals = {seq: seq * FRAME + 0.005 for seq in range(200) if seq != 50}
    played = run(buffer, arrivals, ticks=220)
    assert [seq for seq, _, _ in played] == [s for s in range(200) if s != 50]
    delays = {seq: now - arrival for seq, now, arrival in played}
    before = delays[49]
    assert before == pytest.approx(0.055, abs=1e-9)
    # From the packet after the gap on, the delay is exactly what it was before.
    assert all(delays[seq] == pytest.approx(before) for seq in range(51, 200))
    assert buffer.stats.lost == 1
    assert len(buffer) == 0


def test_burst_loss_is_skipped_without_backlog() -> None:
    buffer = JitterBuffer(min_delay=0.04)
    arrivals = {seq: seq * FRAME for seq in range(300) if not 100 <= seq < 120}
    played = run(buffer, arrivals, ticks=320)
    delays = [now - arrival for seq, now, arrival in played if seq >= 120]
    assert max(delays) == pytest.approx(0.04)
    assert buffer.stats.lost == 20


def test_target_delay_follows_jitter_then_returns_to_the_minimum() -> None:
    rng = np.random.default_rng(7)
    buffer = JitterBuffer(min_delay=0.02, max_delay=0.2, window=100)
    jittery = {seq: seq * FRAME + rng.uniform(0, 0.06) for seq in range(300)}
    calm = {seq: seq * FRAME + 0.003 for seq in range(300, 900)}
    played = run(buffer, jittery | calm, ticks=920)
    assert buffer.stats.late == 0
    assert buffer.stats.lost == 0
    delays = {seq: now - arrival for seq, now, arrival in played}
    assert len(delays) == 900
    # While jittery, packets waited long enough to all be in time...
    assert 0.045 <= max(delays[seq] for seq in range(100, 300)) <= 0.1
    # ...and once calm again, latency shrinks back to the minimum target.
    assert buffer.target_delay == pytest.approx(0.02)
    # Packets arrive 3 ms into a tick and are due 20 ms later, so they go out at the
    # second tick after arrival: 37 ms, as in a buffer that never saw jitter.
    assert delays[899] == pytest.approx(0.037)


def test_target_delay_is_capped_by_max_delay() -> None:
    buffer = JitterBuffer(min_delay=0.02, max_delay=0.08)
    for seq in range(50):
        buffer.put(rtp(seq), seq * FRAME + (0.5 if seq % 7 == 0 else 0.0))
    assert buffer.target_delay == pytest.approx(0.08)


def test_sequence_numbers_wrap() -> None:
    buffer = JitterBuffer(min_delay=0.02)
    for index, seq in enumerate(range(65530, 65542)):
        buffer.put(rtp(seq), index * FRAME)
    assert drain(buffer, 1.0) == [seq & 0xFFFF for seq in range(65530, 65542)]


def test_new_ssrc_restarts_the_buffer() -> None:
    buffer = JitterBuffer(min_delay=0.02)
    for seq in range(5):
        buffer.put(rtp(seq, ssrc=1), seq * FRAME)
    buffer.put(rtp(40000, ssrc=2, start_ts=12345), 0.1)
    assert buffer.stats.restarts == 1
    assert len(buffer) == 1
    assert drain(buffer, 0.1199) == []
    assert drain(buffer, 0.1201) == [40000]


def test_sequence_jump_restarts_instead_of_dropping_as_late() -> None:
    buffer = JitterBuffer(min_delay=0.02)
    for seq in range(5):
        buffer.put(rtp(seq + 20000), seq * FRAME)
    assert drain(buffer, 0.2) == list(range(20000, 20005))
    assert buffer.put(rtp(7), 0.2)
    assert drain(buffer, 0.3) == [7]
    assert buffer.stats.restarts == 1


def test_invalid_configuration() -> None:
    with pytest.raises(ValueError, match="min_delay"):
        JitterBuffer(min_delay=0.3, max_delay=0.2)
    with pytest.raises(ValueError, match="capacity"):
        JitterBuffer(capacity=1)
