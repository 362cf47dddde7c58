"""name-addr and addr-spec values (To, From, Contact, Route ...)."""

from __future__ import annotations

import pytest

from media.sip.address import Address
from media.sip.syntax import Params, SipParseError
from media.sip.uri import AbsoluteUri, SipUri, TelUri


def test_quoted_display_name_uri_and_params() -> None:
    address = Address.parse('"Alice \\"A\\" Smith" <sip:alice@atlanta.com>;tag=1928301774;x="a, b"')
    assert address.display_name == 'Alice "A" Smith'
    assert address.uri == SipUri("atlanta.com", "alice")
    assert address.tag == "1928301774"
    assert address.params.unquoted("x") == "a, b"
    assert str(address) == '"Alice \\"A\\" Smith" <sip:alice@atlanta.com>;tag=1928301774;x="a, b"'


def test_token_display_names_with_or_without_space_before_the_bracket() -> None:
    assert Address.parse("Bob <sip:bob@biloxi.com>").display_name == "Bob"
    assert Address.parse("caller<sip:caller@example.com>").display_name == "caller"
    assert Address.parse("  A.  Bell <sip:a@b>").display_name == "A.  Bell"
    assert Address.parse("<sip:bob@biloxi.com>").display_name is None
    assert Address.parse('"" <sip:a@b>').display_name == ""
    assert str(Address.parse('"" <sip:a@b>')) == "<sip:a@b>"


def test_addr_spec_parameters_belong_to_the_header() -> None:
    address = Address.parse("sip:+12125551212@gw.example.net;user=phone;tag=887s")
    assert address.uri == SipUri("gw.example.net", "+12125551212")
    assert dict(address.params) == {"user": "phone", "tag": "887s"}
    assert str(address) == "<sip:+12125551212@gw.example.net>;user=phone;tag=887s"
    bracketed = Address.parse("<sip:+12125551212@gw.example.net;user=phone>")
    assert bracketed.uri.params["user"] == "phone" and not bracketed.params


def test_other_uri_schemes() -> None:
    assert isinstance(Address.parse("<tel:+1-555-0100>").uri, TelUri)
    assert Address.parse("isbn:2983792873").uri == AbsoluteUri("isbn", "2983792873")
    assert Address.parse("<urn:service:sos>;x").uri == AbsoluteUri("urn", "service:sos")


def test_tag_expires_and_q() -> None:
    contact = Address.parse("<sip:a@192.0.2.4>;expires=3600;q=0.7")
    assert (contact.expires, contact.q, contact.tag) == (3600, 0.7, None)
    assert contact.with_tag("x").tag == "x" and contact.tag is None
    assert contact.with_param("expires", "0").expires == 0
    for bad in ("q=2", "q=0.1234", "q=abc"):
        with pytest.raises(SipParseError, match="qvalue"):
            Address.parse(f"<sip:a@b>;{bad}").q  # noqa: B018
    with pytest.raises(SipParseError, match="seconds"):
        Address.parse("<sip:a@b>;expires=soon").expires  # noqa: B018


def test_lists_split_outside_quotes_and_brackets() -> None:
    addresses = Address.parse_list('"Doe, John" <sip:j,k@x.org;a=1>, <sip:a@b>;q=0.5 ,sip:c@d')
    assert [a.display_name for a in addresses] == ["Doe, John", None, None]
    assert [str(a.uri) for a in addresses] == ["sip:j,k@x.org;a=1", "sip:a@b", "sip:c@d"]
    with pytest.raises(SipParseError, match="empty element"):
        Address.parse_list("<sip:a@b>,,<sip:c@d>", "Route")


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ('"Mr. J. User <sip:j.user@example.com>', "never closed"),
        ("<sip:a@b", "'>' closing the URI"),
        ('"Watson" < sip:t.watson@example.org >', "URI scheme"),
        ("Bell, Alexander <sip:a.g.bell@example.com>", "URI scheme"),
        ("sip:user@example.com?Route=%3Csip:x%3E", "must be enclosed in <>"),
        ('"name" sip:a@b', "'<' after the quoted display name"),
        ("<sip:a@b> trailing", "the end of the value"),
        ("<sip:a@b>;;", "a parameter name"),
        ("", "URI scheme"),
    ],
)
def test_malformed_addresses_are_explained(text: str, mentions: str) -> None:
    with pytest.raises(SipParseError, match=mentions) as raised:
        Address.parse(text, "To")
    assert str(raised.value).startswith("To:")


def test_parsed_addresses_are_values() -> None:
    left = Address.parse("<sip:a@B.example>;tag=1")
    right = Address(SipUri("b.example", "a"), None, Params([("TAG", "1")]))
    assert left == right and hash(left) == hash(right)
