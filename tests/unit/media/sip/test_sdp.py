"""SDP parsing and serialising (RFC 4566): descriptions in the shapes real peers send,
robustness, and an error naming the line for each kind of malformed input."""

from __future__ import annotations

import random

import pytest

from media.sip.sdp import (
    Attribute,
    Connection,
    Direction,
    Line,
    MediaDescription,
    Origin,
    Rtcp,
    RtpMap,
    SdpError,
    SessionDescription,
    Timing,
)


def sdp(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


# What `sipp -sn uac` offers: PCMU alone.
SIPP_UAC = sdp(
    "v=0",
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1",
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "m=audio 6000 RTP/AVP 0",
    "a=rtpmap:0 PCMU/8000",
)

# The shape of SIPp's uac_pcap scenario: G.711 both laws and telephone events on 101.
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

# baresip with the g711 module.
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
    "a=label:1",
    "a=ssrc:2704337154 cname:3f1a9c0e-5d2b-4c11-9a7e-0b8e4d6f2a10",
    "a=ptime:20",
)

# An Asterisk-style carrier offering codecs we lack first.
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
    "a=fmtp:111 useinbandfec=1",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
    "a=ptime:20",
    "a=maxptime:150",
    "a=sendrecv",
)

# A FreeSWITCH-style carrier: PCMA first, events on 96, comfort noise, explicit RTCP port.
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

# Audio, video and T.38, with session lines most descriptions leave out.
EVERYTHING = sdp(
    "v=0",
    "o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5",
    "s=SDP Seminar",
    "i=A Seminar on the session description protocol",
    "u=http://www.example.com/seminars/sdp.pdf",
    "e=j.doe@example.com (Jane Doe)",
    "p=+1 617 555-6011",
    "c=IN IP4 10.47.16.5",
    "b=CT:384",
    "t=2873397496 2873404696",
    "r=7d 1h 0 25h",
    "z=2882844526 -1h 2898848070 0",
    "y=0100000001",
    "a=recvonly",
    "a=tool:test 1.0",
    "m=audio 49170 RTP/AVP 0",
    "i=voice",
    "c=IN IP4 10.47.16.6",
    "b=AS:64",
    "k=prompt",
    "a=X-custom:kept as written",
    "m=video 51372 RTP/AVP 99",
    "a=rtpmap:99 h263-1998/90000",
    "m=image 0 udptl t38",
    "a=T38FaxVersion:0",
    "a=T38FaxUdpEC:t38UDPRedundancy",
)

REAL_WORLD = [SIPP_UAC, SIPP_UAC_PCAP, BARESIP, CARRIER, FREESWITCH, EVERYTHING]


@pytest.mark.parametrize("text", REAL_WORLD)
def test_serialising_a_parsed_description_gives_it_back(text: str) -> None:
    description = SessionDescription.parse(text)
    assert description.serialize() == text
    assert SessionDescription.parse(description.serialize()) == description


def test_fields_of_a_sipp_offer() -> None:
    description = SessionDescription.parse(SIPP_UAC)
    assert description.origin == Origin("user1", 53655765, 2353687637, "IN", "IP4", "127.0.0.1")
    assert description.name == "-"
    assert description.connection == Connection("IN", "IP4", "127.0.0.1")
    assert description.times == (Timing(0, 0),)
    (audio,) = description.media
    assert (audio.kind, audio.port, audio.protocol, audio.formats) == (
        "audio",
        6000,
        "RTP/AVP",
        ("0",),
    )
    assert audio.payload_types == (0,)
    assert audio.rtpmaps == {0: RtpMap(0, "PCMU", 8000)}
    assert audio.connection is None
    assert description.connection_of(audio) == description.connection
    assert audio.direction is None and description.direction_of(audio) is Direction.SENDRECV
    assert audio.ptime is None and audio.rtcp is None


def test_typed_attributes_of_a_carrier_offer() -> None:
    audio = SessionDescription.parse(CARRIER).media[0]
    assert audio.payload_types == (18, 9, 111, 0, 8, 101)
    assert audio.codec(111) == RtpMap(111, "opus", 48000, "2")
    assert audio.codec(111).channels == 2  # type: ignore[union-attr]
    assert audio.fmtp(18) == "annexb=no"
    assert audio.fmtp("101") == "0-16"
    assert audio.fmtp(0) is None
    assert (audio.ptime, audio.maxptime) == (20, 150)
    assert audio.direction is Direction.SENDRECV
    assert [a.name for a in audio.attributes][-3:] == ["ptime", "maxptime", "sendrecv"]


def test_rtcp_attribute_with_and_without_address() -> None:
    audio = SessionDescription.parse(FREESWITCH).media[0]
    assert audio.rtcp == Rtcp(24619, Connection("IN", "IP4", "198.51.100.7"))
    assert Rtcp.parse("53021") == Rtcp(53021)
    assert Rtcp.parse("53021 IN IP6 2001:db8::1").serialize() == "53021 IN IP6 2001:db8::1"


def test_other_lines_and_unknown_attributes_are_kept_in_place() -> None:
    description = SessionDescription.parse(EVERYTHING)
    assert [line.letter for line in description.lines] == ["i", "u", "e", "p", "z", "y"]
    assert description.times == (Timing(2873397496, 2873404696, ("7d 1h 0 25h",)),)
    assert description.attributes == (Attribute("recvonly"), Attribute("tool", "test 1.0"))
    audio = description.media[0]
    assert audio.lines == (Line("i", "voice"), Line("k", "prompt"))
    assert audio.attributes == (Attribute("X-custom", "kept as written"),)
    assert audio.connection == Connection("IN", "IP4", "10.47.16.6")


def test_session_direction_applies_unless_media_has_its_own() -> None:
    description = SessionDescription.parse(
        sdp(
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.1",
            "s=-",
            "c=IN IP4 192.0.2.1",
            "t=0 0",
            "a=sendonly",
            "m=audio 4000 RTP/AVP 0",
            "m=audio 4002 RTP/AVP 0",
            "a=inactive",
        )
    )
    first, second = description.media
    assert description.direction is Direction.SENDONLY
    assert description.direction_of(first) is Direction.SENDONLY
    assert description.direction_of(second) is Direction.INACTIVE


def test_non_audio_media_is_kept() -> None:
    description = SessionDescription.parse(EVERYTHING)
    video, image = description.media[1:]
    assert (video.kind, video.port, video.payload_types) == ("video", 51372, (99,))
    assert video.codec(99) == RtpMap(99, "h263-1998", 90000)
    assert (image.kind, image.port, image.protocol, image.formats) == (
        "image",
        0,
        "udptl",
        ("t38",),
    )
    assert not image.is_rtp and image.payload_types == ()
    assert image.attribute_values("T38FaxVersion") == ["0"]


@pytest.mark.parametrize(
    ("pt", "encoding"),
    [(0, "PCMU"), (8, "PCMA"), (18, "G729"), (3, "GSM"), (9, "G722"), (13, "CN")],
)
def test_static_payload_types_need_no_rtpmap(pt: int, encoding: str) -> None:
    description = SessionDescription.parse(
        sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "t=0 0", f"m=audio 4000 RTP/AVP {pt} 97")
    )
    audio = description.media[0]
    assert audio.codec(pt) == RtpMap(pt, encoding, 8000)
    assert audio.codec(97) is None


def test_encoding_names_compare_without_case() -> None:
    audio = SessionDescription.parse(
        sdp(
            "v=0",
            "o=- 1 1 IN IP4 h",
            "s=-",
            "t=0 0",
            "m=audio 4000 RTP/AVP 0 100",
            "a=rtpmap:0 pcmu/8000",
            "a=rtpmap:100 Telephone-Event/8000",
        )
    ).media[0]
    assert audio.codec(0).is_encoding("PCMU", 8000)  # type: ignore[union-attr]
    assert audio.codec(100).is_encoding("telephone-event", 8000)  # type: ignore[union-attr]
    assert not audio.codec(100).is_encoding("telephone-event", 16000)  # type: ignore[union-attr]


def test_lf_line_endings_trailing_whitespace_and_blank_lines() -> None:
    text = (
        "v=0 \n"
        "o=user1 53655765 2353687637 IN IP4 127.0.0.1\t\n"
        "s=-\n"
        "c=IN IP4 127.0.0.1  \n"
        "\n"
        "t=0 0\n"
        "m=audio  6000   RTP/AVP 0 \n"
        "a=rtpmap:0 PCMU/8000   \n"
        "\n\n"
    )
    assert SessionDescription.parse(text).serialize() == SIPP_UAC


def test_bytes_are_decoded_as_utf8() -> None:
    assert SessionDescription.parse(SIPP_UAC.encode()) == SessionDescription.parse(SIPP_UAC)
    named = SessionDescription.parse(SIPP_UAC.replace("s=-", "s=Café").encode())
    assert named.name == "Café"
    with pytest.raises(SdpError, match=r"^line 3: the description is not UTF-8"):
        SessionDescription.parse(
            SIPP_UAC.replace("s=-", "s=Caf\udcff").encode("utf-8", "surrogateescape")
        )


def test_hold_address_and_ipv6() -> None:
    held = SessionDescription.parse(SIPP_UAC.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0"))
    assert held.connection is not None and held.connection.is_unspecified
    v6 = SessionDescription.parse(
        sdp(
            "v=0",
            "o=- 1 1 IN IP6 2001:db8::1",
            "s=-",
            "c=IN IP6 2001:db8::1",
            "t=0 0",
            "m=audio 4000 RTP/AVP 0",
            "c=IN IP6 2001:db8::2",
        )
    )
    assert v6.connection == Connection("IN", "IP6", "2001:db8::1")
    assert not v6.connection.is_unspecified
    assert v6.connection_of(v6.media[0]).host == "2001:db8::2"  # type: ignore[union-attr]
    assert Connection.of("2001:db8::3") == Connection("IN", "IP6", "2001:db8::3")
    assert Connection.of("pbx.example.com") == Connection("IN", "IP4", "pbx.example.com")
    assert Connection.parse("IN IP4 224.2.1.1/127/3").host == "224.2.1.1"


def test_empty_session_name_is_written_as_one_space() -> None:
    description = SessionDescription.parse(SIPP_UAC.replace("s=-", "s= "))
    assert description.name == ""
    assert "\r\ns= \r\n" in description.serialize()


def test_missing_time_line_is_written_as_permanent() -> None:
    description = SessionDescription.parse(SIPP_UAC.replace("t=0 0\r\n", ""))
    assert description.times == (Timing(0, 0),)
    assert description.serialize() == SIPP_UAC


def test_with_direction_replaces_the_attribute_in_place() -> None:
    audio = SessionDescription.parse(BARESIP).media[0]
    held = audio.with_direction("sendonly")
    names = [a.name for a in held.attributes]
    assert names.index("sendonly") == [a.name for a in audio.attributes].index("sendrecv")
    assert "sendrecv" not in names and held.direction is Direction.SENDONLY
    bare = SessionDescription.parse(SIPP_UAC).media[0].with_direction(Direction.INACTIVE)
    assert bare.attributes[-1] == Attribute("inactive")


def test_building_a_description_by_hand() -> None:
    description = SessionDescription(
        origin=Origin("-", 7, 1, "IN", "IP4", "192.0.2.10"),
        connection=Connection.of("192.0.2.10"),
        media=(
            MediaDescription(
                "audio", 20000, "RTP/AVP", ("8",), attributes=(Attribute("rtpmap", "8 PCMA/8000"),)
            ),
        ),
    )
    assert description.serialize() == sdp(
        "v=0",
        "o=- 7 1 IN IP4 192.0.2.10",
        "s=-",
        "c=IN IP4 192.0.2.10",
        "t=0 0",
        "m=audio 20000 RTP/AVP 8",
        "a=rtpmap:8 PCMA/8000",
    )


def test_direction_arithmetic() -> None:
    assert Direction.SENDONLY.reversed() is Direction.RECVONLY
    assert Direction.INACTIVE.reversed() is Direction.INACTIVE
    assert Direction.SENDRECV.intersect(Direction.RECVONLY) is Direction.RECVONLY
    assert Direction.SENDONLY.intersect(Direction.RECVONLY) is Direction.INACTIVE
    assert Direction.of(sends=True, receives=False) == "sendonly"


HEAD = ("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0")
"""Five good session lines: a malformed line after them is line 6."""

MALFORMED = [
    ("", r"^line 1: the description is empty"),
    ("v=1\r\n", r"^line 1: a description starts with v=0, found 'v=1'"),
    ("o=- 1 1 IN IP4 h\r\n", r"^line 1: a description starts with v=0"),
    (sdp("v=0", "o=- 1 1 IN IP4"), r"^line 2: o= needs username, session id, session version"),
    (sdp("v=0", "o=- one 1 IN IP4 h"), r"^line 2: o= session id must be a number, found 'one'"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "c=IN IP4"), r"^line 4: c= needs network type"),
    (
        sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "c=IN IP4 ::1"),
        r"^line 4: c= address ::1 is not an IP4",
    ),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "t=0"), r"^line 4: t= needs start and stop times"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "s=-", "r=1d 1h 0"), r"^line 4: r= must follow a t= line"),
    (sdp("v=0", "s=-", "m=audio 4000 RTP/AVP 0"), r"^line 3: no o= line before the first m="),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "t=0 0"), r"^line 4: no s= line in the description"),
    (sdp("v=0", "v=0"), r"^line 2: a second v= line"),
    (sdp("v=0", "o=- 1 1 IN IP4 h", "o=- 1 1 IN IP4 h"), r"^line 3: a second o= line"),
    (sdp(*HEAD, "c=IN IP4 192.0.2.2"), r"^line 6: a second c= line"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP"), r"^line 6: m= needs media, port, protocol and formats"),
    (sdp(*HEAD, "m=audio port RTP/AVP 0"), r"^line 6: m= port must be a number, found 'port'"),
    (sdp(*HEAD, "m=audio 70000 RTP/AVP 0"), r"^line 6: m= port must be 0-65535, found 70000"),
    (sdp(*HEAD, "m=audio 4000/x RTP/AVP 0"), r"^line 6: m= port count must be a number"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 0 PCMU"), r"^line 6: m= format 'PCMU' is not an RTP payload"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 128"), r"^line 6: m= format '128' is not an RTP payload"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "t=0 0"), r"^line 7: t= belongs to the session section"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "b=AS"), r"^line 7: b= needs '<type>:<bandwidth>'"),
    (sdp(*HEAD, "b=AS:lots"), r"^line 6: b=AS bandwidth must be a number"),
    (sdp(*HEAD, "a="), r"^line 6: a= needs an attribute name"),
    (sdp(*HEAD, "a=:value"), r"^line 6: a= needs an attribute name"),
    (sdp(*HEAD, "a=rtpmap:0"), r"^line 6: a=rtpmap needs '<payload type> <encoding>/<clock rate>'"),
    (sdp(*HEAD, "a=rtpmap:0 PCMU"), r"^line 6: a=rtpmap:0 needs '<encoding>/<clock rate>'"),
    (sdp(*HEAD, "a=rtpmap:0 PCMU/fast"), r"^line 6: a=rtpmap:0 clock rate must be a number"),
    (sdp(*HEAD, "a=rtpmap:0 PCMU/0"), r"^line 6: a=rtpmap:0 clock rate must not be 0"),
    (sdp(*HEAD, "a=rtpmap:300 x/8000"), r"^line 6: a=rtpmap '300' is not an RTP payload type"),
    (sdp(*HEAD, "a=rtpmap"), r"^line 6: a=rtpmap needs '<payload type>"),
    (sdp(*HEAD, "a=fmtp:"), r"^line 6: a=fmtp needs '<format> <parameters>'"),
    (sdp(*HEAD, "a=ptime:0"), r"^line 6: a=ptime needs a positive number of milliseconds"),
    (sdp(*HEAD, "a=ptime:twenty"), r"^line 6: a=ptime needs a positive number"),
    (sdp(*HEAD, "a=maxptime:-1"), r"^line 6: a=maxptime needs a positive number"),
    (sdp(*HEAD, "a=rtcp:x"), r"^line 6: a=rtcp port must be a number"),
    (sdp(*HEAD, "a=rtcp:5001 IN IP4"), r"^line 6: a=rtcp needs network type"),
    (sdp(*HEAD, "a=sendonly:yes"), r"^line 6: a=sendonly takes no value"),
    (
        sdp(*HEAD, "a=sendonly", "a=recvonly"),
        r"^line 7: a=recvonly contradicts a=sendonly on line 6",
    ),
    (sdp(*HEAD, "garbage"), r"^line 6: expected '<letter>=<value>', found 'garbage'"),
    (sdp(*HEAD, "A=foo"), r"^line 6: expected '<letter>=<value>'"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "=x"), r"^line 7: expected '<letter>=<value>'"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED, ids=[m for _, m in MALFORMED])
def test_malformed_input_names_the_line(text: str, message: str) -> None:
    with pytest.raises(SdpError, match=message) as caught:
        SessionDescription.parse(text)
    assert caught.value.line == int(message.split()[1].rstrip(":"))


def test_line_numbers_count_blank_lines_and_lf_endings() -> None:
    with pytest.raises(SdpError, match=r"^line 5: m= needs"):
        SessionDescription.parse("v=0\no=- 1 1 IN IP4 h\n\ns=-\nm=audio 1\n")


def test_repeated_identical_direction_is_accepted() -> None:
    description = SessionDescription.parse(sdp(*HEAD, "a=sendonly", "a=sendonly"))
    assert description.direction is Direction.SENDONLY


def test_fractional_ptime_is_rounded_and_kept_as_written() -> None:
    text = sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "a=ptime:30.0")
    description = SessionDescription.parse(text)
    assert description.media[0].ptime == 30
    assert description.serialize() == text


def _mutations(rng: random.Random, text: str) -> str:
    lines = text.split("\r\n")[:-1]
    for _ in range(rng.randint(1, 3)):
        index = rng.randrange(len(lines))
        line = lines[index]
        action = rng.randrange(7)
        if action == 0:
            del lines[index]
            if not lines:
                lines.append("")
        elif action == 1:
            lines.insert(index, lines[rng.randrange(len(lines))])
        elif action == 2 and line:
            cut = rng.randrange(len(line))
            lines[index] = line[:cut] + line[cut + 1 :]
        elif action == 3:
            cut = rng.randrange(len(line) + 1)
            lines[index] = line[:cut] + rng.choice(" :/=x0-9\t\x00é") + line[cut:]
        elif action == 4:
            fields = line.split(" ")
            fields[rng.randrange(len(fields))] = rng.choice(
                ["", "0", "99999999", "-1", "a b", "::"]
            )
            lines[index] = " ".join(fields)
        elif action == 5:
            lines[index] = line[: rng.randrange(len(line) + 1)]
        else:
            lines[index], lines[-1] = lines[-1], lines[index]
    return "\r\n".join(lines) + rng.choice(["\r\n", "\n", ""])


def test_mutated_descriptions_parse_or_raise_sdp_error() -> None:
    rng = random.Random(4566)
    outcomes = {"parsed": 0, "rejected": 0}
    for _ in range(3000):
        text = _mutations(rng, rng.choice(REAL_WORLD))
        try:
            description = SessionDescription.parse(text)
        except SdpError as error:
            assert error.line is not None and str(error).startswith(f"line {error.line}: ")
            outcomes["rejected"] += 1
            continue
        # What we write we read back; then everything a description offers must work.
        written = description.serialize()
        assert SessionDescription.parse(written).serialize() == written
        for media in description.media:
            for pt in media.payload_types:
                media.codec(pt)
                media.fmtp(pt)
            (media.ptime, media.maxptime, media.rtcp, description.direction_of(media))
        outcomes["parsed"] += 1
    assert outcomes["parsed"] > 300 and outcomes["rejected"] > 300
