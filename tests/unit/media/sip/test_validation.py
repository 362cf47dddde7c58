"""What a UAS refuses before its core sees a request, and which responses are dropped."""

from __future__ import annotations

import pytest

from media.sip.message import Request, Response, parse_message
from media.sip.validation import KNOWN_METHODS, check_request, check_response

BASE = [
    "Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds",
    "Max-Forwards: 70",
    "To: Bob <sip:bob@biloxi.example.com>",
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
    "Call-ID: a84b4c76e66710@pc33.example.com",
    "CSeq: 314159 {method}",
]


OPTIONS = "OPTIONS sip:bob@biloxi.example.com SIP/2.0"


def request(start: str = OPTIONS, *extra: str, drop: str | None = None) -> Request:
    """A request with the BASE headers (less ``drop``) and ``extra`` ones."""
    method = start.split(" ")[0]
    base = [line.format(method=method) for line in BASE if line.split(":")[0] != drop]
    message = parse_message(("\r\n".join([start, *base, *extra]) + "\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def test_a_well_formed_request_passes() -> None:
    assert check_request(request()) is None
    assert (
        check_request(request("INVITE sip:bob@biloxi.example.com SIP/2.0", "Contact: <sip:a@h>"))
        is None
    )


def test_version_comes_first() -> None:
    assert (
        check_request(request("OPTIONS sip:bob@biloxi.example.com SIP/3.0", drop="Call-ID")) == 505
    )
    assert check_request(request("OPTIONS sip:bob@biloxi.example.com sip/2.0")) is None


@pytest.mark.parametrize("name", ["To", "From", "Call-ID", "CSeq", "Via", "Max-Forwards"])
def test_each_mandatory_header_missing_is_400(name: str) -> None:
    assert check_request(request(drop=name)) == 400


@pytest.mark.parametrize(
    "extra",
    [
        "To: <sip:carol@example.com>",
        "Call-ID: second@example.com",
        "CSeq: 2 OPTIONS",
        "Max-Forwards: 1",
    ],
)
def test_a_repeated_single_value_header_is_400(extra: str) -> None:
    assert check_request(request(OPTIONS, extra)) == 400


def test_missing_max_forwards_is_tolerated_for_rfc_2543_peers() -> None:
    assert check_request(request(drop="Max-Forwards"), allow_rfc2543=True) is None


def test_unknown_methods_get_501_before_the_cseq_comparison() -> None:
    unknown = request("FOO sip:bob@biloxi.example.com SIP/2.0")
    assert check_request(unknown) == 501
    assert check_request(unknown, known_methods=KNOWN_METHODS | {"FOO"}) is None
    mismatch = request(OPTIONS, drop="CSeq")
    mismatch.headers.add("CSeq", "314159 INVITE")
    assert check_request(mismatch) == 400


def test_request_uri_scheme_and_headers() -> None:
    assert check_request(request("OPTIONS tel:+1-555-0100 SIP/2.0")) == 416
    assert (
        check_request(request("OPTIONS tel:+1-555-0100 SIP/2.0"), uri_schemes={"sip", "tel"})
        is None
    )
    assert check_request(request("OPTIONS sips:bob@biloxi.example.com SIP/2.0")) is None
    assert check_request(request("OPTIONS sip:bob@biloxi.example.com?Subject=x SIP/2.0")) == 400
    assert check_request(request("OPTIONS sip:bob@bad_host SIP/2.0")) == 400


@pytest.mark.parametrize(
    "extra",
    [
        "Contact: sip:a@b?x=y",
        "Route: <sip:p.example.com",
        "Record-Route: x",
        "Content-Type: text",
        "Require: a b",
    ],
)
def test_other_malformed_headers_the_core_relies_on_are_400(extra: str) -> None:
    assert check_request(request(OPTIONS, extra)) == 400


def test_unsupported_extensions_in_require_are_420() -> None:
    with_require = request("INVITE sip:bob@biloxi.example.com SIP/2.0", "Require: 100rel, timer")
    assert check_request(with_require) == 420
    assert check_request(with_require, supported_extensions={"100rel"}) == 420
    assert check_request(with_require, supported_extensions={"100rel", "timer"}) is None
    for method in ("ACK", "CANCEL"):
        assert (
            check_request(request(f"{method} sip:bob@biloxi.example.com SIP/2.0", "Require: x"))
            is None
        )
    assert check_request(request("OPTIONS sip:b@c SIP/2.0", "Proxy-Require: x")) is None


def test_max_forwards_zero_is_left_to_the_core() -> None:
    zero = request(drop="Max-Forwards")
    zero.headers.add("Max-Forwards", "0")
    assert check_request(zero) is None


def _response(*lines: str) -> Response:
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(message, Response)
    return message


def test_responses_to_drop() -> None:
    good = [line.format(method="INVITE") for line in BASE if not line.startswith("Max-Forwards")]
    assert check_response(_response("SIP/2.0 200 OK", *good))
    assert not check_response(_response("SIP/1.0 200 OK", *good))
    assert not check_response(_response("SIP/2.0 200 OK", *good[1:]))  # no Via
    assert not check_response(_response("SIP/2.0 200 OK", *good, "CSeq: 2 INVITE"))
    assert not check_response(_response("SIP/2.0 200 OK", *good[:-1], "CSeq: 99999999999 INVITE"))
