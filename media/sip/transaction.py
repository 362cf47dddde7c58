"""The SIP transaction layer (RFC 3261 section 17, updated by RFC 6026): between the
transport and the transaction user (TU: the dialog layer and UA core).

``TransactionLayer.receive`` is the transport's receiver. It matches each response to
its client transaction (17.1.3: top Via branch and CSeq method) and each request to its
server transaction (17.2.3: branch, sent-by and method, an ACK matching its INVITE; the
RFC 2543 rules when the branch lacks the ``z9hG4bK`` cookie), and passes what is new to
the TU. What matches nothing:

- an ACK (for a 2xx, which is not part of the INVITE transaction) goes to the TU with
  ``transaction=None``;
- a CANCEL matching no INVITE is answered 481 here (RFC 3261 9.2) and reported to the
  TU with ``transaction=None``;
- a 2xx to an INVITE whose transaction is gone goes to the TU with ``transaction=None``
  (the dialog layer ACKs it again); other stray responses are dropped.

The state machines are in ``transaction_client`` (17.1) and ``transaction_server``
(17.2); the clock and timer values in ``clock``. Nothing here creates tasks: timers are
clock callbacks, cancelled as soon as a state no longer needs them.

::

    layer = TransactionLayer(transport, LoopClock(loop), TimerSettings(t1=0.5), user)
    tx = layer.send_request(invite, Destination("udp", "192.0.2.10", 5060))
    ...
    if tx.provisional_received:
        layer.send_request(layer.cancel_request(tx), tx.destination)
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from typing import Protocol

from media.sip.clock import Clock, TimerSettings
from media.sip.message import Request, Response
from media.sip.transaction_client import (
    ClientTransaction,
    InviteClientTransaction,
    NonInviteClientTransaction,
    make_cancel,
)
from media.sip.transaction_server import (
    InviteServerTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
)
from media.sip.transport import (
    DEFAULT_PORT,
    UDP_REQUEST_LIMIT,
    Destination,
    MessageSender,
    Source,
)
from media.sip.uri import host_key
from media.sip.via import MAGIC_COOKIE, Via

__all__ = [
    "ClientTransaction",
    "ServerTransaction",
    "Transaction",
    "TransactionLayer",
    "TransactionUser",
]

log = logging.getLogger(__name__)

Transaction = ClientTransaction | ServerTransaction

_RFC2543 = "rfc2543"
"""First element of the key of a server transaction matched by RFC 2543 rules."""


class TransactionUser(Protocol):
    """What the transaction layer reports to the layer above it."""

    def request_received(
        self, transaction: ServerTransaction | None, request: Request, source: Source
    ) -> None:
        """A new request, with the server transaction to answer it on. ``transaction`` is
        None for an ACK to a 2xx and for a CANCEL that matched no INVITE (already
        answered 481). A CANCEL's transaction has ``cancelled``: the INVITE server
        transaction, on which the TU sends 487 if it is still Proceeding."""

    def response_received(
        self, transaction: ClientTransaction | None, response: Response, source: Source
    ) -> None:
        """A response (not a retransmission the transaction absorbed). ``transaction``
        is None for a 2xx to an INVITE whose transaction is gone."""

    def transaction_timed_out(self, transaction: Transaction) -> None:
        """Timer B or F (no final response: the TU acts as if a 408 arrived) or Timer H
        (no ACK for a non-2xx final response)."""

    def transport_error(self, transaction: Transaction, error: OSError) -> None:
        """A message of the transaction could not be sent; the transaction is over."""


class TransactionLayer:
    """The client and server transactions of one transport, keyed for matching.

    ``trying_delay`` is when the server INVITE transaction sends 100 Trying: 0 (default)
    right after the TU has seen the INVITE, unless it already answered; or a delay, such
    as the 0.2 s of RFC 3261 17.2.1, after which it is sent if the TU has not answered.
    """

    def __init__(
        self,
        transport: MessageSender,
        clock: Clock,
        timers: TimerSettings,
        user: TransactionUser,
        *,
        trying_delay: float = 0.0,
    ) -> None:
        self.transport = transport
        self.clock = clock
        self.timers = timers
        self.user = user
        self.trying_delay = trying_delay
        self._clients: dict[tuple[str, str], ClientTransaction] = {}
        self._servers: dict[tuple[object, ...], ServerTransaction] = {}

    @property
    def active_transactions(self) -> int:
        """Client and server transactions not yet terminated."""
        return len(self._clients) + len(self._servers)

    def new_branch(self) -> str:
        """A branch unique in space and time, with the RFC 3261 magic cookie (8.1.1.7)."""
        return MAGIC_COOKIE + secrets.token_hex(10)

    def via(self, transport: str, branch: str) -> str:
        """Our Via value for a request sent over ``transport`` (with RFC 3581 rport)."""
        sender = self.transport
        return (
            f"SIP/2.0/{transport.upper()} {sender.local_via_host}:{sender.local_via_port}"
            f";branch={branch};rport"
        )

    # -- sending --------------------------------------------------------------------

    def send_request(self, request: Request, destination: Destination) -> ClientTransaction:
        """Start a client transaction for ``request`` (any method but ACK).

        A request without Via gets ours with a new branch; one with a Via must carry an
        RFC 3261 branch. A request over 1300 bytes bound for UDP goes over TCP when the
        transport has it (RFC 3261 18.1.1), and back over UDP if the connection fails.
        A transport error on the first send is reported to the TU before this returns.
        """
        method = request.method
        if method == "ACK":
            raise ValueError("an ACK is not a transaction: send it with send_ack()")
        headers = request.headers
        if "Via" not in headers:
            headers.add("Via", self.via(destination.transport, self.new_branch()), first=True)
        via = request.top_via
        branch = via.rfc3261_branch
        if branch is None:
            raise ValueError(f"the top Via of the {method} has no RFC 3261 branch: {via}")
        key = (branch, method)
        if key in self._clients:
            raise ValueError(f"a {method} client transaction with branch {branch} is running")
        data = request.serialize()
        fallback = None
        if (
            destination.transport == "udp"
            and len(data) > UDP_REQUEST_LIMIT
            and self.transport.supports("tcp")
        ):
            fallback = destination
            destination = Destination("tcp", destination.host, destination.port)
            headers.pop_first_value("Via")
            headers.add("Via", replace(via, transport="TCP").serialize(), first=True)
            data = request.serialize()
        kind = InviteClientTransaction if method == "INVITE" else NonInviteClientTransaction
        transaction = kind(self, request, destination, data, fallback)
        self._clients[key] = transaction
        transaction.start()
        return transaction

    def send_ack(self, ack: Request, destination: Destination) -> None:
        """Send an ACK for a 2xx (its own transaction of one message, RFC 3261 13.2.2.4),
        adding our Via with a new branch when it has none. Raises OSError on failure."""
        if "Via" not in ack.headers:
            ack.headers.add("Via", self.via(destination.transport, self.new_branch()), first=True)
        self.transport.send(ack.serialize(), destination)

    def cancel_request(self, invite: ClientTransaction) -> Request:
        """The CANCEL for a client INVITE transaction (RFC 3261 9.1), for the TU to send
        with ``send_request(cancel, invite.destination)`` once
        ``invite.provisional_received`` is true."""
        if invite.request.method != "INVITE":
            raise ValueError(f"only an INVITE can be cancelled, not a {invite.request.method}")
        return make_cancel(invite.request)

    # -- receiving ------------------------------------------------------------------

    def receive(self, message: Request | Response, source: Source) -> None:
        """The transport's receiver: match ``message`` and pass it on."""
        if isinstance(message, Response):
            self._receive_response(message, source)
        else:
            self._receive_request(message, source)

    def _receive_response(self, response: Response, source: Source) -> None:
        via = response.top_via
        method = response.cseq.method
        transaction = self._clients.get((via.branch or "", method))
        if transaction is not None:
            transaction.receive_response(response, source)
        elif 200 <= response.status < 300 and method == "INVITE" and self._sent_by_us(via):
            self.user.response_received(None, response, source)
        else:
            log.debug("stray %s to %s dropped (call %s)", response.status, method, response.call_id)

    def _sent_by_us(self, via: Via) -> bool:
        """RFC 3261 18.1.2: a response whose top Via we did not write is not ours."""
        sender = self.transport
        return (
            host_key(via.host) == host_key(sender.local_via_host)
            and (via.port or DEFAULT_PORT) == sender.local_via_port
        )

    def _receive_request(self, request: Request, source: Source) -> None:
        method = request.method
        if method == "ACK":
            self._receive_ack(request, source)
            return
        key = _server_key(request, method)
        transaction = self._servers.get(key)
        if transaction is not None:
            transaction.receive_request(request, source)
            return
        if method == "CANCEL":
            self._receive_cancel(request, source, key)
            return
        if method == "INVITE":
            invite = InviteServerTransaction(self, request, source, key)
            self._servers[key] = invite
            invite.start()
            self.user.request_received(invite, request, source)
            if self.trying_delay <= 0:
                invite.trying_due()
            return
        transaction = NonInviteServerTransaction(self, request, source, key)
        self._servers[key] = transaction
        transaction.start()
        self.user.request_received(transaction, request, source)

    def _receive_ack(self, ack: Request, source: Source) -> None:
        """An ACK belongs to the INVITE server transaction it matches when that sent a
        non-2xx final response; any other ACK goes to the TU."""
        key = _server_key(ack, "INVITE")
        invite = self._servers.get(key)
        if invite is None and key[0] == _RFC2543:
            # The INVITE of a new dialog had no To tag; its ACK has the response's.
            invite = self._servers.get((*key[:3], None, *key[4:]))
        if invite is not None and key[0] == _RFC2543:
            sent = invite.last_response
            if sent is None or sent.to.tag != ack.to.tag:
                invite = None
        if invite is None:
            self.user.request_received(None, ack, source)
        else:
            invite.receive_ack(ack, source)

    def _receive_cancel(self, cancel: Request, source: Source, key: tuple[object, ...]) -> None:
        invite = self._servers.get((*key[:-1], "INVITE"))
        transaction = NonInviteServerTransaction(self, cancel, source, key, cancelled=invite)
        self._servers[key] = transaction
        transaction.start()
        if invite is None:
            to_tag = None if cancel.to.tag else secrets.token_hex(6)
            transaction.respond(cancel.make_response(481, to_tag=to_tag))
            self.user.request_received(None, cancel, source)
        else:
            self.user.request_received(transaction, cancel, source)

    def forget(self, transaction: Transaction) -> None:
        """Drop a terminated transaction from the matching tables."""
        if isinstance(transaction, ClientTransaction):
            if self._clients.get(transaction.key) is transaction:
                del self._clients[transaction.key]
        elif self._servers.get(transaction.key) is transaction:
            del self._servers[transaction.key]


def _server_key(request: Request, method: str) -> tuple[object, ...]:
    """The key matching a request to its server transaction (RFC 3261 17.2.3); ``method``
    is the request's, or INVITE for an ACK or for the INVITE a CANCEL targets. The method
    is always last."""
    via = request.top_via
    branch = via.rfc3261_branch
    if branch is not None:
        return (branch, via.host.lower(), via.port, method)
    # RFC 2543: Request-URI, tags, Call-ID, CSeq number and top Via (the To tag sits at
    # index 3 so that an ACK can also look for the INVITE's missing one).
    return (
        _RFC2543,
        request.call_id,
        request.from_.tag,
        request.to.tag,
        request.cseq.number,
        via,
        request.uri,
        method,
    )
