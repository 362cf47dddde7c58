"""The offer/answer model (RFC 3264) for the engine: codec choice in the offerer's order,
telephone-event payload types kept, streams refused with port 0, directions, hold and
resume by re-INVITE, packet times and session versions."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from media.sip.offer_answer import (
    Answer,
    MediaParameters,
    NoAcceptableMedia,
    accept_answer,
    answer,
    hold_offer,
    make_offer,
    resume_offer,
    revise,
)
from media.sip.sdp import Direction, SdpError, SessionDescription

ME = "192.0.2.10"
PORT = 20000


def sdp(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


def offer_of(*media_lines: str, session: tuple[str, ...] = ()) -> SessionDescription:
    return SessionDescription.parse(
        sdp(
            "v=0",
            "o=peer 100 200 IN IP4 198.51.100.7",
            "s=-",
            "c=IN IP4 198.51.100.7",
            "t=0 0",
            *session,
            *media_lines,
        )
    )


def answer_to(offer: SessionDescription | str, **options: object) -> Answer:
    if isinstance(offer, str):
        offer = SessionDescription.parse(offer)
    return answer(offer, ME, PORT, session_id=5, version=1, **options)  # type: ignore[arg-type]


SIPP_UAC = sdp(
    "v=0",
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1",
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "m=audio 6000 RTP/AVP 0",
    "a=rtpmap:0 PCMU/8000",
)

SIPP_UAC_PCAP = sdp(
    "v=0",
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1",
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "m=audio 6000 RTP/AVP 0 8 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
)

BARESIP = sdp(
    "v=0",
    "o=- 2017485906 2870921562 IN IP4 127.0.0.1",
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "m=audio 10002 RTP/AVP 0 8 101",
    "b=AS:80",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=rtcp-mux",
    "a=sendrecv",
    "a=ptime:20",
)

CARRIER = sdp(
    "v=0",
    "o=root 1821 1821 IN IP4 203.0.113.5",
    "s=Asterisk PBX 18.10.0",
    "c=IN IP4 203.0.113.5",
    "t=0 0",
    "m=audio 14388 RTP/AVP 18 9 111 0 8 101",
    "a=rtpmap:18 G729/8000",
    "a=fmtp:18 annexb=no",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:111 opus/48000/2",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
    "a=ptime:20",
    "a=maxptime:150",
    "a=sendrecv",
)

FREESWITCH = sdp(
    "v=0",
    "o=FreeSWITCH 1700000000 1700000001 IN IP4 198.51.100.7",
    "s=FreeSWITCH",
    "c=IN IP4 198.51.100.7",
    "t=0 0",
    "m=audio 24618 RTP/AVP 8 0 96 13",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:96 telephone-event/8000",
    "a=fmtp:96 0-16",
    "a=rtpmap:13 CN/8000",
    "a=ptime:20",
    "a=sendrecv",
    "a=rtcp:24619 IN IP4 198.51.100.7",
)


# Answering (UAS).


def test_answer_to_sipp_uac_is_pcmu_without_events() -> None:
    result = answer_to(SIPP_UAC)
    assert result.parameters == MediaParameters(
        remote_address="127.0.0.1",
        remote_port=6000,
        remote_rtcp_port=6001,
        payload_type=0,
        codec="PCMU",
        clock_rate=8000,
        ptime=20,
        telephone_event_pt=None,
        direction=Direction.SENDRECV,
        on_hold=False,
    )
    assert result.parameters.sends and result.parameters.receives
    assert result.description.serialize() == sdp(
        "v=0",
        "o=- 5 1 IN IP4 192.0.2.10",
        "s=-",
        "c=IN IP4 192.0.2.10",
        "t=0 0",
        "m=audio 20000 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "a=ptime:20",
        "a=sendrecv",
    )


def test_answer_keeps_the_offerers_first_supported_codec_and_event_type() -> None:
    result = answer_to(SIPP_UAC_PCAP)
    assert (result.parameters.codec, result.parameters.payload_type) == ("PCMU", 0)
    assert result.parameters.telephone_event_pt == 101
    assert result.description.serialize().endswith(
        sdp(
            "m=audio 20000 RTP/AVP 0 101",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=ptime:20",
            "a=sendrecv",
        )
    )


def test_offerers_order_wins_over_ours() -> None:
    result = answer_to(FREESWITCH, supported=("PCMU", "PCMA"))
    assert (result.parameters.codec, result.parameters.payload_type) == ("PCMA", 8)
    assert result.parameters.telephone_event_pt == 96
    assert result.description.media[0].formats == ("8", "96")
    assert result.parameters.remote_rtcp_port == 24619


def test_supported_restricts_the_choice() -> None:
    result = answer_to(FREESWITCH, supported=("pcmu",))
    assert (result.parameters.codec, result.parameters.payload_type) == ("PCMU", 0)


def test_carrier_with_codecs_we_lack_first() -> None:
    result = answer_to(CARRIER)
    parameters = result.parameters
    assert (parameters.codec, parameters.payload_type, parameters.telephone_event_pt) == (
        "PCMU",
        0,
        101,
    )
    assert (parameters.remote_address, parameters.remote_port, parameters.ptime) == (
        "203.0.113.5",
        14388,
        20,
    )


def test_baresip_offer_with_rtcp_mux_is_answered_without_it() -> None:
    result = answer_to(BARESIP)
    assert result.parameters.remote_rtcp_port == 10003
    assert result.parameters.telephone_event_pt == 101
    assert not result.description.media[0].attribute_values("rtcp-mux")


def test_telephone_event_on_96_is_kept() -> None:
    offer = offer_of(
        "m=audio 4000 RTP/AVP 8 96",
        "a=rtpmap:96 telephone-event/8000",
    )
    result = answer_to(offer)
    assert result.parameters.telephone_event_pt == 96
    assert result.description.media[0].codec(96).is_encoding("telephone-event", 8000)  # type: ignore[union-attr]


def test_telephone_event_at_another_clock_rate_is_ignored() -> None:
    offer = offer_of(
        "m=audio 4000 RTP/AVP 0 97 101",
        "a=rtpmap:97 telephone-event/48000",
        "a=rtpmap:101 TELEPHONE-EVENT/8000",
    )
    assert answer_to(offer).parameters.telephone_event_pt == 101


def test_dynamic_payload_type_for_pcmu_is_kept() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 97", "a=rtpmap:97 pcmu/8000")
    result = answer_to(offer)
    assert (result.parameters.codec, result.parameters.payload_type) == ("PCMU", 97)
    assert result.description.media[0].formats == ("97",)


def test_no_common_codec_raises() -> None:
    offer = offer_of(
        "m=audio 4000 RTP/AVP 18 111",
        "a=rtpmap:18 G729/8000",
        "a=rtpmap:111 opus/48000/2",
    )
    with pytest.raises(NoAcceptableMedia, match=r"no common codec \(offered G729/8000, opus/48000"):
        answer_to(offer)


def test_pcmu_at_another_rate_is_not_pcmu() -> None:
    with pytest.raises(NoAcceptableMedia):
        answer_to(offer_of("m=audio 4000 RTP/AVP 97", "a=rtpmap:97 PCMU/16000"))


def test_video_is_refused_with_port_zero_and_audio_accepted() -> None:
    offer = offer_of(
        "m=video 5000 RTP/AVP 99",
        "a=rtpmap:99 H264/90000",
        "m=audio 4000 RTP/AVP 0",
        "m=image 6000 udptl t38",
    )
    result = answer_to(offer)
    video, audio, image = result.description.media
    assert (video.kind, video.port, video.protocol, video.formats) == (
        "video",
        0,
        "RTP/AVP",
        ("99",),
    )
    assert not video.attributes
    assert (image.kind, image.port, image.protocol, image.formats) == (
        "image",
        0,
        "udptl",
        ("t38",),
    )
    assert audio.port == PORT and result.parameters.remote_port == 4000
    assert "m=video 0 RTP/AVP 99\r\n" in result.description.serialize()


def test_secure_rtp_is_refused() -> None:
    srtp = (
        "m=audio 4000 RTP/SAVP 0",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
    )
    with pytest.raises(NoAcceptableMedia, match="protocol RTP/SAVP is not RTP/AVP"):
        answer_to(offer_of(*srtp))
    result = answer_to(offer_of(*srtp, "m=audio 4002 RTP/AVP 0"))
    assert [m.port for m in result.description.media] == [0, PORT]
    assert result.parameters.remote_port == 4002


def test_only_the_first_acceptable_audio_stream_is_used() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 18", "m=audio 4002 RTP/AVP 8", "m=audio 4004 RTP/AVP 0")
    result = answer_to(offer)
    assert [m.port for m in result.description.media] == [0, PORT, 0]
    assert result.parameters.codec == "PCMA"


def test_disabled_stream_stays_disabled() -> None:
    offer = offer_of("m=audio 0 RTP/AVP 0", "m=audio 4002 RTP/AVP 0")
    assert [m.port for m in answer_to(offer).description.media] == [0, PORT]
    with pytest.raises(NoAcceptableMedia, match=r"disabled \(port 0\)"):
        answer_to(offer_of("m=audio 0 RTP/AVP 0"))


def test_offer_without_media_raises() -> None:
    with pytest.raises(NoAcceptableMedia, match="it has none"):
        answer_to(offer_of())


def test_stream_without_any_connection_is_refused() -> None:
    offer = SessionDescription.parse(
        sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "t=0 0", "m=audio 4000 RTP/AVP 0")
    )
    with pytest.raises(NoAcceptableMedia, match="no c= line"):
        answer_to(offer)


def test_media_connection_wins_over_session_connection() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0", "c=IN IP4 198.51.100.99")
    assert answer_to(offer).parameters.remote_address == "198.51.100.99"


def test_ipv6_offer_and_answer() -> None:
    offer = SessionDescription.parse(
        sdp(
            "v=0",
            "o=- 1 1 IN IP6 2001:db8::7",
            "s=-",
            "c=IN IP6 2001:db8::7",
            "t=0 0",
            "m=audio 4000 RTP/AVP 8",
        )
    )
    result = answer(offer, "2001:db8::10", PORT, session_id=5, version=1)
    assert result.parameters.remote_address == "2001:db8::7"
    text = result.description.serialize()
    assert "o=- 5 1 IN IP6 2001:db8::10\r\n" in text and "c=IN IP6 2001:db8::10\r\n" in text


def test_answer_copies_the_offers_time_line() -> None:
    offer = SessionDescription.parse(SIPP_UAC.replace("t=0 0", "t=3900000000 3900003600"))
    assert "\r\nt=3900000000 3900003600\r\n" in answer_to(offer).description.serialize()


# Directions and hold, from our side.


@pytest.mark.parametrize(
    ("offered", "ours", "on_hold"),
    [
        ("sendrecv", Direction.SENDRECV, False),
        ("sendonly", Direction.RECVONLY, True),
        ("recvonly", Direction.SENDONLY, False),
        ("inactive", Direction.INACTIVE, True),
    ],
)
def test_direction_of_the_answer(offered: str, ours: Direction, on_hold: bool) -> None:
    result = answer_to(offer_of("m=audio 4000 RTP/AVP 0", f"a={offered}"))
    assert result.parameters.direction is ours
    assert result.parameters.on_hold is on_hold
    assert result.description.media[0].direction is ours
    assert result.parameters.sends is ours.sends and result.parameters.receives is ours.receives


def test_session_level_direction_counts() -> None:
    result = answer_to(offer_of("m=audio 4000 RTP/AVP 0", session=("a=sendonly",)))
    assert result.parameters.direction is Direction.RECVONLY and result.parameters.on_hold


def test_old_style_hold_with_zero_address() -> None:
    result = answer_to(SIPP_UAC.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0"))
    parameters = result.parameters
    assert parameters.on_hold and not parameters.sends and parameters.receives
    assert parameters.direction is Direction.RECVONLY
    assert parameters.remote_address == "0.0.0.0"


@pytest.mark.parametrize(
    ("offered", "ours", "on_hold"),
    [
        ("sendrecv", Direction.SENDONLY, False),
        ("sendonly", Direction.INACTIVE, True),
        ("recvonly", Direction.SENDONLY, False),
    ],
)
def test_answering_while_we_hold_the_peer(offered: str, ours: Direction, on_hold: bool) -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0", f"a={offered}")
    result = answer_to(offer, local_direction="sendonly")
    assert (result.parameters.direction, result.parameters.on_hold) == (ours, on_hold)


# Packet times.


@pytest.mark.parametrize(
    ("attributes", "ptime"),
    [
        ((), 20),
        (("a=ptime:30",), 30),
        (("a=ptime:10",), 10),
        (("a=ptime:5",), 10),
        (("a=ptime:90",), 60),
        (("a=maxptime:10",), 10),
        (("a=ptime:40", "a=maxptime:30"), 30),
        (("a=ptime:20", "a=maxptime:150"), 20),
    ],
)
def test_ptime_propagates_within_our_range(attributes: tuple[str, ...], ptime: int) -> None:
    result = answer_to(offer_of("m=audio 4000 RTP/AVP 8", *attributes))
    assert result.parameters.ptime == ptime
    assert result.description.media[0].ptime == ptime


def test_session_level_ptime_is_understood() -> None:
    assert (
        answer_to(offer_of("m=audio 4000 RTP/AVP 8", session=("a=ptime:30",))).parameters.ptime
        == 30
    )


# Offering (UAC).


def test_make_offer() -> None:
    offer = make_offer(ME, PORT, session_id=7, version=1)
    assert offer.serialize() == sdp(
        "v=0",
        "o=- 7 1 IN IP4 192.0.2.10",
        "s=-",
        "c=IN IP4 192.0.2.10",
        "t=0 0",
        "m=audio 20000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendrecv",
    )


def test_make_offer_options() -> None:
    offer = make_offer(
        "2001:db8::10",
        PORT,
        session_id=7,
        version=3,
        codecs=("PCMA",),
        telephone_event_pt=None,
        ptime=30,
        direction="recvonly",
    )
    (audio,) = offer.media
    assert audio.formats == ("8",) and audio.ptime == 30 and audio.direction is Direction.RECVONLY
    assert offer.origin.addr_type == "IP6" and offer.origin.version == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"codecs": ("G729",)}, "codecs must name one or more of PCMU, PCMA"),
        ({"codecs": ()}, "codecs must name one or more"),
        ({"ptime": 5}, "ptime must be 10-60 ms"),
        ({"telephone_event_pt": 13}, "dynamic payload type"),
        ({"direction": "sideways"}, "sideways"),
        ({"session_id": -1}, "must not be negative"),
    ],
)
def test_make_offer_rejects_what_we_cannot_do(options: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"session_id": 7, "version": 1, **options}
    with pytest.raises(ValueError, match=message):
        make_offer(ME, PORT, **arguments)  # type: ignore[arg-type]


def test_answer_rejects_bad_arguments() -> None:
    offer = SessionDescription.parse(SIPP_UAC)
    with pytest.raises(ValueError, match="supported must name"):
        answer(offer, ME, PORT, session_id=1, version=1, supported=("opus",))
    with pytest.raises(ValueError, match="port must be 1-65535"):
        answer(offer, ME, 0, session_id=1, version=1)


def test_accept_sipp_uas_answer() -> None:
    offer = make_offer(ME, PORT, session_id=7, version=1)
    reply = SessionDescription.parse(SIPP_UAC.replace("6000", "6002"))
    parameters = accept_answer(offer, reply)
    assert (parameters.codec, parameters.payload_type, parameters.telephone_event_pt) == (
        "PCMU",
        0,
        None,
    )
    assert (parameters.remote_address, parameters.remote_port, parameters.remote_rtcp_port) == (
        "127.0.0.1",
        6002,
        6003,
    )
    assert parameters.direction is Direction.SENDRECV and not parameters.on_hold


def test_accept_answer_uses_the_answers_order_and_types() -> None:
    offer = make_offer(ME, PORT, session_id=7, version=1)
    reply = offer_of(
        "m=audio 4000 RTP/AVP 8 0 96",
        "a=rtpmap:96 telephone-event/8000",
        "a=ptime:30",
    )
    parameters = accept_answer(offer, reply)
    assert (parameters.codec, parameters.telephone_event_pt, parameters.ptime) == ("PCMA", 96, 30)


def test_accept_answer_ignores_events_we_did_not_offer() -> None:
    offer = make_offer(ME, PORT, session_id=7, version=1, telephone_event_pt=None)
    assert accept_answer(offer, SessionDescription.parse(SIPP_UAC_PCAP)).telephone_event_pt is None


def test_accept_answer_with_a_codec_we_did_not_offer() -> None:
    offer = make_offer(ME, PORT, session_id=7, version=1, codecs=("PCMA",))
    with pytest.raises(NoAcceptableMedia, match="no common codec"):
        accept_answer(offer, offer_of("m=audio 4000 RTP/AVP 0 18"))


def test_accept_answer_refusing_the_stream() -> None:
    offer = make_offer(ME, PORT, session_id=7, version=1)
    with pytest.raises(NoAcceptableMedia, match=r"refused \(port 0\)"):
        accept_answer(offer, offer_of("m=audio 0 RTP/AVP 0 8 101"))


def test_accept_answer_with_the_wrong_number_of_streams() -> None:
    offer = make_offer(ME, PORT, session_id=7, version=1)
    with pytest.raises(SdpError, match="the answer has 2 m= lines for the offer's 1"):
        accept_answer(offer, offer_of("m=audio 4000 RTP/AVP 0", "m=video 0 RTP/AVP 99"))


@pytest.mark.parametrize(
    ("ours", "theirs", "direction", "on_hold"),
    [
        ("sendrecv", "sendrecv", Direction.SENDRECV, False),
        ("sendrecv", "sendonly", Direction.RECVONLY, True),
        ("sendrecv", "recvonly", Direction.SENDONLY, False),
        ("sendrecv", "inactive", Direction.INACTIVE, True),
        ("sendonly", "recvonly", Direction.SENDONLY, False),
        ("sendonly", "inactive", Direction.INACTIVE, True),
        ("inactive", "inactive", Direction.INACTIVE, False),
        ("recvonly", "sendonly", Direction.RECVONLY, False),
    ],
)
def test_accept_answer_directions(
    ours: str, theirs: str, direction: Direction, on_hold: bool
) -> None:
    offer = make_offer(ME, PORT, session_id=7, version=1, direction=ours)
    parameters = accept_answer(offer, offer_of("m=audio 4000 RTP/AVP 0", f"a={theirs}"))
    assert (parameters.direction, parameters.on_hold) == (direction, on_hold)


def test_both_sides_agree() -> None:
    """Our offer answered by our own answerer: each side sends what the other expects."""
    offer = make_offer(ME, PORT, session_id=7, version=1, codecs=("PCMA", "PCMU"), ptime=30)
    wire_offer = SessionDescription.parse(offer.serialize())
    uas = answer(wire_offer, "192.0.2.20", 30000, session_id=9, version=1)
    uac = accept_answer(offer, SessionDescription.parse(uas.description.serialize()))
    assert (uac.codec, uac.payload_type, uac.telephone_event_pt, uac.ptime) == ("PCMA", 8, 101, 30)
    assert (uas.parameters.codec, uas.parameters.telephone_event_pt) == ("PCMA", 101)
    assert (uac.remote_address, uac.remote_port) == ("192.0.2.20", 30000)
    assert (uas.parameters.remote_address, uas.parameters.remote_port) == (ME, PORT)


# re-INVITE: versions, hold and resume.


def test_revise_keeps_the_version_when_nothing_changed() -> None:
    first = make_offer(ME, PORT, session_id=7, version=1)
    again = make_offer(ME, PORT, session_id=99, version=42)
    assert revise(first, again) == first
    moved = revise(first, make_offer(ME, PORT + 2, session_id=99, version=42))
    assert (moved.origin.session_id, moved.origin.version) == (7, 2)
    assert moved.media[0].port == PORT + 2


def test_hold_and_resume_offers() -> None:
    first = make_offer(ME, PORT, session_id=7, version=1)
    held = hold_offer(first)
    assert held.media[0].direction is Direction.SENDONLY
    assert held.origin.version == 2 and held.media[0].formats == first.media[0].formats
    assert hold_offer(held) == held  # nothing changed: same version
    resumed = resume_offer(held)
    assert resumed.media[0].direction is Direction.SENDRECV and resumed.origin.version == 3
    assert replace(resumed, origin=first.origin) == first


def test_hold_while_held_is_inactive_and_resume_goes_back_to_recvonly() -> None:
    """RFC 3264 8.4: our last answer was recvonly because the peer holds us."""
    offer = offer_of("m=audio 4000 RTP/AVP 0", "a=sendonly")
    ours = answer_to(offer).description
    held = hold_offer(ours)
    assert held.media[0].direction is Direction.INACTIVE and held.origin.version == 2
    resumed = resume_offer(held)
    assert resumed.media[0].direction is Direction.RECVONLY and resumed.origin.version == 3


def test_hold_with_explicit_direction() -> None:
    first = make_offer(ME, PORT, session_id=7, version=1)
    assert hold_offer(first, direction="inactive").media[0].direction is Direction.INACTIVE
    with pytest.raises(ValueError, match="sendonly or inactive"):
        hold_offer(first, direction="recvonly")


def test_hold_leaves_refused_streams_alone() -> None:
    offer = offer_of("m=video 5000 RTP/AVP 99", "m=audio 4000 RTP/AVP 0")
    held = hold_offer(answer_to(offer).description)
    video, audio = held.media
    assert video.port == 0 and video.direction is None
    assert audio.direction is Direction.SENDONLY


def test_hold_and_resume_round_trip_between_two_sides() -> None:
    """A (UAC) calls B (UAS), holds B, then resumes, each re-INVITE answered by B."""
    a_sent = make_offer(ME, PORT, session_id=7, version=1)
    b_sent = answer(a_sent, "192.0.2.20", 30000, session_id=9, version=1).description
    assert accept_answer(a_sent, b_sent).direction is Direction.SENDRECV

    a_sent = hold_offer(a_sent)
    b = answer(a_sent, "192.0.2.20", 30000, session_id=9, version=1)
    b_sent = revise(b_sent, b.description)
    a = accept_answer(a_sent, b_sent)
    assert (b.parameters.direction, b.parameters.on_hold) == (Direction.RECVONLY, True)
    assert (a.direction, a.on_hold) == (Direction.SENDONLY, False)
    assert b_sent.origin.version == 2 and b_sent.media[0].direction is Direction.RECVONLY

    a_sent = resume_offer(a_sent)
    b = answer(a_sent, "192.0.2.20", 30000, session_id=9, version=1)
    b_sent = revise(b_sent, b.description)
    a = accept_answer(a_sent, b_sent)
    assert (b.parameters.direction, b.parameters.on_hold) == (Direction.SENDRECV, False)
    assert (a.direction, a.on_hold) == (Direction.SENDRECV, False)
    assert (a_sent.origin.version, b_sent.origin.version) == (3, 3)


def test_answering_a_repeated_offer_keeps_our_version() -> None:
    offer = SessionDescription.parse(SIPP_UAC)
    first = answer_to(offer).description
    again = revise(first, answer(offer, ME, PORT, session_id=1, version=1).description)
    assert again == first


def test_answer_never_raises_anything_else_on_parsed_offers() -> None:
    rng = random.Random(3264)
    offers = [SIPP_UAC, SIPP_UAC_PCAP, BARESIP, CARRIER, FREESWITCH]
    tokens = [
        "0",
        "8",
        "18",
        "96",
        "101",
        "127",
        "a=sendonly",
        "a=inactive",
        "a=ptime:7",
        "a=maxptime:80",
        "a=rtcp:9",
        "c=IN IP4 0.0.0.0",
        "m=video 0 RTP/AVP 0",
        "m=audio 1 RTP/SAVP 0",
        "a=rtpmap:96 PCMA/8000",
        "a=rtpmap:0 G729/8000",
    ]
    for _ in range(500):
        lines = rng.choice(offers).split("\r\n")[:-1]
        for _ in range(rng.randint(1, 4)):
            token = rng.choice(tokens)
            if token[1:2] == "=":
                lines.insert(rng.randint(5, len(lines)), token)
            else:
                index = next(i for i, line in enumerate(lines) if line.startswith("m="))
                lines[index] += f" {token}"
        try:
            offer = SessionDescription.parse(sdp(*lines))
        except SdpError:
            continue
        try:
            result = answer_to(offer)
        except NoAcceptableMedia:
            continue
        assert len(result.description.media) == len(offer.media)
        assert result.parameters.codec in ("PCMU", "PCMA")
        assert 10 <= result.parameters.ptime <= 60
