"""An adaptive, bounded jitter buffer keyed by RTP sequence number; time is passed in.

Each packet gets a playout time on the sender's clock shifted by an offset:
``timestamp / clock_rate + offset``, where the offset is the smallest recent transit
time plus a target delay. The target follows the spread of recent transit times (the
delay that would have let all of them arrive in time), clamped to [min_delay,
max_delay]. It rises at once, so a burst of jitter costs one gap rather than a run of
late packets, and falls by at most ``max_step`` per packet, so shrinking latency never
makes playout jump.

`JitterBuffer.pop` hands out packets in sequence order when their playout time has
come. A missing packet is skipped at its own playout time (estimated from the packet
after it), so one loss costs one frame and never adds latency: the buffer cannot grow a
backlog the way a buffer that waits for the missing packet, then plays one packet per
tick, does. Packets arriving after their slot was played or skipped are dropped as
late, duplicates are dropped, and at most ``capacity`` consecutive sequence numbers are
held. A new SSRC, or a sequence jump beyond what reordering explains, restarts the
buffer.

The state is a row of a `StreamTable` (see `media.rtp.table`) and `add` and `pop` are
compiled: a packet is held in the slot ``sequence % capacity`` (the held sequence numbers
always lie within one capacity, so slots never collide), and the sliding-window minimum
and maximum of the transit times are monotonic deques kept as rings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from media.rtp.packet import RtpPacket
from media.rtp.table import (
    J_CAPACITY,
    J_CLOCK_RATE,
    J_COUNT,
    J_DUPLICATES,
    J_FRAME,
    J_HAS_NEWEST,
    J_HAS_NEWEST_TS,
    J_HAS_OFFSET,
    J_HAS_SSRC,
    J_HIGH_HEAD,
    J_HIGH_LEN,
    J_LAST_EXT,
    J_LAST_TS,
    J_LATE,
    J_LOST,
    J_LOW_HEAD,
    J_LOW_LEN,
    J_MAX_DELAY,
    J_MAX_STEP,
    J_MIN_DELAY,
    J_NEWEST,
    J_NEWEST_TS,
    J_NEXT,
    J_OFFSET,
    J_OVERFLOW,
    J_PLAYED,
    J_PUTS,
    J_RECEIVED,
    J_RESTARTS,
    J_SSRC,
    J_TARGET,
    J_WINDOW,
    SLOT_EXT,
    SLOT_FULL,
    SLOT_LEN,
    SLOT_PT,
    SLOT_TS,
    StreamTable,
)

# RFC 3550 appendix A.1: jumps larger than these are a restart, not reordering.
_MAX_DROPOUT = 3000
_MAX_MISORDER = 100


@dataclass(slots=True)
class JitterBufferStats:
    """Counters since the buffer was made."""

    received: int = 0
    played: int = 0
    lost: int = 0
    late: int = 0
    duplicates: int = 0
    overflow: int = 0
    restarts: int = 0


@njit(cache=True)
def restart(ints, floats, slots, row, ssrc):
    """Forget every packet and the timing; the buffer now belongs to ``ssrc`` (-1: none)."""
    ints[row, J_HAS_SSRC] = ssrc >= 0
    ints[row, J_SSRC] = ssrc
    ints[row, J_HAS_NEWEST] = 0
    ints[row, J_HAS_NEWEST_TS] = 0
    ints[row, J_HAS_OFFSET] = 0
    ints[row, J_FRAME] = ints[row, J_CLOCK_RATE] // 50
    ints[row, J_LAST_EXT] = -2
    ints[row, J_LAST_TS] = 0
    ints[row, J_PUTS] = 0
    ints[row, J_LOW_LEN] = 0
    ints[row, J_HIGH_LEN] = 0
    ints[row, J_COUNT] = 0
    slots[row, :, SLOT_FULL] = 0
    floats[row, J_TARGET] = floats[row, J_MIN_DELAY]


@njit(cache=True)
def add(
    ints,
    floats,
    low,
    high,
    slots,
    data,
    row,
    ssrc,
    sequence_number,
    rtp_timestamp,
    payload_type,
    payload,
    arrival,
):
    """Hold a packet that arrived at ``arrival``; returns its slot, or -1 if it was dropped.

    ``payload`` (a uint8 array) is copied into the slot when it fits; pass an empty one
    to hold the packet's place only (`JitterBuffer` keeps its items itself).
    """
    ints[row, J_RECEIVED] += 1
    if not ints[row, J_HAS_SSRC] or ssrc != ints[row, J_SSRC]:
        if ints[row, J_HAS_SSRC]:
            ints[row, J_RESTARTS] += 1
        restart(ints, floats, slots, row, ssrc)
    if not ints[row, J_HAS_NEWEST]:
        ext = sequence_number
        ints[row, J_NEXT] = ext
    else:
        # Placed on the side of the newest sequence number it is closest to.
        newest = ints[row, J_NEWEST]
        ext = newest + (((sequence_number - newest + 0x8000) & 0xFFFF) - 0x8000)
        ahead = ext - ints[row, J_NEXT]
        if ahead < -_MAX_MISORDER or ahead > _MAX_DROPOUT:
            ints[row, J_RESTARTS] += 1
            restart(ints, floats, slots, row, ssrc)
            ext = sequence_number
            ints[row, J_NEXT] = ext
        elif ahead < 0:
            ints[row, J_LATE] += 1
            return -1
    capacity = ints[row, J_CAPACITY]
    slot = ext % capacity
    if slots[row, slot, SLOT_FULL] and slots[row, slot, SLOT_EXT] == ext:
        ints[row, J_DUPLICATES] += 1
        return -1
    if not ints[row, J_HAS_NEWEST] or ext > ints[row, J_NEWEST]:
        ints[row, J_NEWEST] = ext
        ints[row, J_HAS_NEWEST] = 1
    if not ints[row, J_HAS_NEWEST_TS]:
        timestamp = rtp_timestamp
        ints[row, J_NEWEST_TS] = timestamp
        ints[row, J_HAS_NEWEST_TS] = 1
    else:
        newest_ts = ints[row, J_NEWEST_TS]
        timestamp = newest_ts + (
            ((rtp_timestamp - newest_ts + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        )
        if timestamp > newest_ts:
            ints[row, J_NEWEST_TS] = timestamp
    oldest_kept = ext - capacity + 1
    if oldest_kept > ints[row, J_NEXT]:
        for other in range(capacity):
            if slots[row, other, SLOT_FULL] and slots[row, other, SLOT_EXT] < oldest_kept:
                slots[row, other, SLOT_FULL] = 0
                ints[row, J_COUNT] -= 1
                ints[row, J_OVERFLOW] += 1
        ints[row, J_NEXT] = oldest_kept
    length = payload.shape[0]
    if length > data.shape[2]:
        length = 0
    slots[row, slot, SLOT_EXT] = ext
    slots[row, slot, SLOT_TS] = timestamp
    slots[row, slot, SLOT_PT] = payload_type
    slots[row, slot, SLOT_LEN] = length
    slots[row, slot, SLOT_FULL] = 1
    data[row, slot, :length] = payload[:length]
    ints[row, J_COUNT] += 1
    rate = ints[row, J_CLOCK_RATE]
    if ext == ints[row, J_LAST_EXT] + 1:
        step = timestamp - ints[row, J_LAST_TS]
        if 0 < step <= rate // 4:
            ints[row, J_FRAME] = step
    ints[row, J_LAST_EXT] = ext
    ints[row, J_LAST_TS] = timestamp
    # The target delay: sliding-window minimum and maximum of the transit times.
    transit = arrival - timestamp / rate
    index = ints[row, J_PUTS]
    ints[row, J_PUTS] = index + 1
    ring = low.shape[1]
    expired = index - ints[row, J_WINDOW]
    for deque, head_column, length_column, sign in (
        (low, J_LOW_HEAD, J_LOW_LEN, 1.0),
        (high, J_HIGH_HEAD, J_HIGH_LEN, -1.0),
    ):
        head = ints[row, head_column]
        count = ints[row, length_column]
        # Drop from the back what the new transit makes irrelevant (>= for the minimum,
        # <= for the maximum), append it, expire the front.
        while count and sign * deque[row, (head + count - 1) % ring, 1] >= sign * transit:
            count -= 1
        deque[row, (head + count) % ring, 0] = index
        deque[row, (head + count) % ring, 1] = transit
        count += 1
        if deque[row, head, 0] <= expired:
            head = (head + 1) % ring
            count -= 1
        ints[row, head_column] = head
        ints[row, length_column] = count
    minimum = low[row, ints[row, J_LOW_HEAD], 1]
    target = high[row, ints[row, J_HIGH_HEAD], 1] - minimum
    if target < floats[row, J_MIN_DELAY]:
        target = floats[row, J_MIN_DELAY]
    elif target > floats[row, J_MAX_DELAY]:
        target = floats[row, J_MAX_DELAY]
    floats[row, J_TARGET] = target
    desired = minimum + target
    offset = floats[row, J_OFFSET]
    if not ints[row, J_HAS_OFFSET] or desired >= offset:
        floats[row, J_OFFSET] = desired
    else:
        floats[row, J_OFFSET] = max(desired, offset - floats[row, J_MAX_STEP])
    ints[row, J_HAS_OFFSET] = 1
    return slot


@njit(cache=True)
def pop(ints, floats, slots, row, now):
    """The slot of the next packet if it is due at ``now``, else -1; the slot is freed
    (its contents stay until the next `add`).

    Missing packets whose playout time has passed are skipped and counted as lost.
    Call until -1 to drain everything due.
    """
    capacity = ints[row, J_CAPACITY]
    rate = ints[row, J_CLOCK_RATE]
    while ints[row, J_COUNT]:
        offset = floats[row, J_OFFSET]
        following = ints[row, J_NEXT]
        slot = following % capacity
        if slots[row, slot, SLOT_FULL] and slots[row, slot, SLOT_EXT] == following:
            if now < slots[row, slot, SLOT_TS] / rate + offset:
                return -1
            slots[row, slot, SLOT_FULL] = 0
            ints[row, J_COUNT] -= 1
            ints[row, J_NEXT] = following + 1
            ints[row, J_PLAYED] += 1
            return slot
        earliest = -1
        for other in range(capacity):
            if slots[row, other, SLOT_FULL] and (
                earliest < 0 or slots[row, other, SLOT_EXT] < slots[row, earliest, SLOT_EXT]
            ):
                earliest = other
        missing = slots[row, earliest, SLOT_EXT] - following
        first_deadline = (
            slots[row, earliest, SLOT_TS] - missing * ints[row, J_FRAME]
        ) / rate + offset
        if now < first_deadline:
            return -1
        skipped = min(missing, int((now - first_deadline) * rate / ints[row, J_FRAME]) + 1)
        ints[row, J_NEXT] = following + skipped
        ints[row, J_LOST] += skipped
    return -1


_NO_PAYLOAD = np.zeros(0, np.uint8)


class JitterBuffer:
    """Reorders RTP packets of one stream and releases them at their playout time."""

    __slots__ = ("_items", "row", "table")

    def __init__(
        self,
        clock_rate: int = 8000,
        min_delay: float = 0.02,
        max_delay: float = 0.2,
        capacity: int = 64,
        window: int = 100,
        max_step: float = 0.0005,
        *,
        table: StreamTable | None = None,
        row: int | None = None,
    ) -> None:
        if not 0 <= min_delay <= max_delay:
            raise ValueError(
                f"jitter buffer needs 0 <= min_delay <= max_delay, got {min_delay}, {max_delay}"
            )
        if capacity < 2:
            raise ValueError(f"jitter buffer capacity must be at least 2, not {capacity}")
        if table is None:
            table = StreamTable(1, capacity=capacity, window=window)
            row = table.take_row()
        assert row is not None
        if capacity > table.capacity or window > table.window:
            raise ValueError("jitter buffer larger than its table")
        self.table = table
        self.row = row
        # What `add` was given for each slot, when the caller keeps its own items
        # (`put`): the table then holds only their places.
        self._items: dict[int, Any] = {}
        ints, floats, _low, _high, slots, _data = table.arrays
        ints[row] = 0
        floats[row] = 0.0
        ints[row, J_CAPACITY] = capacity
        ints[row, J_WINDOW] = window
        ints[row, J_CLOCK_RATE] = clock_rate
        floats[row, J_MIN_DELAY] = min_delay
        floats[row, J_MAX_DELAY] = max_delay
        floats[row, J_MAX_STEP] = max_step
        restart(ints, floats, slots, row, -1)

    def __len__(self) -> int:
        return int(self.table.ints[self.row, J_COUNT])

    @property
    def stats(self) -> JitterBufferStats:
        counters = self.table.ints[self.row]
        return JitterBufferStats(
            received=int(counters[J_RECEIVED]),
            played=int(counters[J_PLAYED]),
            lost=int(counters[J_LOST]),
            late=int(counters[J_LATE]),
            duplicates=int(counters[J_DUPLICATES]),
            overflow=int(counters[J_OVERFLOW]),
            restarts=int(counters[J_RESTARTS]),
        )

    @property
    def target_delay(self) -> float:
        return float(self.table.floats[self.row, J_TARGET])

    def put(self, packet: RtpPacket, arrival: float) -> bool:
        """Store a packet that arrived at ``arrival``; False if it was dropped."""
        return self.add(packet.ssrc, packet.sequence_number, packet.timestamp, packet, arrival)

    def add(
        self, ssrc: int, sequence_number: int, rtp_timestamp: int, item: Any, arrival: float
    ) -> bool:
        """`put` for a packet already taken apart: `pop` hands back ``item``."""
        ints, floats, low, high, slots, data = self.table.arrays
        slot = add(
            ints, floats, low, high, slots, data, self.row, ssrc, sequence_number,
            rtp_timestamp, 0, _NO_PAYLOAD, arrival,
        )  # fmt: skip
        if slot < 0:
            return False
        self._items[slot] = item
        return True

    def pop(self, now: float) -> Any:
        """The next packet (`add`'s item, or (payload type, payload) for a packet the
        table holds) if it is due at ``now``; None if nothing is due.

        Missing packets whose playout time has passed are skipped and counted as lost.
        Call until None to drain everything due.
        """
        ints, floats, _low, _high, slots, data = self.table.arrays
        slot = pop(ints, floats, slots, self.row, now)
        if slot < 0:
            return None
        item = self._items.pop(slot, None)
        if item is None:
            held = slots[self.row, slot]
            return int(held[SLOT_PT]), data[self.row, slot, : held[SLOT_LEN]].tobytes()
        return item
