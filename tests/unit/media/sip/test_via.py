"""Via values: what the transaction layer reads (branch, sent-by, received, rport)."""

from __future__ import annotations

import pytest

from media.sip.syntax import SipParseError
from media.sip.via import MAGIC_COOKIE, Via


def test_the_fields_a_transaction_layer_needs() -> None:
    via = Via.parse(
        "SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;received=192.0.2.1;rport=5066"
    )
    assert (via.protocol, via.transport) == ("SIP/2.0", "UDP")
    assert via.sent_by == ("pc33.atlanta.com", 5066)
    assert via.branch == via.rfc3261_branch == "z9hG4bK776asdhds"
    assert via.received == "192.0.2.1"
    assert via.has_rport and via.rport == 5066
    assert via.ttl is None and via.maddr is None


def test_lws_around_slashes_and_lower_case_transport() -> None:
    via = Via.parse("sip  /   2.0 / tls  host.example.com ; ttl = 16 ; maddr=224.2.0.1 ;rport")
    assert (via.protocol, via.transport, via.host, via.port) == (
        "SIP/2.0",
        "TLS",
        "host.example.com",
        None,
    )
    assert (via.ttl, via.maddr, via.has_rport, via.rport) == (16, "224.2.0.1", True, None)
    assert str(via) == "SIP/2.0/TLS host.example.com;ttl=16;maddr=224.2.0.1;rport"


def test_ipv6_sent_by_and_received() -> None:
    via = Via.parse("SIP/2.0/TCP [2001:db8::9:1]:5070;branch=z9hG4bKas3;received=2001:db8::9:255")
    assert via.sent_by == ("[2001:db8::9:1]", 5070)
    assert via.received == "2001:db8::9:255"
    assert Via.parse("SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255]").port is None


def test_rfc2543_branches_are_not_transaction_ids() -> None:
    assert Via.parse("SIP/2.0/UDP a.example.com;branch=z9hG4bK").rfc3261_branch is None
    assert Via.parse("SIP/2.0/UDP a.example.com;branch=7c337f30d7ce.1").rfc3261_branch is None
    assert Via.parse("SIP/2.0/UDP a.example.com").branch is None
    assert MAGIC_COOKIE == "z9hG4bK"


def test_lists_and_copies() -> None:
    vias = Via.parse_list(
        "SIP/2.0/UDP a.example.com;branch=z9hG4bK1 , SIP/2.0/TCP b.example.com:5062"
    )
    assert [v.host for v in vias] == ["a.example.com", "b.example.com"]
    stamped = vias[0].with_received("198.51.100.7", rport=40000).with_param("alias")
    assert (
        str(stamped)
        == "SIP/2.0/UDP a.example.com;branch=z9hG4bK1;received=198.51.100.7;rport=40000;alias"
    )
    assert vias[0].received is None


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("SIP/2.0 host.example.com", "'/' after the protocol version"),
        ("SIP/2.0/UDP", "whitespace between the transport and sent-by"),
        ("SIP/2.0/UDP ;branch=x", "the sent-by host"),
        ("SIP/2.0/UDP host:port", "a port number"),
        ("SIP/2.0/UDP host:99999", "more than the largest port number, 65535"),
        ("SIP/2.0/UDP [::1", "']' closing"),
        ("SIP/2.0/UDP 192.0.2.15;;", "a parameter name"),
        ("SIP/2.0/UDP h;ttl=300", "more than the largest ttl, 255"),
        ("SIP/2.0/UDP h;received=example.com", "received must be an IP address"),
        ("SIP/2.0/UDP h;received", "received needs an IP address"),
        ("SIP/2.0/UDP h;branch", "branch must be a token"),
        ('SIP/2.0/UDP h;branch="z9hG4bK1"', "branch must be a token"),
        ("SIP/2.0/UDP h;rport=x", "expected rport port number"),
        ("SIP/2.0/UDP h;maddr=bad_host", "host name or IP address"),
        ("SIP/2.0/UDP h extra", "the end of the value"),
    ],
)
def test_malformed_vias_are_explained(text: str, mentions: str) -> None:
    with pytest.raises(SipParseError, match=mentions) as raised:
        Via.parse(text)
    assert str(raised.value).startswith("Via:")


def test_empty_list_elements_are_rejected() -> None:
    with pytest.raises(SipParseError, match="empty element"):
        Via.parse_list("SIP/2.0/UDP a, , SIP/2.0/UDP b")
