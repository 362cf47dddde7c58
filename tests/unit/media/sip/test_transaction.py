"""The transaction layer (RFC 3261 17, RFC 6026) driven by a ManualClock and a transport
that records what it is asked to send: every timer, both INVITE and both non-INVITE
machines, matching, ACK and CANCEL building, and transport errors."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from media.sip.clock import ManualClock, TimerSettings
from media.sip.message import Request, Response, parse_message
from media.sip.transaction import (
    ClientTransaction,
    ServerTransaction,
    Transaction,
    TransactionLayer,
)
from media.sip.transaction_client import (
    ClientCompleted,
    ClientInviteAccepted,
    ClientInviteCalling,
    ClientInviteCompleted,
    ClientInviteProceeding,
    ClientProceeding,
    ClientTerminated,
    ClientTrying,
)
from media.sip.transaction_server import (
    ServerCompleted,
    ServerInviteAccepted,
    ServerInviteCompleted,
    ServerInviteConfirmed,
    ServerInviteProceeding,
    ServerProceeding,
    ServerTerminated,
    ServerTrying,
)
from media.sip.transport import Destination, ErrorCallback

PEER = Destination("udp", "198.51.100.7", 5060)
PEER_TCP = Destination("tcp", "198.51.100.7", 5060)
LOCAL_HOST, LOCAL_PORT = "192.0.2.1", 5060


@dataclass
class Sent:
    time: float
    message: Request | Response
    destination: Destination
    on_error: ErrorCallback | None


class FakeTransport:
    """Records every send, parsed back from the bytes; ``fail`` makes sends raise."""

    local_via_host = LOCAL_HOST
    local_via_port = LOCAL_PORT

    def __init__(self, clock: ManualClock, tcp: bool = True) -> None:
        self.clock = clock
        self.tcp = tcp
        self.sent: list[Sent] = []
        self.fail: OSError | None = None

    def supports(self, transport: str) -> bool:
        return transport == "udp" or (transport == "tcp" and self.tcp)

    def send(
        self, data: bytes, destination: Destination, on_error: ErrorCallback | None = None
    ) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append(Sent(self.clock.now(), parse_message(data), destination, on_error))

    def times(self) -> list[float]:
        return [round(sent.time, 6) for sent in self.sent]

    def take(self) -> list[Request | Response]:
        messages = [sent.message for sent in self.sent]
        self.sent.clear()
        return messages


@dataclass
class RecordingUser:
    """A TU that records each callback; ``answer`` runs inside request_received."""

    events: list[tuple[str, object, object]] = field(default_factory=list)
    answer: object = None

    def request_received(
        self, transaction: ServerTransaction | None, request: Request, source: Destination
    ) -> None:
        self.events.append(("request", transaction, request))
        if callable(self.answer) and transaction is not None:
            self.answer(transaction, request)

    def response_received(
        self, transaction: ClientTransaction | None, response: Response, source: Destination
    ) -> None:
        self.events.append(("response", transaction, response))

    def transaction_timed_out(self, transaction: Transaction) -> None:
        self.events.append(("timeout", transaction, None))

    def transport_error(self, transaction: Transaction, error: OSError) -> None:
        self.events.append(("transport_error", transaction, error))

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.events]


@dataclass
class Harness:
    clock: ManualClock
    transport: FakeTransport
    user: RecordingUser
    layer: TransactionLayer


def harness(timers: TimerSettings | None = None, **options: float) -> Harness:
    clock = ManualClock()
    transport = FakeTransport(clock)
    user = RecordingUser()
    layer = TransactionLayer(transport, clock, timers or TimerSettings(), user, **options)
    return Harness(clock, transport, user, layer)


def wire(message: Request | Response) -> Request | Response:
    """The message as the peer receives it."""
    return parse_message(message.serialize())


def outgoing(method: str = "INVITE", cseq: int = 1, routes: tuple[str, ...] = ()) -> Request:
    headers = [
        ("Max-Forwards", "70"),
        ("From", "<sip:alice@192.0.2.1>;tag=ours"),
        ("To", "<sip:bob@example.com>"),
        ("Call-ID", "out-1@192.0.2.1"),
        ("CSeq", f"{cseq} {method}"),
        *(("Route", route) for route in routes),
    ]
    return Request(method, "sip:bob@example.com", headers)


def answer(request: Request, status: int, to_tag: str | None = "theirs") -> Response:
    """A response from the peer to a request we sent."""
    sent = wire(request)
    assert isinstance(sent, Request)
    tag = None if status == 100 or sent.to.tag else to_tag
    return wire(sent.make_response(status, to_tag=tag))  # type: ignore[return-value]


def incoming(
    method: str = "INVITE",
    branch: str | None = "z9hG4bKpeer1",
    *,
    cseq: int = 1,
    cseq_method: str | None = None,
    to_tag: str | None = None,
    via: str = "SIP/2.0/UDP 198.51.100.7:5060",
) -> Request:
    """A request from the peer, as the transport passes it up."""
    lines = [
        f"{method} sip:bob@192.0.2.1 SIP/2.0",
        f"Via: {via}" + (f";branch={branch}" if branch else ""),
        "Max-Forwards: 70",
        "From: <sip:alice@example.com>;tag=theirs",
        "To: <sip:bob@192.0.2.1>" + (f";tag={to_tag}" if to_tag else ""),
        "Call-ID: in-1@198.51.100.7",
        f"CSeq: {cseq} {cseq_method or method}",
        "Content-Length: 0",
        "",
        "",
    ]
    request = parse_message("\r\n".join(lines).encode())
    assert isinstance(request, Request)
    return request


def statuses(messages: list[Request | Response]) -> list[int | str]:
    return [m.status if isinstance(m, Response) else m.method for m in messages]


# -- client INVITE ------------------------------------------------------------------------


def test_send_request_adds_our_via_with_a_fresh_branch_and_rport() -> None:
    h = harness()
    tx = h.layer.send_request(outgoing(), PEER)
    sent = h.transport.sent[0]
    assert sent.destination == PEER
    via = sent.message.top_via
    assert (via.transport, via.host, via.port) == ("UDP", LOCAL_HOST, LOCAL_PORT)
    assert via.rfc3261_branch == tx.branch and via.has_rport
    assert tx.branch.startswith("z9hG4bK") and len(tx.branch) > 20
    assert isinstance(tx.state, ClientInviteCalling) and tx.state.name == "Calling"
    other = h.layer.send_request(outgoing(cseq=2), PEER)
    assert other.branch != tx.branch
    assert h.layer.new_branch() != h.layer.new_branch()


def test_send_request_refuses_an_ack_and_a_via_without_rfc3261_branch() -> None:
    h = harness()
    with pytest.raises(ValueError, match="send_ack"):
        h.layer.send_request(outgoing("ACK"), PEER)
    request = outgoing()
    request.headers.add("Via", "SIP/2.0/UDP 192.0.2.1;branch=1234", first=True)
    with pytest.raises(ValueError, match="no RFC 3261 branch"):
        h.layer.send_request(request, PEER)


def test_timer_a_doubles_from_t1_until_timer_b_times_out() -> None:
    h = harness()
    tx = h.layer.send_request(outgoing(), PEER)
    h.clock.advance(31.9)
    assert h.transport.times() == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert h.user.events == []
    h.clock.advance(0.1)  # Timer B: 64*T1
    assert h.user.events == [("timeout", tx, None)]
    assert isinstance(tx.state, ClientTerminated)
    assert h.layer.active_transactions == 0
    assert h.clock.pending() == []


def test_no_timer_a_over_tcp_but_timer_b_still_runs() -> None:
    h = harness()
    tx = h.layer.send_request(outgoing(), PEER_TCP)
    assert h.transport.sent[0].message.top_via.transport == "TCP"
    h.clock.advance(32)
    assert h.transport.times() == [0.0]
    assert h.user.kinds() == ["timeout"] and tx.terminated


def test_provisional_stops_retransmissions_and_timer_b() -> None:
    h = harness()
    tx = h.layer.send_request(outgoing(), PEER)
    assert not tx.provisional_received
    h.clock.advance(0.7)
    h.layer.receive(answer(tx.request, 100), PEER)
    assert isinstance(tx.state, ClientInviteProceeding) and tx.provisional_received
    h.layer.receive(answer(tx.request, 180), PEER)
    h.clock.advance(120)
    assert h.transport.times() == [0.0, 0.5]
    assert [(e[0], e[1], e[2].status) for e in h.user.events] == [
        ("response", tx, 100),
        ("response", tx, 180),
    ]
    assert h.clock.pending() == []


def test_non_2xx_final_is_acked_by_the_transaction_and_timer_d_absorbs_retransmissions() -> None:
    h = harness()
    invite = outgoing(routes=("<sip:proxy1.example.com;lr>", "<sip:proxy2.example.com;lr>"))
    tx = h.layer.send_request(invite, PEER)
    h.layer.receive(answer(tx.request, 180), PEER)
    h.transport.sent.clear()
    busy = answer(tx.request, 486)
    h.clock.advance(1.0)
    h.layer.receive(busy, PEER)
    assert isinstance(tx.state, ClientInviteCompleted) and tx.final_response is busy
    [ack] = h.transport.take()
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack.uri_text == tx.request.uri_text
    assert [str(via) for via in ack.via] == [str(tx.request.top_via)]
    assert ack.top_via.branch == tx.branch
    assert ack.from_ == tx.request.from_ and ack.call_id == tx.request.call_id
    assert ack.to.tag == "theirs" and ack.to.uri == tx.request.to.uri
    assert (ack.cseq.number, ack.cseq.method) == (1, "ACK")
    assert ack.headers.get_all("Route") == tx.request.headers.get_all("Route")
    assert ack.max_forwards == 70 and ack.body == b""
    # Retransmitted 486: ACK again, the TU is not told twice.
    h.clock.advance(2.0)
    h.layer.receive(answer(tx.request, 486), PEER)
    assert statuses(h.transport.take()) == ["ACK"]
    assert [e[2].status for e in h.user.events] == [180, 486]
    h.clock.advance(29.9)  # Timer D: 32 s after the 486
    assert not tx.terminated
    h.clock.advance(0.1)
    assert tx.terminated and h.layer.active_transactions == 0
    assert h.clock.pending() == []


def test_timer_d_is_zero_over_tcp() -> None:
    h = harness()
    tx = h.layer.send_request(outgoing(), PEER_TCP)
    h.layer.receive(answer(tx.request, 603), PEER_TCP)
    assert statuses(h.transport.take()) == ["INVITE", "ACK"]
    assert tx.terminated and h.clock.pending() == []


def test_2xx_moves_to_accepted_and_timer_m_passes_retransmissions_to_the_tu() -> None:
    h = harness()
    tx = h.layer.send_request(outgoing(), PEER)
    ok = answer(tx.request, 200)
    h.layer.receive(ok, PEER)
    assert isinstance(tx.state, ClientInviteAccepted)
    assert statuses(h.transport.take()) == ["INVITE"]  # the ACK for a 2xx is the TU's
    h.clock.advance(10)
    h.layer.receive(answer(tx.request, 200), PEER)
    h.layer.receive(answer(tx.request, 200, to_tag="fork2"), PEER)  # another fork
    h.layer.receive(answer(tx.request, 486), PEER)  # not a 2xx: absorbed
    assert [(e[1], e[2].status) for e in h.user.events] == [(tx, 200)] * 3
    assert h.transport.sent == []
    h.clock.advance(22)  # Timer M: 64*T1 after the first 2xx
    assert tx.terminated and h.layer.active_transactions == 0
    # Now a retransmitted 2xx is a stray: the TU gets it without a transaction.
    stray = answer(tx.request, 200)
    h.layer.receive(stray, PEER)
    assert h.user.events[-1] == ("response", None, stray)


def test_stray_responses_other_than_our_2xx_to_invite_are_dropped() -> None:
    h = harness()
    tx = h.layer.send_request(outgoing(), PEER)
    h.layer.receive(answer(tx.request, 200), PEER)
    h.clock.advance(40)
    h.layer.receive(answer(tx.request, 486), PEER)
    foreign = outgoing()
    foreign.headers.add("Via", "SIP/2.0/UDP 203.0.113.5;branch=z9hG4bKnotours", first=True)
    h.layer.receive(wire(foreign.make_response(200, to_tag="x")), PEER)
    assert [e[2].status for e in h.user.events] == [200]


def test_responses_match_on_branch_and_cseq_method() -> None:
    h = harness()
    invite = h.layer.send_request(outgoing(), PEER)
    h.layer.receive(answer(invite.request, 180), PEER)
    cancel = h.layer.send_request(h.layer.cancel_request(invite), PEER)
    assert cancel.branch == invite.branch
    h.layer.receive(answer(cancel.request, 200), PEER)
    h.layer.receive(answer(invite.request, 487), PEER)
    assert [(e[1], e[2].status) for e in h.user.events] == [
        (invite, 180),
        (cancel, 200),
        (invite, 487),
    ]
    assert isinstance(cancel.state, ClientCompleted)
    assert isinstance(invite.state, ClientInviteCompleted)


def test_cancel_is_built_from_the_invite() -> None:
    h = harness()
    invite = h.layer.send_request(outgoing(cseq=7, routes=("<sip:proxy.example.com;lr>",)), PEER)
    cancel = h.layer.cancel_request(invite)
    assert cancel.method == "CANCEL" and cancel.uri_text == invite.request.uri_text
    assert [str(via) for via in cancel.via] == [str(invite.request.top_via)]
    assert cancel.call_id == invite.request.call_id
    assert cancel.from_ == invite.request.from_ and cancel.to == invite.request.to
    assert (cancel.cseq.number, cancel.cseq.method) == (7, "CANCEL")
    assert cancel.headers.get_all("Route") == ["<sip:proxy.example.com;lr>"]
    bye = h.layer.send_request(outgoing("BYE", cseq=8), PEER)
    with pytest.raises(ValueError, match="only an INVITE"):
        h.layer.cancel_request(bye)


def test_send_ack_adds_a_new_branch() -> None:
    h = harness()
    ack = outgoing("ACK")
    h.layer.send_ack(ack, PEER)
    [sent] = h.transport.take()
    assert sent.method == "ACK" and sent.top_via.rfc3261_branch
    assert h.layer.active_transactions == 0


# -- client non-INVITE --------------------------------------------------------------------


def test_timer_e_doubles_up_to_t2_and_timer_f_times_out() -> None:
    h = harness()
    tx = h.layer.send_request(outgoing("OPTIONS"), PEER)
    assert isinstance(tx.state, ClientTrying)
    h.clock.advance(31.99)
    assert h.transport.times() == [
        0.0,
        0.5,
        1.5,
        3.5,
        7.5,
        11.5,
        15.5,
        19.5,
        23.5,
        27.5,
        31.5,
    ]
    h.clock.advance(0.01)  # Timer F
    assert h.user.events == [("timeout", tx, None)]
    assert tx.terminated and h.clock.pending() == []


def test_timer_e_fires_every_t2_in_proceeding() -> None:
    h = harness()
    tx = h.layer.send_request(outgoing("BYE"), PEER)
    h.clock.advance(0.2)
    h.layer.receive(answer(tx.request, 100), PEER)
    assert isinstance(tx.state, ClientProceeding)
    h.clock.advance(9.0)
    # The Timer E armed in Trying fires at 0.5, then every T2.
    assert h.transport.times() == [0.0, 0.5, 4.5, 8.5]
    h.layer.receive(answer(tx.request, 200), PEER)
    assert isinstance(tx.state, ClientCompleted)
    assert [e[2].status for e in h.user.events] == [100, 200]


def test_timer_f_fires_in_proceeding_too() -> None:
    h = harness()
    tx = h.layer.send_request(outgoing("REGISTER"), PEER)
    h.layer.receive(answer(tx.request, 100), PEER)
    h.clock.advance(32)
    assert h.user.kinds() == ["response", "timeout"] and tx.terminated


def test_no_timer_e_over_tcp() -> None:
    h = harness()
    tx = h.layer.send_request(outgoing("BYE"), PEER_TCP)
    h.clock.advance(20)
    assert h.transport.times() == [0.0]
    h.layer.receive(answer(tx.request, 200), PEER_TCP)
    assert tx.terminated  # Timer K is 0 for a reliable transport


def test_timer_k_absorbs_final_response_retransmissions() -> None:
    h = harness()
    tx = h.layer.send_request(outgoing("BYE"), PEER)
    h.layer.receive(answer(tx.request, 200), PEER)
    assert isinstance(tx.state, ClientCompleted)
    h.clock.advance(4.9)
    h.layer.receive(answer(tx.request, 200), PEER)
    assert [e[2].status for e in h.user.events] == [200]
    assert h.transport.times() == [0.0]  # no retransmission after the final response
    h.clock.advance(0.1)  # Timer K: T4
    assert tx.terminated and h.layer.active_transactions == 0
    assert h.clock.pending() == []


def test_configured_timers_change_every_interval() -> None:
    h = harness(TimerSettings(t1=0.1, t2=0.4, t4=1.0))
    tx = h.layer.send_request(outgoing("OPTIONS"), PEER)
    h.clock.advance(1.5)
    assert h.transport.times() == [0.0, 0.1, 0.3, 0.7, 1.1, 1.5]
    h.layer.receive(answer(tx.request, 200), PEER)
    h.clock.advance(0.99)
    assert not tx.terminated
    h.clock.advance(0.01)  # Timer K = T4 = 1.0
    assert tx.terminated
    invite = h.layer.send_request(outgoing(cseq=2), PEER)
    h.clock.advance(6.39)
    assert not invite.terminated
    h.clock.advance(0.01)  # Timer B = 64 * 0.1
    assert invite.terminated and h.user.kinds()[-1] == "timeout"


# -- transport errors and the TCP choice ---------------------------------------------------


def test_a_send_error_terminates_the_client_transaction_and_tells_the_tu() -> None:
    h = harness()
    h.transport.fail = OSError(113, "No route to host")
    tx = h.layer.send_request(outgoing(), PEER)
    assert tx.terminated and h.layer.active_transactions == 0
    assert h.user.events == [("transport_error", tx, h.transport.fail)]
    assert h.clock.pending() == []


def test_a_retransmission_error_terminates_the_transaction() -> None:
    h = harness()
    tx = h.layer.send_request(outgoing("OPTIONS"), PEER)
    h.transport.fail = ConnectionRefusedError(111, "ICMP port unreachable")
    h.clock.advance(0.5)
    assert h.user.kinds() == ["transport_error"] and tx.terminated
    assert h.clock.pending() == []


def test_a_later_error_reported_by_the_transport_terminates_the_transaction() -> None:
    h = harness()
    tx = h.layer.send_request(outgoing("OPTIONS"), PEER_TCP)
    on_error = h.transport.sent[0].on_error
    assert on_error is not None
    on_error(ConnectionResetError(104, "reset"))
    assert h.user.kinds() == ["transport_error"] and tx.terminated
    on_error(ConnectionResetError(104, "reset"))  # late duplicates are ignored
    assert h.user.kinds() == ["transport_error"]


def test_a_large_request_goes_over_tcp_and_falls_back_to_udp() -> None:
    h = harness()
    invite = outgoing()
    invite.body = b"v=0\r\n" + b"a=x-padding:" + b"p" * 1400 + b"\r\n"
    tx = h.layer.send_request(invite, PEER)
    first = h.transport.sent[0]
    assert first.destination == PEER_TCP and first.message.top_via.transport == "TCP"
    h.clock.advance(1.0)
    assert len(h.transport.sent) == 1  # no Timer A over TCP
    assert first.on_error is not None
    first.on_error(ConnectionRefusedError(111, "Connection refused"))
    retry = h.transport.sent[1]
    assert retry.destination == PEER and retry.message.top_via.transport == "UDP"
    assert retry.message.top_via.branch == tx.branch
    assert isinstance(tx.state, ClientInviteCalling) and h.user.events == []
    h.clock.advance(0.5)
    assert len(h.transport.sent) == 3  # Timer A runs now
    h.layer.receive(answer(tx.request, 180), PEER)
    assert tx.provisional_received


def test_a_large_request_stays_on_udp_without_tcp() -> None:
    h = harness()
    h.transport.tcp = False
    request = outgoing("MESSAGE")
    request.body = b"x" * 1500
    h.layer.send_request(request, PEER)
    assert h.transport.sent[0].destination == PEER


def test_a_send_error_in_a_server_transaction_tells_the_tu() -> None:
    h = harness()
    h.layer.receive(incoming("BYE"), PEER)
    tx = h.user.events[0][1]
    assert isinstance(tx, ServerTransaction)
    h.transport.fail = OSError(101, "Network is unreachable")
    assert tx.respond(tx.request.make_response(200, to_tag="t")) is False
    assert h.user.kinds() == ["request", "transport_error"] and tx.terminated
    assert h.layer.active_transactions == 0


# -- server INVITE --------------------------------------------------------------------------


def server_invite(h: Harness, request: Request | None = None) -> ServerTransaction:
    h.layer.receive(request or incoming(), PEER)
    kind, tx, _ = h.user.events[-1]
    assert kind == "request" and isinstance(tx, ServerTransaction)
    return tx


def test_100_trying_is_sent_right_after_the_tu_sees_the_invite() -> None:
    h = harness()
    tx = server_invite(h)
    assert isinstance(tx.state, ServerInviteProceeding)
    [trying] = h.transport.take()
    assert isinstance(trying, Response) and trying.status == 100
    assert trying.to.tag is None and trying.call_id == tx.request.call_id
    assert h.transport.sent == [] and h.clock.pending() == []


def test_no_100_when_the_tu_answers_at_once() -> None:
    h = harness()
    h.user.answer = lambda tx, request: tx.respond(request.make_response(180, to_tag="u"))
    server_invite(h)
    assert statuses(h.transport.take()) == [180]


def test_delayed_100_trying_unless_the_tu_answers_within_200_ms() -> None:
    h = harness(trying_delay=0.2)
    quiet = server_invite(h)
    assert h.transport.sent == []
    h.clock.advance(0.2)
    assert statuses(h.transport.take()) == [100]
    assert quiet.last_response is not None
    busy = server_invite(h, incoming(branch="z9hG4bKsecond"))
    h.clock.advance(0.1)
    busy.respond(busy.request.make_response(180, to_tag="u"))
    h.clock.advance(1.0)
    assert statuses(h.transport.take()) == [180]
    # A retransmitted INVITE before the 200 ms makes the 100 due at once.
    third = server_invite(h, incoming(branch="z9hG4bKthird"))
    h.clock.advance(0.05)
    h.layer.receive(incoming(branch="z9hG4bKthird"), PEER)
    assert statuses(h.transport.take()) == [100]
    h.clock.advance(1.0)
    assert h.transport.sent == [] and third.last_response is not None


def test_retransmitted_invite_gets_the_last_provisional_response() -> None:
    h = harness()
    tx = server_invite(h)
    tx.respond(tx.request.make_response(180, to_tag="u"))
    h.transport.take()
    h.layer.receive(incoming(), PEER)
    [again] = h.transport.take()
    assert again.status == 180 and again.to.tag == "u"
    assert h.user.kinds() == ["request"]  # the retransmission is absorbed


def test_timer_g_retransmits_a_non_2xx_final_until_the_ack() -> None:
    h = harness()
    tx = server_invite(h)
    h.transport.take()
    tx.respond(tx.request.make_response(486, to_tag="u"))
    assert isinstance(tx.state, ServerInviteCompleted)
    h.clock.advance(12)
    assert h.transport.times() == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5]  # T1 doubling to T2
    assert all(m.status == 486 for m in h.transport.take())
    h.layer.receive(incoming(), PEER)  # retransmitted INVITE: the final again
    assert statuses(h.transport.take()) == [486]
    h.layer.receive(incoming("ACK", to_tag="u", cseq_method="ACK"), PEER)
    assert isinstance(tx.state, ServerInviteConfirmed)
    h.clock.advance(4.9)
    h.layer.receive(incoming("ACK", to_tag="u"), PEER)  # absorbed in Confirmed
    assert h.transport.sent == [] and h.user.kinds() == ["request"]
    h.clock.advance(0.1)  # Timer I: T4
    assert tx.terminated and h.layer.active_transactions == 0
    assert h.clock.pending() == []


def test_timer_h_gives_up_waiting_for_the_ack() -> None:
    h = harness()
    tx = server_invite(h)
    tx.respond(tx.request.make_response(404, to_tag="u"))
    h.clock.advance(31.99)
    assert not tx.terminated
    h.clock.advance(0.01)
    assert h.user.events[-1] == ("timeout", tx, None)
    assert tx.terminated and h.clock.pending() == []
    assert tx.respond(tx.request.make_response(500, to_tag="u")) is False


def test_over_tcp_no_timer_g_and_the_ack_ends_the_transaction() -> None:
    h = harness()
    h.layer.receive(incoming(via="SIP/2.0/TCP 198.51.100.7:5060"), PEER_TCP)
    tx = h.user.events[-1][1]
    assert isinstance(tx, ServerTransaction) and tx.destination == PEER_TCP
    tx.respond(tx.request.make_response(486, to_tag="u"))
    h.clock.advance(10)
    assert statuses(h.transport.take()) == [100, 486]
    h.layer.receive(incoming("ACK", to_tag="u", via="SIP/2.0/TCP 198.51.100.7:5060"), PEER_TCP)
    assert tx.terminated and h.clock.pending() == []  # Timer I is 0


def test_2xx_moves_to_accepted_and_timer_l_absorbs_invite_retransmissions() -> None:
    h = harness()
    tx = server_invite(h)
    h.transport.take()
    ok = tx.request.make_response(200, to_tag="u")
    assert tx.respond(ok)
    assert isinstance(tx.state, ServerInviteAccepted)
    h.clock.advance(0.5)
    assert statuses(h.transport.take()) == [200]  # the transaction never retransmits a 2xx
    h.layer.receive(incoming(), PEER)  # INVITE retransmission: absorbed, not to the TU
    assert h.transport.sent == [] and h.user.kinds() == ["request"]
    assert tx.respond(ok)  # the TU's own 2xx retransmission goes out
    assert tx.respond(tx.request.make_response(500, to_tag="u")) is False
    assert statuses(h.transport.take()) == [200]
    ack = incoming("ACK", branch="z9hG4bKack2xx", to_tag="u")
    h.layer.receive(ack, PEER)
    assert h.user.events[-1] == ("request", None, ack)
    h.clock.advance(31.5)  # Timer L: 64*T1 after the 2xx
    assert tx.terminated and h.layer.active_transactions == 0
    assert h.clock.pending() == []


def test_an_ack_with_the_invite_branch_in_accepted_goes_to_the_tu() -> None:
    h = harness()
    tx = server_invite(h)
    tx.respond(tx.request.make_response(200, to_tag="u"))
    ack = incoming("ACK", to_tag="u")  # same branch as the INVITE (RFC 2543 habit)
    h.layer.receive(ack, PEER)
    assert h.user.events[-1] == ("request", None, ack)
    assert isinstance(tx.state, ServerInviteAccepted)


def test_responses_follow_received_and_rport() -> None:
    h = harness()
    request = incoming(via="SIP/2.0/UDP 10.0.0.5:5062;rport=40123;received=203.0.113.9")
    tx = server_invite(h, request)
    assert tx.destination == Destination("udp", "203.0.113.9", 40123)
    assert h.transport.sent[0].destination == tx.destination


# -- server non-INVITE ------------------------------------------------------------------------


def test_non_invite_server_absorbs_then_answers_retransmissions_until_timer_j() -> None:
    h = harness()
    h.layer.receive(incoming("BYE"), PEER)
    tx = h.user.events[0][1]
    assert isinstance(tx, ServerTransaction) and isinstance(tx.state, ServerTrying)
    assert h.transport.sent == []  # no 100 for a non-INVITE
    h.layer.receive(incoming("BYE"), PEER)  # absorbed in Trying
    assert h.transport.sent == [] and h.user.kinds() == ["request"]
    tx.respond(tx.request.make_response(100))
    assert isinstance(tx.state, ServerProceeding)
    h.layer.receive(incoming("BYE"), PEER)
    tx.respond(tx.request.make_response(200, to_tag="u"))
    assert isinstance(tx.state, ServerCompleted)
    assert tx.respond(tx.request.make_response(500, to_tag="u")) is False
    h.clock.advance(20)
    h.layer.receive(incoming("BYE"), PEER)
    assert statuses(h.transport.take()) == [100, 100, 200, 200]
    h.clock.advance(11.99)
    assert not tx.terminated
    h.clock.advance(0.01)  # Timer J: 64*T1
    assert isinstance(tx.state, ServerTerminated) and h.layer.active_transactions == 0
    h.layer.receive(incoming("BYE"), PEER)  # a new transaction now
    assert h.user.kinds() == ["request", "request"]


def test_timer_j_is_zero_over_tcp() -> None:
    h = harness()
    h.layer.receive(incoming("OPTIONS", via="SIP/2.0/TCP 198.51.100.7:5060"), PEER_TCP)
    tx = h.user.events[0][1]
    assert isinstance(tx, ServerTransaction)
    tx.respond(tx.request.make_response(200, to_tag="u"))
    assert tx.terminated and h.clock.pending() == []


# -- CANCEL ------------------------------------------------------------------------------------


def test_cancel_matching_an_invite_goes_to_the_tu_with_the_invite_transaction() -> None:
    h = harness()
    invite = server_invite(h)
    invite.respond(invite.request.make_response(180, to_tag="u"))
    h.transport.take()
    h.layer.receive(incoming("CANCEL"), PEER)
    kind, cancel, request = h.user.events[-1]
    assert kind == "request" and isinstance(cancel, ServerTransaction)
    assert request.method == "CANCEL" and cancel.cancelled is invite
    cancel.respond(cancel.request.make_response(200, to_tag="u"))
    invite.respond(invite.request.make_response(487, to_tag="u"))
    assert statuses(h.transport.take()) == [200, 487]
    h.layer.receive(incoming("CANCEL"), PEER)  # retransmitted CANCEL: its 200 again
    assert statuses(h.transport.take()) == [200]
    h.layer.receive(incoming("ACK", to_tag="u", cseq_method="ACK"), PEER)
    assert isinstance(invite.state, ServerInviteConfirmed)
    assert h.user.kinds() == ["request", "request"]


def test_cancel_matching_no_invite_is_answered_481_by_the_layer() -> None:
    h = harness()
    cancel = incoming("CANCEL", branch="z9hG4bKnothing")
    h.layer.receive(cancel, PEER)
    [reply] = h.transport.take()
    assert reply.status == 481 and reply.to.tag and reply.cseq.method == "CANCEL"
    assert h.user.events == [("request", None, cancel)]
    h.layer.receive(incoming("CANCEL", branch="z9hG4bKnothing"), PEER)
    assert statuses(h.transport.take()) == [481]
    assert len(h.user.events) == 1


def test_cancel_from_another_sent_by_does_not_match() -> None:
    h = harness()
    server_invite(h)
    h.transport.take()
    h.layer.receive(incoming("CANCEL", via="SIP/2.0/UDP 198.51.100.8:5060"), PEER)
    assert statuses(h.transport.take()) == [481]


# -- RFC 2543 matching --------------------------------------------------------------------------


def test_rfc2543_requests_match_on_uri_tags_call_id_cseq_and_via() -> None:
    h = harness()
    tx = server_invite(h, incoming(branch=None))
    tx.respond(tx.request.make_response(486, to_tag="u"))
    h.transport.take()
    h.layer.receive(incoming(branch=None), PEER)  # retransmission
    assert statuses(h.transport.take()) == [486]
    h.layer.receive(incoming(branch=None, cseq=2), PEER)  # another CSeq: a new request
    assert h.user.kinds() == ["request", "request"]
    stray_ack = incoming("ACK", branch=None, to_tag="other")
    h.layer.receive(stray_ack, PEER)  # the To tag is not the one we sent
    assert h.user.events[-1] == ("request", None, stray_ack)
    h.layer.receive(incoming("ACK", branch=None, to_tag="u"), PEER)
    assert isinstance(tx.state, ServerInviteConfirmed)


def test_rfc2543_branch_without_the_cookie_and_cancel() -> None:
    h = harness()
    tx = server_invite(h, incoming(branch="1234abcd"))
    h.layer.receive(incoming("CANCEL", branch="1234abcd"), PEER)
    cancel = h.user.events[-1][1]
    assert isinstance(cancel, ServerTransaction) and cancel.cancelled is tx
    other = incoming(branch="1234abcd", via="SIP/2.0/UDP 198.51.100.9:5060")
    h.layer.receive(other, PEER)  # a different top Via: a different transaction
    assert h.user.events[-1][2] is other


def test_a_bare_magic_cookie_is_not_an_rfc3261_branch() -> None:
    h = harness()
    first = server_invite(h, incoming(branch="z9hG4bK"))
    second = server_invite(h, incoming(branch="z9hG4bK", cseq=2))
    assert first is not second


# -- life cycle ------------------------------------------------------------------------------


def test_every_transaction_leaves_the_tables_when_terminated() -> None:
    h = harness()
    h.user.answer = lambda tx, request: tx.respond(
        request.make_response(200 if request.method != "INVITE" else 486, to_tag="u")
    )
    for n in range(5):
        h.layer.receive(incoming("INVITE", branch=f"z9hG4bKi{n}"), PEER)
        h.layer.receive(incoming("ACK", branch=f"z9hG4bKi{n}", to_tag="u"), PEER)
        h.layer.receive(incoming("BYE", branch=f"z9hG4bKb{n}", cseq=2), PEER)
        out = h.layer.send_request(outgoing("OPTIONS", cseq=n + 10), PEER)
        h.layer.receive(answer(out.request, 200), PEER)
    assert h.layer.active_transactions == 15
    h.clock.advance(64)
    assert h.layer.active_transactions == 0
    assert h.clock.pending() == []


def test_state_names_follow_the_rfc() -> None:
    names = {
        cls.name
        for cls in (
            ClientInviteCalling,
            ClientInviteProceeding,
            ClientInviteCompleted,
            ClientInviteAccepted,
            ClientTrying,
            ClientProceeding,
            ClientCompleted,
            ClientTerminated,
            ServerInviteProceeding,
            ServerInviteCompleted,
            ServerInviteConfirmed,
            ServerInviteAccepted,
            ServerTrying,
            ServerProceeding,
            ServerCompleted,
            ServerTerminated,
        )
    }
    assert names == {
        "Calling",
        "Proceeding",
        "Completed",
        "Accepted",
        "Trying",
        "Confirmed",
        "Terminated",
    }


def test_the_tu_can_end_an_invite_stuck_in_proceeding() -> None:
    h = harness()
    tx = h.layer.send_request(outgoing(), PEER)
    h.layer.receive(answer(tx.request, 180), PEER)
    h.clock.advance(600)
    assert isinstance(tx.state, ClientInviteProceeding)  # no RFC timer ends it
    tx.terminate()
    assert tx.terminated and h.layer.active_transactions == 0
    tx.terminate()
    assert h.user.kinds() == ["response"]
