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
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from media.rtp.packet import RtpPacket

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


class JitterBuffer:
    """Reorders RTP packets of one stream and releases them at their playout time."""

    __slots__ = (
        "_frame",
        "_last_ext",
        "_last_ts",
        "_max_transit",
        "_min_transit",
        "_newest_seq",
        "_newest_ts",
        "_next",
        "_offset",
        "_packets",
        "_puts",
        "_ssrc",
        "capacity",
        "clock_rate",
        "max_delay",
        "max_step",
        "min_delay",
        "stats",
        "target_delay",
        "window",
    )

    def __init__(
        self,
        clock_rate: int = 8000,
        min_delay: float = 0.02,
        max_delay: float = 0.2,
        capacity: int = 64,
        window: int = 100,
        max_step: float = 0.0005,
    ) -> None:
        if not 0 <= min_delay <= max_delay:
            raise ValueError(
                f"jitter buffer needs 0 <= min_delay <= max_delay, got {min_delay}, {max_delay}"
            )
        if capacity < 2:
            raise ValueError(f"jitter buffer capacity must be at least 2, not {capacity}")
        self.clock_rate = clock_rate
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.capacity = capacity
        self.window = window
        self.max_step = max_step
        self.stats = JitterBufferStats()
        self._restart(None)

    def _restart(self, ssrc: int | None) -> None:
        self._ssrc = ssrc
        self._newest_seq: int | None = None  # extended (unwrapped) sequence number
        self._newest_ts: int | None = None  # extended timestamp
        self._packets: dict[int, tuple[Any, int]] = {}
        self._next: int | None = None
        self._offset: float | None = None
        self._frame = self.clock_rate // 50
        self._last_ext = -2
        self._last_ts = 0
        self._puts = 0
        # Monotonic deques of (put index, transit): sliding-window minimum and maximum.
        self._min_transit: deque[tuple[int, float]] = deque()
        self._max_transit: deque[tuple[int, float]] = deque()
        self.target_delay = self.min_delay

    def __len__(self) -> int:
        return len(self._packets)

    def put(self, packet: RtpPacket, arrival: float) -> bool:
        """Store a packet that arrived at ``arrival``; False if it was dropped."""
        return self.add(packet.ssrc, packet.sequence_number, packet.timestamp, packet, arrival)

    def add(
        self, ssrc: int, sequence_number: int, rtp_timestamp: int, item: Any, arrival: float
    ) -> bool:
        """`put` for a packet already taken apart: `pop` hands back ``item``.

        Called for every packet of every leg, so the wrap-around arithmetic of
        `media.rtp.sequence` and the window update are written out here, not called.
        """
        stats = self.stats
        stats.received += 1
        if ssrc != self._ssrc:
            if self._ssrc is not None:
                stats.restarts += 1
            self._restart(ssrc)
        newest = self._newest_seq
        if newest is None:
            ext = sequence_number
            self._next = ext
        else:
            # Placed on the side of the newest sequence number it is closest to.
            ext = newest + (((sequence_number - newest + 0x8000) & 0xFFFF) - 0x8000)
            ahead = ext - self._next  # type: ignore[operator]
            if ahead < -_MAX_MISORDER or ahead > _MAX_DROPOUT:
                stats.restarts += 1
                self._restart(ssrc)
                ext = sequence_number
                self._next = ext
            elif ahead < 0:
                stats.late += 1
                return False
        packets = self._packets
        if ext in packets:
            stats.duplicates += 1
            return False
        newest = self._newest_seq
        if newest is None or ext > newest:
            self._newest_seq = ext
        newest_ts = self._newest_ts
        if newest_ts is None:
            timestamp = self._newest_ts = rtp_timestamp
        else:
            timestamp = newest_ts + (
                ((rtp_timestamp - newest_ts + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            )
            if timestamp > newest_ts:
                self._newest_ts = timestamp
        oldest_kept = ext - self.capacity + 1
        if oldest_kept > self._next:  # type: ignore[operator]
            for key in [key for key in packets if key < oldest_kept]:
                del packets[key]
                stats.overflow += 1
            self._next = oldest_kept
        packets[ext] = (item, timestamp)
        rate = self.clock_rate
        if ext == self._last_ext + 1:  # type: ignore[operator]
            step = timestamp - self._last_ts
            if 0 < step <= rate // 4:
                self._frame = step
        self._last_ext = ext
        self._last_ts = timestamp
        # The target delay: sliding-window minimum and maximum of the transit times.
        transit = arrival - timestamp / rate
        index = self._puts
        self._puts = index + 1
        low = self._min_transit
        high = self._max_transit
        while low and low[-1][1] >= transit:
            low.pop()
        low.append((index, transit))
        while high and high[-1][1] <= transit:
            high.pop()
        high.append((index, transit))
        expired = index - self.window
        if low[0][0] <= expired:
            low.popleft()
        if high[0][0] <= expired:
            high.popleft()
        minimum = low[0][1]
        target = high[0][1] - minimum
        if target < self.min_delay:
            target = self.min_delay
        elif target > self.max_delay:
            target = self.max_delay
        self.target_delay = target
        desired = minimum + target
        offset = self._offset
        if offset is None or desired >= offset:
            self._offset = desired
        else:
            self._offset = max(desired, offset - self.max_step)
        return True

    def pop(self, now: float) -> Any:
        """The next packet (or `add`'s item) if it is due at ``now``; None if nothing is due.

        Missing packets whose playout time has passed are skipped and counted as lost.
        Call until None to drain everything due.
        """
        packets = self._packets
        while packets:
            rate = self.clock_rate
            offset = self._offset
            assert offset is not None and self._next is not None
            entry = packets.get(self._next)
            if entry is not None:
                if now < entry[1] / rate + offset:
                    return None
                del packets[self._next]
                self._next += 1
                self.stats.played += 1
                return entry[0]
            earliest = min(packets)
            missing = earliest - self._next
            first_deadline = (packets[earliest][1] - missing * self._frame) / rate + offset
            if now < first_deadline:
                return None
            skipped = min(missing, int((now - first_deadline) * rate / self._frame) + 1)
            self._next += skipped
            self.stats.lost += skipped
        return None
