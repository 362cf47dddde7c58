"""Server transactions (RFC 3261 17.2): the INVITE machine of 17.2.1 with the Accepted
state of RFC 6026 (section 7.1), and the non-INVITE machine of 17.2.2.

The TU answers through ``ServerTransaction.respond()``; the transaction sends each
response to where RFC 3261 18.2.2 / RFC 3581 say (``response_destination``), resends the
last one when the request is retransmitted, retransmits a non-2xx final INVITE response
until its ACK (Timer G), and keeps absorbing retransmissions for as long as the RFC says.
States and timers follow the same pattern as ``transaction_client``.

::

    Proceeding --300-699--> Completed --ACK--> Confirmed --Timer I--> Terminated
       |                       +--Timer H (no ACK) / transport error--> Terminated
       +--2xx--> Accepted --Timer L--> Terminated

    Trying --1xx--> Proceeding --200-699--> Completed --Timer J--> Terminated
       +--200-699--> Completed
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar

from media.sip.message import Request, Response
from media.sip.transport import Source, response_destination

if TYPE_CHECKING:
    from media.sip.clock import TimerHandle
    from media.sip.transaction import TransactionLayer

__all__ = [
    "InviteServerTransaction",
    "NonInviteServerTransaction",
    "ServerCompleted",
    "ServerInviteAccepted",
    "ServerInviteCompleted",
    "ServerInviteConfirmed",
    "ServerInviteProceeding",
    "ServerProceeding",
    "ServerState",
    "ServerTerminated",
    "ServerTransaction",
    "ServerTrying",
]

log = logging.getLogger(__name__)

_TIMERS = ("timer_g", "timer_h", "timer_i", "timer_j", "timer_l", "timer_trying")


class ServerTransaction:
    """The server side of one transaction, created by the transaction layer for each new
    request. ``respond()`` is how the TU answers; ``last_response`` is the last response
    sent; ``destination`` is where responses go (the TU also sends its own 2xx
    retransmissions there once the transaction is gone). For a CANCEL, ``cancelled`` is
    the INVITE server transaction it matches (None when it matched none)."""

    __slots__ = (
        "cancelled",
        "data",
        "destination",
        "interval",
        "key",
        "last_response",
        "layer",
        "reliable",
        "request",
        "source",
        "state",
        "timer_g",
        "timer_h",
        "timer_i",
        "timer_j",
        "timer_l",
        "timer_trying",
    )

    initial_state: ClassVar[type[ServerState]]

    def __init__(
        self,
        layer: TransactionLayer,
        request: Request,
        source: Source,
        key: tuple[object, ...],
        cancelled: ServerTransaction | None = None,
    ) -> None:
        self.layer = layer
        self.request = request
        self.source = source
        self.key = key
        self.cancelled = cancelled
        self.destination = response_destination(request.top_via, source)
        self.reliable = source.reliable
        self.last_response: Response | None = None
        self.data = b""
        self.interval = 0.0
        self.timer_g: TimerHandle | None = None
        self.timer_h: TimerHandle | None = None
        self.timer_i: TimerHandle | None = None
        self.timer_j: TimerHandle | None = None
        self.timer_l: TimerHandle | None = None
        self.timer_trying: TimerHandle | None = None
        self.state: ServerState = ServerState(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.request.method} {self.key[0]} {self.state.name}>"

    @property
    def terminated(self) -> bool:
        return isinstance(self.state, ServerTerminated)

    def respond(self, response: Response) -> bool:
        """Send a response from the TU. False when the state discards it (a second final
        response, a non-2xx after a 2xx, anything after Terminated) or sending failed."""
        return self.state.respond(response)

    # -- driven by the transaction layer ------------------------------------------

    def start(self) -> None:
        self.become(self.initial_state)

    def receive_request(self, request: Request, source: Source) -> None:
        """A retransmission of the request (not an ACK)."""
        self.state.on_request(request)

    def receive_ack(self, ack: Request, source: Source) -> None:
        self.state.on_ack(ack, source)

    def trying_due(self) -> None:
        """The moment to send 100 Trying if the TU has not answered (RFC 3261 17.2.1)."""
        self.state.on_timer_trying()

    def transport_failed(self, error: OSError) -> None:
        """A response could not be sent (RFC 3261 17.2.4): inform the TU and end."""
        if self.terminated:
            return
        log.info(
            "response to %s from %s:%s could not be sent: %s (call %s)",
            self.request.method,
            self.source.host,
            self.source.port,
            error,
            self.request.call_id,
        )
        self.become(ServerTerminated)
        self.layer.user.transport_error(self, error)

    # -- used by the states ---------------------------------------------------------

    def become(self, state_class: type[ServerState]) -> None:
        state = state_class(self)
        self.state = state
        state.enter()

    def send_response(self, response: Response) -> bool:
        """Send a new response and remember it for retransmissions."""
        self.last_response = response
        self.data = response.serialize()
        return self.retransmit()

    def retransmit(self) -> bool:
        """Resend the last response; False when that failed and the transaction is over."""
        try:
            self.layer.transport.send(self.data, self.destination, self.transport_failed)
        except OSError as error:
            self.transport_failed(error)
            return False
        return True

    def discard(self, response: Response) -> bool:
        log.warning(
            "%s %s to %s discarded: the transaction is %s (call %s)",
            response.status,
            response.reason,
            self.request.method,
            self.state.name,
            self.request.call_id,
        )
        return False

    def stop_timers(self) -> None:
        for name in _TIMERS:
            handle = getattr(self, name)
            if handle is not None:
                handle.cancel()
                setattr(self, name, None)

    def _timer_g(self) -> None:
        self.timer_g = None
        self.state.on_timer_g()

    def _timer_h(self) -> None:
        self.timer_h = None
        self.state.on_timer_h()

    def _timer_i(self) -> None:
        self.timer_i = None
        self.state.on_timer_i()

    def _timer_j(self) -> None:
        self.timer_j = None
        self.state.on_timer_j()

    def _timer_l(self) -> None:
        self.timer_l = None
        self.state.on_timer_l()

    def _timer_trying(self) -> None:
        self.timer_trying = None
        self.state.on_timer_trying()


class ServerState:
    """A state of a server transaction. Requests and timers a state does not list are
    absorbed; responses it does not accept are discarded (and logged)."""

    __slots__ = ("tx",)

    name: ClassVar[str] = "Created"

    def __init__(self, tx: ServerTransaction) -> None:
        self.tx = tx

    def __repr__(self) -> str:
        return f"<{self.name}>"

    def enter(self) -> None:
        pass

    def respond(self, response: Response) -> bool:
        return self.tx.discard(response)

    def on_request(self, request: Request) -> None:
        pass

    def on_ack(self, ack: Request, source: Source) -> None:
        pass

    def on_timer_g(self) -> None:
        pass

    def on_timer_h(self) -> None:
        pass

    def on_timer_i(self) -> None:
        pass

    def on_timer_j(self) -> None:
        pass

    def on_timer_l(self) -> None:
        pass

    def on_timer_trying(self) -> None:
        pass


# -- INVITE server transaction (RFC 3261 17.2.1, RFC 6026 7.1) ---------------------------


class ServerInviteProceeding(ServerState):
    """The INVITE is with the TU. 100 Trying goes out when the layer says it is due: at
    once, or ``trying_delay`` later (timer_trying) unless the TU answered by then."""

    __slots__ = ()
    name = "Proceeding"

    def enter(self) -> None:
        tx = self.tx
        delay = tx.layer.trying_delay
        if delay > 0:
            tx.timer_trying = tx.layer.clock.call_later(delay, tx._timer_trying)

    def on_timer_trying(self) -> None:
        tx = self.tx
        if tx.last_response is None:
            tx.send_response(tx.request.make_response(100))

    def on_request(self, request: Request) -> None:
        tx = self.tx
        if tx.last_response is None:  # a retransmission: the 100 is due now
            if tx.timer_trying is not None:
                tx.timer_trying.cancel()
                tx.timer_trying = None
            self.on_timer_trying()
        else:
            tx.retransmit()

    def respond(self, response: Response) -> bool:
        tx = self.tx
        if tx.timer_trying is not None:
            tx.timer_trying.cancel()
            tx.timer_trying = None
        if not tx.send_response(response):
            return False
        if response.status >= 300:
            tx.become(ServerInviteCompleted)
        elif response.status >= 200:
            tx.become(ServerInviteAccepted)
        return True


class ServerInviteCompleted(ServerState):
    """A non-2xx final response went out: retransmit it (Timer G) until the ACK, or give
    up at Timer H."""

    __slots__ = ()
    name = "Completed"

    def enter(self) -> None:
        tx = self.tx
        layer = tx.layer
        if not tx.reliable:
            tx.interval = layer.timers.timer_g
            tx.timer_g = layer.clock.call_later(tx.interval, tx._timer_g)
        tx.timer_h = layer.clock.call_later(layer.timers.timer_h, tx._timer_h)

    def on_timer_g(self) -> None:
        tx = self.tx
        if not tx.retransmit():
            return
        tx.interval = min(2 * tx.interval, tx.layer.timers.t2)
        tx.timer_g = tx.layer.clock.call_later(tx.interval, tx._timer_g)

    def on_timer_h(self) -> None:
        tx = self.tx
        tx.become(ServerTerminated)
        tx.layer.user.transaction_timed_out(tx)

    def on_request(self, request: Request) -> None:
        self.tx.retransmit()

    def on_ack(self, ack: Request, source: Source) -> None:
        self.tx.become(ServerInviteConfirmed)


class ServerInviteConfirmed(ServerState):
    """The ACK arrived: absorb its retransmissions until Timer I."""

    __slots__ = ()
    name = "Confirmed"

    def enter(self) -> None:
        tx = self.tx
        tx.stop_timers()
        delay = tx.layer.timers.timer_i(tx.reliable)
        if delay:
            tx.timer_i = tx.layer.clock.call_later(delay, tx._timer_i)
        else:
            tx.become(ServerTerminated)

    def on_timer_i(self) -> None:
        self.tx.become(ServerTerminated)


class ServerInviteAccepted(ServerState):
    """RFC 6026: a 2xx went out. The TU retransmits it (through ``respond``) until the
    ACK, which is not part of the transaction and goes to the TU; INVITE retransmissions
    are absorbed until Timer L."""

    __slots__ = ()
    name = "Accepted"

    def enter(self) -> None:
        tx = self.tx
        tx.stop_timers()
        tx.timer_l = tx.layer.clock.call_later(tx.layer.timers.timer_l, tx._timer_l)

    def respond(self, response: Response) -> bool:
        if not 200 <= response.status < 300:
            return self.tx.discard(response)
        return self.tx.send_response(response)

    def on_ack(self, ack: Request, source: Source) -> None:
        self.tx.layer.user.request_received(None, ack, source)

    def on_timer_l(self) -> None:
        self.tx.become(ServerTerminated)


# -- non-INVITE server transaction (RFC 3261 17.2.2) ------------------------------------


class ServerTrying(ServerState):
    """The request is with the TU; retransmissions are absorbed."""

    __slots__ = ()
    name = "Trying"

    def respond(self, response: Response) -> bool:
        tx = self.tx
        if not tx.send_response(response):
            return False
        tx.become(ServerProceeding if response.status < 200 else ServerCompleted)
        return True


class ServerProceeding(ServerState):
    __slots__ = ()
    name = "Proceeding"

    def respond(self, response: Response) -> bool:
        tx = self.tx
        if not tx.send_response(response):
            return False
        if response.status >= 200:
            tx.become(ServerCompleted)
        return True

    def on_request(self, request: Request) -> None:
        self.tx.retransmit()


class ServerCompleted(ServerState):
    """The final response went out: resend it for retransmitted requests until Timer J."""

    __slots__ = ()
    name = "Completed"

    def enter(self) -> None:
        tx = self.tx
        delay = tx.layer.timers.timer_j(tx.reliable)
        if delay:
            tx.timer_j = tx.layer.clock.call_later(delay, tx._timer_j)
        else:
            tx.become(ServerTerminated)

    def on_request(self, request: Request) -> None:
        self.tx.retransmit()

    def on_timer_j(self) -> None:
        self.tx.become(ServerTerminated)


class ServerTerminated(ServerState):
    __slots__ = ()
    name = "Terminated"

    def enter(self) -> None:
        self.tx.stop_timers()
        self.tx.layer.forget(self.tx)


class InviteServerTransaction(ServerTransaction):
    __slots__ = ()
    initial_state = ServerInviteProceeding


class NonInviteServerTransaction(ServerTransaction):
    __slots__ = ()
    initial_state = ServerTrying
