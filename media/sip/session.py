"""INVITE sessions (RFC 3261 13-15): one call leg's signalling, from INVITE to BYE.

A `Session` is our side of one dialog, as UAS (a call that came in) or UAC (a call we
placed). Its state is one of the small classes below, each handling only what can happen
in it; a transition is `session.enter(NextState(...))`. The UAS core's 2xx retransmission
(13.3.1.4), CANCEL (9.2), BYE in both directions (15), re-INVITE hold and resume in both
directions with 491 on glare and the 14.1 back-off, and late ACKs all live here. SDP is
negotiated through `media.sip.sdp`; sockets, timers and transactions come from the
`SipStack` the engine hands in.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from media.sip.dialog import Dialog, DialogError, new_tag
from media.sip.message import Request, Response
from media.sip.offer_answer import (
    MediaParameters,
    NoAcceptableMedia,
    accept_answer,
    answer,
    hold_offer,
    make_offer,
    resume_offer,
)
from media.sip.sdp import SdpError, SessionDescription

if TYPE_CHECKING:
    from media.sip.clock import TimerHandle
    from media.sip.digest import DigestClient
    from media.sip.stack import SipStack
    from media.sip.transaction import ClientTransaction, ServerTransaction
    from media.sip.transport import Destination

log = logging.getLogger(__name__)

SDP = "application/sdp"


class SessionListener(Protocol):
    """What the engine hears from a session."""

    def session_ringing(self, session: Session) -> None: ...
    def session_answered(self, session: Session) -> None: ...
    def session_media_changed(self, session: Session) -> None: ...
    def session_ended(self, session: Session, cause: str, sip_code: int | None) -> None: ...
    def session_dtmf(self, session: Session, digit: str) -> None: ...


@dataclass(frozen=True, slots=True)
class LocalMedia:
    """Where our RTP for this leg is: the address and port we put in SDP."""

    address: str
    port: int


_INFO_DIGITS = "0123456789*#ABCD"


def _info_digit(request: Request) -> str | None:
    """The digit of a SIP INFO with `application/dtmf-relay` (Signal=5) or
    `application/dtmf` (just the digit, or its event code); None for any other INFO."""
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    body = request.body.decode("utf-8", "replace") if request.body else ""
    value = None
    if content_type == "application/dtmf-relay":
        for line in body.splitlines():
            name, _, rest = line.partition("=")
            if name.strip().lower() == "signal":
                value = rest.strip()
                break
    elif content_type == "application/dtmf":
        value = body.strip()
    if not value:
        return None
    if (value.isdigit() and len(value) > 1) or value in ("10", "11"):
        code = int(value)
        return _INFO_DIGITS[code] if code < len(_INFO_DIGITS) else None
    value = value.upper()
    return value if len(value) == 1 and value in _INFO_DIGITS else None


def end_cause(status: int) -> str:
    """Our protocol's hangup cause for a final failure response to an INVITE."""
    if status in (486, 600):
        return "busy"
    if status in (408, 480):
        return "no-answer"
    if status == 487:
        return "canceled"
    if status in (603, 403):
        return "rejected"
    return "failed"


class Session:
    """A call leg's INVITE session; `state` decides what each stimulus does."""

    def __init__(
        self,
        leg: str,
        role: str,
        stack: SipStack,
        listener: SessionListener,
        local_media: LocalMedia,
    ) -> None:
        self.leg = leg
        self.role = role
        self.stack = stack
        self.listener = listener
        self.local_media = local_media
        self.dialog: Dialog | None = None
        self.state: State = Idle(self)
        self.local_sdp: SessionDescription | None = None
        self.remote_sdp: SessionDescription | None = None
        self.media: MediaParameters | None = None
        self.session_id = random.randrange(1, 2**31)
        self.sdp_version = 1
        self.on_hold_locally = False
        self.invite: Request | None = None  # the initial INVITE (ours or theirs)
        self.invite_transaction: ClientTransaction | ServerTransaction | None = None
        self.ended = False
        self.on_release: Callable[[Session], None] | None = None
        self.transactions: list[ClientTransaction] = []  # ours, for the engine to forget

    # ------------------------------------------------------------ plumbing

    def enter(self, state: State) -> None:
        self.state.leave()
        self.state = state
        state.enter()

    def finish(self, cause: str, sip_code: int | None) -> None:
        if self.ended:
            return
        self.ended = True
        self.enter(Ended(self))
        self.listener.session_ended(self, cause, sip_code)
        if self.on_release is not None:
            self.on_release(self)

    def local_offer(self) -> SessionDescription:
        self.local_sdp = make_offer(
            self.local_media.address,
            self.local_media.port,
            session_id=self.session_id,
            version=self.sdp_version,
        )
        return self.local_sdp

    def answer_offer(self, offer_body: bytes) -> bytes:
        """Our answer to the peer's offer; raises NoAcceptableMedia or SdpError."""
        offer = SessionDescription.parse(offer_body.decode("utf-8", "replace"))
        result = answer(
            offer,
            self.local_media.address,
            self.local_media.port,
            session_id=self.session_id,
            version=self.sdp_version,
            local_direction="sendonly" if self.on_hold_locally else "sendrecv",
        )
        self.remote_sdp = offer
        self.local_sdp = result.description
        self.media = result.parameters
        return result.description.serialize().encode()

    def take_answer(self, answer_body: bytes) -> None:
        """Apply the peer's answer to our offer."""
        described = SessionDescription.parse(answer_body.decode("utf-8", "replace"))
        self.media = accept_answer(self.local_sdp, described)
        self.remote_sdp = described

    # ------------------------------------------------------------- commands

    def ring(self) -> None:
        self.state.ring()

    def accept(self) -> None:
        self.state.accept()

    def reject(self, status: int) -> None:
        self.state.reject(status)

    def hangup(self) -> None:
        self.state.hangup()

    def hold(self) -> None:
        self.state.change_media(hold=True)

    def resume(self) -> None:
        self.state.change_media(hold=False)

    # ------------------------------------------------------------- stimuli

    def request(self, transaction: ServerTransaction | None, request: Request) -> None:
        """An in-dialog request (or the ACK to our 2xx, which has no transaction)."""
        method = request.method
        if method == "ACK":
            self.state.on_ack(request)
            return
        if method == "CANCEL":
            return  # the engine routes CANCEL to `cancelled`
        assert transaction is not None
        if self.dialog is not None:
            try:
                self.dialog.receive_request(request)
            except DialogError as error:
                transaction.respond(request.make_response(error.status, str(error)))
                return
        match method:
            case "BYE":
                self.state.on_bye(transaction, request)
            case "INVITE":
                self.state.on_reinvite(transaction, request)
            case "INFO" if _info_digit(request) is not None:
                transaction.respond(self.stack.response_to(request, 200))
                self.listener.session_dtmf(self, _info_digit(request))  # type: ignore[arg-type]
            case "OPTIONS" | "INFO" | "UPDATE" if method != "UPDATE" or not request.body:
                transaction.respond(self.stack.response_to(request, 200))
            case _:
                response = self.stack.response_to(request, 405)
                response.headers.add("Allow", self.stack.ALLOW)
                transaction.respond(response)

    def cancelled(self) -> None:
        """The peer CANCELled its INVITE (the engine has answered the CANCEL itself)."""
        self.state.on_cancel()

    def response(self, transaction: ClientTransaction, response: Response) -> None:
        retransmitted_2xx = (
            transaction is self.invite_transaction
            and 200 <= response.status < 300
            and not isinstance(self.state, UacCalling)
        )
        if retransmitted_2xx:
            self.state.on_stray_2xx(response)  # our ACK was lost: send it again
            return
        self.state.on_response(transaction, response)

    def stray_2xx(self, response: Response) -> None:
        """A retransmitted 2xx to our INVITE after its transaction ended: ACK again."""
        self.state.on_stray_2xx(response)

    def timed_out(self, transaction: ClientTransaction) -> None:
        self.state.on_timeout(transaction)


# ===================================================================== states


class State:
    """The default for every stimulus is to do nothing and say so in the log."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def enter(self) -> None:
        pass

    def leave(self) -> None:
        pass

    def _unexpected(self, what: str) -> None:
        log.debug("leg %s: %s ignored in %s", self.session.leg, what, type(self).__name__)

    def ring(self) -> None:
        self._unexpected("ring")

    def accept(self) -> None:
        self._unexpected("accept")

    def reject(self, status: int) -> None:
        self._unexpected("reject")

    def hangup(self) -> None:
        self._unexpected("hangup")

    def change_media(self, *, hold: bool) -> None:
        self._unexpected("hold/resume")

    def on_ack(self, request: Request) -> None:
        self._unexpected("ACK")

    def on_bye(self, transaction: ServerTransaction, request: Request) -> None:
        transaction.respond(self.session.stack.response_to(request, 481))

    def on_reinvite(self, transaction: ServerTransaction, request: Request) -> None:
        transaction.respond(self.session.stack.response_to(request, 491))

    def on_cancel(self) -> None:
        self._unexpected("CANCEL")

    def on_response(self, transaction: ClientTransaction, response: Response) -> None:
        self._unexpected(f"{response.status} response")

    def on_stray_2xx(self, response: Response) -> None:
        self._unexpected("stray 2xx")

    def on_timeout(self, transaction: ClientTransaction) -> None:
        self._unexpected("timeout")


class Idle(State):
    pass


class Ended(State):
    def on_stray_2xx(self, response: Response) -> None:
        # A late 2xx (e.g. one fork answered after we gave up): acknowledge and end it.
        _ack_and_bye(self.session, response)


def _ack_and_bye(session: Session, response: Response) -> None:
    assert session.invite is not None
    dialog = Dialog.as_uac(session.invite, response)
    stack = session.stack
    stack.send_ack(dialog.ack(session.invite.cseq.number), dialog)
    stack.send_in_dialog(dialog.create_request("BYE"), dialog, None)


# ---------------------------------------------------------------- UAS side


class UasProceeding(State):
    """An INVITE arrived and awaits our answer (100 Trying sent by its transaction)."""

    def __init__(self, session: Session, transaction: ServerTransaction, request: Request) -> None:
        super().__init__(session)
        self.transaction = transaction
        self.request = request
        self.local_tag = new_tag()

    def ring(self) -> None:
        self.transaction.respond(self._response(180))

    def _response(self, status: int) -> Response:
        response = self.request.make_response(status, to_tag=self.local_tag)
        if 100 < status < 300:
            response.headers.add("Contact", self.session.stack.contact())
            for route in self.request.headers.get_all("Record-Route"):
                response.headers.add("Record-Route", route)
        return response

    def accept(self) -> None:
        session = self.session
        response = self._response(200)
        try:
            if self.request.body:
                body = session.answer_offer(self.request.body)
            else:
                body = session.local_offer().serialize().encode()  # offer in 2xx, answer in ACK
        except (NoAcceptableMedia, SdpError) as error:
            log.info("leg %s: offer refused: %s", session.leg, error)
            self.transaction.respond(self._response(488))
            session.finish("failed", 488)
            return
        response.headers.add("Content-Type", SDP)
        response.headers.add("Allow", session.stack.ALLOW)
        response.body = body
        session.dialog = Dialog.as_uas(self.request, self.local_tag, session.stack.contact())
        self.transaction.respond(response)
        late_offer = not self.request.body
        session.enter(UasAccepted(session, self.transaction, response, awaiting_answer=late_offer))
        if not late_offer:
            # The call is answered when our 2xx goes out (as a carrier counts it), not
            # when the ACK arrives: an ACK lost before the caller's BYE still leaves an
            # answered call. With the offer in our 2xx, media is agreed once the ACK
            # brings the answer.
            session.listener.session_answered(session)

    def reject(self, status: int) -> None:
        self.transaction.respond(self._response(status))
        self.session.finish("rejected" if status != 486 else "busy", status)

    def hangup(self) -> None:
        self.reject(480)

    def on_cancel(self) -> None:
        self.transaction.respond(self._response(487))
        self.session.finish("remote", 487)


class UasAccepted(State):
    """Our 2xx is out; we resend it until the ACK arrives (13.3.1.4)."""

    def __init__(
        self,
        session: Session,
        transaction: ServerTransaction,
        response: Response,
        *,
        awaiting_answer: bool,
    ) -> None:
        super().__init__(session)
        self.transaction = transaction
        self.response = response
        self.awaiting_answer = awaiting_answer
        self.interval = session.stack.timers.t1
        self.timer_2xx: TimerHandle | None = None
        self.timer_ack_giveup: TimerHandle | None = None

    def enter(self) -> None:
        clock = self.session.stack.clock
        self.timer_2xx = clock.call_later(self.interval, self._retransmit)
        self.timer_ack_giveup = clock.call_later(64 * self.session.stack.timers.t1, self._no_ack)

    def leave(self) -> None:
        for handle in (self.timer_2xx, self.timer_ack_giveup):
            if handle is not None:
                handle.cancel()

    def _retransmit(self) -> None:
        stack = self.session.stack
        # The transaction (RFC 6026 Accepted) passes our 2xx retransmissions to the wire.
        self.transaction.respond(self.response)
        self.interval = min(2 * self.interval, stack.timers.t2)
        self.timer_2xx = stack.clock.call_later(self.interval, self._retransmit)

    def _no_ack(self) -> None:
        log.warning("leg %s: no ACK for our 2xx; hanging up", self.session.leg)
        session = self.session
        session.enter(Terminating(session, cause="failed", sip_code=408))
        session.state.send_bye()

    def on_ack(self, request: Request) -> None:
        session = self.session
        if self.awaiting_answer:
            try:
                session.take_answer(request.body)
            except (NoAcceptableMedia, SdpError) as error:
                log.info("leg %s: answer in ACK refused: %s", session.leg, error)
                session.enter(Terminating(session, cause="failed", sip_code=488))
                session.state.send_bye()
                return
        session.enter(Confirmed(session))
        if self.awaiting_answer:
            session.listener.session_answered(session)

    def on_bye(self, transaction: ServerTransaction, request: Request) -> None:
        transaction.respond(self.session.stack.response_to(request, 200))
        self.session.finish("remote", None)

    def hangup(self) -> None:
        session = self.session
        session.enter(Terminating(session, cause="local", sip_code=None))
        session.state.send_bye()

    def on_reinvite(self, transaction: ServerTransaction, request: Request) -> None:
        response = self.session.stack.response_to(request, 500)
        response.headers.add("Retry-After", str(random.randint(0, 10)))
        transaction.respond(response)


# ---------------------------------------------------------------- UAC side


class UacCalling(State):
    """Our INVITE is out; provisional responses may come, then a final one."""

    def __init__(
        self,
        session: Session,
        transaction: ClientTransaction,
        *,
        authenticator: DigestClient | None = None,
        destination: Destination | None = None,
    ) -> None:
        super().__init__(session)
        self.transaction = transaction
        self.authenticator = authenticator
        self.destination = destination
        self.cancel_wanted = False
        self.cancel_sent = False
        self.rang = False

    def on_response(self, transaction: ClientTransaction, response: Response) -> None:
        session = self.session
        if transaction is not self.transaction:
            return
        status = response.status
        if status in (401, 407) and self.authenticator is not None and not self.cancel_wanted:
            self._authenticate(response)
            return
        if status < 200:
            if status > 100 and not self.rang:
                self.rang = True
                session.listener.session_ringing(session)
            if self.cancel_wanted and status > 100:
                self._send_cancel()
            return
        if status < 300:
            self._answered(response)
            return
        session.finish(end_cause(status) if not self.cancel_wanted else "canceled", status)

    def _answered(self, response: Response) -> None:
        session = self.session
        assert session.invite is not None
        dialog = Dialog.as_uac(session.invite, response)
        session.dialog = dialog
        session.stack.send_ack(dialog.ack(session.invite.cseq.number), dialog)
        if self.cancel_wanted:
            session.enter(Terminating(session, cause="canceled", sip_code=None))
            session.state.send_bye()
            return
        try:
            session.take_answer(response.body)
        except (NoAcceptableMedia, SdpError) as error:
            log.info("leg %s: answer refused: %s", session.leg, error)
            session.enter(Terminating(session, cause="failed", sip_code=488))
            session.state.send_bye()
            return
        session.enter(Confirmed(session))
        session.listener.session_answered(session)

    def _authenticate(self, response: Response) -> None:
        """Answer the trunk's challenge once, with a new INVITE in the same call (22.2)."""
        session = self.session
        authenticator, self.authenticator = self.authenticator, None
        invite = session.invite
        assert invite is not None and authenticator is not None
        proxy = response.status == 407
        challenges = response.proxy_authenticate if proxy else response.www_authenticate
        try:
            value = authenticator.authorize("INVITE", invite.uri_text, challenges, invite.body)
        except ValueError as error:
            log.warning("leg %s: cannot answer the trunk's challenge: %s", session.leg, error)
            session.finish("failed", response.status)
            return
        headers = invite.headers.copy()
        headers.remove("Via")
        headers.set("CSeq", f"{invite.cseq.number + 1} INVITE")
        headers.add("Proxy-Authorization" if proxy else "Authorization", value)
        retry = Request("INVITE", invite.uri_text, headers, invite.body)
        session.invite = retry
        if self.destination is not None:
            self.transaction = session.stack.send_to(retry, self.destination, session)
        else:
            self.transaction = session.stack.send_request(retry, session)
        session.invite_transaction = self.transaction

    def hangup(self) -> None:
        """CANCEL (9.1): only once a provisional response shows the INVITE arrived."""
        self.cancel_wanted = True
        if self.transaction.provisional_received:
            self._send_cancel()

    def _send_cancel(self) -> None:
        if self.cancel_sent:
            return
        self.cancel_sent = True
        stack = self.session.stack
        cancel = stack.transactions.cancel_request(self.transaction)
        stack.send_to(cancel, self.transaction.destination, None)

    def on_timeout(self, transaction: ClientTransaction) -> None:
        if transaction is self.transaction:
            self.session.finish("no-answer" if not self.cancel_wanted else "canceled", 408)


# ------------------------------------------------------------ both sides


class Confirmed(State):
    """The call is up. Hold and resume by re-INVITE either way; BYE either way."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.outgoing: ClientTransaction | None = None  # our re-INVITE in progress
        self.outgoing_hold: bool | None = None
        self.incoming_response: Response | None = None  # our 2xx to their re-INVITE
        self.timer_2xx: TimerHandle | None = None
        self.timer_glare: TimerHandle | None = None
        self.interval = 0.0
        self.incoming_awaiting_answer = False

    def leave(self) -> None:
        for handle in (self.timer_2xx, self.timer_glare):
            if handle is not None:
                handle.cancel()

    # ---- BYE

    def hangup(self) -> None:
        session = self.session
        session.enter(Terminating(session, cause="local", sip_code=None))
        session.state.send_bye()

    def on_bye(self, transaction: ServerTransaction, request: Request) -> None:
        transaction.respond(self.session.stack.response_to(request, 200))
        self.session.finish("remote", None)

    # ---- our re-INVITE

    def change_media(self, *, hold: bool) -> None:
        session = self.session
        if self.outgoing is not None or self.incoming_response is not None:
            # One offer/answer at a time (14.1); the latest wish is applied after it.
            self.outgoing_hold = hold
            return
        if session.on_hold_locally == hold and self.timer_glare is None:
            return
        session.on_hold_locally = hold
        self._send_reinvite()

    def _send_reinvite(self) -> None:
        session = self.session
        assert session.dialog is not None and session.local_sdp is not None
        session.sdp_version += 1
        previous = session.local_sdp
        offer = hold_offer(previous) if session.on_hold_locally else resume_offer(previous)
        session.local_sdp = offer
        request = session.dialog.create_request(
            "INVITE", body=offer.serialize().encode(), content_type=SDP
        )
        self.outgoing = session.stack.send_in_dialog(request, session.dialog, session)
        self.outgoing_cseq = request.cseq.number

    def on_response(self, transaction: ClientTransaction, response: Response) -> None:
        session = self.session
        if transaction is not self.outgoing or response.status < 200:
            return
        self.outgoing = None
        dialog = session.dialog
        assert dialog is not None
        if response.status < 300:
            dialog.refresh_from_response(response)
            session.stack.send_ack(dialog.ack(self.outgoing_cseq), dialog)
            try:
                session.take_answer(response.body)
            except (NoAcceptableMedia, SdpError) as error:
                log.warning("leg %s: re-INVITE answer refused: %s", session.leg, error)
            session.listener.session_media_changed(session)
        elif response.status == 491:
            # Glare (14.1): the Call-ID's owner waits 2.1-4 s, the other 0-2 s, in 10 ms steps.
            owner = session.role == "uac"
            delay = random.randint(210, 400) / 100 if owner else random.randint(0, 200) / 100
            self.timer_glare = session.stack.clock.call_later(delay, self._retry_after_glare)
        elif response.status in (408, 481):
            session.enter(Terminating(session, cause="failed", sip_code=response.status))
            session.state.send_bye()
            return
        else:
            log.info("leg %s: re-INVITE refused with %s", session.leg, response.status)
        self._apply_pending_wish()

    def _retry_after_glare(self) -> None:
        self.timer_glare = None
        if self.outgoing is None and self.incoming_response is None:
            self._send_reinvite()

    def _apply_pending_wish(self) -> None:
        wish, self.outgoing_hold = self.outgoing_hold, None
        if wish is not None and self.outgoing is None:
            self.change_media(hold=wish)

    def on_timeout(self, transaction: ClientTransaction) -> None:
        if transaction is self.outgoing:
            self.outgoing = None
            session = self.session
            session.enter(Terminating(session, cause="failed", sip_code=408))
            session.state.send_bye()

    def on_stray_2xx(self, response: Response) -> None:
        session = self.session
        if session.dialog is not None and session.invite is not None:
            if response.cseq.method == "INVITE" and response.to.tag == session.dialog.remote_tag:
                session.stack.send_ack(session.dialog.ack(response.cseq.number), session.dialog)
            else:
                _ack_and_bye(session, response)  # another fork's 2xx

    # ---- their re-INVITE

    def on_reinvite(self, transaction: ServerTransaction, request: Request) -> None:
        session = self.session
        stack = session.stack
        if self.outgoing is not None:
            transaction.respond(stack.response_to(request, 491))
            return
        if self.incoming_response is not None:
            response = stack.response_to(request, 500)
            response.headers.add("Retry-After", str(random.randint(0, 10)))
            transaction.respond(response)
            return
        if self.timer_glare is not None:
            self.timer_glare.cancel()  # theirs goes first; ours is retried after it
            self.timer_glare = None
            self.outgoing_hold = session.on_hold_locally
        response = stack.response_to(request, 200, to_tag=session.dialog.local_tag)
        response.headers.add("Contact", stack.contact())
        try:
            if request.body:
                session.sdp_version += 1
                body = session.answer_offer(request.body)
                self.incoming_awaiting_answer = False
            else:
                session.sdp_version += 1
                body = session.local_offer().serialize().encode()
                self.incoming_awaiting_answer = True
        except (NoAcceptableMedia, SdpError) as error:
            log.info("leg %s: re-INVITE offer refused: %s", session.leg, error)
            transaction.respond(stack.response_to(request, 488))
            return
        response.headers.add("Content-Type", SDP)
        response.body = body
        transaction.respond(response)
        self.incoming_response = response
        self.incoming_transaction = transaction
        self.interval = stack.timers.t1
        self.timer_2xx = stack.clock.call_later(self.interval, self._retransmit_2xx)
        self.incoming_deadline = stack.clock.now() + 64 * stack.timers.t1

    def _retransmit_2xx(self) -> None:
        stack = self.session.stack
        if self.incoming_response is None:
            return
        if stack.clock.now() >= self.incoming_deadline:
            self.incoming_response = None
            session = self.session
            session.enter(Terminating(session, cause="failed", sip_code=408))
            session.state.send_bye()
            return
        self.incoming_transaction.respond(self.incoming_response)
        self.interval = min(2 * self.interval, stack.timers.t2)
        self.timer_2xx = stack.clock.call_later(self.interval, self._retransmit_2xx)

    def on_ack(self, request: Request) -> None:
        session = self.session
        if self.incoming_response is None:
            return  # a retransmitted ACK
        self.incoming_response = None
        if self.timer_2xx is not None:
            self.timer_2xx.cancel()
            self.timer_2xx = None
        if self.incoming_awaiting_answer and request.body:
            try:
                session.take_answer(request.body)
            except (NoAcceptableMedia, SdpError) as error:
                log.warning("leg %s: answer in ACK refused: %s", session.leg, error)
        session.listener.session_media_changed(session)
        self._apply_pending_wish()


class Terminating(State):
    """Our BYE is out (15.1.1): whatever its outcome, the session is over."""

    def __init__(self, session: Session, *, cause: str, sip_code: int | None) -> None:
        super().__init__(session)
        self.cause = cause
        self.sip_code = sip_code
        self.transaction: ClientTransaction | None = None

    def send_bye(self) -> None:
        session = self.session
        assert session.dialog is not None
        request = session.dialog.create_request("BYE")
        self.transaction = session.stack.send_in_dialog(request, session.dialog, session)

    def on_response(self, transaction: ClientTransaction, response: Response) -> None:
        if transaction is self.transaction and response.status >= 200:
            self.session.finish(self.cause, self.sip_code)

    def on_timeout(self, transaction: ClientTransaction) -> None:
        if transaction is self.transaction:
            self.session.finish(self.cause, self.sip_code)

    def on_bye(self, transaction: ServerTransaction, request: Request) -> None:
        transaction.respond(self.session.stack.response_to(request, 200))
        self.session.finish(self.cause, self.sip_code)

    def on_ack(self, request: Request) -> None:
        pass

    def on_stray_2xx(self, response: Response) -> None:
        session = self.session
        if session.dialog is not None and session.invite is not None:
            session.stack.send_ack(session.dialog.ack(response.cseq.number), session.dialog)
