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

from media.rtp.packet import RTP_VERSION, RtpParseError
from media.rtp.sequence import timestamp_delta

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


class ReceiverStatistics:
    """Reception statistics for one source, per RFC 3550 appendix A.1, A.3 and A.8.

    Feed every RTP packet of the source with `update`; arrival times are seconds on any
    monotonic clock, passed in. `report_block` produces the block for the next SR/RR and
    starts a new interval for the fraction lost. A new source must be seen in sequence
    ``probation`` times before its packets count (A.1); a jump of more than 3000 is taken
    as a restart only once two packets in sequence confirm it.
    """

    __slots__ = (
        "_bad_seq",
        "_base_seq",
        "_cycles",
        "_expected_prior",
        "_jitter",
        "_last_sr",
        "_last_sr_arrival",
        "_last_timestamp",
        "_last_transit",
        "_max_seq",
        "_probation",
        "_received",
        "_received_prior",
        "clock_rate",
        "ssrc",
    )

    def __init__(self, ssrc: int, clock_rate: int, probation: int = _MIN_SEQUENTIAL) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self._probation = probation
        self._max_seq: int | None = None
        self._base_seq = 0
        self._bad_seq = _SEQ_MOD + 1
        self._cycles = 0
        self._received = 0
        self._received_prior = 0
        self._expected_prior = 0
        self._jitter = 0.0
        self._last_transit: float | None = None
        self._last_timestamp = 0
        self._last_sr = 0
        self._last_sr_arrival = 0.0

    def _init_seq(self, seq: int) -> None:
        self._base_seq = seq
        self._max_seq = seq
        self._bad_seq = _SEQ_MOD + 1
        self._cycles = 0
        self._received = 0
        self._received_prior = 0
        self._expected_prior = 0

    def _update_seq(self, seq: int) -> bool:
        max_seq = self._max_seq
        if max_seq is None:
            self._init_seq(seq)
            if self._probation == 0:
                return True
            self._max_seq = (seq - 1) & 0xFFFF
            max_seq = self._max_seq
        if self._probation:
            if seq == (max_seq + 1) & 0xFFFF:
                self._probation -= 1
                self._max_seq = seq
                if self._probation == 0:
                    self._init_seq(seq)
                    return True
            else:
                self._probation = _MIN_SEQUENTIAL - 1
                self._max_seq = seq
            return False
        udelta = (seq - max_seq) & 0xFFFF
        if udelta < _MAX_DROPOUT:
            if seq < max_seq:
                self._cycles += _SEQ_MOD
            self._max_seq = seq
        elif udelta <= _SEQ_MOD - _MAX_MISORDER:
            if seq == self._bad_seq:
                # Two sequential packets after a big jump: the source restarted.
                self._init_seq(seq)
            else:
                self._bad_seq = (seq + 1) & 0xFFFF
                return False
        return True

    def update(self, sequence_number: int, timestamp: int, arrival: float) -> bool:
        """Account one received packet; False if it was not counted (probation, jump)."""
        max_seq = self._max_seq
        last_transit = self._last_transit
        if (
            last_transit is not None
            and sequence_number == ((max_seq + 1) & 0xFFFF)  # type: ignore[operator]
            and not self._probation
        ):
            # The common case, the next packet in order: A.1 and A.8 without the calls.
            if sequence_number == 0:
                self._cycles += _SEQ_MOD
            self._max_seq = sequence_number
            self._received += 1
            last_timestamp = self._last_timestamp
            unwrapped = last_timestamp + (
                ((timestamp - last_timestamp + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            )
            transit = arrival * self.clock_rate - unwrapped
            self._jitter += (abs(transit - last_transit) - self._jitter) / 16.0
            self._last_transit = transit
            self._last_timestamp = unwrapped
            return True
        if not self._update_seq(sequence_number):
            return False
        self._received += 1
        # A.8: transit in timestamp units; only differences matter, so the arrival clock's
        # origin is irrelevant. Unwrapping against the last timestamp keeps the
        # difference right across the 2**32 wrap.
        arrival_units = arrival * self.clock_rate
        if self._last_transit is None:
            transit = arrival_units - timestamp
        else:
            unwrapped = self._last_timestamp + timestamp_delta(
                timestamp, self._last_timestamp & 0xFFFFFFFF
            )
            transit = arrival_units - unwrapped
            self._jitter += (abs(transit - self._last_transit) - self._jitter) / 16.0
            timestamp = unwrapped
        self._last_transit = transit
        self._last_timestamp = timestamp
        return True

    def on_sender_report(self, report: SenderReport, arrival: float) -> None:
        """Remember the source's last SR so report blocks carry LSR and DLSR."""
        self._last_sr = (report.ntp_timestamp >> 16) & 0xFFFFFFFF
        self._last_sr_arrival = arrival

    @property
    def packets_received(self) -> int:
        return self._received

    @property
    def extended_highest_sequence(self) -> int:
        """Cycles count in the high 16 bits, highest sequence number in the low 16."""
        return self._cycles + (self._max_seq or 0)

    @property
    def packets_expected(self) -> int:
        if self._max_seq is None or (self._received == 0 and self._probation):
            return 0
        return self.extended_highest_sequence - self._base_seq + 1

    @property
    def cumulative_lost(self) -> int:
        """Expected minus received, clamped to the 24-bit signed wire field."""
        lost = self.packets_expected - self._received
        return max(-0x800000, min(0x7FFFFF, lost))

    @property
    def jitter(self) -> float:
        """Interarrival jitter estimate in timestamp units (A.8)."""
        return self._jitter

    def report_block(self, now: float) -> ReportBlock:
        """The reception report for this source; starts a new fraction-lost interval."""
        expected = self.packets_expected
        expected_interval = expected - self._expected_prior
        received_interval = self._received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self._received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = (lost_interval << 8) // expected_interval
        dlsr = 0
        if self._last_sr:
            dlsr = int((now - self._last_sr_arrival) * 65536) & 0xFFFFFFFF
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=min(fraction, 255),
            packets_lost=self.cumulative_lost,
            highest_sequence=self.extended_highest_sequence & 0xFFFFFFFF,
            jitter=int(self._jitter),
            lsr=self._last_sr,
            dlsr=dlsr,
        )
