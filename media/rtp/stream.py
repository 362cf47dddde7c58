"""One leg's RTP stream: symmetric RTP on a socket pair, jitter buffer, DTMF in and out, RTCP.

The media plane calls a stream once per 20 ms tick, in three steps: `receive` drains what
arrived (audio into the jitter buffer, RFC 4733 events into digit presses), `frame` hands
out the next 160 samples due for playout (or None), and `send` sends 160 samples (or the
next packet of an RFC 4733 digit being sent instead). Nothing here sleeps or owns a
timer: time is passed in, so a test clock drives a stream exactly as the node clock does.

Symmetric RTP (RFC 4961): we send from the port we receive on, to the address in the
peer's SDP until the first packet of the negotiated payload types arrives from somewhere
else; then we latch to that source (a phone behind NAT). A new offer/answer unlatches.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from media.rtp import g711
from media.rtp.jitterbuffer import JitterBuffer
from media.rtp.packet import RtpPacket, RtpParseError
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
from media.rtp.telephone_event import DigitPress, TelephoneEventReceiver, TelephoneEventSender

FRAME = 160
RTCP_INTERVAL = 5.0
MAX_DATAGRAMS_PER_TICK = 64
_HEADER = struct.Struct("!BBHII")
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

    def send(self, data: bytes, address: tuple[str, int]) -> None:
        # A full buffer or a peer gone: RTP is best effort.
        with contextlib.suppress(OSError):
            self.rtp.sendto(data, address)

    def send_rtcp(self, data: bytes, address: tuple[str, int]) -> None:
        if self.rtcp is None:
            return
        with contextlib.suppress(OSError):
            self.rtcp.sendto(data, address)

    def close(self) -> None:
        self.rtp.close()
        if self.rtcp is not None:
            self.rtcp.close()


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


@dataclass(slots=True)
class StreamStats:
    sent_packets: int = 0
    sent_octets: int = 0
    received_packets: int = 0
    ignored_packets: int = 0
    latched: int = 0


class RtpStream:
    """One leg's RTP and RTCP. Not thread-safe: the media plane owns it."""

    def __init__(self, endpoint: Endpoint, params: StreamParameters, *, cname: str = "") -> None:
        self.endpoint = endpoint
        self.ssrc = random.getrandbits(32)
        self.sequence = random.getrandbits(16)
        self.timestamp = random.getrandbits(32)
        self.cname = (cname or f"leg@{os.getpid()}").encode()[:255]
        self.stats = StreamStats()
        self.jitter = JitterBuffer()
        self.reception: dict[int, ReceiverStatistics] = {}
        self._pending = np.zeros(0, dtype=np.int16)
        self._digits_out: list[RtpPacket] = []
        self._marker = True
        self._next_rtcp: float | None = None
        self.configure(params)

    def configure(self, params: StreamParameters) -> None:
        """Take a new offer/answer result; a changed remote address unlatches."""
        old = getattr(self, "params", None)
        self.params = params
        self.remote = params.remote
        self.remote_rtcp = params.remote_rtcp
        if old is None or old.remote != params.remote:
            self.latched = False
        self._encode = _ENCODERS[params.codec]
        self._decoders = {0: g711.decode_pcmu, 8: g711.decode_pcma}
        self._silence = _SILENCE[params.codec]
        pt = params.telephone_event_pt
        if old is None or old.telephone_event_pt != pt:
            self.events_in = TelephoneEventReceiver(pt) if pt is not None else None
            self.events_out = TelephoneEventSender(pt, self.ssrc) if pt is not None else None

    # ------------------------------------------------------------------ receiving

    def receive(self, now: float) -> list[DigitPress]:
        """Take in everything that arrived; returns the RFC 4733 presses completed."""
        presses: list[DigitPress] = []
        events_in = self.events_in
        for data, source in self.endpoint.receive():
            try:
                packet = RtpPacket.parse(data)
            except RtpParseError:
                self.stats.ignored_packets += 1
                continue
            pt = packet.payload_type
            if events_in is not None and pt == events_in.payload_type:
                presses.extend(events_in.receive(packet, now))
            elif pt in (0, 8):
                self.jitter.put(packet, now)
                statistics = self.reception.get(packet.ssrc)
                if statistics is None:
                    if len(self.reception) > 8:
                        self.reception.clear()
                    statistics = self.reception[packet.ssrc] = ReceiverStatistics(packet.ssrc, 8000)
                statistics.update(packet.sequence_number, packet.timestamp, now)
            else:
                self.stats.ignored_packets += 1
                continue
            self.stats.received_packets += 1
            if source != self.remote and not self.latched:
                self.remote = source
                self.remote_rtcp = (source[0], source[1] + 1)
                self.stats.latched += 1
            self.latched = True
        if events_in is not None:
            presses.extend(events_in.flush(now))
        for data, _source in self.endpoint.receive_rtcp():
            self._rtcp_received(data, now)
        return presses

    def frame(self, now: float) -> NDArray[np.int16] | None:
        """The next 160 samples due for playout, or None when nothing is."""
        pending = self._pending
        while len(pending) < FRAME:
            packet = self.jitter.pop(now)
            if packet is None:
                break
            decode = self._decoders[packet.payload_type]
            pending = np.concatenate((pending, decode(packet.payload)))
        if len(pending) < FRAME:
            self._pending = pending
            return None
        self._pending = pending[FRAME:]
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
        return True

    @property
    def sending_digits(self) -> bool:
        return bool(self._digits_out)

    def send(self, samples: NDArray[np.int16] | None, now: float) -> None:
        """Send one frame: `samples`, silence when None, or a queued digit packet."""
        params = self.params
        timestamp = self.timestamp
        if self._digits_out:
            self._send_digit_packet(now)
        elif params.sends:
            payload = self._encode(samples) if samples is not None else self._silence
            self._send_rtp(params.payload_type, payload, timestamp)
        self.timestamp = (timestamp + FRAME) & 0xFFFFFFFF
        if self._next_rtcp is None:
            self._next_rtcp = now + RTCP_INTERVAL * random.uniform(0.5, 1.5)
        elif now >= self._next_rtcp:
            self._next_rtcp = now + RTCP_INTERVAL * random.uniform(0.5, 1.5)
            self.send_report(now)

    def _send_rtp(self, payload_type: int, payload: bytes, timestamp: int) -> None:
        first = 0x80
        second = payload_type | (0x80 if self._marker else 0)
        self._marker = False
        data = _HEADER.pack(first, second, self.sequence, timestamp, self.ssrc) + payload
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.endpoint.send(data, self.remote)
        self.stats.sent_packets += 1
        self.stats.sent_octets += len(payload)

    def _send_digit_packet(self, now: float) -> None:
        # All packets of one press share the timestamp of its first packet.
        packet = self._digits_out.pop(0)
        if packet is None:  # the gap between presses: silence
            if self.params.sends:
                self._send_rtp(self.params.payload_type, self._silence, self.timestamp)
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
        blocks = [stats.report_block(now) for stats in list(self.reception.values())[:31]]
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

    def _rtcp_received(self, data: bytes, now: float) -> None:
        try:
            packets = parse_compound(data)
        except RtcpParseError:
            return
        for packet in packets:
            if isinstance(packet, SenderReport):
                statistics = self.reception.get(packet.ssrc)
                if statistics is not None:
                    statistics.on_sender_report(packet, now)

    def close(self, now: float) -> None:
        if self.stats.sent_packets or self.reception:
            self.send_report(now, goodbye=True)
        self.endpoint.close()
