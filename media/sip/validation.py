"""Checks a receiving element runs on a message that parsed: which parsed requests a UAS
must refuse, and with which status, before the core sees them (RFC 3261 8.2 and 16.3),
and which responses must be silently dropped.

What belongs here is what needs nothing but the message and the element's static
capabilities. Decisions that need state or policy stay with the layers that own it:

- 483 Too Many Hops for Max-Forwards 0 is a proxy decision; a UAS processes such a
  request normally (RFC 4475 3.3.11).
- 405 (known but not allowed method), 415 (body type), 406 (Accept), 401/407
  (authentication), 481, 482 and registrar rules such as a non-SIP To (RFC 4475 3.3.4)
  belong to the core, the dialog layer and the registrar.
- Discarding a response with more than one Via (RFC 3261 8.1.3.3) or one whose Via
  points at a broadcast address (RFC 4475 3.3.10) belongs to the UAC and proxy cores.
"""

from __future__ import annotations

from collections.abc import Collection

from media.sip.message import SIP_VERSION, Request, Response
from media.sip.syntax import SipParseError
from media.sip.uri import SipUri

__all__ = ["KNOWN_METHODS", "check_request", "check_response"]

KNOWN_METHODS = frozenset({
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER",  # RFC 3261
    "PRACK",  # RFC 3262
    "SUBSCRIBE", "NOTIFY",  # RFC 6665
    "PUBLISH",  # RFC 3903
    "INFO",  # RFC 6086
    "REFER",  # RFC 3515
    "MESSAGE",  # RFC 3428
    "UPDATE",  # RFC 3311
})
"""The methods defined by standards-track RFCs; any other method is unknown (501)."""

_SIP_SCHEMES = ("sip", "sips")


def check_request(
    request: Request,
    *,
    known_methods: Collection[str] = KNOWN_METHODS,
    uri_schemes: Collection[str] = _SIP_SCHEMES,
    supported_extensions: Collection[str] = (),
    allow_rfc2543: bool = False,
) -> int | None:
    """The status a UAS must answer this request with, or None when it may proceed.

    In order:

    - 505 when the SIP-Version is not SIP/2.0;
    - 400 when To, From, Call-ID, CSeq, Via or Max-Forwards is missing, repeated where
      only one is allowed, or malformed (``allow_rfc2543`` accepts a request without
      Max-Forwards, as RFC 2543 elements send them, RFC 4475 3.4.1);
    - 501 when the method is not in ``known_methods``;
    - 400 when the CSeq method differs from the Request-Line method;
    - 400 when the Request-URI is malformed, 416 when its scheme is not in
      ``uri_schemes``, 400 when a SIP Request-URI carries headers (RFC 3261 19.1.1);
    - 400 when Contact, Route, Record-Route or Content-Type is malformed;
    - 420 when Require lists an option tag outside ``supported_extensions`` (not for ACK
      or CANCEL, RFC 3261 8.2.2.3); the caller lists them in Unsupported.
    """
    if request.version.upper() != SIP_VERSION:
        return 505
    try:
        request.to  # noqa: B018 - parsing is the check
        request.from_  # noqa: B018
        request.call_id  # noqa: B018
        cseq = request.cseq
        if not request.via:
            return 400
        if request.max_forwards is None and not allow_rfc2543:
            return 400
    except SipParseError:
        return 400
    if request.method not in known_methods:
        return 501
    if cseq.method != request.method:
        return 400
    try:
        uri = request.uri
    except SipParseError:
        return 400
    if uri.scheme.lower() not in uri_schemes:
        return 416
    if isinstance(uri, SipUri) and uri.headers:
        return 400
    try:
        request.contact  # noqa: B018
        request.route  # noqa: B018
        request.record_route  # noqa: B018
        request.content_type  # noqa: B018
        require = request.require
    except SipParseError:
        return 400
    if request.method not in ("ACK", "CANCEL") and any(
        tag not in supported_extensions for tag in require
    ):
        return 420
    return None


def check_response(response: Response) -> bool:
    """False when a received response must be silently discarded: a SIP-Version other
    than SIP/2.0, or a missing, repeated or malformed Via, From, To, Call-ID or CSeq
    (RFC 4475 3.1.2.5: a CSeq beyond 2**31-1 makes the response unusable)."""
    if response.version.upper() != SIP_VERSION:
        return False
    try:
        response.to  # noqa: B018
        response.from_  # noqa: B018
        response.call_id  # noqa: B018
        response.cseq  # noqa: B018
        return bool(response.via)
    except SipParseError:
        return False
