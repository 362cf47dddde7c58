"""Our SIP engine against real SIP peers: SIPp and baresip on loopback.

The engine runs in-process (`EngineHost`) with a controller playing the worker's part
through the command/event protocol, or as the real `manage.py media` + `manage.py
worker` processes (`Platform`) where the worker's routing decision is what is tested.
Everything asserted here is what the peers saw and said, plus the protocol events the
engine emitted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from store import bins, numbers
from tests.conftest import AccountCredentials, Services
from tests.interop.conftest import BaresipFactory, SippFactory
from tests.interop.hosts import (
    Bridge,
    EngineHost,
    Platform,
    answer_everything,
    running_platform,
)
from tests.interop.peers.baresip import Account
from tests.interop.peers.ports import PortAllocator
from tests.interop.peers.sipp import scenario

pytestmark = pytest.mark.interop

PASSWORDS = {"101": "pw-101-secret", "102": "pw-102-secret", "103": "pw-103-secret"}


@pytest.fixture
def ports() -> Iterator[PortAllocator]:
    with PortAllocator() as allocator:
        yield allocator


def engine_host(ports: PortAllocator, **options) -> EngineHost:
    rtp = ports.block(64)
    return EngineHost(ports.port(), rtp_ports=(rtp.first, rtp.last), **options)


@pytest.fixture
def hosts(ports: PortAllocator) -> Iterator[list[EngineHost]]:
    made: list[EngineHost] = []
    yield made
    for host in made:
        host.stop()


def of_type(host: EngineHost, type_: str) -> list[dict]:
    return [event for event in host.history if event["type"] == type_]


def wait_until(condition, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def direction(sdp: str) -> str:
    for attribute in ("sendonly", "recvonly", "inactive", "sendrecv"):
        if f"a={attribute}" in sdp:
            return attribute
    return "sendrecv"


# --- SIPp


def test_builtin_uac_places_200_calls_and_all_complete(
    sipp: SippFactory, ports: PortAllocator, hosts: list[EngineHost]
) -> None:
    host = engine_host(ports, controller=answer_everything)
    hosts.append(host)
    address = f"127.0.0.1:{host.port}"

    result = sipp("uac", remote=address, calls=200, rate=100, limit=50).run(timeout=60)

    assert result.ok, result.summary()
    assert result.successful_calls == 200
    wait_until(lambda: len(of_type(host, "hangup")) == 200, what="200 hangup events")
    assert {e["origin"] for e in of_type(host, "incoming")} == {"external"}
    assert len(of_type(host, "answered")) == 200
    assert {(e["cause"], e["sip_code"]) for e in of_type(host, "hangup")} == {("remote", None)}
    assert host.engine.legs == {}


def test_ten_percent_loss_completes_by_retransmission(
    sipp: SippFactory, ports: PortAllocator, hosts: list[EngineHost]
) -> None:
    host = engine_host(ports, controller=answer_everything)
    hosts.append(host)

    result = sipp("uac", remote=f"127.0.0.1:{host.port}", calls=40, rate=20, lost=10).run(
        timeout=120
    )

    assert result.successful_calls == 40, result.summary()
    assert result.failed_calls == 0, result.summary()
    assert result.retransmissions > 0, result.summary()
    # Every call the engine saw was answered once, however often its INVITE came.
    incoming = of_type(host, "incoming")
    assert len(incoming) == len({e["sip_call_id"] for e in incoming}) == 40
    assert len(of_type(host, "answered")) == 40


def test_trunk_receives_an_outbound_call_and_both_sides_tear_down(
    sipp: SippFactory, ports: PortAllocator, hosts: list[EngineHost]
) -> None:
    trunk = sipp(scenario("uas_trunk"), auto_answer=True).start()
    host = engine_host(ports, trunk=f"sip:{trunk.address}")
    hosts.append(host)
    call = "CA" + uuid.uuid4().hex

    host.command(
        call,
        "originate",
        target={"number": "+14155550100"},
        timeout=10,
        **{"from": {"user": "+15550100"}},
    )
    host.wait_for(lambda e: e["call"] == call and e["type"] == "answered")
    host.command(call, "hangup")
    hangup = host.wait_for(lambda e: e["call"] == call and e["type"] == "hangup")

    assert hangup["cause"] == "local"
    wait_until(lambda: trunk.received("BYE"), what="the trunk to receive BYE")
    time.sleep(0.5)
    outcome = trunk.stop(grace=0.0)
    assert (outcome.failed_calls, outcome.unexpected_messages) == (0, 0), outcome.summary()
    [invite] = trunk.received("INVITE")
    assert invite.request_uri == f"sip:+14155550100@{trunk.address}"
    assert "sip:+15550100@" in (invite.header("From") or "")
    assert [m.cseq_method for m in trunk.sent(200)] == ["INVITE", "BYE"]
    assert [m.method for m in trunk.received() if m.method] == ["INVITE", "ACK", "BYE"]
    assert host.engine.legs == {}


def test_cancel_before_answer(
    sipp: SippFactory, ports: PortAllocator, hosts: list[EngineHost]
) -> None:
    host = engine_host(ports)  # no controller: calls ring until the caller gives up
    hosts.append(host)

    result = sipp(
        scenario("uac_cancel"),
        remote=f"127.0.0.1:{host.port}",
        calls=3,
        rate=10,
        duration_ms=300,
    ).run(timeout=30)

    assert result.ok, result.summary()
    assert result.successful_calls == 3
    wait_until(lambda: len(of_type(host, "hangup")) == 3, what="3 hangup events")
    # The caller gave up: a remote hangup, answered 487 Request Terminated.
    assert {(e["cause"], e["sip_code"]) for e in of_type(host, "hangup")} == {("remote", 487)}
    assert of_type(host, "answered") == []


def test_reinvite_hold_and_resume(
    sipp: SippFactory, ports: PortAllocator, hosts: list[EngineHost]
) -> None:
    host = engine_host(ports, controller=answer_everything)
    hosts.append(host)

    result = sipp(
        scenario("uac_hold_resume"), remote=f"127.0.0.1:{host.port}", calls=1, duration_ms=200
    ).run(timeout=30)

    assert result.ok, result.summary()  # the scenario checks each answer's direction
    held = of_type(host, "held")
    resumed = of_type(host, "resumed")
    assert [e["by"] for e in held] == ["remote"]
    assert [e["by"] for e in resumed] == ["remote"]
    assert held[0]["seq"] < resumed[0]["seq"]


def test_engine_holds_and_resumes_the_trunk(
    sipp: SippFactory, ports: PortAllocator, hosts: list[EngineHost]
) -> None:
    trunk = sipp(scenario("uas_trunk"), auto_answer=True).start()
    host = engine_host(ports, trunk=f"sip:{trunk.address}")
    hosts.append(host)
    call = "CA" + uuid.uuid4().hex

    host.command(call, "originate", target={"number": "15551234"}, timeout=10)
    host.wait_for(lambda e: e["call"] == call and e["type"] == "answered")
    host.command(call, "hold")
    assert host.wait_for(lambda e: e["call"] == call and e["type"] == "held")["by"] == "local"
    host.command(call, "resume")
    assert host.wait_for(lambda e: e["call"] == call and e["type"] == "resumed")["by"] == "local"
    host.command(call, "hangup")
    host.wait_for(lambda e: e["call"] == call and e["type"] == "hangup")

    wait_until(lambda: trunk.received("BYE"), what="the trunk to receive BYE")
    offers = [direction(m.body) for m in trunk.received("INVITE")]
    answers = [direction(m.body) for m in trunk.sent(200) if m.body]
    assert offers == ["sendrecv", "sendonly", "sendrecv"]
    assert answers == ["sendrecv", "recvonly", "sendrecv"]


# --- the whole platform: the worker decides who may call whom


@pytest.fixture
def platform(
    services: Services, tmp_path: Path, sipp: SippFactory
) -> Iterator[tuple[Platform, object]]:
    trunk = sipp(scenario("uas_trunk"), auto_answer=True).start()
    with running_platform(services, tmp_path, trunk_uri=f"sip:{trunk.address}") as running:
        yield running, trunk


def test_unauthenticated_invite_to_an_external_number_is_refused(
    platform: tuple[Platform, object],
    sipp: SippFactory,
    db,
    account: AccountCredentials,
    services: Services,
) -> None:
    running, trunk = platform
    address = f"127.0.0.1:{running.sip_port}"
    # A number of the account, so the same path is shown to let a call in.
    number = "+1555" + str(uuid.uuid4().int)[:7]
    with db.transaction() as conn:
        script = bins.save_bin(
            conn, account.sid, "hold", '<Response><Pause length="1"/></Response>'
        )
        numbers.set_number(
            conn,
            account.sid,
            number,
            voice_url=f"{services.settings().public_url}/bins/{script.sid}",
        )

    caller = sipp("uac", remote=address, calls=1, service="+14155550199")
    refused = caller.run(timeout=30)
    allowed = sipp("uac", remote=address, calls=1, service=number).run(timeout=30)

    assert refused.failed_calls == 1, refused.summary()
    statuses = [m.status for m in caller.received()]
    assert 403 in statuses, refused.summary()
    assert 200 not in statuses
    assert allowed.ok, allowed.summary() + running.tail()
    assert trunk.received("INVITE") == [], "an unauthenticated call reached the trunk"


# --- baresip


def registered_phone(
    baresip_factory: BaresipFactory,
    host: EngineHost,
    user: str,
    *,
    tone_hz: int = 440,
    password: str | None = None,
) -> object:
    registrar = f"127.0.0.1:{host.port}"
    return baresip_factory(
        user,
        tone_hz=tone_hz,
        account=Account(
            user=user,
            password=PASSWORDS[user] if password is None else password,
            registrar=registrar,
            outbound_proxy=f"sip:{registrar}",
            regint=60,
        ),
    )


def test_baresip_registers_with_the_right_password_and_not_a_wrong_one(
    baresip_factory: BaresipFactory, ports: PortAllocator, hosts: list[EngineHost]
) -> None:
    host = engine_host(ports, passwords=PASSWORDS)
    hosts.append(host)

    good = registered_phone(baresip_factory, host, "101")
    bad = registered_phone(baresip_factory, host, "102", password="not-the-password")

    assert good.registered(timeout=10)
    assert not bad.registered(timeout=3)
    assert list(host.directory.bindings) == ["101"]
    [binding] = host.directory.bindings["101"]
    assert binding.contact.startswith("sip:101")
    assert "102" not in host.directory.bindings


def test_baresip_calls_another_by_extension_holds_resumes_and_hangs_up(
    baresip_factory: BaresipFactory, ports: PortAllocator, hosts: list[EngineHost]
) -> None:
    host = engine_host(ports, passwords=PASSWORDS, controller=Bridge())
    hosts.append(host)
    alice = registered_phone(baresip_factory, host, "101", tone_hz=440)
    bob = registered_phone(baresip_factory, host, "102", tone_hz=1000)
    assert alice.registered() and bob.registered()

    alice.dial(f"sip:102@127.0.0.1:{host.port}")
    call_id = alice.wait_for("CALL_ESTABLISHED", timeout=15).call_id
    answered = bob.wait_for("CALL_ESTABLISHED", timeout=15)
    assert answered.direction == "incoming"
    [incoming] = of_type(host, "incoming")
    assert (incoming["origin"], incoming["extension"], incoming["to"]) == (
        "extension",
        "101",
        "102",
    )

    bob.wait_for("CALL_REMOTE_SDP", param="offer")  # the offer in our INVITE

    alice.hold()
    alice.wait_for("CALL_REMOTE_SDP", call_id=call_id, param="answer")
    bob.wait_for("CALL_REMOTE_SDP", param="offer")  # our re-INVITE putting bob on hold
    host.wait_for(lambda e: e["type"] == "held" and e["by"] == "local")
    assert [c.on_hold for c in alice.calls()] == [True]
    alice.resume()
    alice.wait_for("CALL_REMOTE_SDP", call_id=call_id, param="answer")
    bob.wait_for("CALL_REMOTE_SDP", param="offer")  # and taking bob back
    host.wait_for(lambda e: e["type"] == "resumed" and e["by"] == "local")
    assert [c.on_hold for c in alice.calls()] == [False]

    alice.hangup()
    alice.wait_for("CALL_CLOSED")
    bob.wait_for("CALL_CLOSED")
    held = [(e["by"]) for e in of_type(host, "held")]
    resumed = [(e["by"]) for e in of_type(host, "resumed")]
    assert held == resumed == ["remote", "local"]  # alice's leg by her, bob's leg by us
    wait_until(lambda: len(of_type(host, "hangup")) == 2, what="both legs to end")
    assert host.engine.legs == {}
