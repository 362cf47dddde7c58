"""RFC 4475, "SIP Torture Test Messages": every message of section 3, typed from the RFC
into torture/<name>.dat in the RFC's own notation (section 2), with the outcome the RFC's
discussion of it asks for at this layer: the message parser (``parse_message``) and the
checks a UAS runs before its core (``check_request``, ``check_response``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from media.sip.headers import CSeq
from media.sip.message import Request, Response, parse_message, stream_frame_length
from media.sip.syntax import SipParseError
from media.sip.uri import AbsoluteUri, SipUri
from media.sip.validation import check_request, check_response

TORTURE_DIR = Path(__file__).parent / "torture"

_REPEAT_RE = re.compile(r"<repeat count=(\d+)>(.*?)</repeat>")
_HEX_RE = re.compile(rb"<hex>([0-9A-Fa-f]*)</hex>")


def decode_rfc4475(text: str) -> bytes:
    """The octets an RFC 4475 message stands for (RFC 4475 section 2): every line ends in
    CRLF, the lines between <allOneLine> and </allOneLine> are one line, <hex>..</hex>
    holds octets in hexadecimal and <repeat count=N>s</repeat> stands for N times s."""
    lines = text.replace("\r\n", "\n").split("\n")  # whatever a checkout did to line ends
    if lines[-1] == "":
        lines.pop()
    joined: list[str] = []
    pending: list[str] | None = None
    for line in lines:
        if line == "<allOneLine>":
            assert pending is None, "nested <allOneLine>"
            pending = []
        elif line == "</allOneLine>":
            assert pending is not None, "</allOneLine> without <allOneLine>"
            joined.append("".join(pending))
            pending = None
        elif pending is not None:
            pending.append(line)
        else:
            joined.append(line)
    assert pending is None, "<allOneLine> never closed"
    expanded = _REPEAT_RE.sub(lambda m: m.group(2) * int(m.group(1)), "\r\n".join(joined) + "\r\n")
    octets = _HEX_RE.sub(lambda m: bytes.fromhex(m.group(1).decode()), expanded.encode("ascii"))
    assert b"<hex>" not in octets and b"<repeat" not in octets, "unbalanced notation"
    return octets


def load(name: str) -> bytes:
    return decode_rfc4475((TORTURE_DIR / f"{name}.dat").read_text(encoding="ascii"))


def test_decoder_applies_the_rfc_notation() -> None:
    text = "A <repeat count=3>ab</repeat>\n<allOneLine>\nB: x\n y<hex>00FF</hex>\n</allOneLine>\n\n"
    assert decode_rfc4475(text) == b"A ababab\r\nB: x y\x00\xff\r\n\r\n"


# Expectations shared by many cases ------------------------------------------------------


def request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def response(data: bytes) -> Response:
    message = parse_message(data)
    assert isinstance(message, Response)
    return message


def accepted(data: bytes) -> Request:
    """Parses, and a UAS lets it through to its core."""
    message = request(data)
    assert check_request(message) is None
    return message


def refused(data: bytes, status: int) -> Request:
    """Parses, and a UAS answers ``status`` before its core sees it."""
    message = request(data)
    assert check_request(message) == status
    return message


def unparsable(data: bytes, status: int | None, mentions: str) -> None:
    with pytest.raises(SipParseError, match=re.escape(mentions)) as raised:
        parse_message(data)
    assert raised.value.status == status


def round_trips(message: Request | Response) -> None:
    again = parse_message(message.serialize())
    assert again.start_line() == message.start_line()
    assert again.headers == message.headers
    assert again.body == message.body


# 3.1.1 Valid messages -------------------------------------------------------------------


def wsinv(data: bytes) -> None:
    req = accepted(data)
    assert req.method == "INVITE"
    assert "unknownparam" in req.uri.params and req.uri.params["unknownparam"] is None
    assert req.to.uri == SipUri("chair-dnrc.example.com", "vivekg")
    assert req.to.tag == "1918181833n"
    assert req.from_.display_name == 'J Rosenberg \\"'
    assert req.from_.tag == "98asjd8"
    assert req.max_forwards == 68
    assert req.cseq == CSeq(9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in req.via] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert req.headers.get("Subject") == ""
    assert req.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert req.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    route = req.route[0].uri
    assert isinstance(route, SipUri) and route.lr
    assert dict(route.params) == {"lr": None, "unknownwith": "value", "unknown-no-value": None}
    (contact,) = req.contact
    assert contact.display_name == 'Quoted string ""'
    assert dict(contact.params) == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert contact.q == 0.33
    assert req.content_length == len(req.body) == 150
    round_trips(req)


def intmeth(data: bytes) -> None:
    req = request(data)
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    assert req.method == method and req.cseq == CSeq(139122385, method)
    assert req.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert req.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert req.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert req.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert req.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert req.from_.params.unquoted("fromParam''~+*_!.-%") == "работающий"
    assert req.from_.tag == "_token~1'+`*%!-."
    assert req.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert req.max_forwards == 255
    assert req.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    # Endpoints answer 501; an element that defines the method processes it.
    assert check_request(req) == 501
    assert check_request(req, known_methods={method}) is None
    round_trips(req)


def esc01(data: bytes) -> None:
    req = accepted(data)
    assert req.uri.user == "sips:user@example.com" and req.uri.host == "example.net"
    assert req.to.uri.user == "user"
    assert req.from_.uri.user == "I have spaces"
    uri = req.contact[0].uri
    assert uri.user == "caller"
    assert dict(uri.params) == {"lr": None, "name": "value%41"}  # unescaped once only
    round_trips(req)


def escnull(data: bytes) -> None:
    req = accepted(data)
    assert req.to.uri.user == req.from_.uri.user == "null-\x00-null"
    first, second = req.contact
    assert (first.uri.user, second.uri.user) == ("\x00", "\x00\x00")
    assert first.uri != second.uri  # two distinct bindings
    round_trips(req)


def esc02(data: bytes) -> None:
    req = request(data)
    assert req.method == "RE%47IST%45R" != "REGISTER"
    assert req.to.display_name == req.from_.display_name == "%Z%45"
    assert [c.uri.user for c in req.contact] == ["alias1", "alias3"]
    assert req.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert req.top_via.branch == "z9hG4bK209%fzsnel234"
    assert check_request(req) == 501  # an endpoint rejects the unknown method
    round_trips(req)


def lwsdisp(data: bytes) -> None:
    req = accepted(data)
    assert req.from_.display_name == "caller"
    assert req.from_.uri.user == "caller"


def longreq(data: bytes) -> None:
    req = accepted(data)
    assert req.to.display_name == f"I have a user name of {'extreme' * 10} proportion"
    to = req.to.uri
    assert to.port == 6000
    assert to.params["unknownparam1"] == f"very{'long' * 20}value"
    assert to.params[f"longparam{'name' * 25}"] == "shortvalue"
    assert to.params[f"very{'long' * 25}ParameterNameWithNoValue"] is None
    assert req.from_.uri.user == "amazinglylongcallername" * 5
    assert req.from_.tag == f"12{'982' * 50}424"
    params = req.from_.params
    assert params[f"unknownheaderparam{'name' * 20}"] == f"unknowheaderparam{'value' * 15}"
    assert params[f"unknownValueless{'paramname' * 10}"] is None
    assert req.call_id == f"longreq.one{'really' * 20}longcallid"
    assert [v.host for v in req.via[:33]] == [f"sip{n}.example.com" for n in range(33, 0, -1)]
    last = req.via[33]
    assert last.received == "192.0.2.5" and last.branch == f"very{'long' * 50}branchvalue"
    assert req.contact[0].uri.user == "amazinglylongcallername" * 5
    long = "long" * 20
    assert req.headers.get(f"Unknown-{'Long' * 20}-Name") == (
        f"unknown-{long}-value; unknown-{long}-parameter-name = unknown-{long}-parameter-value"
    )
    round_trips(req)


def dblreq(data: bytes) -> None:
    req = accepted(data)  # the trailing INVITE octets are noise (RFC 3261 18.3)
    assert req.method == "REGISTER" and req.body == b""
    assert req.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    assert b"INVITE" not in req.serialize()
    register_end = data.index(b"\r\n\r\n") + 4
    assert stream_frame_length(data) == register_end


def semiuri(data: bytes) -> None:
    req = accepted(data)
    assert req.uri.user == "user;par=u@example.net"
    assert req.uri.host == "example.com" and not req.uri.params
    assert req.headers.values("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


def transports(data: bytes) -> None:
    req = accepted(data)
    assert [v.transport for v in req.via] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert req.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def mpart01(data: bytes) -> None:
    req = accepted(data)
    assert req.content_length == len(req.body) == 553
    assert req.content_type is not None and req.content_type.mime == "multipart/mixed"
    assert req.content_type.params["boundary"] == "7a9cbec02ceef655"
    assert b"\x00" in req.body and req.body.endswith(b"--7a9cbec02ceef655--\r\n")
    via = req.top_via
    assert (via.host, via.port, via.has_rport, via.rport) == ("127.0.0.1", 5070, True, None)
    round_trips(req)


def unreason(data: bytes) -> None:
    resp = response(data)
    assert resp.status == 200
    assert resp.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    assert check_response(resp)
    round_trips(resp)


def noreason(data: bytes) -> None:
    resp = response(data)
    assert (resp.status, resp.reason) == (100, "")
    assert check_response(resp)
    assert resp.serialize().startswith(b"SIP/2.0 100 \r\n")


# 3.1.2 Invalid messages -----------------------------------------------------------------


def badinv01(data: bytes) -> None:
    req = refused(data, 400)
    with pytest.raises(SipParseError, match="Via"):
        req.via  # noqa: B018
    with pytest.raises(SipParseError, match="Contact"):
        req.contact  # noqa: B018


def clerr(data: bytes) -> None:
    unparsable(data, 400, "Content-Length 9999")
    assert stream_frame_length(data) is None  # on a stream: wait for more bytes


def ncl(data: bytes) -> None:
    unparsable(data, 400, "Content-Length")
    with pytest.raises(SipParseError):
        stream_frame_length(data)  # not recoverable on a stream: close it


def scalar02(data: bytes) -> None:
    req = refused(data, 400)
    with pytest.raises(SipParseError, match="CSeq"):
        req.cseq  # noqa: B018
    # Each of these alone would let an element use a default instead of failing.
    for field in ("max_forwards", "expires"):
        with pytest.raises(SipParseError):
            getattr(req, field)
    with pytest.raises(SipParseError):
        req.contact[0].expires  # noqa: B018


def scalarlg(data: bytes) -> None:
    resp = response(data)
    assert not check_response(resp)  # discarded


def quotbal(data: bytes) -> None:
    req = refused(data, 400)
    with pytest.raises(SipParseError, match="quoted string"):
        req.to  # noqa: B018


def ltgtruri(data: bytes) -> None:
    unparsable(data, 400, "Request-URI '<sip:user@example.com>'")


def lwsruri(data: bytes) -> None:
    unparsable(data, 400, "Request-Line")


def lwsstart(data: bytes) -> None:
    unparsable(data, 400, "single spaces")


def trws(data: bytes) -> None:
    unparsable(data, 400, "single spaces")


def escruri(data: bytes) -> None:
    req = refused(data, 400)
    assert req.uri.headers["Route"] == "<sip:example.com>"


def baddate(data: bytes) -> None:
    # Rejecting is allowed only where the Date matters; nothing here interprets it.
    req = accepted(data)
    assert req.headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"


def regbadct(data: bytes) -> None:
    req = refused(data, 400)
    with pytest.raises(SipParseError, match="enclosed in <>"):
        req.contact  # noqa: B018


def badaspec(data: bytes) -> None:
    req = refused(data, 400)
    with pytest.raises(SipParseError, match="To"):
        req.to  # noqa: B018


def baddn(data: bytes) -> None:
    # The RFC's message stops after "l: 0" with no empty line, so framing rejects it;
    # properly terminated, the unquoted display names are what a UAS refuses.
    unparsable(data, 400, "empty line")
    req = refused(data + b"\r\n", 400)
    with pytest.raises(SipParseError, match="From"):
        req.from_  # noqa: B018


def badvers(data: bytes) -> None:
    req = refused(data, 505)
    assert req.version == "SIP/7.0"


def mismatch01(data: bytes) -> None:
    req = refused(data, 400)
    assert req.cseq.method == "INVITE" != req.method


def mismatch02(data: bytes) -> None:
    refused(data, 501)  # the RFC prefers 501 to 400


def bigcode(data: bytes) -> None:
    unparsable(data, None, "status code")  # a response: dropped


# 3.2 Transaction layer ------------------------------------------------------------------


def badbranch(data: bytes) -> None:
    req = accepted(data)
    assert req.top_via.branch == "z9hG4bK"
    assert req.top_via.rfc3261_branch is None  # fall back to RFC 2543 matching


# 3.3 Application layer ------------------------------------------------------------------


def insuf(data: bytes) -> None:
    req = refused(data, 400)
    with pytest.raises(SipParseError, match="missing"):
        req.call_id  # noqa: B018


def unkscm(data: bytes) -> None:
    req = refused(data, 416)
    assert req.uri == AbsoluteUri("nobodyKnowsThisScheme", "totallyopaquecontent")


def novelsc(data: bytes) -> None:
    req = refused(data, 416)
    assert req.uri.scheme == "soap.beep"
    assert check_request(req, uri_schemes={"sip", "sips", "soap.beep"}) is None


def unksm2(data: bytes) -> None:
    # Well formed; a registrar refuses a non-SIP To, a proxy forwards it.
    req = accepted(data)
    assert [a.uri.scheme for a in (req.to, req.from_, req.contact[0])] == ["isbn", "http", "name"]


def bext01(data: bytes) -> None:
    req = refused(data, 420)
    assert req.require == ("nothingSupportsThis", "nothingSupportsThisEither")
    assert req.proxy_require == ("noProxiesSupportThis", "norDoAnyProxiesSupportThis")
    assert check_request(req, supported_extensions=req.require) is None


def invut(data: bytes) -> None:
    req = accepted(data)  # 415 is the core's answer: it knows which bodies it takes
    assert req.content_type is not None and req.content_type.mime == "application/unknownformat"
    assert len(req.body) == 40


def regaut01(data: bytes) -> None:
    req = accepted(data)
    (credentials,) = req.authorization
    assert credentials.scheme == "NoOneKnowsThisScheme"
    assert dict(credentials.params) == {"opaque-data": "here"}


def multi01(data: bytes) -> None:
    req = refused(data, 400)
    for field in ("call_id", "cseq", "to", "from_"):
        with pytest.raises(SipParseError, match="appears 2 times"):
            getattr(req, field)


def mcl01(data: bytes) -> None:
    unparsable(data, 400, "Content-Length appears 2 times")


def bcast(data: bytes) -> None:
    resp = response(data)
    assert check_response(resp)  # dropping it is the UAC's and the proxy's rule
    assert resp.via[1].host == "255.255.255.255"


def zeromf(data: bytes) -> None:
    req = accepted(data)  # a UAS processes it; 483 is a proxy's answer
    assert req.max_forwards == 0


def cparam01(data: bytes) -> None:
    req = accepted(data)
    (contact,) = req.contact
    assert "unknownparam" in contact.params
    assert "unknownparam" not in contact.uri.params


def cparam02(data: bytes) -> None:
    req = accepted(data)
    (contact,) = req.contact
    assert "unknownparam" in contact.uri.params
    assert "unknownparam" not in contact.params


def regescrt(data: bytes) -> None:
    req = accepted(data)
    assert req.contact[0].uri.headers["Route"] == "<sip:sip.example.com>"


def sdp01(data: bytes) -> None:
    req = accepted(data)  # 406 (or 400) is the core's answer
    assert req.headers.values("Accept") == ["text/nobodyKnowsThis"]


# 3.4 Backward compatibility -------------------------------------------------------------


def inv2543(data: bytes) -> None:
    req = request(data)
    assert req.top_via.branch is None
    assert req.from_.tag is None
    assert req.content_length is None and req.body.endswith(b"m=audio 49217 RTP/AVP 0\r\n")
    assert len(req.body) == 105  # the rest of the datagram
    assert req.max_forwards is None
    assert req.to.params["user"] == "phone"  # a header parameter in addr-spec form
    assert check_request(req) == 400
    assert check_request(req, allow_rfc2543=True) is None
    with pytest.raises(SipParseError, match="mandatory on stream"):
        parse_message(data, stream=True)


@dataclass(frozen=True)
class Case:
    name: str
    section: str
    title: str
    check: Callable[[bytes], None]


CASES = [
    Case("wsinv", "3.1.1.1", "A Short Tortuous INVITE", wsinv),
    Case("intmeth", "3.1.1.2", "Wide Range of Valid Characters", intmeth),
    Case("esc01", "3.1.1.3", "Valid Use of the % Escaping Mechanism", esc01),
    Case("escnull", "3.1.1.4", "Escaped Nulls in URIs", escnull),
    Case("esc02", "3.1.1.5", "Use of % When It Is Not an Escape", esc02),
    Case("lwsdisp", "3.1.1.6", "Message with No LWS between Display Name and <", lwsdisp),
    Case("longreq", "3.1.1.7", "Long Values in Header Fields", longreq),
    Case("dblreq", "3.1.1.8", "Extra Trailing Octets in a UDP Datagram", dblreq),
    Case("semiuri", "3.1.1.9", "Semicolon-Separated Parameters in URI User Part", semiuri),
    Case("transports", "3.1.1.10", "Varied and Unknown Transport Types", transports),
    Case("mpart01", "3.1.1.11", "Multipart MIME Message", mpart01),
    Case("unreason", "3.1.1.12", "Unusual Reason Phrase", unreason),
    Case("noreason", "3.1.1.13", "Empty Reason Phrase", noreason),
    Case("badinv01", "3.1.2.1", "Extraneous Header Field Separators", badinv01),
    Case("clerr", "3.1.2.2", "Content Length Larger Than Message", clerr),
    Case("ncl", "3.1.2.3", "Negative Content-Length", ncl),
    Case("scalar02", "3.1.2.4", "Request Scalar Fields with Overlarge Values", scalar02),
    Case("scalarlg", "3.1.2.5", "Response Scalar Fields with Overlarge Values", scalarlg),
    Case("quotbal", "3.1.2.6", "Unterminated Quoted String in Display Name", quotbal),
    Case("ltgtruri", "3.1.2.7", "<> Enclosing Request-URI", ltgtruri),
    Case("lwsruri", "3.1.2.8", "Malformed SIP Request-URI (embedded LWS)", lwsruri),
    Case("lwsstart", "3.1.2.9", "Multiple SP Separating Request-Line Elements", lwsstart),
    Case("trws", "3.1.2.10", "SP Characters at End of Request-Line", trws),
    Case("escruri", "3.1.2.11", "Escaped Headers in SIP Request-URI", escruri),
    Case("baddate", "3.1.2.12", "Invalid Time Zone in Date Header Field", baddate),
    Case("regbadct", "3.1.2.13", "Failure to Enclose name-addr URI in <>", regbadct),
    Case("badaspec", "3.1.2.14", "Spaces within addr-spec", badaspec),
    Case("baddn", "3.1.2.15", "Non-token Characters in Display Name", baddn),
    Case("badvers", "3.1.2.16", "Unknown Protocol Version", badvers),
    Case("mismatch01", "3.1.2.17", "Start Line and CSeq Method Mismatch", mismatch01),
    Case("mismatch02", "3.1.2.18", "Unknown Method with CSeq Method Mismatch", mismatch02),
    Case("bigcode", "3.1.2.19", "Overlarge Response Code", bigcode),
    Case("badbranch", "3.2.1", "Missing Transaction Identifier", badbranch),
    Case("insuf", "3.3.1", "Missing Required Header Fields", insuf),
    Case("unkscm", "3.3.2", "Request-URI with Unknown Scheme", unkscm),
    Case("novelsc", "3.3.3", "Request-URI with Known but Atypical Scheme", novelsc),
    Case("unksm2", "3.3.4", "Unknown URI Schemes in Header Fields", unksm2),
    Case("bext01", "3.3.5", "Proxy-Require and Require", bext01),
    Case("invut", "3.3.6", "Unknown Content-Type", invut),
    Case("regaut01", "3.3.7", "Unknown Authorization Scheme", regaut01),
    Case("multi01", "3.3.8", "Multiple Values in Single Value Required Fields", multi01),
    Case("mcl01", "3.3.9", "Multiple Content-Length Values", mcl01),
    Case("bcast", "3.3.10", "200 OK Response with Broadcast Via Header Field Value", bcast),
    Case("zeromf", "3.3.11", "Max-Forwards of Zero", zeromf),
    Case("cparam01", "3.3.12", "REGISTER with a Contact Header Parameter", cparam01),
    Case("cparam02", "3.3.13", "REGISTER with a url-parameter", cparam02),
    Case("regescrt", "3.3.14", "REGISTER with a URL Escaped Header", regescrt),
    Case("sdp01", "3.3.15", "Unacceptable Accept Offering", sdp01),
    Case("inv2543", "3.4.1", "INVITE with RFC 2543 Syntax", inv2543),
]


def test_the_table_covers_every_message_of_section_3() -> None:
    # 13 valid, 19 invalid, 1 transaction-layer, 15 application-layer, 1 RFC 2543.
    assert len(CASES) == 49
    assert len({case.name for case in CASES}) == len({case.section for case in CASES}) == 49
    assert {path.stem for path in TORTURE_DIR.glob("*.dat")} == {case.name for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[f"{case.section}-{case.name}" for case in CASES])
def test_torture_message(case: Case) -> None:
    case.check(load(case.name))
