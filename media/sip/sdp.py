"""SDP (RFC 4566): session descriptions as small typed values with ``parse()`` and
``serialize()``; no I/O.

A parsed description keeps everything it was given. Attributes stay in their order as
``Attribute`` name/value pairs, and lines this module has no field for (i=, u=, e=, p=,
z=, k= and letters no RFC defines) are kept as ``Line`` values, so serialising a parsed
description gives back the same lines with CRLF endings. The attributes the engine acts
on are read through typed properties (``rtpmaps``, ``ptime``, ``direction``, ``rtcp``)
and are checked while parsing, so a property of a parsed description never raises.

Parsing is lenient where real peers differ: LF-only line endings, trailing whitespace,
blank lines, runs of spaces between fields, encoding names in any case, static payload
types without an rtpmap, attributes at session level that belong to media. Anything
else that does not follow the grammar raises ``SdpError`` naming the line, e.g.
``line 4: m= needs media, port, protocol and formats``.

What two descriptions negotiate is ``media.sip.offer_answer``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

__all__ = [
    "STATIC_PAYLOAD_TYPES",
    "Attribute",
    "Bandwidth",
    "Connection",
    "Direction",
    "Fmtp",
    "Line",
    "MediaDescription",
    "Origin",
    "Rtcp",
    "RtpMap",
    "SdpError",
    "SessionDescription",
    "Timing",
    "address_type",
]


class SdpError(ValueError):
    """A session description does not follow the RFC 4566 grammar.

    ``line`` is the 1-based number of the offending line when the error comes from
    ``SessionDescription.parse``; the message then starts with ``line N:``.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.reason = message
        self.line = line


class Direction(StrEnum):
    """The direction attributes of RFC 4566 section 6, from the describing side's point
    of view; a stream without one is ``SENDRECV``."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @classmethod
    def of(cls, sends: bool, receives: bool) -> Direction:
        if sends:
            return cls.SENDRECV if receives else cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    def reversed(self) -> Direction:
        """The same stream seen from the other end: sendonly becomes recvonly."""
        return Direction.of(sends=self.receives, receives=self.sends)

    def intersect(self, other: Direction) -> Direction:
        """What both allow."""
        return Direction.of(self.sends and other.sends, self.receives and other.receives)


@dataclass(frozen=True, slots=True)
class RtpMap:
    """``a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]``."""

    payload_type: int
    encoding: str
    clock_rate: int
    parameters: str | None = None
    """For audio, the number of channels; None when absent (one channel)."""

    @classmethod
    def parse(cls, value: str) -> RtpMap:
        parts = value.split(None, 1)
        if len(parts) != 2:
            raise SdpError(
                f"a=rtpmap needs '<payload type> <encoding>/<clock rate>', found {value!r}"
            )
        payload_type = _payload_type(parts[0], "a=rtpmap")
        encoding, _, rest = parts[1].strip().partition("/")
        clock, _, parameters = rest.partition("/")
        if not encoding or not clock:
            raise SdpError(
                f"a=rtpmap:{payload_type} needs '<encoding>/<clock rate>', found {parts[1]!r}"
            )
        clock_rate = _number(clock, f"a=rtpmap:{payload_type} clock rate")
        if clock_rate == 0:
            raise SdpError(f"a=rtpmap:{payload_type} clock rate must not be 0")
        return cls(payload_type, encoding, clock_rate, parameters or None)

    def serialize(self) -> str:
        text = f"{self.payload_type} {self.encoding}/{self.clock_rate}"
        return text if self.parameters is None else f"{text}/{self.parameters}"

    @property
    def channels(self) -> int:
        """Audio channels: the encoding parameters when numeric, else 1."""
        if self.parameters is not None and _CHANNELS.fullmatch(self.parameters):
            return int(self.parameters)
        return 1

    def is_encoding(self, name: str, clock_rate: int) -> bool:
        """Encoding names are case-insensitive (RFC 4566 section 6)."""
        return self.encoding.lower() == name.lower() and self.clock_rate == clock_rate


STATIC_PAYLOAD_TYPES = {
    pt: RtpMap(pt, name, rate, channels)
    for pt, name, rate, channels in (
        (0, "PCMU", 8000, None),
        (3, "GSM", 8000, None),
        (4, "G723", 8000, None),
        (5, "DVI4", 8000, None),
        (6, "DVI4", 16000, None),
        (7, "LPC", 8000, None),
        (8, "PCMA", 8000, None),
        (9, "G722", 8000, None),
        (10, "L16", 44100, "2"),
        (11, "L16", 44100, None),
        (12, "QCELP", 8000, None),
        (13, "CN", 8000, None),
        (14, "MPA", 90000, None),
        (15, "G728", 8000, None),
        (16, "DVI4", 11025, None),
        (17, "DVI4", 22050, None),
        (18, "G729", 8000, None),
    )
}
"""The audio payload types of RFC 3551 table 4, which need no rtpmap."""


@dataclass(frozen=True, slots=True)
class Fmtp:
    """``a=fmtp:<format> <format-specific parameters>``."""

    format: str
    parameters: str

    @classmethod
    def parse(cls, value: str) -> Fmtp:
        fmt, *parameters = value.split(None, 1) or [""]
        if not fmt:
            raise SdpError(f"a=fmtp needs '<format> <parameters>', found {value!r}")
        return cls(fmt, parameters[0] if parameters else "")

    def serialize(self) -> str:
        return f"{self.format} {self.parameters}" if self.parameters else self.format


@dataclass(frozen=True, slots=True)
class Connection:
    """``c=<net type> <address type> <connection address>``. ``address`` is kept as
    written, with any multicast ``/ttl/count`` suffix; ``host`` is the address alone."""

    net_type: str
    addr_type: str
    address: str

    @classmethod
    def of(cls, address: str) -> Connection:
        """``IN IP6`` for an IPv6 literal, else ``IN IP4``."""
        return cls("IN", address_type(address), address)

    @classmethod
    def parse(cls, value: str, what: str = "c=") -> Connection:
        parts = value.split()
        if len(parts) != 3:
            raise SdpError(f"{what} needs network type, address type and address, found {value!r}")
        connection = cls(*parts)
        try:
            version = ipaddress.ip_address(connection.host).version
        except ValueError:
            return connection  # a host name, or an address type we do not know
        if connection.addr_type.upper() in ("IP4", "IP6") and (
            connection.addr_type.upper() != f"IP{version}"
        ):
            raise SdpError(
                f"{what} address {connection.host} is not an {connection.addr_type} address"
            )
        return connection

    def serialize(self) -> str:
        return f"{self.net_type} {self.addr_type} {self.address}"

    @property
    def host(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def is_unspecified(self) -> bool:
        """True for 0.0.0.0 (or ::): the RFC 2543 way to say "send me nothing",
        which RFC 3264 section 8.4 still requires an agent to understand."""
        try:
            return ipaddress.ip_address(self.host).is_unspecified
        except ValueError:
            return False


def address_type(address: str) -> str:
    """The SDP address type of an address: ``IP6`` for an IPv6 literal, else ``IP4``."""
    try:
        return f"IP{ipaddress.ip_address(address).version}"
    except ValueError:
        return "IP4"


@dataclass(frozen=True, slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <net type> <address type> <address>``."""

    username: str
    session_id: int
    version: int
    net_type: str
    addr_type: str
    address: str

    @classmethod
    def parse(cls, value: str) -> Origin:
        parts = value.split()
        if len(parts) != 6:
            raise SdpError(
                "o= needs username, session id, session version, network type, "
                f"address type and address, found {value!r}"
            )
        username, session_id, version, net_type, addr_type, address = parts
        return cls(
            username,
            _number(session_id, "o= session id"),
            _number(version, "o= session version"),
            net_type,
            addr_type,
            address,
        )

    def serialize(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.version} "
            f"{self.net_type} {self.addr_type} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class Bandwidth:
    """``b=<bandwidth type>:<kilobits per second>`` (CT, AS, TIAS ...)."""

    bwtype: str
    value: int

    @classmethod
    def parse(cls, value: str) -> Bandwidth:
        bwtype, colon, amount = value.partition(":")
        if not colon or not bwtype.strip():
            raise SdpError(f"b= needs '<type>:<bandwidth>', found {value!r}")
        return cls(bwtype.strip(), _number(amount.strip(), f"b={bwtype.strip()} bandwidth"))

    def serialize(self) -> str:
        return f"{self.bwtype}:{self.value}"


@dataclass(frozen=True, slots=True)
class Timing:
    """``t=<start> <stop>`` (NTP seconds; 0 0 is a permanent session) and the raw
    ``r=`` repeat lines that follow it."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> Timing:
        parts = value.split()
        if len(parts) != 2:
            raise SdpError(f"t= needs start and stop times, found {value!r}")
        return cls(_number(parts[0], "t= start time"), _number(parts[1], "t= stop time"))

    def serialize(self) -> str:
        return f"{self.start} {self.stop}"


@dataclass(frozen=True, slots=True)
class Rtcp:
    """``a=rtcp:<port> [<net type> <address type> <address>]`` (RFC 3605)."""

    port: int
    connection: Connection | None = None

    @classmethod
    def parse(cls, value: str) -> Rtcp:
        port, *rest = value.split(None, 1) or [""]
        connection = Connection.parse(rest[0], "a=rtcp") if rest else None
        return cls(_port(port, "a=rtcp port"), connection)

    def serialize(self) -> str:
        if self.connection is None:
            return str(self.port)
        return f"{self.port} {self.connection.serialize()}"


@dataclass(frozen=True, slots=True)
class Attribute:
    """``a=<name>`` (a flag) or ``a=<name>:<value>``; the value is kept as written."""

    name: str
    value: str | None = None

    @classmethod
    def parse(cls, text: str) -> Attribute:
        name, colon, value = text.partition(":")
        if not _TOKEN.fullmatch(name):
            raise SdpError(f"a= needs an attribute name, found {text[:40]!r}")
        attribute = cls(name, value if colon else None)
        check = _ATTRIBUTE_CHECKS.get(name.lower())
        if check is not None:
            check(attribute)
        return attribute

    def serialize(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(frozen=True, slots=True)
class Line:
    """A line kept as written: ``i=``, ``u=``, ``e=``, ``p=``, ``z=``, ``k=`` or a type
    letter no RFC defines."""

    letter: str
    value: str

    def serialize(self) -> str:
        return f"{self.letter}={self.value}"


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One media section: ``m=<media> <port>[/<count>] <protocol> <format> ...`` and
    the c=, b=, a= and other lines up to the next m=."""

    kind: str
    port: int
    protocol: str
    formats: tuple[str, ...]
    port_count: int | None = None
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    attributes: tuple[Attribute, ...] = ()
    lines: tuple[Line, ...] = ()

    @classmethod
    def parse_media_line(cls, value: str) -> MediaDescription:
        """The ``m=`` line alone; the section's other lines are added by the parser."""
        parts = value.split()
        if len(parts) < 4:
            raise SdpError(f"m= needs media, port, protocol and formats, found {value!r}")
        kind, port_text, protocol, *formats = parts
        port, slash, count = port_text.partition("/")
        port_count = _number(count, "m= port count") if slash else None
        media = cls(kind, _port(port, "m= port"), protocol, tuple(formats), port_count)
        if media.is_rtp:
            for fmt in formats:
                _payload_type(fmt, "m= format")
        return media

    def serialize_lines(self) -> list[str]:
        port = self.port if self.port_count is None else f"{self.port}/{self.port_count}"
        out = [f"m={self.kind} {port} {self.protocol} {' '.join(self.formats)}"]
        out += [line.serialize() for line in self.lines if line.letter == "i"]
        if self.connection is not None:
            out.append(f"c={self.connection.serialize()}")
        out += [f"b={bandwidth.serialize()}" for bandwidth in self.bandwidths]
        out += [line.serialize() for line in self.lines if line.letter != "i"]
        out += [f"a={attribute.serialize()}" for attribute in self.attributes]
        return out

    @property
    def is_rtp(self) -> bool:
        """RTP profiles (RTP/AVP, RTP/SAVP, UDP/TLS/RTP/SAVPF ...), whose formats are
        payload types."""
        return "RTP/" in self.protocol.upper()

    @property
    def payload_types(self) -> tuple[int, ...]:
        """The formats as payload types, in the order offered; empty when not RTP."""
        return tuple(int(fmt) for fmt in self.formats) if self.is_rtp else ()

    @property
    def rtpmaps(self) -> dict[int, RtpMap]:
        """The explicit ``a=rtpmap`` lines by payload type."""
        return {
            rtpmap.payload_type: rtpmap
            for rtpmap in map(RtpMap.parse, self.attribute_values("rtpmap"))
        }

    def codec(self, payload_type: int) -> RtpMap | None:
        """The rtpmap of a payload type, falling back to the static table of RFC 3551;
        None for a dynamic type without one."""
        return self.rtpmaps.get(payload_type) or STATIC_PAYLOAD_TYPES.get(payload_type)

    def fmtp(self, fmt: int | str) -> str | None:
        """The format-specific parameters of one format, if an ``a=fmtp`` gives any."""
        for fmtp in map(Fmtp.parse, self.attribute_values("fmtp")):
            if fmtp.format == str(fmt):
                return fmtp.parameters
        return None

    @property
    def ptime(self) -> int | None:
        """``a=ptime`` in whole milliseconds."""
        return _first_packet_time(self.attributes, "ptime")

    @property
    def maxptime(self) -> int | None:
        return _first_packet_time(self.attributes, "maxptime")

    @property
    def rtcp(self) -> Rtcp | None:
        values = self.attribute_values("rtcp")
        return Rtcp.parse(values[0]) if values else None

    @property
    def direction(self) -> Direction | None:
        """This section's own direction attribute; see
        ``SessionDescription.direction_of`` for the one in force."""
        return _direction(self.attributes)

    def attribute_values(self, name: str) -> list[str]:
        """The values of every attribute of that name (case-insensitive), in order."""
        return _attribute_values(self.attributes, name)

    def with_direction(self, direction: Direction | str) -> MediaDescription:
        """A copy whose direction attribute is ``direction``, where the old one was
        (or last)."""
        return replace(self, attributes=_set_direction(self.attributes, Direction(direction)))


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole description: the session section (v= is always 0) and its media."""

    origin: Origin
    name: str = "-"
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    times: tuple[Timing, ...] = (Timing(),)
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()
    lines: tuple[Line, ...] = ()

    @classmethod
    def parse(cls, text: str | bytes) -> SessionDescription:
        """Parse a description; bytes must be UTF-8. Raises ``SdpError``."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as error:
                line = text[: error.start].count(b"\n") + 1
                raise SdpError("the description is not UTF-8 text", line) from None
        return _Parser().parse(text)

    def serialize(self) -> str:
        """The description with CRLF line endings, fields in RFC 4566 order."""
        out = ["v=0", f"o={self.origin.serialize()}", f"s={self.name or ' '}"]
        out += [line.serialize() for line in self.lines if line.letter in _BEFORE_CONNECTION]
        if self.connection is not None:
            out.append(f"c={self.connection.serialize()}")
        out += [f"b={bandwidth.serialize()}" for bandwidth in self.bandwidths]
        for timing in self.times or (Timing(),):
            out.append(f"t={timing.serialize()}")
            out += [f"r={repeat}" for repeat in timing.repeats]
        out += [line.serialize() for line in self.lines if line.letter not in _BEFORE_CONNECTION]
        out += [f"a={attribute.serialize()}" for attribute in self.attributes]
        for media in self.media:
            out += media.serialize_lines()
        return "\r\n".join(out) + "\r\n"

    def __str__(self) -> str:
        return self.serialize()

    @property
    def direction(self) -> Direction | None:
        """The session-level direction attribute, if any."""
        return _direction(self.attributes)

    def direction_of(self, media: MediaDescription) -> Direction:
        """The direction in force for a stream: its own, else the session's, else
        sendrecv (RFC 4566 section 6)."""
        return media.direction or self.direction or Direction.SENDRECV

    @property
    def ptime(self) -> int | None:
        """A session-level ``a=ptime``: not in RFC 4566, but some peers write it there."""
        return _first_packet_time(self.attributes, "ptime")

    @property
    def maxptime(self) -> int | None:
        return _first_packet_time(self.attributes, "maxptime")

    def connection_of(self, media: MediaDescription) -> Connection | None:
        """The stream's c= line, else the session's."""
        return media.connection or self.connection

    def attribute_values(self, name: str) -> list[str]:
        """The values of every session-level attribute of that name, in order."""
        return _attribute_values(self.attributes, name)


# Parsing.

_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_NEWLINE = re.compile(r"\r\n|\r|\n")
_DIGITS = re.compile(r"[0-9]+")
_CHANNELS = re.compile(r"[0-9]{1,3}")
_MAX_DIGITS = 30
"""Enough for any 64-bit o= session id or version, with room for the odd 128-bit one."""
_PACKET_TIME = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6})?")
_DIRECTIONS = frozenset(direction.value for direction in Direction)
_SESSION_ONLY = frozenset("vostruezp")
_BEFORE_CONNECTION = frozenset("iuep")
"""Session-level lines that RFC 4566 places between s= and c=; other kept lines go
after the time lines."""


def _number(text: str, what: str) -> int:
    if not _DIGITS.fullmatch(text):
        raise SdpError(f"{what} must be a number, found {text[:24]!r}")
    if len(text) > _MAX_DIGITS:
        raise SdpError(f"{what} has more than {_MAX_DIGITS} digits")
    return int(text)


def _port(text: str, what: str) -> int:
    port = _number(text, what)
    if port > 65535:
        raise SdpError(f"{what} must be 0-65535, found {port}")
    return port


def _payload_type(text: str, what: str) -> int:
    if not _DIGITS.fullmatch(text) or len(text) > 3 or int(text) > 127:
        raise SdpError(f"{what} {text[:24]!r} is not an RTP payload type (0-127)")
    return int(text)


def _packet_time(value: str | None, name: str) -> int:
    """A positive number of milliseconds, decimals allowed (RFC 8866) and rounded."""
    text = (value or "").strip()
    if not _PACKET_TIME.fullmatch(text) or float(text) <= 0:
        raise SdpError(f"a={name} needs a positive number of milliseconds, found {value!r}")
    return max(1, round(float(text)))


def _first_packet_time(attributes: Iterable[Attribute], name: str) -> int | None:
    values = _attribute_values(attributes, name)
    return _packet_time(values[0], name) if values else None


def _attribute_values(attributes: Iterable[Attribute], name: str) -> list[str]:
    key = name.lower()
    return [a.value or "" for a in attributes if a.name.lower() == key]


def _direction(attributes: Iterable[Attribute]) -> Direction | None:
    for attribute in attributes:
        if attribute.name.lower() in _DIRECTIONS:
            return Direction(attribute.name.lower())
    return None


def _set_direction(
    attributes: tuple[Attribute, ...], direction: Direction
) -> tuple[Attribute, ...]:
    kept: list[Attribute] = []
    position = None
    for attribute in attributes:
        if attribute.name.lower() in _DIRECTIONS:
            position = len(kept) if position is None else position
        else:
            kept.append(attribute)
    kept.insert(len(kept) if position is None else position, Attribute(direction.value))
    return tuple(kept)


def _check_flag(attribute: Attribute) -> None:
    if attribute.value is not None:
        raise SdpError(f"a={attribute.name} takes no value, found {attribute.value!r}")


_ATTRIBUTE_CHECKS = {
    "rtpmap": lambda a: RtpMap.parse(a.value or ""),
    "fmtp": lambda a: Fmtp.parse(a.value or ""),
    "rtcp": lambda a: Rtcp.parse(a.value or ""),
    "ptime": lambda a: _packet_time(a.value, a.name),
    "maxptime": lambda a: _packet_time(a.value, a.name),
    **{name: _check_flag for name in _DIRECTIONS},
}


class _Section:
    """The lines of one section (session or media) as they are read."""

    def __init__(self, header_line: int) -> None:
        self.header_line = header_line
        self.connection: Connection | None = None
        self.bandwidths: list[Bandwidth] = []
        self.attributes: list[Attribute] = []
        self.lines: list[Line] = []
        self.direction_line: int | None = None

    def add(self, number: int, letter: str, value: str) -> None:
        if letter == "c":
            if self.connection is not None:
                raise SdpError("a second c= line in one section")
            self.connection = Connection.parse(value)
        elif letter == "b":
            self.bandwidths.append(Bandwidth.parse(value))
        elif letter == "a":
            attribute = Attribute.parse(value)
            if attribute.name.lower() in _DIRECTIONS:
                self._check_one_direction(number, attribute)
            self.attributes.append(attribute)
        else:
            self.lines.append(Line(letter, value))

    def _check_one_direction(self, number: int, attribute: Attribute) -> None:
        current = _direction(self.attributes)
        if current is not None and current != attribute.name.lower():
            raise SdpError(
                f"a={attribute.name} contradicts a={current} on line {self.direction_line}"
            )
        self.direction_line = number


class _Parser:
    def __init__(self) -> None:
        self.origin: Origin | None = None
        self.name: str | None = None
        self.times: list[Timing] = []
        self.session = _Section(1)
        self.media: list[tuple[MediaDescription, _Section]] = []

    def parse(self, text: str) -> SessionDescription:
        lines = [
            (number, line.rstrip(" \t")) for number, line in enumerate(_NEWLINE.split(text), 1)
        ]
        lines = [(number, line) for number, line in lines if line]
        if not lines:
            raise SdpError("the description is empty; it must start with v=0", 1)
        first_number, first = lines[0]
        if first.replace(" ", "") != "v=0":
            raise SdpError(f"a description starts with v=0, found {first[:40]!r}", first_number)
        for number, line in lines[1:]:
            try:
                self._line(number, line)
            except SdpError as error:
                if error.line is not None:
                    raise
                raise SdpError(error.reason, number) from None
        return self._description(lines[-1][0])

    def _line(self, number: int, line: str) -> None:
        letter, equals, value = line[:1], line[1:2], line[2:]
        if equals != "=" or not ("a" <= letter <= "z"):
            raise SdpError(f"expected '<letter>=<value>', found {line[:40]!r}")
        if self.media:
            if letter in _SESSION_ONLY:
                raise SdpError(
                    f"{letter}= belongs to the session section, before the "
                    f"first m= (line {self.media[0][1].header_line})"
                )
            if letter == "m":
                self._start_media(number, value)
            else:
                self.media[-1][1].add(number, letter, value)
        elif letter == "v":
            raise SdpError("a second v= line")
        elif letter == "o":
            if self.origin is not None:
                raise SdpError("a second o= line")
            self.origin = Origin.parse(value)
        elif letter == "s":
            if self.name is not None:
                raise SdpError("a second s= line")
            self.name = value.strip()
        elif letter == "t":
            self.times.append(Timing.parse(value))
        elif letter == "r":
            if not self.times:
                raise SdpError("r= must follow a t= line")
            last = self.times[-1]
            self.times[-1] = replace(last, repeats=(*last.repeats, value))
        elif letter == "m":
            self._check_session(number, "before the first m=")
            self._start_media(number, value)
        else:
            self.session.add(number, letter, value)

    def _start_media(self, number: int, value: str) -> None:
        self.media.append((MediaDescription.parse_media_line(value), _Section(number)))

    def _check_session(self, number: int, where: str) -> None:
        for line, what in ((self.origin, "o="), (self.name, "s=")):
            if line is None:
                raise SdpError(f"no {what} line {where}", number)

    def _description(self, last_line: int) -> SessionDescription:
        if not self.media:
            self._check_session(last_line + 1, "in the description")
        assert self.origin is not None and self.name is not None
        media = tuple(
            replace(
                header,
                connection=section.connection,
                bandwidths=tuple(section.bandwidths),
                attributes=tuple(section.attributes),
                lines=tuple(section.lines),
            )
            for header, section in self.media
        )
        return SessionDescription(
            origin=self.origin,
            name=self.name,
            connection=self.session.connection,
            bandwidths=tuple(self.session.bandwidths),
            times=tuple(self.times) or (Timing(),),
            attributes=tuple(self.session.attributes),
            media=media,
            lines=tuple(self.session.lines),
        )
