"""SIP, SIPS, tel and opaque URIs: parsing, serialising, RFC 3261 19.1.4 equality."""

from __future__ import annotations

import pytest

from media.sip.syntax import Params, SipParseError
from media.sip.uri import AbsoluteUri, SipUri, TelUri, parse_host, parse_uri, split_hostport


def test_every_component_of_a_sip_uri() -> None:
    uri = SipUri.parse(
        "sips:alice:secret@atlanta.example.com:5061;transport=tcp;lr?subject=hi&x=%3C1%3E"
    )
    assert uri.scheme == "sips"
    assert (uri.user, uri.password, uri.host, uri.port) == (
        "alice",
        "secret",
        "atlanta.example.com",
        5061,
    )
    assert uri.params.items_in_order() == (("transport", "tcp"), ("lr", None))
    assert uri.headers.items_in_order() == (("subject", "hi"), ("x", "<1>"))
    assert uri.transport == "tcp" and uri.lr and uri.maddr is None
    assert (
        str(uri)
        == "sips:alice:secret@atlanta.example.com:5061;transport=tcp;lr?subject=hi&x=%3C1%3E"
    )


def test_minimal_uri_and_scheme_case() -> None:
    uri = SipUri.parse("SIP:example.com")
    assert (uri.scheme, uri.user, uri.host, uri.port) == ("sip", None, "example.com", None)
    assert str(uri) == "sip:example.com"


def test_ipv6_references_with_and_without_port() -> None:
    uri = SipUri.parse("sip:alice@[2001:db8::10]:5070;maddr=[2001:db8::1]")
    assert (uri.host, uri.port, uri.maddr) == ("[2001:db8::10]", 5070, "[2001:db8::1]")
    assert SipUri.parse("sip:[::1]").host == "[::1]"
    assert str(uri) == "sip:alice@[2001:db8::10]:5070;maddr=[2001:db8::1]"
    assert SipUri.parse("sip:[2001:DB8:0::10]") == SipUri.parse("sip:[2001:db8::10]")
    for bad in ("sip:[2001:db8::10", "sip:[2001:db8::zz]", "sip:[::1]x", "sip:2001:db8::10"):
        with pytest.raises(SipParseError):
            SipUri.parse(bad)


def test_escapes_are_undone_once_and_redone_on_serialising() -> None:
    uri = SipUri.parse("sip:I%20have%20spaces@example.net;n%61me=v%61lue%25%34%31")
    assert uri.user == "I have spaces"
    assert uri.params["name"] == "value%41"
    assert str(uri) == "sip:I%20have%20spaces@example.net;name=value%2541"
    assert SipUri.parse(str(uri)) == uri
    assert str(SipUri("h", user="a;b?c/d")) == "sip:a;b?c/d@h"  # user-unreserved stay as is


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("sip:us er@host", "' ' must be escaped in the user part"),
        ("sip:@host", "empty user part"),
        ("sip:user@host;=x", "empty URI parameter"),
        ("sip:user@host;a=", "has '=' but no value"),
        ("sip:user@host?subject", "must be name=value"),
        ("sip:user@host:70000", "port number"),
        ("sip:user@host:", "port number"),
        ("sip:user@ho_st", "host name or IP address"),
        ("sip:user@256.1.1.1", "not a valid IPv4 address"),
        ("sip:user@", "host name"),
        ("sip:a%2@h", "two hex digits"),
        ("sip:user@host;a<b", "must be escaped in a URI parameter name"),
        ("http:x", "expected 'sip:' or 'sips:'"),
    ],
)
def test_malformed_sip_uris_are_explained(text: str, mentions: str) -> None:
    with pytest.raises(SipParseError, match=mentions.replace("?", "\\?")):
        SipUri.parse(text)


@pytest.mark.parametrize(
    ("left", "right"),
    [  # the equivalent sets of RFC 3261 19.1.4
        ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
        ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;newparam=5"),
        (
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
        ),
        (
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
        ),
    ],
)
def test_equivalent_uris(left: str, right: str) -> None:
    assert SipUri.parse(left) == SipUri.parse(right)
    assert hash(SipUri.parse(left)) == hash(SipUri.parse(right))


@pytest.mark.parametrize(
    ("left", "right"),
    [  # the non-equivalent sets of RFC 3261 19.1.4, and more
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        ("sip:bob@biloxi.com", "sips:bob@biloxi.com"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;maddr=192.0.2.1"),
        ("sip:bob@biloxi.com;user=phone", "sip:bob@biloxi.com"),
        ("sip:bob@biloxi.com;lr=on", "sip:bob@biloxi.com;lr"),
        ("sip:bob:a@biloxi.com", "sip:bob@biloxi.com"),
    ],
)
def test_non_equivalent_uris(left: str, right: str) -> None:
    assert SipUri.parse(left) != SipUri.parse(right)


def test_with_param_returns_a_new_uri() -> None:
    uri = SipUri.parse("sip:proxy.example.com")
    routed = uri.with_param("lr")
    assert routed.lr and not uri.lr
    assert str(routed) == "sip:proxy.example.com;lr"


def test_tel_uris() -> None:
    uri = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert isinstance(uri, TelUri)
    assert uri.number == "+1-201-555-0123" and uri.params["phone-context"] == "example.com"
    assert uri == TelUri("+12015550123", Params([("Phone-Context", "EXAMPLE.com")]))
    assert str(uri) == "tel:+1-201-555-0123;phone-context=example.com"
    with pytest.raises(SipParseError, match="not a telephone number"):
        parse_uri("tel:call-me")


def test_other_schemes_stay_opaque() -> None:
    uri = parse_uri("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
    assert uri == AbsoluteUri("urn", "uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
    assert uri == AbsoluteUri("URN", "uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
    assert str(uri) == "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
    assert parse_uri("soap.beep://192.0.2.103:3002").scheme == "soap.beep"
    for bad, mentions in [("x:", "nothing follows"), ("x:a b", "not allowed"), ("1x:a", "scheme")]:
        with pytest.raises(SipParseError, match=mentions):
            parse_uri(bad)
    with pytest.raises(
        SipParseError, match="expected a URI scheme and ':', found 'no-scheme-here'"
    ):
        parse_uri("no-scheme-here", "Request-URI")


def test_hosts_and_ports() -> None:
    assert parse_host("Example.COM.", "x") == "Example.COM."
    assert split_hostport("192.0.2.1:5060", "x") == ("192.0.2.1", 5060)
    assert split_hostport("[::1]", "x") == ("[::1]", None)
    with pytest.raises(SipParseError, match="expected ':' and a port"):
        split_hostport("[::1]5060", "Via")
    with pytest.raises(SipParseError, match="host name"):
        parse_host("-bad-.example.com", "Via")
