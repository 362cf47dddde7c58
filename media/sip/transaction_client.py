"""Client transactions (RFC 3261 17.1): the INVITE machine of 17.1.1 with the Accepted
state of RFC 6026 (section 7.2), and the non-INVITE machine of 17.1.2. Also the two
requests a UAC builds from its INVITE's own headers: the ACK for a non-2xx final response
(17.1.1.3) and CANCEL (9.1).

Each state is a small class; a transition is ``tx.become(NextState)``, which runs the new
state's ``enter()``, where its timers are armed under their RFC names (``tx.timer_a`` ...).
The clock calls the transaction's ``_timer_x`` method, which hands the event to whatever
state is current, so a timer that outlives its state does nothing.

::

    Calling --1xx--> Proceeding --300-699--> Completed --Timer D--> Terminated
       |                 |--2xx--> Accepted --Timer M--> Terminated
       +--Timer B / transport error--> Terminated

    Trying --1xx--> Proceeding --200-699--> Completed --Timer K--> Terminated
       +--Timer F / transport error--> Terminated (from Proceeding too)
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from media.sip.headers import Headers
from media.sip.message import Request, Response
from media.sip.transport import Destination, Source

if TYPE_CHECKING:
    from media.sip.clock import TimerHandle
    from media.sip.transaction import TransactionLayer

__all__ = [
    "ClientCompleted",
    "ClientInviteAccepted",
    "ClientInviteCalling",
    "ClientInviteCompleted",
    "ClientInviteProceeding",
    "ClientProceeding",
    "ClientState",
    "ClientTerminated",
    "ClientTransaction",
    "ClientTrying",
    "InviteClientTransaction",
    "NonInviteClientTransaction",
    "make_ack",
    "make_cancel",
]

log = logging.getLogger(__name__)

_TIMERS = ("timer_a", "timer_b", "timer_d", "timer_e", "timer_f", "timer_k", "timer_m")


class ClientTransaction:
    """The client side of one transaction: sends the request, retransmits it over UDP,
    matches its responses and passes them to the TU.

    ``provisional_received`` tells the TU when it may send a CANCEL (RFC 3261 9.1);
    ``final_response`` is the first final response. ``udp_fallback`` is where to resend
    the request over UDP if the TCP connection that RFC 3261 18.1.1 chose for a large
    request cannot be made.
    """

    __slots__ = (
        "branch",
        "data",
        "destination",
        "final_response",
        "interval",
        "key",
        "layer",
        "provisional_received",
        "reliable",
        "request",
        "state",
        "timer_a",
        "timer_b",
        "timer_d",
        "timer_e",
        "timer_f",
        "timer_k",
        "timer_m",
        "udp_fallback",
    )

    initial_state: ClassVar[type[ClientState]]

    def __init__(
        self,
        layer: TransactionLayer,
        request: Request,
        destination: Destination,
        data: bytes,
        udp_fallback: Destination | None = None,
    ) -> None:
        self.layer = layer
        self.request = request
        self.destination = destination
        self.data = data
        self.udp_fallback = udp_fallback
        branch = request.top_via.branch
        assert branch is not None
        self.branch = branch
        self.key = (branch, request.method)
        self.reliable = destination.reliable
        self.provisional_received = False
        self.final_response: Response | None = None
        self.interval = 0.0
        self.timer_a: TimerHandle | None = None
        self.timer_b: TimerHandle | None = None
        self.timer_d: TimerHandle | None = None
        self.timer_e: TimerHandle | None = None
        self.timer_f: TimerHandle | None = None
        self.timer_k: TimerHandle | None = None
        self.timer_m: TimerHandle | None = None
        self.state: ClientState = ClientState(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.request.method} {self.branch} {self.state.name}>"

    @property
    def terminated(self) -> bool:
        return isinstance(self.state, ClientTerminated)

    # -- driven by the transaction layer ------------------------------------------

    def start(self) -> None:
        self.become(self.initial_state)

    def receive_response(self, response: Response, source: Source) -> None:
        self.state.on_response(response, source)

    def transport_failed(self, error: OSError) -> None:
        """The request (or the ACK) could not be sent: RFC 3261 8.1.3.1 and 17.1.4."""
        if self.terminated:
            return
        if self.udp_fallback is not None and self.state.initial:
            self._fall_back_to_udp(error)
            return
        log.info(
            "%s %s to %s:%s failed: %s (call %s)",
            self.request.method,
            self.branch,
            self.destination.host,
            self.destination.port,
            error,
            self.request.call_id,
        )
        self.become(ClientTerminated)
        self.layer.user.transport_error(self, error)

    def terminate(self) -> None:
        """End the transaction now, without telling the TU. RFC 3261 gives an INVITE in
        Proceeding no timeout: the TU calls this when it gives up, e.g. 64*T1 after a
        CANCEL that brought no final response (9.1)."""
        if not self.terminated:
            self.become(ClientTerminated)

    # -- used by the states ---------------------------------------------------------

    def become(self, state_class: type[ClientState]) -> None:
        state = state_class(self)
        self.state = state
        state.enter()

    def transmit(self) -> bool:
        """Send (or resend) the request; False when that failed and the transaction is over."""
        return self.send(self.data)

    def send(self, data: bytes) -> bool:
        try:
            self.layer.transport.send(data, self.destination, self.transport_failed)
        except OSError as error:
            self.transport_failed(error)
            return False
        return True

    def stop_timers(self) -> None:
        for name in _TIMERS:
            handle = getattr(self, name)
            if handle is not None:
                handle.cancel()
                setattr(self, name, None)

    def _fall_back_to_udp(self, error: OSError) -> None:
        """RFC 3261 18.1.1: TCP, chosen only for size, failed; send over UDP instead."""
        destination = self.udp_fallback
        assert destination is not None
        log.info(
            "%s over TCP to %s:%s failed (%s); retrying over UDP (call %s)",
            self.request.method,
            destination.host,
            destination.port,
            error,
            self.request.call_id,
        )
        self.udp_fallback = None
        self.stop_timers()
        headers = self.request.headers
        via = self.request.top_via
        headers.pop_first_value("Via")
        headers.add("Via", replace(via, transport="UDP").serialize(), first=True)
        self.data = self.request.serialize()
        self.destination = destination
        self.reliable = False
        self.become(self.initial_state)

    def _timer_a(self) -> None:
        self.timer_a = None
        self.state.on_timer_a()

    def _timer_b(self) -> None:
        self.timer_b = None
        self.state.on_timer_b()

    def _timer_d(self) -> None:
        self.timer_d = None
        self.state.on_timer_d()

    def _timer_e(self) -> None:
        self.timer_e = None
        self.state.on_timer_e()

    def _timer_f(self) -> None:
        self.timer_f = None
        self.state.on_timer_f()

    def _timer_k(self) -> None:
        self.timer_k = None
        self.state.on_timer_k()

    def _timer_m(self) -> None:
        self.timer_m = None
        self.state.on_timer_m()


class ClientState:
    """A state of a client transaction. Events a state does not list are ignored: a
    response it does not expect is absorbed, and a timer it does not own is stale."""

    __slots__ = ("tx",)

    name: ClassVar[str] = "Created"
    initial: ClassVar[bool] = False
    """True for Calling and Trying, where a failed TCP attempt may fall back to UDP."""

    def __init__(self, tx: ClientTransaction) -> None:
        self.tx = tx

    def __repr__(self) -> str:
        return f"<{self.name}>"

    def enter(self) -> None:
        pass

    def on_response(self, response: Response, source: Source) -> None:
        pass

    def on_timer_a(self) -> None:
        pass

    def on_timer_b(self) -> None:
        pass

    def on_timer_d(self) -> None:
        pass

    def on_timer_e(self) -> None:
        pass

    def on_timer_f(self) -> None:
        pass

    def on_timer_k(self) -> None:
        pass

    def on_timer_m(self) -> None:
        pass


# -- INVITE client transaction (RFC 3261 17.1.1, RFC 6026 7.2) ---------------------------


class ClientInviteCalling(ClientState):
    __slots__ = ()
    name = "Calling"
    initial = True

    def enter(self) -> None:
        tx = self.tx
        if not tx.transmit():
            return
        layer = tx.layer
        if not tx.reliable:
            tx.interval = layer.timers.timer_a
            tx.timer_a = layer.clock.call_later(tx.interval, tx._timer_a)
        tx.timer_b = layer.clock.call_later(layer.timers.timer_b, tx._timer_b)

    def on_timer_a(self) -> None:
        tx = self.tx
        if not tx.transmit():
            return
        tx.interval *= 2
        tx.timer_a = tx.layer.clock.call_later(tx.interval, tx._timer_a)

    def on_timer_b(self) -> None:
        tx = self.tx
        tx.become(ClientTerminated)
        tx.layer.user.transaction_timed_out(tx)

    def on_response(self, response: Response, source: Source) -> None:
        _invite_response(self.tx, response, source)


class ClientInviteProceeding(ClientState):
    """A provisional response arrived: no more retransmissions, and no timeout either
    (RFC 3261 leaves that to the TU: a UAC CANCELs, a proxy runs Timer C)."""

    __slots__ = ()
    name = "Proceeding"

    def enter(self) -> None:
        self.tx.stop_timers()

    def on_response(self, response: Response, source: Source) -> None:
        _invite_response(self.tx, response, source)


def _invite_response(tx: ClientTransaction, response: Response, source: Source) -> None:
    """A response to the INVITE in Calling or Proceeding."""
    status = response.status
    if status < 200:
        tx.provisional_received = True
        if not isinstance(tx.state, ClientInviteProceeding):
            tx.become(ClientInviteProceeding)
    else:
        tx.final_response = response
        tx.become(ClientInviteAccepted if status < 300 else ClientInviteCompleted)
    tx.layer.user.response_received(tx, response, source)


class ClientInviteCompleted(ClientState):
    """A 300-699 arrived: ACK it here, and ACK its retransmissions until Timer D."""

    __slots__ = ("ack",)
    name = "Completed"

    def __init__(self, tx: ClientTransaction) -> None:
        super().__init__(tx)
        self.ack = b""

    def enter(self) -> None:
        tx = self.tx
        tx.stop_timers()
        assert tx.final_response is not None
        self.ack = make_ack(tx.request, tx.final_response).serialize()
        if not tx.send(self.ack):
            return
        delay = tx.layer.timers.timer_d(tx.reliable)
        if delay:
            tx.timer_d = tx.layer.clock.call_later(delay, tx._timer_d)
        else:
            tx.become(ClientTerminated)

    def on_response(self, response: Response, source: Source) -> None:
        if response.status >= 300:
            self.tx.send(self.ack)

    def on_timer_d(self) -> None:
        self.tx.become(ClientTerminated)


class ClientInviteAccepted(ClientState):
    """RFC 6026: a 2xx arrived; its retransmissions, and 2xx from other forks, go to the
    TU (which ACKs each) until Timer M."""

    __slots__ = ()
    name = "Accepted"

    def enter(self) -> None:
        tx = self.tx
        tx.stop_timers()
        tx.timer_m = tx.layer.clock.call_later(tx.layer.timers.timer_m, tx._timer_m)

    def on_response(self, response: Response, source: Source) -> None:
        if 200 <= response.status < 300:
            self.tx.layer.user.response_received(self.tx, response, source)

    def on_timer_m(self) -> None:
        self.tx.become(ClientTerminated)


# -- non-INVITE client transaction (RFC 3261 17.1.2) ------------------------------------


class ClientTrying(ClientState):
    __slots__ = ()
    name = "Trying"
    initial = True

    def enter(self) -> None:
        tx = self.tx
        if not tx.transmit():
            return
        layer = tx.layer
        if not tx.reliable:
            tx.interval = layer.timers.timer_e
            tx.timer_e = layer.clock.call_later(tx.interval, tx._timer_e)
        tx.timer_f = layer.clock.call_later(layer.timers.timer_f, tx._timer_f)

    def on_timer_e(self) -> None:
        tx = self.tx
        if not tx.transmit():
            return
        tx.interval = min(2 * tx.interval, tx.layer.timers.t2)
        tx.timer_e = tx.layer.clock.call_later(tx.interval, tx._timer_e)

    def on_timer_f(self) -> None:
        _non_invite_timed_out(self.tx)

    def on_response(self, response: Response, source: Source) -> None:
        tx = self.tx
        if response.status < 200:
            tx.provisional_received = True
            tx.become(ClientProceeding)
        else:
            tx.final_response = response
            tx.become(ClientCompleted)
        tx.layer.user.response_received(tx, response, source)


class ClientProceeding(ClientState):
    """A provisional response arrived: Timer E keeps running but fires every T2."""

    __slots__ = ()
    name = "Proceeding"

    def on_timer_e(self) -> None:
        tx = self.tx
        if not tx.transmit():
            return
        tx.interval = tx.layer.timers.t2
        tx.timer_e = tx.layer.clock.call_later(tx.interval, tx._timer_e)

    def on_timer_f(self) -> None:
        _non_invite_timed_out(self.tx)

    def on_response(self, response: Response, source: Source) -> None:
        tx = self.tx
        if response.status >= 200:
            tx.final_response = response
            tx.become(ClientCompleted)
        tx.layer.user.response_received(tx, response, source)


def _non_invite_timed_out(tx: ClientTransaction) -> None:
    tx.become(ClientTerminated)
    tx.layer.user.transaction_timed_out(tx)


class ClientCompleted(ClientState):
    """A final response arrived: absorb its retransmissions until Timer K."""

    __slots__ = ()
    name = "Completed"

    def enter(self) -> None:
        tx = self.tx
        tx.stop_timers()
        delay = tx.layer.timers.timer_k(tx.reliable)
        if delay:
            tx.timer_k = tx.layer.clock.call_later(delay, tx._timer_k)
        else:
            tx.become(ClientTerminated)

    def on_timer_k(self) -> None:
        self.tx.become(ClientTerminated)


class ClientTerminated(ClientState):
    __slots__ = ()
    name = "Terminated"

    def enter(self) -> None:
        self.tx.stop_timers()
        self.tx.layer.forget(self.tx)


class InviteClientTransaction(ClientTransaction):
    __slots__ = ()
    initial_state = ClientInviteCalling


class NonInviteClientTransaction(ClientTransaction):
    __slots__ = ()
    initial_state = ClientTrying


# -- requests built from the INVITE ------------------------------------------------------


def make_ack(invite: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response (RFC 3261 17.1.1.3): the INVITE's
    Request-URI, top Via (same branch), From, Call-ID, CSeq number and Route, and the
    response's To (with its tag)."""
    return _same_branch_request(invite, "ACK", response.headers.get("To") or "")


def make_cancel(invite: Request) -> Request:
    """A CANCEL for ``invite`` (RFC 3261 9.1): its Request-URI, top Via (same branch),
    From, To, Call-ID, CSeq number and Route."""
    return _same_branch_request(invite, "CANCEL", invite.headers.get("To") or "")


def _same_branch_request(invite: Request, method: str, to: str) -> Request:
    source = invite.headers
    headers = Headers()
    headers.add("Via", invite.top_via.serialize())
    headers.add("Max-Forwards", "70")
    headers.add("From", source.get("From") or "")
    headers.add("To", to)
    headers.add("Call-ID", source.get("Call-ID") or "")
    headers.add("CSeq", f"{invite.cseq.number} {method}")
    for route in source.get_all("Route"):
        headers.add("Route", route)
    return Request(method, invite.uri_text, headers)
