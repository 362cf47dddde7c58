"""SIP messages (RFC 3261 section 7): Request and Response, parsing one from the bytes of a
datagram or of a framed stream message, and serialising one canonically.

Parsing checks the start line, the header framing and the body length at once; the values
of individual headers are parsed on first access (``message.top_via``, ``message.cseq`` ...)
and cached. Which parsed requests a UAS must still refuse is ``media.sip.validation``.

Typical use by a transport::

    message = parse_message(datagram)  # SipParseError: answer error.status, or drop
    length = stream_frame_length(buffer)  # on a stream: None until a message is complete
    message = parse_message(buffer[:length], stream=True)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import partial

from media.sip.address import Address
from media.sip.headers import (
    Challenge,
    ContentType,
    Credentials,
    CSeq,
    Headers,
    canonical_name,
    parse_call_id,
    parse_content_length,
    parse_max_forwards,
    parse_option_tags,
)
from media.sip.syntax import TOKEN, SipParseError, is_token, parse_delta_seconds, split_commas
from media.sip.uri import Uri, parse_uri
from media.sip.via import Via

__all__ = [
    "DEFAULT_MAX_SIZE",
    "REASON_PHRASES",
    "SIP_VERSION",
    "Message",
    "Request",
    "Response",
    "SipParseError",
    "parse_message",
    "stream_frame_length",
]

SIP_VERSION = "SIP/2.0"
DEFAULT_MAX_SIZE = 65535
"""Largest message accepted by default: the largest UDP payload."""

REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated", 200: "OK", 202: "Accepted",
    204: "No Notification", 300: "Multiple Choices", 301: "Moved Permanently",
    302: "Moved Temporarily", 305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    412: "Conditional Request Failed", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type", 416: "Unsupported URI Scheme",
    417: "Unknown Resource-Priority", 420: "Bad Extension", 421: "Extension Required",
    422: "Session Interval Too Small", 423: "Interval Too Brief", 428: "Use Identity Header",
    429: "Provide Referrer Identity", 433: "Anonymity Disallowed", 436: "Bad Identity Info",
    437: "Unsupported Credential", 438: "Invalid Identity Header",
    439: "First Hop Lacks Outbound Support", 470: "Consent Needed",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here", 489: "Bad Event",
    491: "Request Pending", 493: "Undecipherable", 494: "Security Agreement Required",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 580: "Precondition Failure", 600: "Busy Everywhere",
    603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}
"""Default reason phrases of the status codes in the IANA SIP registry."""

_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)
_FOLD_RE = re.compile(r"[ \t]*\r\n[ \t]+")
_HEADER_NAME_RE = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*:")
_SCHEME_PREFIX_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:")
_STATUS_CODE_RE = re.compile(r"[1-6][0-9][0-9]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_URI_FORBIDDEN_RE = re.compile(r"[\x00-\x20\x7f]")

HeadersInit = Headers | Iterable[tuple[str, str]] | None


class Message:
    """What requests and responses share: headers, body, version and the structured
    header accessors. Accessors of mandatory headers raise SipParseError when the header
    is missing, repeated or malformed; optional ones return None or an empty tuple."""

    __slots__ = ("body", "headers", "version")

    def __init__(self, headers: HeadersInit, body: bytes, version: str) -> None:
        self.headers = headers if isinstance(headers, Headers) else Headers(headers or ())
        self.body = body
        self.version = version

    def start_line(self) -> str:
        """The Request-Line or Status-Line, without CRLF."""
        raise NotImplementedError

    def serialize(self) -> bytes:
        """Canonical wire form: full header names, CRLF line ends, and a Content-Length
        equal to the body length (where the first Content-Length was, else last)."""
        lines = [self.start_line()]
        length_written = False
        for name, value in self.headers:
            if name == "Content-Length":
                if not length_written:
                    lines.append(f"Content-Length: {len(self.body)}")
                    length_written = True
                continue
            lines.append(f"{name}: {value}" if value else f"{name}:")
        if not length_written:
            lines.append(f"Content-Length: {len(self.body)}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body

    @property
    def via(self) -> tuple[Via, ...]:
        """Every Via value, top first."""
        return self.headers.cached("Via", _vias)

    @property
    def top_via(self) -> Via:
        vias = self.via
        if not vias:
            raise SipParseError("the Via header is missing")
        return vias[0]

    @property
    def from_(self) -> Address:
        return self.headers.cached("From", _from)

    @property
    def to(self) -> Address:
        return self.headers.cached("To", _to)

    @property
    def call_id(self) -> str:
        return self.headers.cached("Call-ID", _call_id)

    @property
    def cseq(self) -> CSeq:
        return self.headers.cached("CSeq", _cseq)

    @property
    def max_forwards(self) -> int | None:
        return self.headers.cached("Max-Forwards", _max_forwards)

    @property
    def contact(self) -> tuple[Address, ...]:
        """The Contact addresses; empty for ``Contact: *`` (see ``contact_wildcard``)."""
        return self.headers.cached("Contact", _contacts)[1]

    @property
    def contact_wildcard(self) -> bool:
        """True for ``Contact: *`` (a REGISTER removing every binding)."""
        return self.headers.cached("Contact", _contacts)[0]

    @property
    def route(self) -> tuple[Address, ...]:
        return self.headers.cached("Route", _route)

    @property
    def record_route(self) -> tuple[Address, ...]:
        return self.headers.cached("Record-Route", _record_route)

    @property
    def content_length(self) -> int | None:
        """The Content-Length header value (None when absent)."""
        return self.headers.cached("Content-Length", _content_length)

    @property
    def content_type(self) -> ContentType | None:
        return self.headers.cached("Content-Type", _content_type)

    @property
    def expires(self) -> int | None:
        return self.headers.cached("Expires", _expires)

    @property
    def require(self) -> tuple[str, ...]:
        return self.headers.cached("Require", _require)

    @property
    def proxy_require(self) -> tuple[str, ...]:
        return self.headers.cached("Proxy-Require", _proxy_require)

    @property
    def supported(self) -> tuple[str, ...]:
        return self.headers.cached("Supported", _supported)

    @property
    def authorization(self) -> tuple[Credentials, ...]:
        return self.headers.cached("Authorization", _authorization)

    @property
    def proxy_authorization(self) -> tuple[Credentials, ...]:
        return self.headers.cached("Proxy-Authorization", _proxy_authorization)

    @property
    def www_authenticate(self) -> tuple[Challenge, ...]:
        return self.headers.cached("WWW-Authenticate", _www_authenticate)

    @property
    def proxy_authenticate(self) -> tuple[Challenge, ...]:
        return self.headers.cached("Proxy-Authenticate", _proxy_authenticate)


class Request(Message):
    """A SIP request. ``uri`` is parsed from the Request-Line on first access; assigning
    a string or a URI object replaces it."""

    __slots__ = ("_uri", "_uri_text", "method")

    def __init__(
        self,
        method: str,
        uri: Uri | str,
        headers: HeadersInit = None,
        body: bytes = b"",
        *,
        version: str = SIP_VERSION,
    ) -> None:
        if not is_token(method):
            raise ValueError(f"method {method!r} is not a token")
        super().__init__(headers, body, version)
        self.method = method
        self._uri: Uri | None = None
        self._uri_text = ""
        self.uri = uri

    @property
    def uri(self) -> Uri:
        if self._uri is None:
            self._uri = parse_uri(self._uri_text, "Request-URI")
        return self._uri

    @uri.setter
    def uri(self, value: Uri | str) -> None:
        if isinstance(value, str):
            if not value or _URI_FORBIDDEN_RE.search(value):
                raise ValueError(f"Request-URI {value!r} is empty or holds whitespace or controls")
            self._uri, self._uri_text = None, value
        else:
            self._uri, self._uri_text = value, value.serialize()

    @property
    def uri_text(self) -> str:
        """The Request-URI exactly as received (or as serialised when assigned)."""
        return self._uri_text

    def start_line(self) -> str:
        return f"{self.method} {self._uri_text} {self.version}"

    def make_response(
        self, status: int, reason: str | None = None, *, to_tag: str | None = None
    ) -> Response:
        """A response to this request, as RFC 3261 8.2.6 builds it: Via rows (same order),
        From, To, Call-ID and CSeq copied, and Timestamp too for a 100.

        ``to_tag`` is added to a To that has no tag (the UAS must do so for every
        response but 100); when the To already has a tag it must be that one. Copying
        Record-Route into dialog-creating responses is the dialog layer's job (12.1.1).
        Raises SipParseError when ``to_tag`` is given and the To cannot be parsed.
        """
        headers = Headers()
        names = ("Via", "From", "To", "Call-ID", "CSeq", *(("Timestamp",) if status == 100 else ()))
        for name in names:
            for value in self.headers.get_all(name):
                headers.add(name, value)
        if to_tag is not None:
            if not is_token(to_tag):
                raise ValueError(f"To tag {to_tag!r} is not a token")
            existing = self.to.tag
            if existing is None:
                headers.set("To", f"{self.headers.get('To')};tag={to_tag}")
            elif existing != to_tag:
                raise ValueError(f"the request's To already has tag {existing!r}, not {to_tag!r}")
        return Response(status, reason, headers)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self._uri_text}>"


class Response(Message):
    """A SIP response; ``reason`` defaults to the registered phrase of ``status``."""

    __slots__ = ("reason", "status")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: HeadersInit = None,
        body: bytes = b"",
        *,
        version: str = SIP_VERSION,
    ) -> None:
        if not 100 <= status <= 699:
            raise ValueError(f"status {status} is outside 100-699")
        if reason is None:
            reason = REASON_PHRASES.get(status, "")
        elif _CONTROL_RE.search(reason):
            raise ValueError(f"reason phrase {reason!r} holds a control character")
        super().__init__(headers, body, version)
        self.status = status
        self.reason = reason

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


def parse_message(
    data: bytes, *, max_size: int = DEFAULT_MAX_SIZE, stream: bool = False
) -> Request | Response:
    """Parse one SIP message.

    For a datagram (``stream=False``) a Content-Length larger than the bytes that follow
    the header section is an error, bytes beyond it are ignored (RFC 3261 18.3), and
    without a Content-Length the body is the rest of the datagram. With ``stream=True``
    ``data`` must be exactly one message as ``stream_frame_length`` delimits it and the
    Content-Length is mandatory. CRLFs before the start line are skipped.

    Raises SipParseError whose ``status`` is the response to send (400, or 513 when the
    message is larger than ``max_size``) or None when the message is a response, which is
    dropped and never answered.
    """
    start = _skip_crlf(data)
    is_response = data.startswith(b"SIP/", start)
    try:
        if len(data) > max_size:
            raise SipParseError(f"message of {len(data)} bytes is over the limit, {max_size}", 513)
        end, start_line, rows = _split_head(data, start)
        headers = Headers._from_rows(rows)
        body = _body(data, end + 4, rows, stream)
        if is_response:
            version, status, reason = _parse_status_line(start_line)
            return Response(status, reason, headers, body, version=version)
        method, uri_text, version = _parse_request_line(start_line)
        return Request(method, uri_text, headers, body, version=version)
    except SipParseError as error:
        if is_response:
            error.status = None
        raise


def stream_frame_length(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> int | None:
    """How many bytes at the start of a stream buffer make up its first message
    (leading CRLF keep-alives included), or None until they have all arrived.

    Raises SipParseError when the stream cannot be framed (no usable Content-Length, or a
    message over ``max_size``); the connection should then be closed.
    """
    start = _skip_crlf(data)
    if data.find(b"\r\n\r\n", start) < 0:
        if len(data) - start > max_size:
            raise SipParseError(f"header section exceeds the {max_size}-byte limit", 513)
        return None
    end, _, rows = _split_head(data, start)
    length = _declared_length(rows)
    if length is None:
        raise SipParseError("Content-Length is mandatory on stream transports (RFC 3261 18.3)")
    total = end + 4 + length
    if total - start > max_size:
        raise SipParseError(f"message of {total - start} bytes is over the limit, {max_size}", 513)
    return total if len(data) >= total else None


def _skip_crlf(data: bytes) -> int:
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    return start


def _split_head(data: bytes, start: int) -> tuple[int, str, list[tuple[str, str, str]]]:
    """Find the end of the header section; return its offset, the start line and the
    header rows as (key, canonical name, unfolded value)."""
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        raise SipParseError("the header section is not ended by an empty line (CRLF CRLF)")
    head = data[start:end].decode("utf-8", "surrogateescape")
    breaks = head.count("\r\n")
    if head.count("\n") != breaks or head.count("\r") != breaks:
        raise SipParseError("the header section contains a CR or LF that is not part of CRLF")
    start_line, _, fields = head.partition("\r\n")
    if fields[:1] in (" ", "\t"):
        raise SipParseError(f"continuation line {fields[:40]!r} precedes every header")
    rows: list[tuple[str, str, str]] = []
    if not fields:
        return end, start_line, rows
    # LWS holding a line break means one SP (RFC 3261 7.3.1): unfold, then split.
    for line in _FOLD_RE.sub(" ", fields).split("\r\n"):
        match = _HEADER_NAME_RE.match(line)
        if match is None:
            raise SipParseError(f"header line {line[:40]!r} does not start with a name and ':'")
        name = canonical_name(match.group(1))
        rows.append((name.lower(), name, line[match.end() :].strip(" \t")))
    return end, start_line, rows


def _declared_length(rows: list[tuple[str, str, str]]) -> int | None:
    values = [value for key, _, value in rows if key == "content-length"]
    if not values:
        return None
    if len(values) > 1:
        raise SipParseError(
            f"Content-Length appears {len(values)} times ({', '.join(values)}); "
            "the body length is unknown"
        )
    return parse_content_length(values[0])


def _body(data: bytes, body_start: int, rows: list[tuple[str, str, str]], stream: bool) -> bytes:
    length = _declared_length(rows)
    available = len(data) - body_start
    if length is None:
        if stream:
            raise SipParseError("Content-Length is mandatory on stream transports (RFC 3261 18.3)")
        return data[body_start:]
    if length > available:
        if stream:
            raise SipParseError(f"body incomplete: {available} of {length} bytes", None)
        raise SipParseError(
            f"Content-Length {length} is larger than the {available} bytes after the headers"
        )
    if stream and length < available:
        raise SipParseError(
            f"{available - length} bytes follow the body; frame streams with stream_frame_length()"
        )
    return data[body_start : body_start + length]


def _parse_request_line(line: str) -> tuple[str, str, str]:
    parts = line.split(" ")
    if len(parts) != 3:
        raise SipParseError(
            f"Request-Line {line[:80]!r} must be Method SP Request-URI SP SIP-Version "
            "(single spaces)"
        )
    method, uri_text, version = parts
    if not TOKEN.fullmatch(method):
        raise SipParseError(f"Request-Line: method {method[:40]!r} is not a token")
    if not _SCHEME_PREFIX_RE.match(uri_text):
        raise SipParseError(
            f"Request-Line: Request-URI {uri_text[:60]!r} does not start with a scheme and ':'"
        )
    if _URI_FORBIDDEN_RE.search(uri_text):
        raise SipParseError(f"Request-Line: Request-URI {uri_text[:60]!r} has a control character")
    if not _VERSION_RE.fullmatch(version):
        raise SipParseError(f"Request-Line: expected SIP-Version (SIP/2.0), found {version[:20]!r}")
    return method, uri_text, version


def _parse_status_line(line: str) -> tuple[str, int, str]:
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not _VERSION_RE.fullmatch(version):
        raise SipParseError(f"Status-Line: expected SIP-Version (SIP/2.0), found {version[:20]!r}")
    if not _STATUS_CODE_RE.fullmatch(code):
        raise SipParseError(f"Status-Line: expected a status code 100-699, found {code[:20]!r}")
    if _CONTROL_RE.search(reason):
        raise SipParseError(f"Status-Line: reason phrase {reason[:40]!r} has a control character")
    return version, int(code), reason


# Parsers of the rows of one header, for Headers.cached (one function object per header
# so that each has its own cache entry and names its header in errors).


def _single(rows: list[str], name: str) -> str:
    if not rows:
        raise SipParseError(f"the {name} header is missing")
    if len(rows) > 1:
        raise SipParseError(f"the {name} header appears {len(rows)} times; it must appear once")
    return rows[0]


def _optional(rows: list[str], name: str) -> str | None:
    return _single(rows, name) if rows else None


def _vias(rows: list[str]) -> tuple[Via, ...]:
    return tuple(via for row in rows for via in Via.parse_list(row))


def _from(rows: list[str]) -> Address:
    return Address.parse(_single(rows, "From"), "From")


def _to(rows: list[str]) -> Address:
    return Address.parse(_single(rows, "To"), "To")


def _call_id(rows: list[str]) -> str:
    return parse_call_id(_single(rows, "Call-ID"))


def _cseq(rows: list[str]) -> CSeq:
    return CSeq.parse(_single(rows, "CSeq"))


def _max_forwards(rows: list[str]) -> int | None:
    value = _optional(rows, "Max-Forwards")
    return None if value is None else parse_max_forwards(value)


def _content_length(rows: list[str]) -> int | None:
    value = _optional(rows, "Content-Length")
    return None if value is None else parse_content_length(value)


def _content_type(rows: list[str]) -> ContentType | None:
    value = _optional(rows, "Content-Type")
    return None if value is None else ContentType.parse(value)


def _expires(rows: list[str]) -> int | None:
    value = _optional(rows, "Expires")
    return None if value is None else parse_delta_seconds(value, "Expires")


def _contacts(rows: list[str]) -> tuple[bool, tuple[Address, ...]]:
    if len(rows) == 1 and rows[0] == "*":
        return True, ()
    addresses = []
    for row in rows:
        for element in split_commas(row, "Contact"):
            if element == "*":
                raise SipParseError("Contact: '*' must be the only Contact value")
            if not element:
                raise SipParseError(f"Contact: empty element in {row!r}")
            addresses.append(Address.parse(element, "Contact"))
    return False, tuple(addresses)


def _address_list(rows: list[str], where: str) -> tuple[Address, ...]:
    return tuple(address for row in rows for address in Address.parse_list(row, where))


def _option_tags(rows: list[str], where: str) -> tuple[str, ...]:
    return tuple(parse_option_tags(rows, where))


def _auth_values(rows: list[str], where: str, kind: type[Credentials] | type[Challenge]) -> tuple:
    return tuple(kind.parse(row, where) for row in rows)


_route = partial(_address_list, where="Route")
_record_route = partial(_address_list, where="Record-Route")
_require = partial(_option_tags, where="Require")
_proxy_require = partial(_option_tags, where="Proxy-Require")
_supported = partial(_option_tags, where="Supported")
_authorization = partial(_auth_values, where="Authorization", kind=Credentials)
_proxy_authorization = partial(_auth_values, where="Proxy-Authorization", kind=Credentials)
_www_authenticate = partial(_auth_values, where="WWW-Authenticate", kind=Challenge)
_proxy_authenticate = partial(_auth_values, where="Proxy-Authenticate", kind=Challenge)
