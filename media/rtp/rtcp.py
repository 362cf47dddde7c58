"""RTCP (RFC 3550 section 6): SR, RR, SDES, BYE, compound packets, receiver statistics.

Wire structures are small classes with ``parse()``/``serialize()``; `parse_compound`
splits a datagram into them and keeps packet types it does not model (APP, feedback,
XR) as `RtcpUnknown`, so nothing a peer sends makes it fail. `ReceiverStatistics`
keeps the per-source counters of RFC 3550 appendix A.1, A.3 and A.8 from
(sequence number, RTP timestamp, arrival time) with the arrival time passed in.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from numba import njit

from media.rtp.packet import RTP_VERSION, RtpParseError
from media.rtp.table import (
    R_ACTIVE,
    R_BAD_SEQ,
    R_BASE_SEQ,
    R_CLOCK_RATE,
    R_CYCLES,
    R_EXPECTED_PRIOR,
    R_HAS_MAX,
    R_HAS_TRANSIT,
    R_JITTER,
    R_LAST_SR,
    R_LAST_SR_ARRIVAL,
    R_LAST_TIMESTAMP,
    R_LAST_TRANSIT,
    R_MAX_SEQ,
    R_PROBATION,
    R_RECEIVED,
    R_RECEIVED_PRIOR,
    R_SSRC,
    StreamTable,
)

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203

SDES_CNAME = 1

# Seconds between the NTP epoch (1900) and the Unix epoch (1970).
NTP_UNIX_OFFSET = 2_208_988_800

_COMMON_HEADER = struct.Struct("!BBH")
_SENDER_INFO = struct.Struct("!IQIII")
_REPORT_BLOCK = struct.Struct("!IIIIII")
_SSRC = struct.Struct("!I")


class RtcpParseError(RtpParseError):
    """Malformed RTCP bytes; the message names the packet and field."""


def ntp_timestamp(unix_time: float) -> int:
    """The 64-bit NTP timestamp (32.32 fixed point) for a Unix time in seconds."""
    return int((unix_time + NTP_UNIX_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


def _header(packet_type: int, count: int, body_size: int) -> bytes:
    if body_size % 4:
        raise ValueError(f"RTCP packet body must be a multiple of 4 bytes, not {body_size}")
    if not 0 <= count <= 31:
        raise ValueError(f"RTCP packet type {packet_type} holds at most 31 items, not {count}")
    return _COMMON_HEADER.pack((RTP_VERSION << 6) | count, packet_type, body_size // 4)


def _pad32(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """A reception report about one source (RFC 3550 6.4.1).

    ``packets_lost`` is signed (duplicates can make it negative); ``jitter``, ``lsr`` and
    ``dlsr`` are in wire units (timestamp units, NTP middle 32 bits, 1/65536 s).
    """

    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int
    lsr: int = 0
    dlsr: int = 0

    @classmethod
    def parse(cls, data: bytes | memoryview, offset: int = 0) -> ReportBlock:
        ssrc, lost, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        cumulative = lost & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 0x1000000
        return cls(ssrc, lost >> 24, cumulative, highest, jitter, lsr, dlsr)

    def serialize(self) -> bytes:
        if not 0 <= self.fraction_lost <= 255:
            raise ValueError(f"fraction_lost must be 0 to 255, not {self.fraction_lost}")
        if not -0x800000 <= self.packets_lost <= 0x7FFFFF:
            raise ValueError(f"packets_lost must fit 24 signed bits, not {self.packets_lost}")
        lost = (self.fraction_lost << 24) | (self.packets_lost & 0xFFFFFF)
        return _REPORT_BLOCK.pack(
            self.ssrc, lost, self.highest_sequence, self.jitter, self.lsr, self.dlsr
        )


def _parse_report_blocks(body: memoryview, offset: int, count: int, what: str) -> list:
    if offset + 24 * count > len(body):
        raise RtcpParseError(
            f"RTCP {what} announces {count} report blocks ({24 * count} bytes) but only "
            f"{len(body) - offset} bytes follow"
        )
    return [ReportBlock.parse(body, offset + 24 * i) for i in range(count)]


@dataclass(slots=True)
class SenderReport:
    """RTCP SR (RFC 3550 6.4.1). Profile-specific extensions after the blocks are kept."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[ReportBlock] = field(default_factory=list)
    extension: bytes = b""

    packet_type = RTCP_SR

    @classmethod
    def parse_body(cls, count: int, body: memoryview) -> SenderReport:
        if len(body) < 24:
            raise RtcpParseError(f"RTCP SR body is {len(body)} bytes; it needs at least 24")
        ssrc, ntp, rtp, packets, octets = _SENDER_INFO.unpack_from(body)
        reports = _parse_report_blocks(body, 24, count, "SR")
        return cls(ssrc, ntp, rtp, packets, octets, reports, bytes(body[24 + 24 * count :]))

    def serialize(self) -> bytes:
        body = b"".join(
            [
                _SENDER_INFO.pack(
                    self.ssrc,
                    self.ntp_timestamp,
                    self.rtp_timestamp,
                    self.packet_count,
                    self.octet_count,
                ),
                *(block.serialize() for block in self.reports),
                self.extension,
            ]
        )
        return _header(RTCP_SR, len(self.reports), len(body)) + body


@dataclass(slots=True)
class ReceiverReport:
    """RTCP RR (RFC 3550 6.4.2)."""

    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)
    extension: bytes = b""

    packet_type = RTCP_RR

    @classmethod
    def parse_body(cls, count: int, body: memoryview) -> ReceiverReport:
        if len(body) < 4:
            raise RtcpParseError(f"RTCP RR body is {len(body)} bytes; it needs at least 4")
        reports = _parse_report_blocks(body, 4, count, "RR")
        return cls(_SSRC.unpack_from(body)[0], reports, bytes(body[4 + 24 * count :]))

    def serialize(self) -> bytes:
        body = b"".join(
            [_SSRC.pack(self.ssrc), *(block.serialize() for block in self.reports), self.extension]
        )
        return _header(RTCP_RR, len(self.reports), len(body)) + body


@dataclass(slots=True)
class SdesChunk:
    """The SDES items of one source: (item type, value) pairs in wire order."""

    ssrc: int
    items: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def cname(self) -> bytes | None:
        """The CNAME item's value, or None when the chunk has none."""
        for item_type, value in self.items:
            if item_type == SDES_CNAME:
                return value
        return None


@dataclass(slots=True)
class SourceDescription:
    """RTCP SDES (RFC 3550 6.5)."""

    chunks: list[SdesChunk] = field(default_factory=list)

    packet_type = RTCP_SDES

    @classmethod
    def parse_body(cls, count: int, body: memoryview) -> SourceDescription:
        chunks = []
        offset = 0
        size = len(body)
        for index in range(count):
            if offset + 4 > size:
                raise RtcpParseError(
                    f"RTCP SDES announces {count} chunks but ends in chunk {index + 1}"
                )
            chunk = SdesChunk(_SSRC.unpack_from(body, offset)[0])
            offset += 4
            while True:
                if offset >= size:
                    raise RtcpParseError(
                        f"RTCP SDES chunk {index + 1} has no terminating null item"
                    )
                item_type = body[offset]
                if item_type == 0:
                    # The null item and the padding after it fill to a 32-bit boundary.
                    offset += 4 - offset % 4
                    break
                if offset + 2 > size or offset + 2 + body[offset + 1] > size:
                    raise RtcpParseError(
                        f"RTCP SDES item of type {item_type} in chunk {index + 1} runs past "
                        "the end of the packet"
                    )
                length = body[offset + 1]
                chunk.items.append((item_type, bytes(body[offset + 2 : offset + 2 + length])))
                offset += 2 + length
            chunks.append(chunk)
        return cls(chunks)

    def serialize(self) -> bytes:
        parts = []
        for chunk in self.chunks:
            data = bytearray(_SSRC.pack(chunk.ssrc))
            for item_type, value in chunk.items:
                if not 1 <= item_type <= 255 or len(value) > 255:
                    raise ValueError(
                        f"SDES item type must be 1 to 255 and its value at most 255 bytes; "
                        f"got type {item_type}, {len(value)} bytes"
                    )
                data += bytes((item_type, len(value))) + value
            data += bytes(4 - len(data) % 4)
            parts.append(bytes(data))
        body = b"".join(parts)
        return _header(RTCP_SDES, len(self.chunks), len(body)) + body


@dataclass(slots=True)
class Bye:
    """RTCP BYE (RFC 3550 6.6)."""

    sources: list[int] = field(default_factory=list)
    reason: bytes = b""

    packet_type = RTCP_BYE

    @classmethod
    def parse_body(cls, count: int, body: memoryview) -> Bye:
        end = 4 * count
        if end > len(body):
            raise RtcpParseError(
                f"RTCP BYE announces {count} sources ({end} bytes) but has {len(body)}"
            )
        sources = list(struct.unpack_from(f"!{count}I", body))
        reason = b""
        if end < len(body):
            length = body[end]
            if end + 1 + length > len(body):
                raise RtcpParseError(
                    f"RTCP BYE reason length is {length} but {len(body) - end - 1} bytes remain"
                )
            reason = bytes(body[end + 1 : end + 1 + length])
        return cls(sources, reason)

    def serialize(self) -> bytes:
        if len(self.reason) > 255:
            raise ValueError(f"BYE reason is at most 255 bytes, not {len(self.reason)}")
        body = struct.pack(f"!{len(self.sources)}I", *self.sources)
        if self.reason:
            body += _pad32(bytes((len(self.reason),)) + self.reason)
        return _header(RTCP_BYE, len(self.sources), len(body)) + body


@dataclass(slots=True)
class RtcpUnknown:
    """A packet type not modelled here (APP, RTPFB, PSFB, XR ...), kept as its body."""

    packet_type: int
    count: int
    body: bytes

    def serialize(self) -> bytes:
        return _header(self.packet_type, self.count, len(self.body)) + self.body


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | RtcpUnknown

_PARSERS = {
    RTCP_SR: SenderReport.parse_body,
    RTCP_RR: ReceiverReport.parse_body,
    RTCP_SDES: SourceDescription.parse_body,
    RTCP_BYE: Bye.parse_body,
}


def parse_compound(data: bytes | bytearray | memoryview) -> list[RtcpPacket]:
    """Split and parse a compound RTCP datagram (RFC 3550 6.1).

    Padding is accepted on the last packet only, as appendix A.2 requires. The first
    packet is not required to be SR or RR, so reduced-size RTCP (RFC 5506) parses too.
    """
    view = memoryview(data)
    size = len(view)
    if size < 4:
        raise RtcpParseError(f"RTCP datagram is {size} bytes; a packet header needs 4")
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < size:
        if offset + 4 > size:
            raise RtcpParseError(
                f"RTCP datagram has {size - offset} stray bytes after packet {len(packets)}"
            )
        first, packet_type, words = _COMMON_HEADER.unpack_from(view, offset)
        index = len(packets) + 1
        if first >> 6 != RTP_VERSION:
            raise RtcpParseError(
                f"RTCP packet {index} has version {first >> 6}; only {RTP_VERSION} is valid"
            )
        end = offset + 4 + 4 * words
        if end > size:
            raise RtcpParseError(
                f"RTCP packet {index} (type {packet_type}) has length {words} words "
                f"({4 * words} bytes) but {size - offset - 4} bytes remain"
            )
        body_end = end
        if first & 0x20:
            if end != size:
                raise RtcpParseError(
                    f"RTCP packet {index} has the padding bit set but is not the last packet"
                )
            padding = view[end - 1]
            if padding == 0 or padding > 4 * words:
                raise RtcpParseError(
                    f"RTCP packet {index} padding count is {padding}; valid is 1 to {4 * words}"
                )
            body_end = end - padding
        body = view[offset + 4 : body_end]
        count = first & 0x1F
        parser = _PARSERS.get(packet_type)
        if parser is None:
            packets.append(RtcpUnknown(packet_type, count, bytes(body)))
        else:
            packets.append(parser(count, body))
        offset = end
    return packets


def serialize_compound(packets: list[RtcpPacket]) -> bytes:
    """The wire form of a compound RTCP packet (no padding)."""
    return b"".join(packet.serialize() for packet in packets)


# RFC 3550 appendix A.1 constants.
_MAX_DROPOUT = 3000
_MAX_MISORDER = 100
_MIN_SEQUENTIAL = 2
_SEQ_MOD = 1 << 16


@njit(cache=True)
def reset_statistics(ints, floats, row, ssrc, clock_rate, probation):
    """Start counting a new source in ``row``."""
    ints[row, R_ACTIVE] = 1
    ints[row, R_SSRC] = ssrc
    ints[row, R_CLOCK_RATE] = clock_rate
    ints[row, R_PROBATION] = probation
    _init_seq(ints, row, 0)
    ints[row, R_HAS_MAX] = 0  # no packet seen yet
    ints[row, R_HAS_TRANSIT] = 0
    ints[row, R_LAST_TIMESTAMP] = 0
    ints[row, R_LAST_SR] = 0
    floats[row, R_JITTER] = 0.0
    floats[row, R_LAST_TRANSIT] = 0.0
    floats[row, R_LAST_SR_ARRIVAL] = 0.0


@njit(cache=True)
def _init_seq(ints, row, seq):
    ints[row, R_BASE_SEQ] = seq
    ints[row, R_MAX_SEQ] = seq
    ints[row, R_HAS_MAX] = 1
    ints[row, R_BAD_SEQ] = _SEQ_MOD + 1
    ints[row, R_CYCLES] = 0
    ints[row, R_RECEIVED] = 0
    ints[row, R_RECEIVED_PRIOR] = 0
    ints[row, R_EXPECTED_PRIOR] = 0


@njit(cache=True)
def _update_seq(ints, row, seq):
    """RFC 3550 A.1: whether the packet counts (probation over, no unconfirmed jump)."""
    if not ints[row, R_HAS_MAX]:
        _init_seq(ints, row, seq)
        if ints[row, R_PROBATION] == 0:
            return True
        ints[row, R_MAX_SEQ] = (seq - 1) & 0xFFFF
    max_seq = ints[row, R_MAX_SEQ]
    if ints[row, R_PROBATION]:
        if seq == (max_seq + 1) & 0xFFFF:
            ints[row, R_PROBATION] -= 1
            ints[row, R_MAX_SEQ] = seq
            if ints[row, R_PROBATION] == 0:
                _init_seq(ints, row, seq)
                return True
        else:
            ints[row, R_PROBATION] = _MIN_SEQUENTIAL - 1
            ints[row, R_MAX_SEQ] = seq
        return False
    udelta = (seq - max_seq) & 0xFFFF
    if udelta < _MAX_DROPOUT:
        if seq < max_seq:
            ints[row, R_CYCLES] += _SEQ_MOD
        ints[row, R_MAX_SEQ] = seq
    elif udelta <= _SEQ_MOD - _MAX_MISORDER:
        if seq == ints[row, R_BAD_SEQ]:
            # Two sequential packets after a big jump: the source restarted.
            _init_seq(ints, row, seq)
        else:
            ints[row, R_BAD_SEQ] = (seq + 1) & 0xFFFF
            return False
    return True


@njit(cache=True)
def update_statistics(ints, floats, row, sequence_number, timestamp, arrival):
    """Account one received packet; False if it was not counted (probation, jump)."""
    if not _update_seq(ints, row, sequence_number):
        return False
    ints[row, R_RECEIVED] += 1
    # A.8: transit in timestamp units; only differences matter, so the arrival clock's
    # origin is irrelevant. Unwrapping against the last timestamp keeps the difference
    # right across the 2**32 wrap.
    arrival_units = arrival * ints[row, R_CLOCK_RATE]
    if not ints[row, R_HAS_TRANSIT]:
        transit = arrival_units - timestamp
        unwrapped = timestamp
    else:
        last = ints[row, R_LAST_TIMESTAMP]
        unwrapped = last + (((timestamp - last + 0x80000000) & 0xFFFFFFFF) - 0x80000000)
        transit = arrival_units - unwrapped
        floats[row, R_JITTER] += (
            abs(transit - floats[row, R_LAST_TRANSIT]) - floats[row, R_JITTER]
        ) / 16.0
    floats[row, R_LAST_TRANSIT] = transit
    ints[row, R_HAS_TRANSIT] = 1
    ints[row, R_LAST_TIMESTAMP] = unwrapped
    return True


class ReceiverStatistics:
    """Reception statistics for one source, per RFC 3550 appendix A.1, A.3 and A.8.

    Feed every RTP packet of the source with `update`; arrival times are seconds on any
    monotonic clock, passed in. `report_block` produces the block for the next SR/RR and
    starts a new interval for the fraction lost. A new source must be seen in sequence
    ``probation`` times before its packets count (A.1); a jump of more than 3000 is taken
    as a restart only once two packets in sequence confirm it.

    The counters are a row of a `StreamTable` (a stream's, or one of its own), so that
    the media plane updates every stream's in one compiled pass (`update_statistics`).
    """

    __slots__ = ("row", "table")

    def __init__(
        self,
        ssrc: int,
        clock_rate: int,
        probation: int = _MIN_SEQUENTIAL,
        *,
        table: StreamTable | None = None,
        row: int | None = None,
    ) -> None:
        if table is None:
            table = StreamTable(1, capacity=2, window=1)
            row = table.take_row()
            reset_statistics(table.ints, table.floats, row, ssrc, clock_rate, probation)
        assert row is not None
        self.table = table
        self.row = row

    @property
    def ssrc(self) -> int:
        return int(self.table.ints[self.row, R_SSRC])

    @property
    def clock_rate(self) -> int:
        return int(self.table.ints[self.row, R_CLOCK_RATE])

    def update(self, sequence_number: int, timestamp: int, arrival: float) -> bool:
        """Account one received packet; False if it was not counted (probation, jump)."""
        table = self.table
        return bool(
            update_statistics(
                table.ints, table.floats, self.row, sequence_number, timestamp, arrival
            )
        )

    def on_sender_report(self, report: SenderReport, arrival: float) -> None:
        """Remember the source's last SR so report blocks carry LSR and DLSR."""
        self.table.ints[self.row, R_LAST_SR] = (report.ntp_timestamp >> 16) & 0xFFFFFFFF
        self.table.floats[self.row, R_LAST_SR_ARRIVAL] = arrival

    @property
    def packets_received(self) -> int:
        return int(self.table.ints[self.row, R_RECEIVED])

    @property
    def extended_highest_sequence(self) -> int:
        """Cycles count in the high 16 bits, highest sequence number in the low 16."""
        ints = self.table.ints[self.row]
        return int(ints[R_CYCLES] + ints[R_MAX_SEQ])

    @property
    def packets_expected(self) -> int:
        ints = self.table.ints[self.row]
        if not ints[R_HAS_MAX] or (ints[R_RECEIVED] == 0 and ints[R_PROBATION]):
            return 0
        return self.extended_highest_sequence - int(ints[R_BASE_SEQ]) + 1

    @property
    def cumulative_lost(self) -> int:
        """Expected minus received, clamped to the 24-bit signed wire field."""
        lost = self.packets_expected - self.packets_received
        return max(-0x800000, min(0x7FFFFF, lost))

    @property
    def jitter(self) -> float:
        """Interarrival jitter estimate in timestamp units (A.8)."""
        return float(self.table.floats[self.row, R_JITTER])

    def report_block(self, now: float) -> ReportBlock:
        """The reception report for this source; starts a new interval for the fraction lost."""
        ints = self.table.ints
        row = self.row
        expected = self.packets_expected
        received = self.packets_received
        expected_interval = expected - int(ints[row, R_EXPECTED_PRIOR])
        received_interval = received - int(ints[row, R_RECEIVED_PRIOR])
        ints[row, R_EXPECTED_PRIOR] = expected
        ints[row, R_RECEIVED_PRIOR] = received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = (lost_interval << 8) // expected_interval
        last_sr = int(ints[row, R_LAST_SR])
        dlsr = 0
        if last_sr:
            dlsr = int((now - self.table.floats[row, R_LAST_SR_ARRIVAL]) * 65536) & 0xFFFFFFFF
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=min(fraction, 255),
            packets_lost=self.cumulative_lost,
            highest_sequence=self.extended_highest_sequence & 0xFFFFFFFF,
            jitter=int(self.jitter),
            lsr=last_sr,
            dlsr=dlsr,
        )
