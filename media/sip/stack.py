"""What an INVITE session needs of the SIP stack: sending in and out of dialogs, our
Contact, response building, and the map from client transactions back to sessions."""

from __future__ import annotations

import logging
import socket
from functools import lru_cache
from typing import TYPE_CHECKING

from media.sip.clock import Clock, TimerSettings
from media.sip.dialog import Dialog
from media.sip.message import Request, Response
from media.sip.transport import Destination, Transport
from media.sip.uri import SipUri, Uri

if TYPE_CHECKING:
    from media.sip.session import Session
    from media.sip.transaction import ClientTransaction, TransactionLayer

log = logging.getLogger(__name__)

DEFAULT_PORT = 5060


class SipStack:
    ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"

    def __init__(
        self,
        transport: Transport,
        transactions: TransactionLayer,
        clock: Clock,
        timers: TimerSettings,
        *,
        user_agent: str = "voice-engine",
    ) -> None:
        self.transport = transport
        self.transactions = transactions
        self.clock = clock
        self.timers = timers
        self.user_agent = user_agent
        self.owners: dict[ClientTransaction, Session] = {}

    # ----------------------------------------------------------------- addressing

    def contact(self, user: str = "engine") -> str:
        return f"<sip:{user}@{self.transport.local_via_host}:{self.transport.local_via_port}>"

    def destination(self, uri: Uri) -> Destination:
        """Where a request for `uri` goes (RFC 3263 without SRV: host, port, transport)."""
        if not isinstance(uri, SipUri):
            raise ValueError(f"cannot send to {uri}: only sip: URIs are routable")
        host = uri.maddr or uri.host
        transport = (uri.transport or "udp").lower()
        port = uri.port or DEFAULT_PORT
        return Destination(transport, resolve(host.strip("[]")), port)

    # -------------------------------------------------------------------- sending

    def send_request(self, request: Request, session: Session | None) -> ClientTransaction:
        """A request out of a dialog (INVITE, CANCEL): to its Request-URI or first Route."""
        target = request.route[0].uri if request.route else request.uri
        return self._send(request, self.destination(target), session)

    def send_to(
        self, request: Request, destination: Destination, session: Session | None
    ) -> ClientTransaction:
        return self._send(request, destination, session)

    def send_in_dialog(
        self, request: Request, dialog: Dialog, session: Session | None
    ) -> ClientTransaction:
        return self._send(request, self.destination(dialog.next_hop()), session)

    def _send(
        self, request: Request, destination: Destination, session: Session | None
    ) -> ClientTransaction:
        if "User-Agent" not in request.headers:
            request.headers.add("User-Agent", self.user_agent)
        transaction = self.transactions.send_request(request, destination)
        if session is not None:
            self.owners[transaction] = session
            session.transactions.append(transaction)
        return transaction

    def send_ack(self, ack: Request, dialog: Dialog) -> None:
        """The ACK for a 2xx is sent by the UA core, outside any transaction (13.2.2.4)."""
        try:
            self.transactions.send_ack(ack, self.destination(dialog.next_hop()))
        except OSError as error:
            log.warning("ACK for %s not sent: %s", dialog.call_id, error)

    def response_to(self, request: Request, status: int, *, to_tag: str | None = None) -> Response:
        response = request.make_response(status, to_tag=to_tag)
        response.headers.add("Server", self.user_agent)
        return response

    def forget(self, transaction: ClientTransaction) -> Session | None:
        return self.owners.pop(transaction, None)

    def forget_session(self, session: Session) -> None:
        for transaction in session.transactions:
            self.owners.pop(transaction, None)
        session.transactions.clear()


@lru_cache(maxsize=256)
def resolve(host: str) -> str:
    """A host's first address (literal addresses pass through)."""
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        return host
    except OSError:
        pass
    return socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)[0][4][0]
