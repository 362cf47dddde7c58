"""Dialogs (RFC 3261 12): the peer-to-peer relationship an INVITE's 2xx creates.

A `Dialog` holds what identifies it (Call-ID and both tags), both CSeq spaces, the remote
target and the route set, and builds every in-dialog request (12.2.1.1) and the ACK for a
2xx (13.2.2.4). It checks incoming in-dialog requests (12.2.2: CSeq order) and applies
target refreshes (re-INVITE Contact). No I/O: the INVITE session layer sends what it builds.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from media.sip.address import Address
from media.sip.headers import Headers
from media.sip.message import Request, Response
from media.sip.uri import SipUri, Uri, parse_uri

# CSeq numbers start below 2**31 (RFC 3261 8.1.1.5) with room to grow.
_MAX_INITIAL_CSEQ = 2**16


def new_tag() -> str:
    return secrets.token_hex(5)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(12)}@{host}"


def initial_cseq() -> int:
    return secrets.randbelow(_MAX_INITIAL_CSEQ) + 1


class DialogError(Exception):
    """An in-dialog request that must be refused; `status` is the response to send."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: Address  # our From in requests we send (tag excluded)
    remote_uri: Address  # their To in requests we send (tag excluded)
    remote_target: Uri
    route_set: list[Address] = field(default_factory=list)
    local_seq: int = field(default_factory=initial_cseq)
    remote_seq: int | None = None
    local_contact: str = ""
    secure: bool = False

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    # ------------------------------------------------------------------ creation

    @classmethod
    def as_uas(cls, request: Request, local_tag: str, local_contact: str) -> Dialog:
        """The dialog a UAS creates when it answers `request` (12.1.1)."""
        contact = request.contact
        if not contact:
            raise DialogError(400, "INVITE without a Contact header")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag or "",
            local_uri=_without_tag(request.to),
            remote_uri=_without_tag(request.from_),
            remote_target=contact[0].uri,
            route_set=list(request.record_route),
            local_seq=initial_cseq(),
            remote_seq=request.cseq.number,
            local_contact=local_contact,
            secure=_is_sips(request.uri),
        )

    @classmethod
    def as_uac(cls, request: Request, response: Response) -> Dialog:
        """The dialog a UAC creates from a 2xx or a tagged 1xx to `request` (12.1.2)."""
        contact = response.contact
        target = contact[0].uri if contact else request.uri
        return cls(
            call_id=request.call_id,
            local_tag=request.from_.tag or "",
            remote_tag=response.to.tag or "",
            local_uri=_without_tag(request.from_),
            remote_uri=_without_tag(request.to),
            remote_target=target,
            route_set=list(reversed(response.record_route)),
            local_seq=request.cseq.number,
            remote_seq=None,
            local_contact=request.headers.get("Contact") or "",
            secure=_is_sips(request.uri),
        )

    # ------------------------------------------------------------- our requests

    def create_request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: list[tuple[str, str]] | None = None,
        cseq: int | None = None,
    ) -> Request:
        """An in-dialog request (12.2.1.1); the CSeq advances unless given (ACK, CANCEL)."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        request_uri, routes = self._request_uri_and_routes()
        headers = Headers()
        headers.add("Max-Forwards", "70")
        for route in routes:
            headers.add("Route", route.serialize())
        headers.add("From", f"{self.local_uri.serialize()};tag={self.local_tag}")
        to = self.remote_uri.serialize()
        headers.add("To", f"{to};tag={self.remote_tag}" if self.remote_tag else to)
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{cseq} {method}")
        if method in ("INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER") and self.local_contact:
            headers.add("Contact", self.local_contact)
        for name, value in extra or ():
            headers.add(name, value)
        if content_type and body:
            headers.add("Content-Type", content_type)
        return Request(method, request_uri, headers, body)

    def ack(
        self, invite_cseq: int, *, body: bytes = b"", content_type: str | None = None
    ) -> Request:
        """The ACK for a 2xx to the INVITE with CSeq `invite_cseq` (13.2.2.4)."""
        return self.create_request("ACK", body=body, content_type=content_type, cseq=invite_cseq)

    def _request_uri_and_routes(self) -> tuple[Uri, list[Address]]:
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0].uri
        if isinstance(first, SipUri) and first.lr:
            return self.remote_target, list(self.route_set)
        # A strict router (RFC 2543): it goes in the Request-URI, the target at the end.
        return first, [*self.route_set[1:], Address(self.remote_target)]

    def next_hop(self) -> Uri:
        """Where an in-dialog request goes: the first route, or the remote target."""
        return self.route_set[0].uri if self.route_set else self.remote_target

    # ---------------------------------------------------------- their requests

    def receive_request(self, request: Request) -> None:
        """Check an in-dialog request's CSeq and apply its target refresh (12.2.2)."""
        if request.method in ("ACK", "CANCEL"):
            return
        number = request.cseq.number
        if self.remote_seq is not None and number <= self.remote_seq:
            raise DialogError(500, f"CSeq {number} is not above {self.remote_seq}")
        self.remote_seq = number
        if request.method in ("INVITE", "UPDATE") and request.contact:
            self.remote_target = request.contact[0].uri

    def refresh_from_response(self, response: Response) -> None:
        """A 2xx to our re-INVITE may carry a new remote target (12.2.1.2)."""
        if response.contact:
            self.remote_target = response.contact[0].uri

    def matches(self, message: Request | Response, *, we_sent: bool) -> bool:
        """Whether a message belongs to this dialog; `we_sent` for responses to our requests."""
        if message.call_id != self.call_id:
            return False
        if we_sent:
            return message.from_.tag == self.local_tag and message.to.tag == self.remote_tag
        return message.to.tag == self.local_tag and message.from_.tag == self.remote_tag


def _without_tag(address: Address) -> Address:
    if "tag" not in address.params:
        return address
    from media.sip.syntax import Params

    kept = [
        (name, value) for name, value in address.params.items_in_order() if name.lower() != "tag"
    ]
    return Address(address.uri, address.display_name, Params(kept))


def _is_sips(uri: Uri) -> bool:
    return getattr(uri, "scheme", "") == "sips"


def parse_target(text: str) -> Uri:
    return parse_uri(text, "target")
