"""The SDP offer/answer model (RFC 3264) for what the engine can do.

The engine sends and receives one audio stream of PCMU or PCMA at 8000 Hz, with RFC 4733
telephone events on whatever dynamic payload type the offerer chose, a packet time of
10 to 60 ms, in any direction. Everything here is pure: descriptions in, descriptions and
``MediaParameters`` out.

- UAS: ``answer(offer, ...)`` picks the first audio stream we can take and, in it, the
  first of the offerer's codecs we support (RFC 3264 6.1: the offerer's order is its
  preference). Every other stream is refused with port 0 and its formats unchanged
  (RFC 3264 6). When no stream is acceptable it raises ``NoAcceptableMedia``; the
  caller answers 488.
- UAC: ``make_offer(...)``, then ``accept_answer(offer, answer)``.
- re-INVITE: ``hold_offer`` / ``resume_offer`` derive a new offer from the last
  description we sent (RFC 3264 8.4); ``revise`` gives any new description the previous
  o= line, its version raised by one only when something changed (RFC 3264 8).

Directions in ``MediaParameters`` are always our own: an offer marked sendonly makes us
recvonly, and a peer that stops receiving from us (sendonly, inactive, or the RFC 2543
``c=IN IP4 0.0.0.0``) has put us on hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import NamedTuple

from media.sip.sdp import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SessionDescription,
    Timing,
    address_type,
)

__all__ = [
    "CLOCK_RATE",
    "DEFAULT_PTIME",
    "ENGINE_CODECS",
    "MAX_PTIME",
    "MIN_PTIME",
    "Answer",
    "MediaParameters",
    "NoAcceptableMedia",
    "accept_answer",
    "answer",
    "hold_offer",
    "make_offer",
    "resume_offer",
    "revise",
]

ENGINE_CODECS = {"PCMU": 0, "PCMA": 8}
"""The codecs the engine encodes and decodes, with their static payload types."""
CLOCK_RATE = 8000
TELEPHONE_EVENT = "telephone-event"
TELEPHONE_EVENTS = "0-15"
"""The RFC 4733 events we send and understand: the DTMF digits 0-9, *, # and A-D."""
MIN_PTIME, MAX_PTIME, DEFAULT_PTIME = 10, 60, 20
AUDIO_PROTOCOL = "RTP/AVP"


class NoAcceptableMedia(Exception):
    """No stream of a description can be used: the UAS answers 488 Not Acceptable Here,
    the UAC ends the call. The message says why each stream was refused."""


@dataclass(frozen=True, slots=True)
class MediaParameters:
    """What an offer/answer exchange settled for our one audio stream, from our side.

    ``payload_type`` and ``telephone_event_pt`` are used in both directions;
    ``ptime`` is the packet time the peer asked to receive; ``on_hold`` says the
    peer does not want our media (it holds us), whatever we do ourselves.
    """

    remote_address: str
    remote_port: int
    remote_rtcp_port: int
    payload_type: int
    codec: str
    clock_rate: int
    ptime: int
    telephone_event_pt: int | None
    direction: Direction
    on_hold: bool

    @property
    def sends(self) -> bool:
        """We send RTP to the peer."""
        return self.direction.sends

    @property
    def receives(self) -> bool:
        """We expect RTP from the peer."""
        return self.direction.receives


@dataclass(frozen=True, slots=True)
class Answer:
    """The description to send back, and what it settles."""

    description: SessionDescription
    parameters: MediaParameters


def make_offer(
    local_address: str,
    port: int,
    *,
    session_id: int,
    version: int,
    codecs: Iterable[str] = ("PCMU", "PCMA"),
    telephone_event_pt: int | None = 101,
    ptime: int = DEFAULT_PTIME,
    direction: Direction | str = Direction.SENDRECV,
) -> SessionDescription:
    """An initial offer of one audio stream at ``local_address:port`` with ``codecs`` in
    order of preference and, unless ``telephone_event_pt`` is None, telephone events."""
    names = _engine_codecs(codecs, "codecs")
    _check_port(port)
    _check_ptime(ptime)
    if telephone_event_pt is not None and not 96 <= telephone_event_pt <= 127:
        raise ValueError(
            f"telephone_event_pt must be a dynamic payload type (96-127), not {telephone_event_pt}"
        )
    stream = _audio_stream(
        port,
        [(ENGINE_CODECS[name], name) for name in names],
        telephone_event_pt,
        ptime,
        Direction(direction),
    )
    return _description(local_address, session_id, version, (stream,), (Timing(),))


def answer(
    offer: SessionDescription,
    local_address: str,
    port: int,
    *,
    session_id: int,
    version: int,
    supported: Iterable[str] = ("PCMU", "PCMA"),
    local_direction: Direction | str = Direction.SENDRECV,
) -> Answer:
    """Answer ``offer`` with our audio at ``local_address:port``.

    ``local_direction`` is what we want (sendonly while we hold the peer); the answer
    carries it narrowed by what the offer allows. Raises ``NoAcceptableMedia``.
    """
    codecs = _engine_codecs(supported, "supported")
    _check_port(port)
    wanted = Direction(local_direction)
    streams: list[MediaDescription] = []
    reasons: list[str] = []
    parameters: MediaParameters | None = None
    for index, stream in enumerate(offer.media, 1):
        if parameters is None:
            choice = _choose(offer, stream, codecs)
        else:
            choice = "only one audio stream is used"
        if isinstance(choice, str):
            reasons.append(f"stream {index} ({_summary(stream)}): {choice}")
            streams.append(_refused(stream))
            continue
        parameters = _parameters(offer, stream, choice, wanted=wanted, offered=Direction.SENDRECV)
        streams.append(
            _audio_stream(
                port,
                [(choice.payload_type, choice.codec)],
                choice.telephone_event_pt,
                parameters.ptime,
                parameters.direction,
            )
        )
    if parameters is None:
        raise NoAcceptableMedia(
            "no acceptable audio stream in the offer: " + ("; ".join(reasons) or "it has none")
        )
    description = _description(local_address, session_id, version, tuple(streams), offer.times)
    return Answer(description, parameters)


def accept_answer(offer: SessionDescription, answer: SessionDescription) -> MediaParameters:
    """What the answer to our ``offer`` settles (the UAC side).

    The codec is the first of the answer's formats that is one we offered; the answer's
    payload types and packet time are the ones we send with. Raises ``SdpError`` when the
    answer does not match the offer's streams, ``NoAcceptableMedia`` when it refuses them.
    """
    if len(answer.media) != len(offer.media):
        raise SdpError(
            f"the answer has {len(answer.media)} m= lines for the offer's "
            f"{len(offer.media)} (RFC 3264 section 6)"
        )
    reasons: list[str] = []
    for index, (ours, theirs) in enumerate(zip(offer.media, answer.media, strict=True), 1):
        if ours.port == 0 or not _is_audio_rtp(ours):
            continue
        offered = {rtpmap.encoding.upper() for rtpmap in _codecs(ours)}
        codecs = [name for name in ENGINE_CODECS if name in offered]
        choice = "refused (port 0)" if theirs.port == 0 else _choose(answer, theirs, codecs)
        if isinstance(choice, str):
            reasons.append(f"stream {index} ({_summary(theirs)}): {choice}")
            continue
        if _telephone_event_pt(ours) is None:
            choice = choice._replace(telephone_event_pt=None)
        ours_direction = offer.direction_of(ours)
        return _parameters(answer, theirs, choice, wanted=ours_direction, offered=ours_direction)
    raise NoAcceptableMedia(
        "the answer accepts none of our audio streams: " + ("; ".join(reasons) or "we offered none")
    )


def revise(previous: SessionDescription, description: SessionDescription) -> SessionDescription:
    """``description`` under the o= line of ``previous`` (the last one we sent in this
    session): the same version when nothing else differs, else the version plus one
    (RFC 3264 section 8)."""
    same = replace(description, origin=previous.origin)
    if same == previous:
        return previous
    origin = replace(previous.origin, version=previous.origin.version + 1)
    return replace(description, origin=origin)


_HOLD = {
    Direction.SENDRECV: Direction.SENDONLY,
    Direction.RECVONLY: Direction.INACTIVE,
    Direction.SENDONLY: Direction.SENDONLY,
    Direction.INACTIVE: Direction.INACTIVE,
}
_RESUME = {
    Direction.SENDONLY: Direction.SENDRECV,
    Direction.INACTIVE: Direction.RECVONLY,
    Direction.SENDRECV: Direction.SENDRECV,
    Direction.RECVONLY: Direction.RECVONLY,
}


def hold_offer(
    previous: SessionDescription, *, direction: Direction | str | None = None
) -> SessionDescription:
    """A re-INVITE offer putting the peer on hold, from ``previous``, the last description
    we sent (offer or answer). By default each active stream goes from sendrecv to
    sendonly, or from recvonly (the peer holds us) to inactive (RFC 3264 8.4); pass
    ``direction`` ("sendonly" or "inactive") to choose."""
    if direction is not None and Direction(direction) not in _HOLD.values():
        raise ValueError(f"a hold is sendonly or inactive, not {direction!r}")
    return _redirect(
        previous, lambda current: Direction(direction) if direction else _HOLD[current]
    )


def resume_offer(previous: SessionDescription) -> SessionDescription:
    """A re-INVITE offer taking the peer off hold, from ``previous``, the last description
    we sent: sendonly goes back to sendrecv, inactive to recvonly (the peer still holds
    us; its answer or its own re-INVITE says when it stops)."""
    return _redirect(previous, _RESUME.__getitem__)


# Building descriptions.


def _description(
    local_address: str,
    session_id: int,
    version: int,
    media: tuple[MediaDescription, ...],
    times: tuple[Timing, ...],
) -> SessionDescription:
    if session_id < 0 or version < 0:
        raise ValueError("session_id and version must not be negative")
    return SessionDescription(
        origin=Origin("-", session_id, version, "IN", address_type(local_address), local_address),
        name="-",
        connection=Connection.of(local_address),
        times=times,
        media=media,
    )


def _audio_stream(
    port: int,
    codecs: list[tuple[int, str]],
    telephone_event_pt: int | None,
    ptime: int,
    direction: Direction,
) -> MediaDescription:
    """Our audio stream: the codecs, then telephone events, each with an rtpmap (even the
    static ones: some peers want it), our packet time and an explicit direction."""
    if telephone_event_pt is not None:
        codecs = [*codecs, (telephone_event_pt, TELEPHONE_EVENT)]
    formats = [str(pt) for pt, _ in codecs]
    attributes = [
        Attribute("rtpmap", RtpMap(pt, name, CLOCK_RATE).serialize()) for pt, name in codecs
    ]
    if telephone_event_pt is not None:
        attributes.append(Attribute("fmtp", f"{telephone_event_pt} {TELEPHONE_EVENTS}"))
    attributes += [Attribute("ptime", str(ptime)), Attribute(direction.value)]
    return MediaDescription(
        "audio", port, AUDIO_PROTOCOL, tuple(formats), attributes=tuple(attributes)
    )


def _refused(stream: MediaDescription) -> MediaDescription:
    """The answer to a stream we do not take: port 0, the same formats (RFC 3264 6)."""
    return MediaDescription(stream.kind, 0, stream.protocol, stream.formats)


def _redirect(
    previous: SessionDescription, change: Callable[[Direction], Direction]
) -> SessionDescription:
    media = tuple(
        stream if stream.port == 0 else stream.with_direction(change(previous.direction_of(stream)))
        for stream in previous.media
    )
    return revise(previous, replace(previous, media=media))


# Reading descriptions.


class _Choice(NamedTuple):
    payload_type: int
    codec: str
    telephone_event_pt: int | None


def _choose(
    description: SessionDescription, stream: MediaDescription, codecs: list[str]
) -> _Choice | str:
    """The first of the stream's formats we can use, with its telephone-event payload
    type, or why there is none."""
    if stream.port == 0:
        return "disabled (port 0)"
    if stream.kind.lower() != "audio":
        return f"{stream.kind} is not audio"
    if stream.protocol.upper() != AUDIO_PROTOCOL:
        return f"protocol {stream.protocol} is not {AUDIO_PROTOCOL}"
    if description.connection_of(stream) is None:
        return "no c= line for it or the session"
    for rtpmap in _codecs(stream):
        name = rtpmap.encoding.upper()
        if name in codecs and rtpmap.clock_rate == CLOCK_RATE and rtpmap.channels == 1:
            return _Choice(rtpmap.payload_type, name, _telephone_event_pt(stream))
    offered = ", ".join(_codec_name(stream, pt) for pt in stream.payload_types)
    return f"no common codec (offered {offered}; we take {', '.join(codecs)})"


def _codecs(stream: MediaDescription) -> list[RtpMap]:
    """The stream's formats that have an rtpmap or a static assignment, in order."""
    return [rtpmap for pt in stream.payload_types if (rtpmap := stream.codec(pt)) is not None]


def _telephone_event_pt(stream: MediaDescription) -> int | None:
    for rtpmap in _codecs(stream):
        if rtpmap.is_encoding(TELEPHONE_EVENT, CLOCK_RATE):
            return rtpmap.payload_type
    return None


def _parameters(
    description: SessionDescription,
    stream: MediaDescription,
    choice: _Choice,
    *,
    wanted: Direction,
    offered: Direction,
) -> MediaParameters:
    """Parameters for a stream the peer described in ``description``. ``wanted`` is the
    direction we want; ``offered`` the one the peer's description responds to (our offer,
    or sendrecv when the peer is the offerer and free to choose), so that a peer that
    merely follows our own hold is not taken to hold us."""
    connection = description.connection_of(stream)
    assert connection is not None  # _choose refused streams without one
    theirs = description.direction_of(stream)
    if connection.is_unspecified:
        theirs = Direction.of(sends=theirs.sends, receives=False)
    rtcp = stream.rtcp
    return MediaParameters(
        remote_address=connection.host,
        remote_port=stream.port,
        remote_rtcp_port=rtcp.port if rtcp is not None else stream.port + 1,
        payload_type=choice.payload_type,
        codec=choice.codec,
        clock_rate=CLOCK_RATE,
        ptime=_ptime(description, stream),
        telephone_event_pt=choice.telephone_event_pt,
        direction=wanted.intersect(theirs.reversed()),
        on_hold=offered.sends and not theirs.receives,
    )


def _ptime(description: SessionDescription, stream: MediaDescription) -> int:
    """The packet time the describing side wants to receive, within our range: a=ptime
    of the stream (or, as some peers write it, of the session), no more than a=maxptime,
    20 ms when neither is given."""
    ptime = stream.ptime or description.ptime or DEFAULT_PTIME
    maxptime = stream.maxptime or description.maxptime
    if maxptime is not None:
        ptime = min(ptime, maxptime)
    return max(MIN_PTIME, min(MAX_PTIME, ptime))


def _is_audio_rtp(stream: MediaDescription) -> bool:
    return stream.kind.lower() == "audio" and stream.protocol.upper() == AUDIO_PROTOCOL


def _codec_name(stream: MediaDescription, pt: int) -> str:
    rtpmap = stream.codec(pt)
    return f"{rtpmap.encoding}/{rtpmap.clock_rate}" if rtpmap else f"payload type {pt}"


def _summary(stream: MediaDescription) -> str:
    return f"m={stream.kind} {stream.port} {stream.protocol} {' '.join(stream.formats)}"


def _engine_codecs(names: Iterable[str], what: str) -> list[str]:
    codecs = [name.upper() for name in names]
    unknown = [name for name in codecs if name not in ENGINE_CODECS]
    if not codecs or unknown:
        raise ValueError(
            f"{what} must name one or more of {', '.join(ENGINE_CODECS)}, not {unknown or 'none'}"
        )
    return codecs


def _check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be 1-65535, not {port}")


def _check_ptime(ptime: int) -> None:
    if not MIN_PTIME <= ptime <= MAX_PTIME:
        raise ValueError(f"ptime must be {MIN_PTIME}-{MAX_PTIME} ms, not {ptime}")
