"""Parsing and serialising whole messages: framing, accessors, make_response, robustness."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import pytest

from media.sip.address import Address
from media.sip.headers import CSeq, Headers
from media.sip.message import Request, Response, parse_message, stream_frame_length
from media.sip.syntax import SipParseError
from media.sip.uri import SipUri, parse_uri
from media.sip.validation import check_request, check_response

SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.101\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def wire(*lines: str, body: bytes = b"") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


INVITE = wire(
    "INVITE sip:bob@biloxi.example.com SIP/2.0",
    "Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;rport",
    "Max-Forwards: 70",
    "From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl",
    "To: Bob <sip:bob@biloxi.example.com>",
    "Call-ID: 3848276298220188511@atlanta.example.com",
    "CSeq: 1 INVITE",
    "Contact: <sip:alice@client.atlanta.example.com;transport=udp>",
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS",
    "Supported: replaces, timer",
    "Content-Type: application/sdp",
    f"Content-Length: {len(SDP)}",
    body=SDP,
)
OK = wire(
    "SIP/2.0 200 OK",
    "Via: SIP/2.0/UDP proxy.biloxi.example.com;branch=z9hG4bK721e4.1;received=192.0.2.222",
    "Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;rport=5060"
    ";received=192.0.2.101",
    "Record-Route: <sip:proxy.biloxi.example.com;lr>, <sip:edge.atlanta.example.com;lr>",
    "From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl",
    "To: Bob <sip:bob@biloxi.example.com>;tag=8321234356",
    "Call-ID: 3848276298220188511@atlanta.example.com",
    "CSeq: 1 INVITE",
    "Contact: <sip:bob@client.biloxi.example.com;transport=udp>",
    "Content-Type: application/sdp",
    f"Content-Length: {len(SDP)}",
    body=SDP,
)
ACK = wire(
    "ACK sip:bob@client.biloxi.example.com;transport=udp SIP/2.0",
    "Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bfa",
    "Route: <sip:edge.atlanta.example.com;lr>, <sip:proxy.biloxi.example.com;lr>",
    "Max-Forwards: 70",
    "From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl",
    "To: Bob <sip:bob@biloxi.example.com>;tag=8321234356",
    "Call-ID: 3848276298220188511@atlanta.example.com",
    "CSeq: 1 ACK",
    "Content-Length: 0",
)
BYE = wire(
    "BYE sip:alice@client.atlanta.example.com SIP/2.0",
    "Via: SIP/2.0/TCP client.biloxi.example.com:5060;branch=z9hG4bKnashds7",
    "Max-Forwards: 70",
    "From: Bob <sip:bob@biloxi.example.com>;tag=8321234356",
    "To: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl",
    "Call-ID: 3848276298220188511@atlanta.example.com",
    "CSeq: 1 BYE",
    "Content-Length: 0",
)
REGISTER = wire(
    "REGISTER sip:registrar.biloxi.example.com SIP/2.0",
    "Via: SIP/2.0/UDP [2001:db8::20]:5060;branch=z9hG4bKnashd92",
    "Max-Forwards: 70",
    "From: Bob <sip:bob@biloxi.example.com>;tag=ja743ks76zlflH",
    "To: Bob <sip:bob@biloxi.example.com>",
    "Call-ID: 1j9FpLxk3uxtm8tn@biloxi.example.com",
    "CSeq: 2 REGISTER",
    "Contact: <sip:bob@[2001:db8::20]>;expires=3600;q=0.8, <tel:+1-555-0100>;expires=60",
    'Authorization: Digest username="bob", realm="biloxi.example.com",'
    ' nonce="dc3a5ab25302aa931904ba7d88fa1cf5", uri="sip:registrar.biloxi.example.com",'
    ' response="ccdca50cb091d587421457305d097458c", algorithm=MD5',
    "Expires: 7200",
    "Content-Length: 0",
)
UNAUTHORIZED = wire(
    "SIP/2.0 401 Unauthorized",
    "Via: SIP/2.0/UDP [2001:db8::20]:5060;branch=z9hG4bKnashd92;received=2001:db8::20",
    "From: Bob <sip:bob@biloxi.example.com>;tag=ja743ks76zlflH",
    "To: Bob <sip:bob@biloxi.example.com>;tag=1410948204",
    "Call-ID: 1j9FpLxk3uxtm8tn@biloxi.example.com",
    "CSeq: 1 REGISTER",
    'WWW-Authenticate: Digest realm="biloxi.example.com", qop="auth",'
    ' nonce="ea9c8e88df84f1cec4341ae6cbe5a359", opaque="", stale=FALSE, algorithm=MD5',
    "Content-Length: 0",
)
SAMPLES = {
    "INVITE": INVITE,
    "200": OK,
    "ACK": ACK,
    "BYE": BYE,
    "REGISTER": REGISTER,
    "401": UNAUTHORIZED,
}


@pytest.mark.parametrize("name", SAMPLES)
def test_typical_messages_round_trip(name: str) -> None:
    message = parse_message(SAMPLES[name])
    assert message.serialize() == SAMPLES[name]  # already canonical: byte for byte
    again = parse_message(message.serialize())
    assert (again.start_line(), again.headers, again.body) == (
        message.start_line(),
        message.headers,
        message.body,
    )
    if isinstance(message, Request):
        assert check_request(message, supported_extensions=("replaces", "timer")) is None
    else:
        assert check_response(message)


def test_the_fields_a_transaction_layer_reads() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, Request)
    via = request.top_via
    assert (via.branch, via.sent_by, via.has_rport, via.transport) == (
        "z9hG4bK74bf9",
        ("client.atlanta.example.com", 5060),
        True,
        "UDP",
    )
    assert request.cseq == CSeq(1, "INVITE")
    assert request.call_id == "3848276298220188511@atlanta.example.com"
    assert (request.from_.tag, request.to.tag, request.max_forwards) == ("9fxced76sl", None, 70)
    assert request.supported == ("replaces", "timer")
    assert request.uri == SipUri("biloxi.example.com", "bob")
    response = parse_message(OK)
    assert isinstance(response, Response)
    assert (response.status, response.reason) == (200, "OK")
    assert [v.received for v in response.via] == ["192.0.2.222", "192.0.2.101"]
    assert response.via[1].rport == 5060


def test_the_fields_a_dialog_layer_reads() -> None:
    response = parse_message(OK)
    assert [str(r.uri) for r in response.record_route] == [
        "sip:proxy.biloxi.example.com;lr",
        "sip:edge.atlanta.example.com;lr",
    ]
    assert str(response.contact[0].uri) == "sip:bob@client.biloxi.example.com;transport=udp"
    assert response.to.tag == "8321234356"
    ack = parse_message(ACK)
    assert [r.uri.host for r in ack.route] == [
        "edge.atlanta.example.com",
        "proxy.biloxi.example.com",
    ]
    assert ack.contact == () and ack.record_route == ()


def test_registrar_and_authentication_fields() -> None:
    register = parse_message(REGISTER)
    first, second = register.contact
    assert (first.uri.host, first.expires, first.q) == ("[2001:db8::20]", 3600, 0.8)
    assert (str(second.uri), second.expires) == ("tel:+1-555-0100", 60)
    assert register.expires == 7200 and not register.contact_wildcard
    (credentials,) = register.authorization
    assert credentials.params["uri"] == "sip:registrar.biloxi.example.com"
    assert register.top_via.host == "[2001:db8::20]"
    challenge = parse_message(UNAUTHORIZED).www_authenticate[0]
    assert (challenge.scheme, challenge.params["realm"], challenge.params["qop"]) == (
        "Digest",
        "biloxi.example.com",
        "auth",
    )


def test_contact_wildcard() -> None:
    message = parse_message(
        REGISTER.replace(
            b"Contact: <sip:bob@[2001:db8::20]>;expires=3600;q=0.8, <tel:+1-555-0100>;expires=60",
            b"Contact: *",
        )
    )
    assert message.contact_wildcard and message.contact == ()
    mixed = parse_message(REGISTER.replace(b"<tel:+1-555-0100>;expires=60", b"*"))
    with pytest.raises(SipParseError, match="'\\*' must be the only Contact value"):
        mixed.contact  # noqa: B018


def test_compact_forms_are_expanded() -> None:
    message = parse_message(
        wire(
            "OPTIONS sip:carol@chicago.example.com SIP/2.0",
            "v: SIP/2.0/UDP pc.example.com;branch=z9hG4bKx1",
            "f: <sip:a@example.com>;tag=1",
            "t: <sip:carol@chicago.example.com>",
            "i: compact@pc.example.com",
            "CSeq: 5 OPTIONS",
            "Max-Forwards: 70",
            "m: <sip:a@pc.example.com>",
            "k: path",
            "s: hello",
            "c: text/plain",
            "e: gzip",
            "l: 2",
            body=b"hi",
        )
    )
    assert [name for name, _ in message.headers] == [
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Max-Forwards",
        "Contact",
        "Supported",
        "Subject",
        "Content-Type",
        "Content-Encoding",
        "Content-Length",
    ]
    assert message.call_id == "compact@pc.example.com" and message.supported == ("path",)
    assert message.content_type is not None and message.content_type.mime == "text/plain"
    assert b"\r\nCall-ID: compact@pc.example.com\r\n" in message.serialize()


def test_multi_value_headers_split_across_and_within_rows() -> None:
    message = parse_message(
        wire(
            "OPTIONS sip:a@example.com SIP/2.0",
            "Via: SIP/2.0/UDP one.example.com;branch=z9hG4bK1, SIP/2.0/TCP two.example.com",
            "Via: SIP/2.0/TLS [2001:db8::3]:5061;branch=z9hG4bK3",
            'Contact: "Doe, John" <sip:john@one.example.com;transport=tcp>;q=0.5, <sip:jd@two>',
            'Contact: "\\"Quoted\\" <x>" <sip:q@three.example.com>',
            "Route: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>",
            "Route: <sip:p3.example.com;lr>",
            "Max-Forwards: 70",
            "From: <sip:b@example.com>;tag=x",
            "To: <sip:a@example.com>",
            "Call-ID: multi@example.com",
            "CSeq: 1 OPTIONS",
        )
    )
    assert [v.host for v in message.via] == ["one.example.com", "two.example.com", "[2001:db8::3]"]
    assert [c.display_name for c in message.contact] == ["Doe, John", None, '"Quoted" <x>']
    assert [r.uri.host for r in message.route] == [
        "p1.example.com",
        "p2.example.com",
        "p3.example.com",
    ]


def test_header_order_and_unknown_headers_are_preserved() -> None:
    data = wire(
        "MESSAGE sip:a@example.com SIP/2.0",
        "X-First: 1",
        "Call-ID: order@example.com",
        "x-lower-case: kept as written",
        "CSeq: 1 MESSAGE",
        "X-First: 2",
        "Content-Length: 0",
    )
    message = parse_message(data)
    assert list(message.headers) == [
        ("X-First", "1"),
        ("Call-ID", "order@example.com"),
        ("x-lower-case", "kept as written"),
        ("CSeq", "1 MESSAGE"),
        ("X-First", "2"),
        ("Content-Length", "0"),
    ]
    assert message.serialize() == data


def test_folded_lines_are_unfolded() -> None:
    message = parse_message(
        wire(
            "OPTIONS sip:a@example.com SIP/2.0",
            "Subject: I know you're there,",
            "   pick up the phone",
            "\tand talk to me!",
            "Via: SIP/2.0/UDP",
            " host.example.com;branch=z9hG4bKf1",
        )
    )
    assert (
        message.headers.get("Subject") == "I know you're there, pick up the phone and talk to me!"
    )
    assert message.top_via.host == "host.example.com"


def test_serialising_fixes_content_length_and_expands_names() -> None:
    message = parse_message(
        wire("MESSAGE sip:a@example.com SIP/2.0", "l: 5", "i: x@y", body=b"hello")
    )
    message.body = b"hello, world"
    assert message.serialize() == wire(
        "MESSAGE sip:a@example.com SIP/2.0",
        "Content-Length: 12",
        "Call-ID: x@y",
        body=b"hello, world",
    )
    no_length = Request("OPTIONS", "sip:a@example.com", [("Call-ID", "x@y")])
    assert no_length.serialize() == wire(
        "OPTIONS sip:a@example.com SIP/2.0", "Call-ID: x@y", "Content-Length: 0"
    )


def test_building_requests_and_responses() -> None:
    request = Request(
        "INVITE",
        SipUri("biloxi.example.com", "bob"),
        [("Via", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1"), ("Content-Type", "application/sdp")],
        SDP,
    )
    assert request.serialize().startswith(b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n")
    request.uri = "sip:bob@192.0.2.4"
    assert request.uri == SipUri("192.0.2.4", "bob") and request.uri_text == "sip:bob@192.0.2.4"
    assert Response(486).serialize() == b"SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n\r\n"
    assert Response(299).reason == "" and Response(200, "Fine").reason == "Fine"
    for bad in (
        lambda: Request("IN VITE", "sip:a@b"),
        lambda: Request("INVITE", "sip:a b"),
        lambda: Request("INVITE", "sip:a@b\x00"),
        lambda: Response(700),
        lambda: Response(200, "OK\r\nVia: SIP/2.0/UDP injected"),
    ):
        with pytest.raises(ValueError):
            bad()


def test_make_response_copies_what_rfc_3261_8_2_6_requires() -> None:
    data = INVITE.replace(b"Max-Forwards: 70", b"Timestamp: 54\r\nMax-Forwards: 70").replace(
        b"Via: SIP", b"Via: SIP/2.0/TCP p.example.com;branch=z9hG4bKp\r\nVia: SIP", 1
    )
    request = parse_message(data)
    assert isinstance(request, Request)
    trying = request.make_response(100)
    assert [name for name, _ in trying.headers] == [
        "Via",
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Timestamp",
    ]
    assert trying.headers.get_all("Via") == request.headers.get_all("Via")
    assert trying.to.tag is None and trying.reason == "Trying"
    ringing = request.make_response(180, to_tag="a6c85cf")
    assert ringing.to == request.to.with_tag("a6c85cf")
    assert ringing.headers.get("To") == "Bob <sip:bob@biloxi.example.com>;tag=a6c85cf"
    assert "Timestamp" not in ringing.headers and "Contact" not in ringing.headers
    assert ringing.cseq == request.cseq and ringing.call_id == request.call_id
    assert ringing.from_ == request.from_ and ringing.body == b""
    assert check_response(parse_message(ringing.serialize()))
    in_dialog = parse_message(BYE)
    assert isinstance(in_dialog, Request)
    assert in_dialog.make_response(200, to_tag="9fxced76sl").to.tag == "9fxced76sl"
    with pytest.raises(ValueError, match="already has tag"):
        in_dialog.make_response(200, to_tag="other")
    assert request.make_response(603, "Not Today").start_line() == "SIP/2.0 603 Not Today"


def test_make_response_works_for_requests_missing_headers() -> None:
    request = parse_message(
        wire("OPTIONS sip:a@example.com SIP/2.0", "Via: SIP/2.0/UDP h;branch=z9hG4bK1")
    )
    assert isinstance(request, Request)
    response = request.make_response(400, "Missing Call-ID")
    assert list(response.headers) == [("Via", "SIP/2.0/UDP h;branch=z9hG4bK1")]


def test_datagram_body_framing() -> None:
    head = "MESSAGE sip:a@example.com SIP/2.0"
    assert parse_message(wire(head, "Content-Length: 3", body=b"abcdef")).body == b"abc"
    assert parse_message(wire(head, body=b"abcdef")).body == b"abcdef"
    assert parse_message(wire(head, "Content-Length: 0")).body == b""
    with pytest.raises(
        SipParseError, match="Content-Length 7 is larger than the 6 bytes"
    ) as raised:
        parse_message(wire(head, "Content-Length: 7", body=b"abcdef"))
    assert raised.value.status == 400


def test_stream_framing() -> None:
    one = wire("MESSAGE sip:a@example.com SIP/2.0", "Content-Length: 3", body=b"abc")
    two = wire("SIP/2.0 200 OK", "Content-Length: 0")
    stream = b"\r\n\r\n" + one + two
    assert stream_frame_length(stream[:10]) is None
    assert stream_frame_length(stream[: 4 + len(one) - 1]) is None
    first = stream_frame_length(stream)
    assert first == 4 + len(one)
    assert parse_message(stream[:first], stream=True).body == b"abc"
    assert stream_frame_length(stream[first:]) == len(two)
    with pytest.raises(SipParseError, match="follow the body"):
        parse_message(stream, stream=True)
    with pytest.raises(SipParseError, match="mandatory on stream") as raised:
        stream_frame_length(wire("OPTIONS sip:a@b SIP/2.0"))
    assert raised.value.status == 400
    with pytest.raises(SipParseError, match="body incomplete") as raised:
        parse_message(one[:-1], stream=True)
    assert raised.value.status is None
    with pytest.raises(SipParseError) as raised:
        stream_frame_length(b"OPTIONS sip:a@b SIP/2.0\r\nX: " + b"y" * 70000)
    assert raised.value.status == 513


def test_size_limit() -> None:
    big = wire("MESSAGE sip:a@example.com SIP/2.0", "Content-Length: 70000", body=b"x" * 70000)
    with pytest.raises(SipParseError, match="over the limit") as raised:
        parse_message(big)
    assert raised.value.status == 513
    assert len(parse_message(big, max_size=100_000).body) == 70000
    with pytest.raises(SipParseError) as raised:
        parse_message(wire("SIP/2.0 200 OK", "X: y"), max_size=10)
    assert raised.value.status is None  # responses are never answered


def test_leading_crlf_and_utf8() -> None:
    message = parse_message(
        b"\r\n\r\n"
        + wire(
            "SIP/2.0 180 Klingelt \xc3\xbc".encode("latin-1").decode("utf-8"),
            "Subject: caf\xc3\xa9".encode("latin-1").decode("utf-8"),
        )
    )
    assert isinstance(message, Response)
    assert message.reason == "Klingelt ü" and message.headers.get("Subject") == "café"
    raw = parse_message(wire("OPTIONS sip:a@b SIP/2.0")[:-4] + b"\r\nX-Bin: \xff\xfe\r\n\r\n")
    assert raw.serialize().endswith(b"X-Bin: \xff\xfe\r\nContent-Length: 0\r\n\r\n")


@pytest.mark.parametrize(
    ("data", "mentions"),
    [
        (b"", "not ended by an empty line"),
        (b"\r\n\r\n", "not ended by an empty line"),
        (b"INVITE sip:a@b SIP/2.0\r\nVia: x", "not ended by an empty line"),
        (b"INVITE sip:a@b SIP/2.0\nVia: x\n\n\r\n\r\n", "not part of CRLF"),
        (b"INVITE sip:a@b SIP/2.0\r\nVia x\r\n\r\n", "does not start with a name and ':'"),
        (b"INVITE sip:a@b SIP/2.0\r\n: x\r\n\r\n", "does not start with a name"),
        (b"INVITE sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n", "does not start with a name"),
        (b"INVITE sip:a@b SIP/2.0\r\n continued\r\n\r\n", "precedes every header"),
        (b"INVITE sip:a@b\r\n\r\n", "single spaces"),
        (b"INV\x01TE sip:a@b SIP/2.0\r\n\r\n", "not a token"),
        (b"INVITE sip:a@b HTTP/1.1\r\n\r\n", "SIP-Version"),
        (b"INVITE a@b SIP/2.0\r\n\r\n", "does not start with a scheme"),
        (b"INVITE sip:a@b SIP/2.0\r\nl: 1\r\nl: 1\r\n\r\nx", "appears 2 times"),
        (b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 1e3\r\n\r\n", "number of bytes"),
        (
            b"INVITE sip:a@b SIP/2.0\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
            "more than the largest",
        ),
    ],
)
def test_malformed_requests_are_rejected_with_400(data: bytes, mentions: str) -> None:
    with pytest.raises(SipParseError, match=mentions) as raised:
        parse_message(data)
    assert raised.value.status == 400


@pytest.mark.parametrize(
    ("data", "mentions"),
    [
        (b"SIP/2.0 20 OK\r\n\r\n", "status code"),
        (b"SIP/2.0 099 Early\r\n\r\n", "status code"),
        (b"SIP/2.0 700 Late\r\n\r\n", "status code"),
        (b"SIP/2 200 OK\r\n\r\n", "SIP-Version"),
        (b"SIP/2.0 200 O\x01K\r\n\r\n", "control character"),
        (b"SIP/2.0 200 OK\r\nVia x\r\n\r\n", "name and ':'"),
    ],
)
def test_malformed_responses_are_dropped(data: bytes, mentions: str) -> None:
    with pytest.raises(SipParseError, match=mentions) as raised:
        parse_message(data)
    assert raised.value.status is None


def test_a_status_line_without_the_space_before_an_empty_reason_is_tolerated() -> None:
    assert parse_message(b"SIP/2.0 100\r\n\r\n").reason == ""


def test_missing_mandatory_headers_are_reported_by_name() -> None:
    message = parse_message(wire("OPTIONS sip:a@b SIP/2.0"))
    for field, name in [
        ("to", "To"),
        ("from_", "From"),
        ("call_id", "Call-ID"),
        ("cseq", "CSeq"),
        ("top_via", "Via"),
    ]:
        with pytest.raises(SipParseError, match=f"the {name} header is missing"):
            getattr(message, field)
    assert message.max_forwards is None and message.content_type is None and message.expires is None
    assert message.via == () and message.require == () and message.authorization == ()


# Robustness: whatever the bytes, parsing and every accessor either work or raise
# SipParseError, and what parses re-serialises into an equal message.

_ACCESSORS = (
    "via",
    "from_",
    "to",
    "call_id",
    "cseq",
    "max_forwards",
    "contact",
    "contact_wildcard",
    "route",
    "record_route",
    "content_length",
    "content_type",
    "expires",
    "require",
    "proxy_require",
    "supported",
    "authorization",
    "proxy_authorization",
    "www_authenticate",
    "proxy_authenticate",
)
_INTERESTING = [
    b"\r\n",
    b"\r\n ",
    b":",
    b";",
    b",",
    b'"',
    b"\\",
    b"<",
    b">",
    b"%",
    b"%4",
    b" ",
    b"@",
    b"[",
    b"]",
    b"=",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"SIP/2.0",
    b"0",
    b"9" * 12,
    b"/",
]


def _corpus() -> list[bytes]:
    seeds = list(SAMPLES.values())
    for path in sorted((Path(__file__).parent / "torture").glob("*.dat")):
        seeds.append(path.read_bytes().replace(b"\n", b"\r\n"))  # notation left as is
    return seeds


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        position = rng.randrange(len(buffer) + 1)
        action = rng.randrange(6)
        if action == 0 and buffer:
            buffer[min(position, len(buffer) - 1)] = rng.randrange(256)
        elif action == 1:
            buffer[position:position] = rng.choice(_INTERESTING)
        elif action == 2:
            del buffer[position : position + rng.randint(1, 40)]
        elif action == 3:
            del buffer[position:]
        elif action == 4:
            buffer[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            start = rng.randrange(len(buffer) + 1)
            buffer[position:position] = buffer[start : start + rng.randint(1, 60)]
    return bytes(buffer)


def _exercise(data: bytes, stream: bool) -> None:
    try:
        message = parse_message(data, stream=stream)
    except SipParseError:
        return
    for name in _ACCESSORS:
        try:
            value = getattr(message, name)
        except SipParseError:
            continue
        for item in value if isinstance(value, tuple) else (value,):
            if hasattr(item, "serialize") and hasattr(type(item), "parse"):
                assert type(item).parse(item.serialize()) == item
    if isinstance(message, Request):
        try:
            uri = message.uri
        except SipParseError:
            uri = None
        if uri is not None:
            assert parse_uri(uri.serialize()) == uri
        check_request(message)
    else:
        check_response(message)
    again = parse_message(message.serialize(), stream=True)
    assert (again.start_line(), again.body) == (message.start_line(), message.body)
    assert _without_length(again.headers) == _without_length(message.headers)
    assert again.content_length == len(again.body)


def _without_length(headers: Headers) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers if name != "Content-Length"]


def test_mutated_and_random_bytes_only_ever_raise_sip_parse_error() -> None:
    rng = random.Random(4475)
    corpus = _corpus()
    for _ in range(4000):
        data = _mutate(rng, rng.choice(corpus))
        _exercise(data, stream=False)
        with contextlib.suppress(SipParseError):
            stream_frame_length(data)
    for _ in range(500):
        noise = bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
        _exercise(noise, stream=False)
        _exercise(b"INVITE sip:a@b SIP/2.0\r\n" + noise + b"\r\n\r\n", stream=False)


def test_truncations_of_every_sample_only_ever_raise_sip_parse_error() -> None:
    for data in SAMPLES.values():
        for end in range(len(data)):
            _exercise(data[:end], stream=False)
            _exercise(data[:end], stream=True)


def test_addresses_from_messages_survive_reserialisation() -> None:
    address = parse_message(INVITE).from_
    assert Address.parse(str(address)) == address
    assert (
        Headers([("From", str(address))]).get("From")
        == '"Alice" <sip:alice@atlanta.example.com>;tag=9fxced76sl'
    )
