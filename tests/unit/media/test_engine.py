"""The engine's SIP call control, driven message by message with a manual clock.

A fake wire stands in for the sockets: the test plays the peers by feeding parsed SIP
messages into the transaction layer and reads what the engine sends. Every timer the
engine's sessions arm (2xx retransmission, the ACK give-up, glare back-off, originate
timeouts) is driven by advancing the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from media.engine import DirectoryEntry, Engine, EngineConfig, TrunkConfig
from media.protocol import check_event
from media.sip.clock import ManualClock, TimerSettings
from media.sip.digest import DigestClient, ha1
from media.sip.message import Request, Response, parse_message
from media.sip.offer_answer import make_offer
from media.sip.session import LocalMedia
from media.sip.transport import Destination
from media.sip.uri import SipUri

ENGINE = ("127.0.0.1", 5060)
PHONE = Destination("udp", "127.0.0.1", 5062)
CARRIER = Destination("udp", "127.0.0.1", 5070)
DOMAIN = "127.0.0.1"
T1 = 0.5


@dataclass
class Wire:
    """What the engine sends, as parsed messages with their destinations."""

    sent: list[tuple[Request | Response, Destination]] = field(default_factory=list)
    local_via_host: str = ENGINE[0]
    local_via_port: int = ENGINE[1]

    def supports(self, transport: str) -> bool:
        return transport == "udp"

    def send(self, data: bytes, destination: Destination, on_error=None) -> None:
        self.sent.append((parse_message(data), destination))

    def take(self) -> list[Request | Response]:
        messages = [message for message, _ in self.sent]
        self.sent.clear()
        return messages


class Ports:
    def __init__(self) -> None:
        self.next = 20000
        self.released: list[int] = []

    def take(self) -> LocalMedia:
        self.next += 2
        return LocalMedia("127.0.0.1", self.next)

    def release(self, media: LocalMedia) -> None:
        self.released.append(media.port)


class Directory:
    def __init__(self) -> None:
        self.entries = {
            ext: DirectoryEntry(
                "AC1",
                ext,
                DOMAIN,
                {alg: ha1(ext, DOMAIN, f"secret-{ext}", alg) for alg in ("MD5", "SHA-256")},
            )
            for ext in ("101", "102")
        }
        self.saved: list[tuple[str, str, int]] = []

    def extension(self, domain: str, user: str) -> DirectoryEntry | None:
        return self.entries.get(user) if domain == DOMAIN else None

    def owner_extension(self, owner: str, extension: str) -> DirectoryEntry | None:
        return self.entries.get(extension) if owner == "AC1" else None

    def save_bindings(self, owner: str, extension: str, bindings: list) -> None:
        self.saved.append((owner, extension, len(bindings)))


class Harness:
    def __init__(
        self, trunk: TrunkConfig | None = None, digest_algorithms: tuple[str, ...] = ("MD5",)
    ) -> None:
        self.clock = ManualClock(1000.0)
        self.wire = Wire()
        self.events: list[dict] = []
        self.directory = Directory()
        self.engine = Engine(
            EngineConfig(
                node="n1",
                trunk=trunk,
                secret=b"0123456789abcdef0123456789abcdef",
                timers=TimerSettings(t1=T1),
                digest_algorithms=digest_algorithms,
            ),
            directory=self.directory,
            emit=lambda event: self.events.append(check_event(event)),
            clock=self.clock,
            wall_clock=self.clock.now,
            transport=self.wire,
            media=Ports(),
        )
        self.seq: dict[str, int] = {}

    def deliver(self, message: Request | Response, source: Destination = PHONE) -> None:
        # Through bytes, as the transport would hand it over.
        self.engine.transactions.receive(parse_message(message.serialize()), source)

    def command(self, call: str, type_: str, **fields) -> None:
        self.seq[call] = self.seq.get(call, 0) + 1
        self.engine.execute({"v": 1, "call": call, "seq": self.seq[call], "type": type_, **fields})

    def event_types(self) -> list[str]:
        return [event["type"] for event in self.events]


def sdp(port: int = 6000, direction: str = "sendrecv") -> bytes:
    return (
        make_offer("127.0.0.1", port, session_id=7, version=1, direction=direction)
        .serialize()
        .encode()
    )


_cseq = iter(range(1, 10_000))


def invite(
    *,
    user: str = "caller",
    to: str = "15550100",
    body: bytes | None = None,
    extra: list[tuple[str, str]] = (),
    call_id: str = "call-1",
    from_tag: str = "ft1",
    branch: str | None = None,
) -> Request:
    headers = [
        ("Via", f"SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK{branch or call_id}-{next(_cseq)}"),
        ("Max-Forwards", "70"),
        ("From", f'"Caller" <sip:{user}@{DOMAIN}>;tag={from_tag}'),
        ("To", f"<sip:{to}@{DOMAIN}>"),
        ("Call-ID", call_id),
        ("CSeq", "1 INVITE"),
        ("Contact", "<sip:caller@127.0.0.1:5062>"),
        ("Content-Type", "application/sdp"),
        *extra,
    ]
    return Request("INVITE", f"sip:{to}@{DOMAIN}", headers, sdp() if body is None else body)


def in_dialog(
    method: str, response: Response, cseq: int, *, body: bytes = b"", branch: str = ""
) -> Request:
    """A request from the caller inside the dialog `response` (our 2xx) established."""
    headers = [
        ("Via", f"SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK{method}{cseq}{branch}"),
        ("Max-Forwards", "70"),
        ("From", response.headers.get("From")),
        ("To", response.headers.get("To")),
        ("Call-ID", response.call_id),
        ("CSeq", f"{cseq} {method}"),
        ("Contact", "<sip:caller@127.0.0.1:5062>"),
    ]
    if body:
        headers.append(("Content-Type", "application/sdp"))
    return Request(method, "sip:engine@127.0.0.1:5060", headers, body)


def answered_call(h: Harness) -> tuple[str, Response]:
    h.deliver(invite())
    call = h.events[-1]["call"]
    h.wire.take()
    h.command(call, "answer")
    (ok,) = h.wire.take()
    h.deliver(in_dialog("ACK", ok, 1))
    return call, ok


# ------------------------------------------------------------------------ incoming


def test_an_incoming_call_rings_and_is_announced() -> None:
    h = Harness()
    h.deliver(invite())
    (ringing,) = h.wire.take()  # a 180 at once makes the 100 Trying unnecessary
    assert ringing.status == 180
    assert ringing.to.tag
    (event,) = h.events
    assert event["type"] == "incoming"
    assert (event["from"], event["to"], event["origin"]) == ("caller", "15550100", "external")
    assert event["display_name"] == "Caller"


def test_our_2xx_is_retransmitted_until_the_ack() -> None:
    h = Harness()
    h.deliver(invite())
    call = h.events[-1]["call"]
    h.wire.take()
    h.command(call, "answer")
    (ok,) = h.wire.take()
    assert ok.status == 200 and b"m=audio" in ok.body
    times = []
    for _ in range(40):
        h.clock.advance(0.25)
        for message in h.wire.take():
            assert message.status == 200
            times.append(h.clock.now() - 1000.0)
    # T1, then doubling (1, 2, 4) capped at T2 = 4 s: 0.5, 1.5, 3.5, 7.5 ...
    assert times[:4] == [0.5, 1.5, 3.5, 7.5]
    h.deliver(in_dialog("ACK", ok, 1))
    h.clock.advance(20)
    assert h.wire.take() == []
    assert h.event_types() == ["incoming", "answered"]


def test_without_an_ack_the_call_is_ended_with_a_bye_after_64_t1() -> None:
    h = Harness()
    h.deliver(invite())
    call = h.events[-1]["call"]
    h.wire.take()
    h.command(call, "answer")
    h.clock.advance(64 * T1 - 0.01)
    assert all(m.status == 200 for m in h.wire.take() if isinstance(m, Response))
    h.clock.advance(0.02)
    (bye,) = [m for m in h.wire.take() if isinstance(m, Request)]
    assert bye.method == "BYE"
    h.deliver(bye.make_response(200))
    assert h.events[-1]["type"] == "hangup" and h.events[-1]["cause"] == "failed"


def test_cancel_before_the_answer() -> None:
    h = Harness()
    request = invite()
    h.deliver(request)
    h.wire.take()
    cancel = Request(
        "CANCEL",
        request.uri_text,
        [
            ("Via", request.headers.get("Via")),
            ("Max-Forwards", "70"),
            ("From", request.headers.get("From")),
            ("To", request.headers.get("To")),
            ("Call-ID", request.call_id),
            ("CSeq", "1 CANCEL"),
        ],
    )
    h.deliver(cancel)
    statuses = sorted((m.status, m.cseq.method) for m in h.wire.take())
    assert statuses == [(200, "CANCEL"), (487, "INVITE")]
    assert h.events[-1]["type"] == "hangup" and h.events[-1]["sip_code"] == 487


@pytest.mark.parametrize(
    ("reason", "status"), [("busy", 486), ("forbidden", 403), ("rejected", 603)]
)
def test_reject(reason: str, status: int) -> None:
    h = Harness()
    h.deliver(invite())
    call = h.events[-1]["call"]
    h.wire.take()
    h.command(call, "reject", reason=reason)
    (final,) = h.wire.take()
    assert final.status == status


def test_bye_from_the_caller_ends_the_call() -> None:
    h = Harness()
    _call, ok = answered_call(h)
    h.deliver(in_dialog("BYE", ok, 2))
    (reply,) = h.wire.take()
    assert reply.status == 200
    assert h.events[-1] == {**h.events[-1], "type": "hangup", "cause": "remote"}
    assert h.engine.legs == {}


def test_a_bye_before_the_ack_ends_a_call_that_was_answered() -> None:
    # Seen with SIPp -lost: the caller's ACK is lost and its BYE arrives first.
    h = Harness()
    h.deliver(invite())
    call = h.events[-1]["call"]
    h.wire.take()
    h.command(call, "answer")
    (ok,) = h.wire.take()
    assert h.event_types() == ["incoming", "answered"]
    h.deliver(in_dialog("BYE", ok, 2))
    assert [m.status for m in h.wire.take()] == [200]
    assert h.event_types() == ["incoming", "answered", "hangup"]
    assert h.events[-1]["cause"] == "remote"
    h.clock.advance(64 * T1)
    assert h.wire.take() == []  # no more 2xx retransmissions, no BYE of ours
    assert h.engine.legs == {}


def test_our_hangup_sends_bye() -> None:
    h = Harness()
    call, ok = answered_call(h)
    h.command(call, "hangup")
    (bye,) = h.wire.take()
    assert bye.method == "BYE"
    assert bye.to.tag == ok.from_.tag and bye.from_.tag == ok.to.tag
    assert bye.uri_text == "sip:caller@127.0.0.1:5062"
    h.deliver(bye.make_response(200))
    assert h.events[-1]["cause"] == "local"


def test_a_request_in_an_unknown_dialog_gets_481() -> None:
    h = Harness()
    _call, ok = answered_call(h)
    stranger = in_dialog("BYE", ok, 2)
    stranger.headers.set("Call-ID", "nobody")
    h.deliver(stranger)
    assert h.wire.take()[0].status == 481


def test_options_and_unsupported_methods() -> None:
    h = Harness()
    options = invite()
    options.method = "OPTIONS"
    options.headers.set("CSeq", "1 OPTIONS")
    h.deliver(options)
    (reply,) = h.wire.take()
    assert reply.status == 200 and "INVITE" in reply.headers.get("Allow")
    message = invite()
    message.method = "MESSAGE"
    message.headers.set("CSeq", "1 MESSAGE")
    h.deliver(message)
    assert h.wire.take()[0].status == 405


# ------------------------------------------------------------------ hold, resume


def test_the_caller_holds_and_resumes() -> None:
    h = Harness()
    _call, ok = answered_call(h)
    h.deliver(in_dialog("INVITE", ok, 2, body=sdp(direction="sendonly")))
    (trying_or_ok, *rest) = h.wire.take()
    reply = rest[-1] if rest else trying_or_ok
    assert reply.status == 200 and b"a=recvonly" in reply.body
    h.deliver(in_dialog("ACK", ok, 2))
    assert h.events[-1]["type"] == "held" and h.events[-1]["by"] == "remote"
    h.deliver(in_dialog("INVITE", ok, 3, body=sdp(direction="sendrecv")))
    reply = h.wire.take()[-1]
    assert reply.status == 200 and b"a=sendrecv" in reply.body
    h.deliver(in_dialog("ACK", ok, 3))
    assert h.events[-1]["type"] == "resumed"


def test_we_hold_and_resume_by_reinvite() -> None:
    h = Harness()
    call, _ok = answered_call(h)
    h.command(call, "hold")
    (reinvite,) = h.wire.take()
    assert reinvite.method == "INVITE" and b"a=sendonly" in reinvite.body
    answer = reinvite.make_response(200)
    answer.headers.add("Content-Type", "application/sdp")
    answer.body = sdp(direction="recvonly")
    h.deliver(answer)
    (ack,) = h.wire.take()
    assert ack.method == "ACK" and ack.cseq.number == reinvite.cseq.number
    assert h.events[-1]["type"] == "held" and h.events[-1]["by"] == "local"
    h.command(call, "resume")
    (reinvite,) = h.wire.take()
    assert b"a=sendrecv" in reinvite.body


def test_glare_is_answered_491_and_our_reinvite_retried_after_the_back_off() -> None:
    h = Harness()
    call, ok = answered_call(h)
    h.command(call, "hold")
    (ours,) = h.wire.take()
    h.deliver(in_dialog("INVITE", ok, 2, body=sdp(direction="sendonly")))
    replies = [m for m in h.wire.take() if isinstance(m, Response)]
    assert replies[-1].status == 491
    h.deliver(ours.make_response(491))
    assert [m.method for m in h.wire.take()] == ["ACK"]  # sent by the INVITE transaction
    h.clock.advance(2.01)  # we are not the Call-ID's owner: 0-2 s
    retried = [m for m in h.wire.take() if isinstance(m, Request) and m.method == "INVITE"]
    assert len({m.cseq.number for m in retried}) == 1  # one new re-INVITE (and its Timer A)
    assert b"a=sendonly" in retried[0].body
    assert retried[0].cseq.number > ours.cseq.number


# -------------------------------------------------------------------- registrar


def register(
    *,
    user: str = "101",
    authorization: str | None = None,
    expires: int = 600,
    call_id: str = "reg-1",
    cseq: int = 1,
) -> Request:
    headers = [
        ("Via", f"SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKreg{cseq}{user}{call_id}"),
        ("Max-Forwards", "70"),
        ("From", f"<sip:{user}@{DOMAIN}>;tag=rt{cseq}"),
        ("To", f"<sip:{user}@{DOMAIN}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} REGISTER"),
        ("Contact", f"<sip:{user}-0x1@127.0.0.1:5062>;expires={expires}"),
    ]
    if authorization:
        headers.append(("Authorization", authorization))
    return Request("REGISTER", f"sip:{DOMAIN}", headers)


def authorize(h: Harness, user: str, password: str, *, cseq: int = 1) -> Response:
    h.deliver(register(user=user, cseq=cseq))
    (challenge,) = h.wire.take()
    assert challenge.status == 401
    value = DigestClient(user, password).authorize(
        "REGISTER", f"sip:{DOMAIN}", challenge.www_authenticate
    )
    h.deliver(register(user=user, authorization=value, cseq=cseq + 1))
    (reply,) = h.wire.take()
    return reply


def test_register_with_the_right_password() -> None:
    h = Harness()
    h.deliver(register())
    (challenge,) = h.wire.take()
    algorithms = [c.params["algorithm"] for c in challenge.www_authenticate]
    # MD5 alone by default: baresip and many desk phones fail on a second challenge
    # (tests/interop shows baresip registering).
    assert algorithms == ["MD5"]
    reply = authorize(h, "101", "secret-101")
    assert reply.status == 200
    assert reply.contact[0].expires == 600
    assert h.directory.saved == [("AC1", "101", 1)]
    assert h.engine.registrar.lookup("AC1/101")[0].received == ("127.0.0.1", 5062)


def test_sha_256_is_offered_first_when_configured_and_used() -> None:
    h = Harness(digest_algorithms=("SHA-256", "MD5"))
    h.deliver(register())
    (challenge,) = h.wire.take()
    assert [c.params["algorithm"] for c in challenge.www_authenticate] == ["SHA-256", "MD5"]
    value = DigestClient("101", "secret-101").authorize(
        "REGISTER", f"sip:{DOMAIN}", challenge.www_authenticate
    )
    assert "algorithm=SHA-256" in value
    h.deliver(register(authorization=value, cseq=2))
    (reply,) = h.wire.take()
    assert reply.status == 200


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer() -> None:
    h = Harness()
    assert authorize(h, "101", "wrong").status == 403
    assert authorize(h, "999", "secret-999", cseq=10).status == 403
    assert h.directory.saved == []


def test_repeated_failures_from_one_source_are_throttled() -> None:
    h = Harness()
    for attempt in range(5):
        authorize(h, "101", "wrong", cseq=10 * attempt + 1)
    h.deliver(register(cseq=99))
    (reply,) = h.wire.take()
    assert reply.status == 403  # no challenge any more, even with nothing wrong yet


def test_an_expired_nonce_is_challenged_again_as_stale() -> None:
    h = Harness()
    h.deliver(register())
    (challenge,) = h.wire.take()
    value = DigestClient("101", "secret-101").authorize(
        "REGISTER", f"sip:{DOMAIN}", challenge.www_authenticate
    )
    h.clock.advance(301)
    h.deliver(register(authorization=value, cseq=2))
    (reply,) = h.wire.take()
    assert reply.status == 401
    assert any(c.params.get("stale", "").lower() == "true" for c in reply.www_authenticate)


def test_an_extensions_invite_is_challenged_then_announced_with_its_account() -> None:
    h = Harness()
    h.deliver(invite(user="101", to="102"))
    challenge = h.wire.take()[-1]
    assert challenge.status == 407
    value = DigestClient("101", "secret-101").authorize(
        "INVITE", f"sip:102@{DOMAIN}", challenge.proxy_authenticate
    )
    h.deliver(
        invite(user="101", to="102", call_id="call-2", extra=[("Proxy-Authorization", value)])
    )
    event = h.events[-1]
    assert (event["origin"], event["account"], event["extension"]) == ("extension", "AC1", "101")


# -------------------------------------------------------------------- originate


def registered(h: Harness, contact_ports: list[int]) -> None:
    for index, port in enumerate(contact_ports):
        request = register(call_id=f"reg-{port}", cseq=1)
        request.headers.set("Contact", f"<sip:101-{index}@127.0.0.1:{port}>;expires=600")
        h.deliver(request, Destination("udp", "127.0.0.1", port))
        (challenge,) = h.wire.take()
        value = DigestClient("101", "secret-101").authorize(
            "REGISTER", f"sip:{DOMAIN}", challenge.www_authenticate
        )
        again = register(call_id=f"reg-{port}", cseq=2, authorization=value)
        again.headers.set("Contact", f"<sip:101-{index}@127.0.0.1:{port}>;expires=600")
        h.deliver(again, Destination("udp", "127.0.0.1", port))
        assert h.wire.take()[0].status == 200


def test_an_extension_rings_on_every_contact_and_the_first_answer_wins() -> None:
    h = Harness()
    registered(h, [5062, 5064])
    h.command(
        "CA" + "9" * 32,
        "originate",
        target={"extension": "101", "account": "AC1"},
        **{"from": {"user": "+15550111"}},
    )
    invites = [(m, d) for m, d in h.wire.sent if isinstance(m, Request)]
    h.wire.sent.clear()
    assert sorted(d.port for _, d in invites) == [5062, 5064]
    assert {m.uri_text for m, _ in invites} == {
        "sip:101-0@127.0.0.1:5062",
        "sip:101-1@127.0.0.1:5064",
    }
    (first, _), (second, _) = invites
    for request in (first, second):
        h.deliver(request.make_response(180, to_tag="tt" + request.call_id[:4]))
    ok = first.make_response(200, to_tag="tt" + first.call_id[:4])
    ok.headers.add("Contact", "<sip:101-0@127.0.0.1:5062>")
    ok.headers.add("Content-Type", "application/sdp")
    ok.body = sdp(7000)
    h.deliver(ok)
    sent = h.wire.take()
    assert {m.method for m in sent} == {"ACK", "CANCEL"}
    (cancel,) = [m for m in sent if m.method == "CANCEL"]
    assert cancel.call_id == second.call_id
    assert h.event_types() == ["ringing", "answered"]
    assert h.events[-1]["remote_rtp"] == "127.0.0.1:7000"


def test_a_retransmitted_2xx_is_acknowledged_again() -> None:
    h = Harness()
    registered(h, [5062])
    h.command("CA" + "4" * 32, "originate", target={"extension": "101", "account": "AC1"})
    (request,) = [m for m in h.wire.take() if isinstance(m, Request)]
    ok = request.make_response(200, to_tag="answerer")
    ok.headers.add("Contact", "<sip:101-0@127.0.0.1:5062>")
    ok.headers.add("Content-Type", "application/sdp")
    ok.body = sdp(7000)
    h.deliver(ok)
    h.deliver(ok)  # our first ACK was lost
    acks = [m for m in h.wire.take() if isinstance(m, Request) and m.method == "ACK"]
    assert len(acks) == 2 and acks[0].cseq.number == acks[1].cseq.number
    assert h.event_types() == ["answered"]


def test_an_extension_busy_everywhere_reports_busy() -> None:
    h = Harness()
    registered(h, [5062, 5064])
    h.command("CA" + "8" * 32, "originate", target={"extension": "101", "account": "AC1"})
    for request in [m for m in h.wire.take() if isinstance(m, Request)]:
        h.deliver(request.make_response(486, to_tag="x"))
    assert h.events[-1]["type"] == "hangup"
    assert (h.events[-1]["cause"], h.events[-1]["sip_code"]) == ("busy", 486)


def test_an_unregistered_extension_fails_at_once() -> None:
    h = Harness()
    h.command("CA" + "7" * 32, "originate", target={"extension": "102", "account": "AC1"})
    assert h.events[-1]["type"] == "hangup" and h.events[-1]["sip_code"] == 480


def test_a_number_goes_through_the_trunk_answering_its_challenge() -> None:
    trunk = TrunkConfig(SipUri.parse("sip:127.0.0.1:5070"), "acct", "trunk-pass")
    h = Harness(trunk)
    h.command(
        "CA" + "6" * 32,
        "originate",
        target={"number": "+14155550100"},
        **{"from": {"user": "+15550100"}},
    )
    (first, destination) = h.wire.sent[0]
    h.wire.sent.clear()
    assert destination == CARRIER
    assert first.uri_text == "sip:+14155550100@127.0.0.1:5070"
    challenge = first.make_response(407, to_tag="c1")
    challenge.headers.add(
        "Proxy-Authenticate", 'Digest realm="carrier", nonce="abc", qop="auth", algorithm=MD5'
    )
    h.deliver(challenge, CARRIER)
    sent = h.wire.take()
    (_ack,) = [m for m in sent if m.method == "ACK"]
    (retry,) = [m for m in sent if m.method == "INVITE"]
    assert retry.call_id == first.call_id and retry.cseq.number == first.cseq.number + 1
    credentials = retry.proxy_authorization[0]
    assert credentials.params["username"] == "acct" and credentials.params["realm"] == "carrier"


def test_a_call_from_the_trunk_is_trusted_without_a_challenge() -> None:
    trunk = TrunkConfig(SipUri.parse("sip:127.0.0.1:5070"))
    h = Harness(trunk)
    h.deliver(invite(user="101"), CARRIER)  # even if it claims to be an extension
    assert h.events[-1]["origin"] == "trunk"


def test_a_silent_destination_times_out_as_no_answer() -> None:
    h = Harness(TrunkConfig(SipUri.parse("sip:127.0.0.1:5070")))
    h.command("CA" + "5" * 32, "originate", target={"number": "+14155550100"}, timeout=60)
    h.clock.advance(64 * T1 + 1)
    assert h.events[-1]["type"] == "hangup" and h.events[-1]["cause"] == "no-answer"


def test_commands_run_in_seq_order_once() -> None:
    h = Harness()
    h.deliver(invite())
    call = h.events[-1]["call"]
    h.wire.take()
    h.engine.execute({"v": 1, "call": call, "seq": 2, "type": "hangup"})
    assert h.wire.take() == []
    h.engine.execute({"v": 1, "call": call, "seq": 1, "type": "answer"})
    h.engine.execute({"v": 1, "call": call, "seq": 1, "type": "answer"})
    sent = h.wire.take()
    assert [m.status if isinstance(m, Response) else m.method for m in sent] == [200, "BYE"]


def test_a_pause_ends_after_its_length_unless_the_call_ends_first() -> None:
    h = Harness()
    call, ok = answered_call(h)
    h.command(call, "pause", ref="r1", length=2)
    h.clock.advance(1.9)
    assert h.event_types()[-1] == "answered"
    h.clock.advance(0.2)
    assert h.events[-1]["type"] == "play_done" and h.events[-1]["ref"] == "r1"
    h.command(call, "pause", ref="r2", length=2)
    h.deliver(in_dialog("BYE", ok, 2))
    h.clock.advance(5)
    assert h.event_types()[-1] == "hangup"


def test_an_originated_leg_with_a_time_limit_ends_that_long_after_its_answer() -> None:
    h = Harness(TrunkConfig(SipUri.parse("sip:127.0.0.1:5070")))
    h.command(
        "CA" + "7" * 32, "originate", target={"number": "+15551234"}, timeout=30, time_limit=5
    )
    (invite_,) = [m for m in h.wire.take() if isinstance(m, Request)]
    ok = invite_.make_response(200, to_tag="far")
    ok.headers.add("Contact", "<sip:carrier@127.0.0.1:5070>")
    ok.headers.add("Content-Type", "application/sdp")
    ok.body = sdp(7000)
    h.deliver(ok, CARRIER)
    assert h.event_types()[-1] == "answered"
    h.wire.take()
    h.clock.advance(4.9)
    assert [m for m in h.wire.take() if isinstance(m, Request) and m.method == "BYE"] == []
    h.clock.advance(0.2)
    assert [m.method for m in h.wire.take() if isinstance(m, Request)] == ["BYE"]
