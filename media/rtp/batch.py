"""What every stream of the media plane receives and sends in a tick, in compiled passes.

`receive_ready` reads the ready sockets of the streams latched to their peers (their
sockets are connected, see `stream`): each G.711 packet goes into its stream's jitter
buffer and reception statistics (`jitterbuffer.add`, `rtcp.update_statistics`) without
a Python object or call per packet; anything else (RFC 4733 events, packets with CSRCs
or header extensions, other payload types, malformed datagrams) is handed back for the
stream's own `take`. `pop_frames` then takes every stream's packet due for playout, and
`send_frames` sends every latched stream its frame (header from the stream's row);
`build_forwarded` does the plane's work as well for the legs of plain two-party bridges
(what one leg said is what the other hears, converted between PCMU and PCMA), ahead of
the tick, and `send_built` sends what it built. The system call per socket remains (one
socket per leg, as SDP gives each its port); what goes is the interpreter's work around
it.
"""

from __future__ import annotations

import functools
import platform
import select

import numpy as np
from numba import njit, types

from media.rtp.jitterbuffer import JitterBuffer, add, pop
from media.rtp.rtcp import ReceiverStatistics, reset_statistics, update_statistics
from media.rtp.table import (
    H_LENGTH,
    H_PAYLOAD_TYPE,
    R_ACTIVE,
    R_SSRC,
    S_CONNECTED,
    S_EVENT_PT,
    S_RECEIVED,
    SLOT_LEN,
    SLOT_PT,
    X_FD,
    X_MARKER,
    X_PAYLOAD_TYPE,
    X_SENT_OCTETS,
    X_SENT_PACKETS,
    X_SEQUENCE,
    X_SSRC,
    X_TIMESTAMP,
)

_send = types.ExternalFunction(
    "send", types.intp(types.intc, types.voidptr, types.uintp, types.intc)
)
_epoll_wait = types.ExternalFunction(
    "epoll_wait", types.intc(types.intc, types.voidptr, types.intc, types.intc)
)
_recv = types.ExternalFunction(
    "recv", types.intp(types.intc, types.voidptr, types.uintp, types.intc)
)
_MSG_DONTWAIT = 0x40
_HEADER = 12
_FRAME = 160  # samples per packet (20 ms at 8 kHz)
RTP, RTCP = 1, 2  # kinds of socket in `poll_ready`'s ``fd_kind``
_RTP = RTP
# struct epoll_event is packed on x86 (12 bytes), padded to 16 elsewhere.
EPOLL_STRIDE = 3 if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686") else 4
_PROBATION = 2  # RFC 3550 A.1: packets in sequence before a new source counts
_CLOCK_RATE = 8000


@njit(cache=True)
def _word(buffer, start, size):
    """The big-endian unsigned integer of ``size`` bytes at ``start``."""
    value = 0
    for index in range(start, start + size):
        value = (value << 8) | np.int64(buffer[index])
    return value


@njit(cache=True)
def take_audio(
    ints,
    floats,
    low,
    high,
    slots,
    data,
    row,
    ssrc,
    sequence_number,
    timestamp,
    payload_type,
    payload,
    arrival,
):
    """One G.711 packet of the stream in ``row``: into its jitter buffer and statistics."""
    add(
        ints, floats, low, high, slots, data, row, ssrc, sequence_number, timestamp,
        payload_type, payload, arrival,
    )  # fmt: skip
    if not ints[row, R_ACTIVE] or ints[row, R_SSRC] != ssrc:
        reset_statistics(ints, floats, row, ssrc, _CLOCK_RATE, _PROBATION)  # a new source
    update_statistics(ints, floats, row, sequence_number, timestamp, arrival)
    ints[row, S_RECEIVED] += 1


@njit(cache=True)
def poll_ready(
    epoll, events, stride, fd_row, fd_kind, fd_mark, fd_reads, mark, reads, ints, ready, rows, rest
):
    """The sockets of an epoll set with something to read: those of latched streams (RTP
    sockets connected to their source) into ``ready`` with their rows, any other into
    ``rest``; returns both counts. A latched stream's socket read ``reads`` times since
    ``mark`` is left alone (a flood: the kernel drops the rest).

    ``events`` is room for the kernel's epoll_event structures as int32 words,
    `EPOLL_STRIDE` words each; the fd registered (Python's `select.epoll` registers the
    fd as the event's data) is the first word of the data, two words from the end.
    """
    count = _epoll_wait(epoll, events.ctypes.data, events.shape[0] // stride, 0)
    batched = 0
    others = 0
    for index in range(max(count, 0)):
        fd = events[index * stride + stride - 2]
        if fd >= fd_kind.shape[0]:
            continue
        row = fd_row[fd]
        if fd_kind[fd] == _RTP and ints[row, S_CONNECTED] == 1:
            if fd_mark[fd] != mark:
                fd_mark[fd] = mark
                fd_reads[fd] = 0
            if fd_reads[fd] >= reads:
                continue
            fd_reads[fd] += 1
            ready[batched] = fd
            rows[batched] = row
            batched += 1
        else:
            rest[others] = fd
            others += 1
    return batched, others


@njit(cache=True)
def receive_ready(fds, rows, ints, floats, low, high, slots, data, scratch, queue, queued, now):
    """Read a datagram from each socket ``fds[i]`` of the stream ``rows[i]``.

    One read per socket: a second would mostly find nothing (a system call for EAGAIN);
    a socket with more stays ready, and `poll_ready` reports it again. Returns how many
    datagrams went into ``queue`` for the caller, each with (index into ``fds``,
    length) in ``queued``.
    """
    count = 0
    limit = data.shape[2] + _HEADER
    for index in range(fds.shape[0]):
        row = rows[index]
        size = _recv(fds[index], scratch.ctypes.data, scratch.shape[0], _MSG_DONTWAIT)
        if size < 0:  # nothing after all, or an ICMP error reported on this read
            continue
        payload_type = scratch[1] & 0x7F
        if (
            _HEADER < size <= limit
            and scratch[0] == 0x80
            and (payload_type == 0 or payload_type == 8)
            and payload_type != ints[row, S_EVENT_PT]
        ):
            sequence_number = _word(scratch, 2, 2)
            timestamp = _word(scratch, 4, 4)
            ssrc = _word(scratch, 8, 4)
            take_audio(
                ints, floats, low, high, slots, data, row, ssrc, sequence_number,
                timestamp, payload_type, scratch[_HEADER:size], now,
            )  # fmt: skip
        else:
            queue[count, :size] = scratch[:size]
            queued[count, 0] = index
            queued[count, 1] = size
            count += 1
    return count


@njit(cache=True)
def pop_frames(rows, ints, floats, slots, data, held, now):
    """Each stream's packet due at ``now`` into its row of ``held`` (the frame the stream
    said in this tick), with its payload type and length in H_PAYLOAD_TYPE and
    H_LENGTH; payload type -1 where nothing is due."""
    for index in range(rows.shape[0]):
        row = rows[index]
        slot = pop(ints, floats, slots, row, now)
        if slot < 0:
            ints[row, H_PAYLOAD_TYPE] = -1
            continue
        length = slots[row, slot, SLOT_LEN]
        ints[row, H_PAYLOAD_TYPE] = slots[row, slot, SLOT_PT]
        ints[row, H_LENGTH] = length
        held[row, :length] = data[row, slot, :length]


@njit(cache=True)
def send_frames(rows, payloads, sizes, ints, packet):
    """Send stream ``rows[i]`` the RTP packet of payload ``payloads[i, :sizes[i]]`` on its
    connected socket, and count it as `RtpStream.send_payload` does. ``packet`` is
    scratch space. A failed send is not retried (RTP is best effort)."""
    for index in range(rows.shape[0]):
        size = sizes[index]
        packet[_HEADER : _HEADER + size] = payloads[index, :size]
        _send_packet(ints, rows[index], packet, size)


@njit(cache=True)
def build_forwarded(rows, peers, ints, held, convert, packets, fds):
    """Stream ``rows[i]``'s next packet into ``packets[i]`` (header and 20 ms of payload)
    and its socket into ``fds[i]``: what stream ``peers[i]`` said in the last tick (its
    held frame, in the other G.711 law converted through ``convert``: [0] PCMU to PCMA,
    [1] PCMA to PCMU), or silence. A two-party bridge with no Python per packet; built
    after a tick's receiving, so that at the next tick only the sends remain
    (`send_built`), out of contiguous memory."""
    for index in range(rows.shape[0]):
        row = rows[index]
        peer = peers[index]
        packet = packets[index]
        wanted = ints[row, X_PAYLOAD_TYPE]
        said = ints[peer, H_PAYLOAD_TYPE]
        payload = packet[_HEADER : _HEADER + _FRAME]
        if said < 0 or ints[peer, H_LENGTH] != _FRAME:
            payload[:] = 0xFF if wanted == 0 else 0xD5
        elif said == wanted:
            payload[:] = held[peer, :_FRAME]
        else:
            law = convert[0 if said == 0 else 1]
            for sample in range(_FRAME):
                payload[sample] = law[held[peer, sample]]
        _put_header(ints, row, packet)
        fds[index] = ints[row, X_FD]


@njit(cache=True)
def send_built(rows, ints, packets, fds):
    """Send what `build_forwarded` built, then count each stream's packet as sent (its
    sequence number, timestamp and counters move on, as `_send_packet` does)."""
    for index in range(fds.shape[0]):
        _send(fds[index], packets[index].ctypes.data, _HEADER + _FRAME, _MSG_DONTWAIT)
    for index in range(rows.shape[0]):
        _count_sent(ints, rows[index], _FRAME)


@njit(cache=True)
def _put_header(ints, row, packet):
    """Stream ``row``'s RTP header for its next packet, at the start of ``packet``."""
    packet[0] = 0x80
    packet[1] = ints[row, X_PAYLOAD_TYPE] | (0x80 if ints[row, X_MARKER] else 0)
    _put_word(packet, 2, 2, ints[row, X_SEQUENCE])
    _put_word(packet, 4, 4, ints[row, X_TIMESTAMP])
    _put_word(packet, 8, 4, ints[row, X_SSRC])


@njit(cache=True)
def _count_sent(ints, row, size):
    ints[row, X_MARKER] = 0
    ints[row, X_SEQUENCE] = (ints[row, X_SEQUENCE] + 1) & 0xFFFF
    ints[row, X_TIMESTAMP] = (ints[row, X_TIMESTAMP] + _FRAME) & 0xFFFFFFFF
    ints[row, X_SENT_PACKETS] += 1
    ints[row, X_SENT_OCTETS] += size


@njit(cache=True)
def _send_packet(ints, row, packet, size):
    """Put stream ``row``'s RTP header before the ``size`` bytes of payload in ``packet``,
    send it on the stream's connected socket and count it."""
    _put_header(ints, row, packet)
    _send(ints[row, X_FD], packet.ctypes.data, _HEADER + size, _MSG_DONTWAIT)
    _count_sent(ints, row, size)


@njit(cache=True)
def _put_word(buffer, start, size, value):
    """Write ``value`` as a big-endian unsigned integer of ``size`` bytes at ``start``."""
    for index in range(start + size - 1, start - 1, -1):
        buffer[index] = value & 0xFF
        value >>= 8


@functools.cache
def warm_up() -> None:
    """Load (or compile) every compiled function a node calls, with every argument type it
    calls it with, now: not in the first tick of a call (a compilation takes seconds).
    `make` runs this once after installing, so the node only loads them; in a process,
    the first call does the work."""
    buffer = JitterBuffer(capacity=2, window=1)
    buffer.add(1, 0, 0, "item", 0.0)
    buffer.pop(1.0)
    ReceiverStatistics(1, 8000).update(0, 0, 0.0)
    table, row = buffer.table, buffer.row
    frames = np.zeros((1, table.max_payload), np.uint8)
    queue = np.zeros((1, 16), np.uint8)
    queued = np.zeros((1, 2), np.int64)
    nothing = np.zeros(0, np.int64)
    epoll = select.epoll()
    try:
        poll_ready(
            epoll.fileno(), np.zeros(4 * EPOLL_STRIDE, np.int32), EPOLL_STRIDE, nothing,
            np.zeros(0, np.int8), nothing, nothing, 1, 1, table.ints, nothing, nothing, nothing,
        )  # fmt: skip
    finally:
        epoll.close()
    receive_ready(nothing, nothing, *table.arrays, queue[0], queue, queued, 0.0)
    take_audio(*table.arrays, row, 1, 0, 0, 0, frames[0, :0], 0.0)  # from the pass
    take_audio(*table.arrays, row, 1, 1, 0, 0, np.frombuffer(b"", np.uint8), 0.0)  # a stream
    ints, floats, _low, _high, slots, data = table.arrays
    rows = np.array([row])
    pop_frames(rows, ints, floats, slots, data, table.held, 1.0)
    ints[row, X_FD] = -1  # a failed send (EBADF), nothing else
    send_frames(rows, frames, np.array([0]), ints, frames[0])
    joined = np.frombuffer(bytes(frames[:1].tobytes()), np.uint8).reshape(1, -1)  # read-only
    send_frames(rows, joined, np.array([0]), ints, frames[0])
    packets = np.zeros((1, _HEADER + _FRAME), np.uint8)
    fds = np.zeros(1, np.int64)
    build_forwarded(rows, rows, ints, table.held, np.zeros((2, 256), np.uint8), packets, fds)
    send_built(rows, ints, packets, fds)
