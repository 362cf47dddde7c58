"""The header container, header names and compact forms, and the small header values."""

from __future__ import annotations

import pytest

from media.sip.headers import (
    COMPACT_FORMS,
    MAX_CSEQ,
    Challenge,
    ContentType,
    Credentials,
    CSeq,
    Headers,
    canonical_name,
    is_list_header,
    parse_call_id,
    parse_content_length,
    parse_max_forwards,
    parse_option_tags,
)
from media.sip.syntax import SipParseError


@pytest.mark.parametrize(
    ("compact", "full"),
    [
        ("a", "Accept-Contact"),
        ("b", "Referred-By"),
        ("c", "Content-Type"),
        ("d", "Request-Disposition"),
        ("e", "Content-Encoding"),
        ("f", "From"),
        ("i", "Call-ID"),
        ("j", "Reject-Contact"),
        ("k", "Supported"),
        ("l", "Content-Length"),
        ("m", "Contact"),
        ("n", "Identity-Info"),
        ("o", "Event"),
        ("r", "Refer-To"),
        ("s", "Subject"),
        ("t", "To"),
        ("u", "Allow-Events"),
        ("v", "Via"),
        ("x", "Session-Expires"),
        ("y", "Identity"),
    ],
)
def test_every_compact_form(compact: str, full: str) -> None:
    assert COMPACT_FORMS[compact] == full
    assert canonical_name(compact) == canonical_name(compact.upper()) == full


def test_names_are_case_insensitive_and_unknown_names_kept() -> None:
    assert canonical_name("cAlL-iD") == "Call-ID"
    assert canonical_name("www-authenticate") == "WWW-Authenticate"
    assert canonical_name("cseq") == "CSeq"
    assert canonical_name("X-Custom-Thing") == "X-Custom-Thing"
    assert is_list_header("v") and is_list_header("Route") and not is_list_header("To")


def test_rows_keep_their_order_and_are_found_by_any_name_form() -> None:
    headers = Headers(
        [("v", "SIP/2.0/UDP a"), ("To", "<sip:b@c>"), ("VIA", "SIP/2.0/UDP b, SIP/2.0/UDP c")]
    )
    assert list(headers) == [
        ("Via", "SIP/2.0/UDP a"),
        ("To", "<sip:b@c>"),
        ("Via", "SIP/2.0/UDP b, SIP/2.0/UDP c"),
    ]
    assert headers.get("via") == "SIP/2.0/UDP a"
    assert headers.get_all("v") == ["SIP/2.0/UDP a", "SIP/2.0/UDP b, SIP/2.0/UDP c"]
    assert headers.values("Via") == ["SIP/2.0/UDP a", "SIP/2.0/UDP b", "SIP/2.0/UDP c"]
    assert headers.values("To") == ["<sip:b@c>"]  # not a list header: never split
    assert headers.count("Via") == 2 and len(headers) == 3
    assert "t" in headers and "From" not in headers
    assert headers.get("From") is None and headers.get("From", "x") == "x"


def test_mutations() -> None:
    headers = Headers(
        [("Via", "SIP/2.0/UDP a, SIP/2.0/UDP b"), ("To", "<sip:b@c>"), ("Via", "SIP/2.0/UDP c")]
    )
    headers.add("Via", "SIP/2.0/UDP proxy", first=True)
    assert headers.values("Via")[0] == "SIP/2.0/UDP proxy"
    assert headers.pop_first_value("Via") == "SIP/2.0/UDP proxy"
    assert headers.pop_first_value("Via") == "SIP/2.0/UDP a"
    assert headers.get_all("Via") == ["SIP/2.0/UDP b", "SIP/2.0/UDP c"]
    assert headers.pop_first_value("Route") is None
    headers.set("Via", "SIP/2.0/TCP only")
    assert list(headers) == [("Via", "SIP/2.0/TCP only"), ("To", "<sip:b@c>")]
    headers.set("Subject", " lunch ")
    assert headers.get("s") == "lunch"
    assert headers.remove("Via") == 1 and "Via" not in headers
    headers.add("Contact", "<sip:x@y>", first=True)
    assert next(iter(headers)) == ("Contact", "<sip:x@y>")
    copy = headers.copy()
    copy.remove("Contact")
    assert "Contact" in headers and copy != headers


def test_header_injection_is_refused() -> None:
    headers = Headers()
    with pytest.raises(ValueError, match="CR or LF"):
        headers.add("Subject", "hi\r\nVia: SIP/2.0/UDP evil")
    with pytest.raises(ValueError, match="not a token"):
        headers.add("Bad Name", "x")


def test_parsed_values_are_cached_until_the_rows_change() -> None:
    headers = Headers([("CSeq", "1 INVITE")])
    calls = []

    def parse(rows: list[str]) -> str:
        calls.append(rows)
        return rows[0]

    assert headers.cached("cseq", parse) == headers.cached("CSeq", parse) == "1 INVITE"
    assert len(calls) == 1
    headers.set("CSeq", "2 INVITE")
    assert headers.cached("CSeq", parse) == "2 INVITE" and len(calls) == 2


def test_cseq() -> None:
    assert CSeq.parse("0009\t INVITE") == CSeq(9, "INVITE")
    assert CSeq.parse(f"{MAX_CSEQ} ACK").number == 2**31 - 1
    assert str(CSeq(4711, "BYE")) == "4711 BYE"
    for bad, mentions in [
        (f"{MAX_CSEQ + 1} ACK", "more than the largest sequence number"),
        ("INVITE", "a sequence number"),
        ("1", "whitespace between"),
        ("1 INVITE x", "the end of the value"),
        ("1 IN/VITE", "the end of the value"),
    ]:
        with pytest.raises(SipParseError, match=mentions):
            CSeq.parse(bad)


def test_content_type() -> None:
    content_type = ContentType.parse('Multipart/Mixed ; boundary=7a9cbec02ceef655;charset="utf-8"')
    assert content_type.mime == "multipart/mixed"
    assert content_type.params["boundary"] == "7a9cbec02ceef655"
    assert content_type.params.unquoted("charset") == "utf-8"
    assert str(content_type) == 'Multipart/Mixed;boundary=7a9cbec02ceef655;charset="utf-8"'
    with pytest.raises(SipParseError, match="'/' between type and subtype"):
        ContentType.parse("application")


def test_digest_challenge_and_credentials() -> None:
    challenge = Challenge.parse(
        'Digest realm="atlanta.example.com", qop="auth,auth-int",'
        '\tnonce="ea9c8e88df84f1cec4341ae6cbe5a359", opaque="", stale=FALSE, algorithm=MD5'
    )
    assert challenge.scheme == "Digest"
    assert challenge.params["realm"] == "atlanta.example.com"
    assert challenge.params["qop"] == "auth,auth-int"
    assert challenge.params["opaque"] == "" and challenge.params["stale"] == "FALSE"
    assert str(challenge) == (
        'Digest realm="atlanta.example.com", qop="auth,auth-int", '
        'nonce="ea9c8e88df84f1cec4341ae6cbe5a359", opaque="", stale=FALSE, algorithm=MD5'
    )
    credentials = Credentials.parse(
        'Digest username="bob", realm="b.example", nonce="a\\"b", uri="sip:b.example",'
        ' response="dfe56131d1958046689d83306477ecc", qop=auth, nc=00000001, cnonce="0a4f113b"'
    )
    assert credentials.params["nonce"] == 'a"b' and credentials.params["nc"] == "00000001"
    assert Credentials.parse(str(credentials)) == credentials
    assert (
        Credentials.parse("NoOneKnowsThisScheme opaque-data=here").params["opaque-data"] == "here"
    )
    for bad in ("Digest realm", "Digest realm=x,", 'Digest realm="x" nonce="y"'):
        with pytest.raises(SipParseError):
            Credentials.parse(bad, "Authorization")


def test_scalar_headers() -> None:
    assert parse_max_forwards("0068") == 68
    with pytest.raises(SipParseError, match="Max-Forwards: 256 is more than the largest hop count"):
        parse_max_forwards("256")
    assert parse_content_length("0") == 0
    with pytest.raises(
        SipParseError, match="Content-Length: expected number of bytes, found '-999'"
    ):
        parse_content_length("-999")
    with pytest.raises(SipParseError, match="expected number of bytes"):
        parse_content_length("five")
    assert parse_call_id("a84b4c76e66710@pc33.atlanta.com") == "a84b4c76e66710@pc33.atlanta.com"
    for bad in ("", "@host", "id@", "has space", "a@b@c"):
        with pytest.raises(SipParseError, match="Call-ID"):
            parse_call_id(bad)
    assert parse_option_tags(["100rel, timer", "replaces"], "Supported") == [
        "100rel",
        "timer",
        "replaces",
    ]
    with pytest.raises(SipParseError, match="option tag 'a b'"):
        parse_option_tags(["a b"], "Require")
