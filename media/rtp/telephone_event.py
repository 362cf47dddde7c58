"""RFC 4733 telephone events: the payload, a receiver that yields digit presses, a sender.

Peers differ in everything an implementation might lean on (PEERS.md): the payload type
is whatever SDP negotiated, the marker bit is often missing, the three end packets may
repeat or increment their sequence number, and each SIPp pcap digit has its own SSRC.
So a press is identified by (SSRC, RTP timestamp of the event start) and nothing else:
all packets of one event share that timestamp (RFC 4733 2.5.1.2).

A press is reported once, when its first end packet arrives; if every end packet was
lost, when the next event starts (on the same source or another one: SIPp switches
SSRC between digits), or from `TelephoneEventReceiver.flush` once the event has been idle for
the timeout. Packets of an event already reported, or older than it, are ignored.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass

from media.rtp.packet import RtpPacket, RtpParseError
from media.rtp.sequence import timestamp_delta

EVENT_DIGITS = "0123456789*#ABCD"
"""Digit for each event code 0-15 (RFC 4733 3.2: 10 is *, 11 is #, 12-15 are A-D)."""

MAX_DURATION = 0xFFFF

_PAYLOAD = struct.Struct("!BBH")


def event_for_digit(digit: str) -> int:
    """The event code of a DTMF digit; raises ValueError naming the valid digits."""
    code = EVENT_DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise ValueError(f"DTMF digit {digit!r} is not one of {EVENT_DIGITS}")
    return code


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One RFC 4733 payload: event code, end bit, volume (0-63, -dBm0), duration (units
    of the RTP clock since the event's timestamp)."""

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> TelephoneEvent:
        """Parse the first 4 bytes of a telephone-event payload."""
        if len(data) < 4:
            raise RtpParseError(
                f"telephone-event payload is {len(data)} bytes; it needs 4 "
                "(event, E/R/volume, duration)"
            )
        event, flags, duration = _PAYLOAD.unpack_from(data)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def serialize(self) -> bytes:
        if not 0 <= self.volume <= 63:
            raise ValueError(f"telephone-event volume must be 0 to 63, not {self.volume}")
        if not 0 <= self.duration <= MAX_DURATION:
            raise ValueError(f"telephone-event duration must be 0 to 65535, not {self.duration}")
        return _PAYLOAD.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)

    @property
    def digit(self) -> str | None:
        """The DTMF digit of this event, or None for non-DTMF events (16 and up)."""
        return EVENT_DIGITS[self.event] if self.event < 16 else None


@dataclass(frozen=True, slots=True)
class DigitPress:
    """One press reported by `TelephoneEventReceiver`.

    ``duration`` is in RTP clock units (the largest seen); ``ended`` is False when no end
    packet arrived and the press was closed by a later event, another source or a timeout.
    """

    digit: str
    ssrc: int
    timestamp: int
    duration: int
    volume: int
    ended: bool


class _Event:
    __slots__ = ("code", "duration", "last_arrival", "timestamp", "volume")

    def __init__(self, packet_timestamp: int, payload: TelephoneEvent, arrival: float) -> None:
        self.timestamp = packet_timestamp
        self.code = payload.event
        self.duration = payload.duration
        self.volume = payload.volume
        self.last_arrival = arrival


class _Source:
    __slots__ = ("active", "last_timestamp", "offset")

    def __init__(self) -> None:
        self.active: _Event | None = None
        self.last_timestamp: int | None = None
        # Duration already covered by earlier segments of a long event (RFC 4733 2.5.1.3).
        self.offset = 0


_NONE: tuple[DigitPress, ...] = ()


class TelephoneEventReceiver:
    """Turns the RFC 4733 packets of a call into `DigitPress` reports, each press once.

    ``payload_type`` is the one negotiated in SDP; packets of other payload types are
    ignored. Times are seconds on any monotonic clock, passed in. Non-DTMF events
    (codes 16 and up) are tracked for deduplication but not reported. The receiver
    remembers the last ``max_sources`` SSRCs so that late duplicates from a source that
    has gone quiet are still recognised.
    """

    __slots__ = ("_sources", "max_sources", "payload_type", "timeout")

    def __init__(self, payload_type: int, timeout: float = 0.5, max_sources: int = 8) -> None:
        if not 0 <= payload_type <= 127:
            raise ValueError(f"payload type must be 0 to 127, not {payload_type}")
        self.payload_type = payload_type
        self.timeout = timeout
        self.max_sources = max_sources
        self._sources: OrderedDict[int, _Source] = OrderedDict()

    def receive(self, packet: RtpPacket, arrival: float) -> tuple[DigitPress, ...]:
        """Account one RTP packet; returns the presses it completes (usually none).

        Raises `RtpParseError` if a packet of the negotiated payload type has a payload
        shorter than 4 bytes.
        """
        if packet.payload_type != self.payload_type:
            return _NONE
        payload = TelephoneEvent.parse(packet.payload)
        ssrc = packet.ssrc
        timestamp = packet.timestamp
        sources = self._sources
        source = sources.get(ssrc)
        if source is None:
            source = sources[ssrc] = _Source()
        active = source.active
        if active is not None and timestamp == active.timestamp:
            if payload.duration > active.duration:
                active.duration = payload.duration
            active.last_arrival = arrival
            if payload.end:
                return self._close(ssrc, source, ended=True)
            return _NONE
        last = source.last_timestamp
        if last is not None and timestamp_delta(timestamp, last) <= 0:
            # A repeated end packet of a reported event, or a stale one: already counted.
            return _NONE
        source.last_timestamp = timestamp
        if active is not None and self._continues(active, payload, timestamp):
            source.offset += MAX_DURATION
            active.timestamp = timestamp
            active.duration = payload.duration
            active.last_arrival = arrival
            return self._close(ssrc, source, ended=True) if payload.end else _NONE
        # A new event: every press still open, on this source or another, has ended.
        completed: list[DigitPress] = []
        for other_ssrc, other in sources.items():
            if other.active is not None:
                completed.extend(self._close(other_ssrc, other, ended=False))
        source.active = _Event(timestamp, payload, arrival)
        if payload.end:
            completed.extend(self._close(ssrc, source, ended=True))
        sources.move_to_end(ssrc)
        while len(sources) > self.max_sources:
            sources.popitem(last=False)
        return tuple(completed) if completed else _NONE

    @staticmethod
    def _continues(active: _Event, payload: TelephoneEvent, timestamp: int) -> bool:
        # RFC 4733 2.5.1.3: an event longer than 65535 units goes on in a new segment
        # whose timestamp is where the previous one reached its maximum duration.
        return (
            payload.event == active.code
            and active.duration == MAX_DURATION
            and timestamp_delta(timestamp, active.timestamp) == MAX_DURATION
        )

    @staticmethod
    def _close(ssrc: int, source: _Source, ended: bool) -> tuple[DigitPress, ...]:
        active = source.active
        assert active is not None
        source.active = None
        offset = source.offset
        source.offset = 0
        if active.code >= len(EVENT_DIGITS):
            return _NONE
        return (
            DigitPress(
                digit=EVENT_DIGITS[active.code],
                ssrc=ssrc,
                timestamp=(active.timestamp - offset) & 0xFFFFFFFF,
                duration=offset + active.duration,
                volume=active.volume,
                ended=ended,
            ),
        )

    @property
    def pressing(self) -> bool:
        """Whether a press is open (its end packets not yet seen)."""
        return any(source.active is not None for source in self._sources.values())

    def flush(self, now: float) -> tuple[DigitPress, ...]:
        """Close presses idle for at least ``timeout`` seconds; pass ``math.inf`` at hangup."""
        completed: list[DigitPress] = []
        for ssrc, source in self._sources.items():
            active = source.active
            if active is not None and now - active.last_arrival >= self.timeout:
                completed.extend(self._close(ssrc, source, ended=False))
        return tuple(completed) if completed else _NONE


class TelephoneEventSender:
    """Builds the RFC 4733 packets for one digit, the shape baresip and SIPp send.

    The first packet has the marker bit; then one update per ``packet_duration`` with
    the duration growing; then the final duration in ``end_packets`` packets with the E
    bit. All share the start timestamp; sequence numbers increment. The caller sends
    packet ``i`` at ``i * packet_duration / clock_rate`` seconds after the first.
    """

    __slots__ = ("end_packets", "packet_duration", "payload_type", "ssrc", "volume")

    def __init__(
        self,
        payload_type: int,
        ssrc: int,
        packet_duration: int = 160,
        volume: int = 10,
        end_packets: int = 3,
    ) -> None:
        if packet_duration <= 0:
            raise ValueError(f"packet_duration must be positive, not {packet_duration}")
        self.payload_type = payload_type
        self.ssrc = ssrc
        self.packet_duration = packet_duration
        self.volume = volume
        self.end_packets = end_packets

    def packets(
        self, digit: str, sequence_number: int, timestamp: int, duration: int = 1600
    ) -> list[RtpPacket]:
        """The packets for one press of ``digit`` lasting ``duration`` RTP clock units."""
        event = event_for_digit(digit)
        if not 0 < duration <= MAX_DURATION:
            raise ValueError(f"a single-segment event lasts 1 to 65535 units, not {duration}")
        # Updates report the time covered so far; a press shorter than one packet still
        # starts with a non-end packet so that the marker is on a start packet.
        durations = list(range(self.packet_duration, duration, self.packet_duration))
        if not durations:
            durations = [duration]
        result = []
        for index, current in enumerate(durations + [duration] * self.end_packets):
            end = index >= len(durations)
            payload = TelephoneEvent(event, end, self.volume, current).serialize()
            result.append(
                RtpPacket(
                    payload_type=self.payload_type,
                    sequence_number=(sequence_number + index) & 0xFFFF,
                    timestamp=timestamp & 0xFFFFFFFF,
                    ssrc=self.ssrc,
                    marker=index == 0,
                    payload=payload,
                )
            )
        return result
