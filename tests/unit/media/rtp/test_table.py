"""Tests for media.rtp.table: rows of stream state that survive the table growing."""

from media.rtp.jitterbuffer import JitterBuffer
from media.rtp.packet import RtpPacket
from media.rtp.table import StreamTable


def packet(seq: int) -> RtpPacket:
    return RtpPacket(
        payload_type=0, sequence_number=seq, timestamp=seq * 160, ssrc=7, payload=b"\xff" * 160
    )


def test_buffers_keep_their_packets_when_the_table_grows() -> None:
    table = StreamTable(2)
    buffers = [JitterBuffer(table=table, row=table.take_row()) for _ in range(2)]
    for seq in range(3):
        buffers[0].put(packet(seq), seq * 0.02)
    buffers += [JitterBuffer(table=table, row=table.take_row()) for _ in range(7)]  # grows
    assert len(table.ints) >= 9
    assert len(buffers[0]) == 3
    played = [buffers[0].pop(1.0) for _ in range(3)]
    assert [item.sequence_number for item in played] == [0, 1, 2]
    assert len(buffers[-1]) == 0


def test_a_freed_row_is_taken_again_and_starts_afresh() -> None:
    table = StreamTable(2)
    row = table.take_row()
    buffer = JitterBuffer(table=table, row=row)  # (a stream resets its row this way)
    buffer.put(packet(0), 0.0)
    assert len(buffer) == 1
    table.free(row)
    assert table.take_row() == row
    assert len(JitterBuffer(table=table, row=row)) == 0
