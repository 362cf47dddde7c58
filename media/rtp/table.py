"""The state of many RTP streams in arrays, one row per stream.

A media node receives 50 packets a second on each of its legs; putting a packet into a
jitter buffer and counting it for RTCP is a few dozen steps, and as Python objects those
steps cost more than the packet's system calls. So the state of every stream's jitter
buffer, reception statistics and sender (sequence number, timestamp) is a row of a few
arrays, and the steps are compiled functions over them (`jitterbuffer`, `rtcp`,
`batch`): the media plane hands them all ready sockets and all frames to send of a
tick at once, and no Python runs per packet.

`JitterBuffer` and `ReceiverStatistics` are views of one row: a stream's row in the
process's shared table (`shared()`), or a row of a table of their own when made alone.

Columns are named by the integer constants below: ``ints[row, J_NEXT]``.
"""

from __future__ import annotations

import threading

import numpy as np
from numpy.typing import NDArray

# Integer columns. J_: jitter buffer, R_: reception statistics, S_: the stream.
(
    J_HAS_SSRC,
    J_SSRC,
    J_HAS_NEWEST,
    J_NEWEST,  # extended (unwrapped) sequence number
    J_NEXT,
    J_HAS_NEWEST_TS,
    J_NEWEST_TS,  # extended timestamp
    J_LAST_EXT,
    J_LAST_TS,
    J_PUTS,
    J_FRAME,
    J_COUNT,  # packets held
    J_LOW_HEAD,  # monotonic deques of (put index, transit) as rings: head, length
    J_LOW_LEN,
    J_HIGH_HEAD,
    J_HIGH_LEN,
    J_HAS_OFFSET,
    J_RECEIVED,
    J_PLAYED,
    J_LOST,
    J_LATE,
    J_DUPLICATES,
    J_OVERFLOW,
    J_RESTARTS,
    J_CAPACITY,
    J_WINDOW,
    J_CLOCK_RATE,
    R_ACTIVE,
    R_SSRC,
    R_CLOCK_RATE,
    R_PROBATION,
    R_HAS_MAX,
    R_MAX_SEQ,
    R_BASE_SEQ,
    R_BAD_SEQ,
    R_CYCLES,
    R_RECEIVED,
    R_RECEIVED_PRIOR,
    R_EXPECTED_PRIOR,
    R_HAS_TRANSIT,
    R_LAST_TIMESTAMP,
    R_LAST_SR,
    S_RECEIVED,
    S_IGNORED,
    S_EVENT_PT,  # the telephone-event payload type, -1 without
    S_CONNECTED,  # its socket is connected to the source it latched to
    X_FD,  # X_: sending; the RTP socket, -1 without one
    X_SSRC,
    X_SEQUENCE,
    X_TIMESTAMP,
    X_MARKER,
    X_PAYLOAD_TYPE,
    X_BY_STREAM,  # the stream sends its packets itself (digits queued, or not sending)
    X_SENT_PACKETS,
    X_SENT_OCTETS,
    H_PAYLOAD_TYPE,  # H_: the frame due for playout in the last tick, in `held`; -1: none
    H_LENGTH,
    INT_COLUMNS,
) = range(58)

# Float columns.
(
    J_OFFSET,
    J_TARGET,
    J_MIN_DELAY,
    J_MAX_DELAY,
    J_MAX_STEP,
    R_JITTER,
    R_LAST_TRANSIT,
    R_LAST_SR_ARRIVAL,
    X_NEXT_REPORT,  # when the next RTCP report is due, -1 before the first packet
    FLOAT_COLUMNS,
) = range(10)

# Slot columns: a held packet's extended sequence number, timestamp, payload type,
# payload length, and whether the slot holds it.
SLOT_EXT, SLOT_TS, SLOT_PT, SLOT_LEN, SLOT_FULL, SLOT_COLUMNS = range(6)

CAPACITY = 64  # packets a jitter buffer holds
WINDOW = 100  # packets its target delay looks back on
MAX_PAYLOAD = 480  # 60 ms of G.711; a longer packet is not taken


class StreamTable:
    """Rows of stream state; grows by doubling, rows are reused after `free`."""

    def __init__(
        self,
        rows: int = 16,
        *,
        capacity: int = CAPACITY,
        window: int = WINDOW,
        max_payload: int = MAX_PAYLOAD,
    ) -> None:
        self.capacity = capacity
        self.window = window
        self.max_payload = max_payload
        self._lock = threading.Lock()
        self._free: list[int] = []
        self._used = 0
        self._allocate(rows)

    def _allocate(self, rows: int) -> None:
        ring = self.window + 1
        self.ints: NDArray[np.int64] = np.zeros((rows, INT_COLUMNS), np.int64)
        self.floats: NDArray[np.float64] = np.zeros((rows, FLOAT_COLUMNS), np.float64)
        self.low: NDArray[np.float64] = np.zeros((rows, ring, 2), np.float64)
        self.high: NDArray[np.float64] = np.zeros((rows, ring, 2), np.float64)
        self.slots: NDArray[np.int64] = np.zeros((rows, self.capacity, SLOT_COLUMNS), np.int64)
        self.data: NDArray[np.uint8] = np.zeros((rows, self.capacity, self.max_payload), np.uint8)
        self.held: NDArray[np.uint8] = np.zeros((rows, self.max_payload), np.uint8)

    def _grow(self) -> None:
        old = (self.ints, self.floats, self.low, self.high, self.slots, self.data, self.held)
        self._allocate(2 * len(self.ints))
        grown = (self.ints, self.floats, self.low, self.high, self.slots, self.data, self.held)
        for array, kept in zip(grown, old, strict=True):
            array[: len(kept)] = kept

    def take_row(self) -> int:
        with self._lock:
            if self._free:
                return self._free.pop()
            if self._used == len(self.ints):
                self._grow()
            self._used += 1
            return self._used - 1

    def free(self, row: int) -> None:
        with self._lock:
            self._free.append(row)

    @property
    def arrays(
        self,
    ) -> tuple[
        NDArray[np.int64],
        NDArray[np.float64],
        NDArray[np.float64],
        NDArray[np.float64],
        NDArray[np.int64],
        NDArray[np.uint8],
    ]:
        """What the compiled functions take, in their order (the current arrays: a table
        that grew has new ones)."""
        return self.ints, self.floats, self.low, self.high, self.slots, self.data


_SHARED: StreamTable | None = None
_SHARED_LOCK = threading.Lock()


def shared() -> StreamTable:
    """The table of every `RtpStream` of the process (the media plane reads them together)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = StreamTable(256)
        return _SHARED
