"""One leg's RTP stream: symmetric RTP on a socket pair, jitter buffer, DTMF in and out, RTCP.

The media plane calls a stream once per 20 ms tick, in three steps: `receive` drains what
arrived (audio into the jitter buffer, RFC 4733 events into digit presses), `frame` hands
out the next 160 samples due for playout (or None), and `send` sends 160 samples (or the
next packet of an RFC 4733 digit being sent instead). Nothing here sleeps or owns a
timer: time is passed in, so a test clock drives a stream exactly as the node clock does.

Symmetric RTP (RFC 4961): we send from the port we receive on, to the address in the
peer's SDP until the first packet of the negotiated payload types arrives from somewhere
else; then we latch to that source (a phone behind NAT) and connect the socket to it, so
from then on the kernel drops datagrams from any other source, as Asterisk's strictrtp
does (no injected audio or digits, no "RTP bleed"). A new offer/answer unlatches.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import random
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from media.rtp import g711
from media.rtp.batch import take_audio
from media.rtp.jitterbuffer import JitterBuffer
from media.rtp.packet import FIXED_HEADER_SIZE, RtpPacket, RtpParseError
from media.rtp.rtcp import (
    Bye,
    ReceiverReport,
    ReceiverStatistics,
    RtcpParseError,
    SdesChunk,
    SenderReport,
    SourceDescription,
    ntp_timestamp,
    parse_compound,
    serialize_compound,
)
from media.rtp.table import (
    R_ACTIVE,
    S_CONNECTED,
    S_EVENT_PT,
    S_IGNORED,
    S_RECEIVED,
    X_BY_STREAM,
    X_FD,
    X_MARKER,
    X_NEXT_REPORT,
    X_PAYLOAD_TYPE,
    X_SENT_OCTETS,
    X_SENT_PACKETS,
    X_SEQUENCE,
    X_SSRC,
    X_TIMESTAMP,
    StreamTable,
    shared,
)
from media.rtp.telephone_event import DigitPress, TelephoneEventReceiver, TelephoneEventSender

FRAME = 160
RTCP_INTERVAL = 5.0
MAX_DATAGRAMS_PER_TICK = 64
_HEADER = struct.Struct("!BBHII")
_FIELDS = struct.Struct("!xBHII")
_SILENCE = {"PCMU": bytes([0xFF]) * FRAME, "PCMA": bytes([0xD5]) * FRAME}
_DECODERS: dict[str, Callable[[bytes], NDArray[np.int16]]] = {
    "PCMU": g711.decode_pcmu,
    "PCMA": g711.decode_pcma,
}
_ENCODERS: dict[str, Callable[[NDArray[np.int16]], bytes]] = {
    "PCMU": g711.encode_pcmu,
    "PCMA": g711.encode_pcma,
}


class Endpoint(Protocol):
    """Where a stream's datagrams come from and go to (sockets, or a test's fake)."""

    def receive(self) -> list[tuple[bytes, tuple[str, int]]]: ...
    def send(self, data: bytes, address: tuple[str, int]) -> None: ...
    def receive_rtcp(self) -> list[tuple[bytes, tuple[str, int]]]: ...
    def send_rtcp(self, data: bytes, address: tuple[str, int]) -> None: ...
    def close(self) -> None: ...


class SocketEndpoint:
    """A bound, non-blocking UDP socket pair: RTP on an even port, RTCP on the next."""

    def __init__(self, rtp: socket.socket, rtcp: socket.socket | None) -> None:
        self.rtp = rtp
        self.rtcp = rtcp
        # The source the stream latched to: the RTP socket is connected to it, so the
        # kernel drops datagrams from anywhere else (no RTP injection or "RTP bleed" from
        # a third party) and sending and receiving skip the address on every packet.
        self.connected: tuple[str, int] | None = None

    @classmethod
    def bind(cls, host: str, port: int) -> SocketEndpoint:
        """Bind both ports or raise OSError (the caller tries another pair)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        rtp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            rtp.bind((host, port))
            rtp.setblocking(False)
            rtcp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                rtcp.bind((host, port + 1))
                rtcp.setblocking(False)
            except OSError:
                rtcp.close()
                raise
        except OSError:
            rtp.close()
            raise
        return cls(rtp, rtcp)

    def fileno(self) -> int:
        return self.rtp.fileno()

    @staticmethod
    def _drain(sock: socket.socket | None) -> list[tuple[bytes, tuple[str, int]]]:
        received: list[tuple[bytes, tuple[str, int]]] = []
        if sock is None:
            return received
        for _ in range(MAX_DATAGRAMS_PER_TICK):
            try:
                data, address = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as error:  # ICMP unreachable reported on a later recv
                if error.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                    continue
                raise
            received.append((data, address[:2]))
        return received

    def receive(self) -> list[tuple[bytes, tuple[str, int]]]:
        return self._drain(self.rtp)

    def receive_rtcp(self) -> list[tuple[bytes, tuple[str, int]]]:
        return self._drain(self.rtcp)

    def read(self) -> tuple[bytes, tuple[str, int]] | None:
        """One RTP datagram, when the caller knows the socket is readable, or None.

        The media plane polls every leg's sockets at once and reads only the ready ones,
        so a tick costs no failed read per idle socket.
        """
        try:
            connected = self.connected
            if connected is not None:
                return self.rtp.recv(2048), connected
            data, address = self.rtp.recvfrom(2048)
        except OSError:  # nothing after all, or an ICMP error reported on this read
            return None
        return data, address[:2]

    def read_rtcp(self) -> bytes | None:
        """One RTCP datagram (see `read`), or None."""
        try:
            return self.rtcp.recv(2048) if self.rtcp is not None else None
        except OSError:
            return None

    def connect(self, address: tuple[str, int]) -> None:
        """Take datagrams only from ``address`` (the stream latched to it) and send there."""
        try:
            self.rtp.connect(address)
        except OSError:
            return
        self.connected = address

    def disconnect(self) -> None:
        """Take datagrams from anywhere again (a new offer/answer: latch afresh)."""
        if self.connected is None:
            return
        self.connected = None
        # connect() to an AF_UNSPEC address dissolves a UDP association (connect(2));
        # Python's socket.connect cannot express that address, so libc is called.
        address = struct.pack("=H14x", socket.AF_UNSPEC)
        _libc().connect(self.rtp.fileno(), address, len(address))

    def send(self, data: bytes, address: tuple[str, int]) -> None:
        try:
            if address is self.connected:
                self.rtp.send(data)
            else:
                self.rtp.sendto(data, address)
        except OSError:  # a full buffer or a peer gone: RTP is best effort
            pass

    def send_rtcp(self, data: bytes, address: tuple[str, int]) -> None:
        if self.rtcp is None:
            return
        with contextlib.suppress(OSError):
            self.rtcp.sendto(data, address)

    def close(self) -> None:
        self.rtp.close()
        if self.rtcp is not None:
            self.rtcp.close()


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True, slots=True)
class StreamParameters:
    """What offer/answer settled, in the form the stream needs."""

    remote: tuple[str, int]
    remote_rtcp: tuple[str, int]
    payload_type: int
    codec: str  # "PCMU" | "PCMA"
    telephone_event_pt: int | None
    sends: bool  # the peer wants our media
    receives: bool  # we expect the peer's media


class StreamStats:
    """A stream's counters, kept in its row of the table (but `latched`)."""

    __slots__ = ("latched", "row", "table")

    def __init__(self, table: StreamTable, row: int) -> None:
        self.table = table
        self.row = row
        self.latched = 0

    @property
    def sent_packets(self) -> int:
        return int(self.table.ints[self.row, X_SENT_PACKETS])

    @property
    def sent_octets(self) -> int:
        return int(self.table.ints[self.row, X_SENT_OCTETS])

    def sent(self, octets: int) -> None:
        ints = self.table.ints
        ints[self.row, X_SENT_PACKETS] += 1
        ints[self.row, X_SENT_OCTETS] += octets

    @property
    def received_packets(self) -> int:
        return int(self.table.ints[self.row, S_RECEIVED])

    @property
    def ignored_packets(self) -> int:
        return int(self.table.ints[self.row, S_IGNORED])

    def ignored(self) -> None:
        self.table.ints[self.row, S_IGNORED] += 1


class RtpStream:
    """One leg's RTP and RTCP. Not thread-safe: the media plane owns it."""

    def __init__(self, endpoint: Endpoint, params: StreamParameters, *, cname: str = "") -> None:
        self.endpoint = endpoint
        # The state lives in the process's table, where the media plane receives and
        # sends for all streams at once (`media.rtp.batch`).
        self.table = shared()
        self.row = self.table.take_row()
        self.jitter = JitterBuffer(table=self.table, row=self.row)
        self.statistics = ReceiverStatistics(0, 8000, table=self.table, row=self.row)
        self.stats = StreamStats(self.table, self.row)
        self.ssrc = random.getrandbits(32)
        ints = self.table.ints
        ints[self.row, X_SSRC] = self.ssrc
        ints[self.row, X_SEQUENCE] = random.getrandbits(16)
        ints[self.row, X_TIMESTAMP] = random.getrandbits(32)
        fileno = getattr(endpoint, "fileno", None)
        ints[self.row, X_FD] = fileno() if fileno is not None else -1
        self.table.floats[self.row, X_NEXT_REPORT] = -1.0
        self.cname = (cname or f"leg@{os.getpid()}").encode()[:255]
        self.pending = np.zeros(0, dtype=np.int16)
        self._digits_out: list[RtpPacket] = []
        self._marker = True
        self.pressing = False  # an RFC 4733 press is open: flush it if its end never comes
        self.configure(params)

    @property
    def sequence(self) -> int:
        return int(self.table.ints[self.row, X_SEQUENCE])

    @sequence.setter
    def sequence(self, value: int) -> None:
        self.table.ints[self.row, X_SEQUENCE] = value

    @property
    def timestamp(self) -> int:
        return int(self.table.ints[self.row, X_TIMESTAMP])

    @timestamp.setter
    def timestamp(self, value: int) -> None:
        self.table.ints[self.row, X_TIMESTAMP] = value

    @property
    def _marker(self) -> bool:
        return bool(self.table.ints[self.row, X_MARKER])

    @_marker.setter
    def _marker(self, value: bool) -> None:
        self.table.ints[self.row, X_MARKER] = value

    def _sent_by_stream(self) -> None:
        """Whether this stream's next packet must be sent here, not by the media plane's
        compiled pass: an RFC 4733 digit is queued, or the peer wants no media."""
        self.table.ints[self.row, X_BY_STREAM] = bool(self._digits_out) or not self.params.sends

    def configure(self, params: StreamParameters) -> None:
        """Take a new offer/answer result; a changed remote address unlatches."""
        old = getattr(self, "params", None)
        self.params = params
        if old is None or old.remote != params.remote:
            # Until the first packet arrives, send where the SDP says.
            self.remote = params.remote
            self.remote_rtcp = params.remote_rtcp
            self.latched = False
            disconnect = getattr(self.endpoint, "disconnect", None)
            if disconnect is not None:
                disconnect()
            self.table.ints[self.row, S_CONNECTED] = 0
        self.table.ints[self.row, X_PAYLOAD_TYPE] = params.payload_type
        self._sent_by_stream()
        self._encode = _ENCODERS[params.codec]
        self._decoders = {0: g711.decode_pcmu, 8: g711.decode_pcma}
        self.silence = _SILENCE[params.codec]
        pt = params.telephone_event_pt
        self.table.ints[self.row, S_EVENT_PT] = -1 if pt is None else pt
        if old is None or old.telephone_event_pt != pt:
            self.events_in = TelephoneEventReceiver(pt) if pt is not None else None
            self.events_out = TelephoneEventSender(pt, self.ssrc) if pt is not None else None

    # ------------------------------------------------------------------ receiving

    def receive(self, now: float) -> list[DigitPress]:
        """Take in everything the endpoint has; returns the RFC 4733 presses completed."""
        presses: list[DigitPress] = []
        for data, source in self.endpoint.receive():
            completed = self.take(data, source, now)
            if completed:
                presses.extend(completed)
        presses.extend(self.flush_events(now))
        for data, _source in self.endpoint.receive_rtcp():
            self.take_rtcp(data, now)
        return presses

    def take(self, data: bytes, source: tuple[str, int], now: float) -> Sequence[DigitPress]:
        """One RTP datagram from ``source``; returns the RFC 4733 presses it completed."""
        presses: Sequence[DigitPress] = ()
        if len(data) > FIXED_HEADER_SIZE and data[0] == 0x80:
            # The common case (version 2, no padding, extension or CSRCs): no packet object.
            second, sequence_number, timestamp, ssrc = _FIELDS.unpack_from(data)
            pt = second & 0x7F
            packet = None
        else:
            try:
                packet = RtpPacket.parse(data)
            except RtpParseError:
                self.stats.ignored()
                return presses
            pt = packet.payload_type
            sequence_number, timestamp, ssrc = packet.sequence_number, packet.timestamp, packet.ssrc
        events_in = self.events_in
        if events_in is not None and pt == events_in.payload_type:
            try:
                presses = events_in.receive(packet or RtpPacket.parse(data), now)
            except RtpParseError:  # a malformed event payload
                self.stats.ignored()
                return presses
            self.pressing = True
            self.table.ints[self.row, S_RECEIVED] += 1
        elif (pt == 0 or pt == 8) and len(data) - FIXED_HEADER_SIZE <= self.table.max_payload:
            payload = data[FIXED_HEADER_SIZE:] if packet is None else packet.payload
            take_audio(
                *self.table.arrays, self.row, ssrc, sequence_number, timestamp, pt,
                np.frombuffer(payload, np.uint8), now,
            )  # fmt: skip
        else:
            self.stats.ignored()
            return presses
        if not self.latched:
            if source != self.remote:
                self.remote = source
                self.remote_rtcp = (source[0], source[1] + 1)
                self.stats.latched += 1
            self.latched = True
            connect = getattr(self.endpoint, "connect", None)
            if connect is not None:
                connect(self.remote)
                # From now on the media plane reads this socket in its compiled pass.
                connected = getattr(self.endpoint, "connected", None) is not None
                self.table.ints[self.row, S_CONNECTED] = connected
        return presses

    def flush_events(self, now: float) -> Sequence[DigitPress]:
        """Presses whose end packets never came, closed once they have been idle long enough."""
        if not self.pressing:
            return ()
        events_in = self.events_in
        if events_in is None:
            self.pressing = False
            return ()
        presses = events_in.flush(now)
        self.pressing = events_in.pressing
        return presses

    def next_audio(self, now: float) -> tuple[int, bytes] | NDArray[np.int16] | None:
        """The next 160 samples due for playout: still encoded, or decoded, or None.

        When the packet due holds exactly one frame, it comes back as ``(payload type,
        payload)`` so that the caller can decode the frames of all legs in one step (or
        pass the payload on to a leg with the same codec untouched); anything else (other
        packet times, leftovers) is decoded here.
        """
        if not len(self.pending):
            item = self.jitter.pop(now)
            if item is None:
                return None
            if len(item[1]) == FRAME:
                return item  # type: ignore[no-any-return]
            self.pending = self.decode(item[0], item[1])
        return self.frame(now)

    def decode(self, payload_type: int, payload: bytes) -> NDArray[np.int16]:
        return self._decoders[payload_type](payload)

    def frame(self, now: float) -> NDArray[np.int16] | None:
        """The next 160 samples due for playout, decoded, or None when nothing is."""
        pending = self.pending
        while len(pending) < FRAME:
            item = self.jitter.pop(now)
            if item is None:
                break
            pending = np.concatenate((pending, self.decode(item[0], item[1])))
        if len(pending) < FRAME:
            self.pending = pending
            return None
        self.pending = pending[FRAME:]
        return pending[:FRAME]

    # -------------------------------------------------------------------- sending

    def send_digits(self, digits: str, duration: int = 800, gap: int = 800) -> bool:
        """Queue RFC 4733 presses (100 ms each, 100 ms apart); False without telephone-event."""
        sender = self.events_out
        if sender is None:
            return False
        packets: list[RtpPacket] = []
        for digit in digits:
            # The sequence and timestamp fields are set when each packet goes out.
            packets.extend(sender.packets(digit, 0, 0, duration))
            packets.extend([None] * (gap // FRAME))  # type: ignore[list-item]
        self._digits_out.extend(packets)
        self._sent_by_stream()
        return True

    @property
    def sending_digits(self) -> bool:
        return bool(self._digits_out)

    @property
    def codec(self) -> str:
        return self.params.codec

    def send(self, samples: NDArray[np.int16] | None, now: float) -> None:
        """Send one frame: `samples`, silence when None, or a queued digit packet."""
        self.send_payload(self._encode(samples) if samples is not None else None, now)

    def send_payload(self, payload: bytes | None, now: float) -> None:
        """`send` for a frame already encoded in this stream's codec (None: silence).

        The media plane sends most frames of latched streams in its compiled pass
        (`media.rtp.batch.send_frames`), which does the same to the stream's row.
        """
        if self._digits_out:
            self._send_digit_packet(now)
            self._sent_by_stream()
        elif self.params.sends:
            self._send_rtp(
                self.params.payload_type,
                self.silence if payload is None else payload,
                self.timestamp,
            )
        self.timestamp = (self.timestamp + FRAME) & 0xFFFFFFFF
        self.report_when_due(now)

    def report_when_due(self, now: float) -> None:
        """Send an RTCP report every RTCP_INTERVAL on average (randomised, RFC 3550 6.2),
        counted from the first packet sent."""
        floats = self.table.floats
        due = float(floats[self.row, X_NEXT_REPORT])
        if now >= due:
            floats[self.row, X_NEXT_REPORT] = now + RTCP_INTERVAL * random.uniform(0.5, 1.5)
            if due >= 0:
                self.send_report(now)

    def _send_rtp(self, payload_type: int, payload: bytes, timestamp: int) -> None:
        ints = self.table.ints
        row = self.row
        second = payload_type | (0x80 if ints[row, X_MARKER] else 0)
        ints[row, X_MARKER] = 0
        sequence = int(ints[row, X_SEQUENCE])
        self.endpoint.send(
            _HEADER.pack(0x80, second, sequence, timestamp, self.ssrc) + payload, self.remote
        )
        ints[row, X_SEQUENCE] = (sequence + 1) & 0xFFFF
        self.stats.sent(len(payload))

    def _send_digit_packet(self, now: float) -> None:
        # All packets of one press share the timestamp of its first packet.
        packet = self._digits_out.pop(0)
        if packet is None:  # the gap between presses: silence
            if self.params.sends:
                self._send_rtp(self.params.payload_type, self.silence, self.timestamp)
            return
        if packet.marker:
            self._digit_timestamp = self.timestamp
        self._marker = packet.marker
        self._send_rtp(packet.payload_type, packet.payload, self._digit_timestamp)
        if self._digits_out and self._digits_out[0] is not None:
            follower = self._digits_out[0]
            if follower.payload == packet.payload and not follower.marker:
                # RFC 4733 2.5.1.4: the end packet is sent three times at once.
                while (
                    self._digits_out
                    and self._digits_out[0] is not None
                    and self._digits_out[0].payload == packet.payload
                ):
                    self._send_rtp(
                        packet.payload_type, self._digits_out.pop(0).payload, self._digit_timestamp
                    )

    # ----------------------------------------------------------------------- RTCP

    def send_report(self, now: float, *, goodbye: bool = False) -> None:
        # One report block: for the source the stream hears now (a new SSRC replaces it).
        blocks = [self.statistics.report_block(now)] if self.hearing else []
        report: SenderReport | ReceiverReport
        if self.stats.sent_packets:
            report = SenderReport(
                ssrc=self.ssrc,
                ntp_timestamp=ntp_timestamp(now),
                rtp_timestamp=self.timestamp,
                packet_count=self.stats.sent_packets & 0xFFFFFFFF,
                octet_count=self.stats.sent_octets & 0xFFFFFFFF,
                reports=blocks,
            )
        else:
            report = ReceiverReport(ssrc=self.ssrc, reports=blocks)
        packets: list = [report, SourceDescription([SdesChunk(self.ssrc, [(1, self.cname)])])]
        if goodbye:
            packets.append(Bye([self.ssrc]))
        self.endpoint.send_rtcp(serialize_compound(packets), self.remote_rtcp)

    def take_rtcp(self, data: bytes, now: float) -> None:
        """One RTCP datagram: a sender report gives later report blocks their LSR/DLSR."""
        try:
            packets = parse_compound(data)
        except RtcpParseError:
            return
        for packet in packets:
            if (
                isinstance(packet, SenderReport)
                and self.hearing
                and packet.ssrc == self.statistics.ssrc
            ):
                self.statistics.on_sender_report(packet, now)

    @property
    def hearing(self) -> bool:
        """Whether an RTP source has been heard (and is counted for reports)."""
        return bool(self.table.ints[self.row, R_ACTIVE])

    def close(self, now: float) -> None:
        if self.stats.sent_packets or self.hearing:
            self.send_report(now, goodbye=True)
        self.endpoint.close()
        self.table.free(self.row)
