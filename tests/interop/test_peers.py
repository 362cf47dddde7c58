"""The interop harness proven against the peers themselves, before our engine exists.

SIPp against SIPp, baresip against baresip and baresip against SIPp, all on loopback:
if these pass, a later failure with our engine in the middle is the engine's.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.interop.conftest import BaresipFactory, SippFactory
from tests.interop.peers.baresip import Account
from tests.interop.peers.ports import PortAllocator, is_bound, is_free
from tests.interop.peers.sipp import Sipp, scenario
from tests.interop.peers.tones import active_seconds, has_tone, read_wav, segments

pytestmark = pytest.mark.interop

LOW_TONE = 440
HIGH_TONE = 1000


# --- SIPp against SIPp


def test_twenty_calls_from_builtin_uac_to_builtin_uas_all_succeed(sipp: SippFactory) -> None:
    callee = sipp("uas").start()

    caller = sipp("uac", remote=callee.address, calls=20, rate=50, limit=10).run(timeout=30)

    assert caller.ok, caller.summary()
    assert caller.successful_calls == 20
    assert caller.failed_calls == 0
    assert caller.retransmissions == 0
    assert caller.message_counts["0_INVITE_Sent"] == 20
    assert len(callee.received("INVITE")) == 20
    assert len({m.call_id for m in callee.received("BYE")}) == 20


def test_ten_percent_loss_is_recovered_by_retransmission(sipp: SippFactory) -> None:
    # Not the built-in uas: it aborts a call whose INVITE comes again after its 200
    # was lost (uas_trunk.xml explains why).
    trunk = sipp(scenario("uas_trunk")).start()

    caller = sipp("uac", remote=trunk.address, calls=20, rate=50, lost=10).run(timeout=60)

    assert caller.ok, caller.summary()
    assert caller.successful_calls == 20
    assert caller.retransmissions > 0, caller.summary()
    assert len({m.call_id for m in trunk.received("INVITE")}) == 20
    # Not every call of the callee ends cleanly: when the caller drops both its ACK and
    # its BYE, the built-in uac takes the callee's retransmitted 200 (to the INVITE)
    # for the 200 to its BYE and ends a call the callee still waits on.
    callee = trunk.stop(grace=0.0)
    assert callee.failed_calls == 0, callee.summary()
    assert callee.unexpected_messages == 0, callee.summary()


def test_cancel_while_ringing(sipp: SippFactory) -> None:
    callee = sipp(scenario("uas_noanswer")).start()

    caller = sipp(
        scenario("uac_cancel"), remote=callee.address, calls=3, rate=10, duration_ms=200
    ).run(timeout=30)

    assert caller.ok, caller.summary()
    assert caller.successful_calls == 3
    result = callee.stop(grace=2.0)
    assert result.ok, result.summary()
    assert result.successful_calls == 3
    cancels = callee.received("CANCEL")
    invites = callee.received("INVITE")
    assert len(cancels) == 3
    # RFC 3261 9.1: the CANCEL carries the INVITE's Via branch.
    assert {m.header("Via") for m in cancels} == {m.header("Via") for m in invites}
    assert sorted(m.status for m in callee.sent()) == (
        [100] * 3 + [180] * 3 + [200] * 3 + [487] * 3
    )


def test_hold_and_resume_against_trunk(sipp: SippFactory) -> None:
    trunk = sipp(scenario("uas_trunk"), rtp_echo=True).start()

    caller = sipp(scenario("uac_hold_resume"), remote=trunk.address, calls=1, duration_ms=100).run(
        timeout=30
    )

    assert caller.ok, caller.summary()
    answers = [m.body for m in trunk.sent(200) if m.body]
    assert [direction(body) for body in answers] == ["sendrecv", "recvonly", "sendrecv"]


def test_a_busy_callee_fails_the_builtin_uac(sipp: SippFactory) -> None:
    busy = sipp(scenario("uas_busy")).start()

    caller = sipp("uac", remote=busy.address, calls=2, rate=10).run(timeout=30)

    assert caller.failed_calls == 2
    assert not caller.ok
    assert "486" in caller.summary()
    assert busy.stop(grace=1.0).successful_calls == 2


def test_sipp_command_line_and_injection_file(tmp_path: Path) -> None:
    peer = Sipp(
        scenario("uac_cancel"),
        tmp_path,
        remote="127.0.0.1:5060",
        calls=3,
        rate=0.5,
        limit=2,
        lost=10,
        service="101",
        duration_ms=250,
        injection=[["alice", "secret"], ["bob", "hunter2"]],
        keys={"realm": "example.test"},
        variables={"digits": "12"},
        rtp_echo=True,
        auto_answer=True,
    )
    try:
        command = " ".join(peer.command())
    finally:
        peer.stop()

    assert command.startswith("sipp -sf uac_cancel.xml 127.0.0.1:5060 -i 127.0.0.1 ")
    for option in (
        f"-p {peer.port} -cp {peer.control_port}",
        f"-mi 127.0.0.1 -mp {peer.media_port}",
        "-m 3 -r 0.5 -l 2 -lost 10 -s 101 -d 250",
        f"-inf {tmp_path / 'injection.csv'}",
        "-key realm example.test -set digits 12 -rtp_echo -aa",
        "-trace_stat -stf stat.csv",
        "-trace_msg -message_file messages.log",
    ):
        assert option in command
    assert (tmp_path / "injection.csv").read_text() == "SEQUENTIAL\nalice;secret\nbob;hunter2\n"
    with pytest.raises(ValueError, match="not a built-in SIPp scenario"):
        Sipp("uac_cancel", tmp_path)


# --- baresip against baresip


def test_direct_call_each_side_hears_the_other_tone(baresip_factory: BaresipFactory) -> None:
    alice = baresip_factory("101", tone_hz=LOW_TONE)
    bob = baresip_factory("102", tone_hz=HIGH_TONE)

    alice.dial(bob.uri)
    established = alice.wait_for("CALL_ESTABLISHED")
    assert bob.wait_for("CALL_ESTABLISHED").call_id == established.call_id
    assert bob.events("CALL_INCOMING") == []  # auto-answered calls do not announce
    time.sleep(2.0)
    alice.hangup()
    alice.wait_for("CALL_CLOSED")
    bob.wait_for("CALL_CLOSED")

    for peer, own, other in ((alice, LOW_TONE, HIGH_TONE), (bob, HIGH_TONE, LOW_TONE)):
        [recording] = peer.recordings()
        assert recording.dec is not None
        heard, rate = read_wav(recording.dec)
        assert rate == 8000
        assert active_seconds(heard, rate) >= 1.5
        assert has_tone(heard, rate, other), f"{peer.uri} did not hear {other} Hz"
        assert not has_tone(heard, rate, own), f"{peer.uri} heard its own {own} Hz"
        assert all(s.has_tone(other) for s in segments(heard, rate, 0.5, start=0.5))


def test_digits_arrive_as_dtmf_events(baresip_factory: BaresipFactory) -> None:
    alice = baresip_factory("101")
    bob = baresip_factory("102", tone_hz=HIGH_TONE)
    alice.dial(bob.uri)
    alice.wait_for("CALL_ESTABLISHED")
    bob.wait_for("CALL_ESTABLISHED")

    alice.send_digits("1593*#")

    received = [bob.wait_for("CALL_DTMF_START", timeout=5).param for _ in range(6)]
    assert received == list("1593*#")


def test_hold_and_resume_events(baresip_factory: BaresipFactory) -> None:
    alice = baresip_factory("101")
    bob = baresip_factory("102", tone_hz=HIGH_TONE)
    alice.dial(bob.uri)
    call_id = alice.wait_for("CALL_ESTABLISHED").call_id
    bob.wait_for("CALL_ESTABLISHED")
    assert [call.on_hold for call in alice.calls()] == [False]

    alice.hold()
    alice.wait_for("CALL_REMOTE_SDP", call_id=call_id, param="answer")
    bob.wait_for("CALL_REMOTE_SDP", call_id=call_id, param="offer")
    assert [call.on_hold for call in alice.calls()] == [True]

    alice.resume()
    alice.wait_for("CALL_REMOTE_SDP", call_id=call_id, param="answer")
    bob.wait_for("CALL_REMOTE_SDP", call_id=call_id, param="offer")
    [call] = alice.calls()
    assert (call.on_hold, call.state, call.peer_uri) == (False, "ESTABLISHED", bob.uri)
    assert alice.events("CALL_CLOSED") == bob.events("CALL_CLOSED") == []


# --- baresip against SIPp


def test_baresip_registers_with_its_contact_user(
    sipp: SippFactory, baresip_factory: BaresipFactory
) -> None:
    registrar = sipp(scenario("uas_registrar")).start()
    phone = baresip_factory(account=Account("103", password="secret", registrar=registrar.address))

    assert phone.registered(timeout=5)
    [register] = registrar.received("REGISTER")
    contact = register.header("Contact") or ""
    assert re.match(r"<sip:103-0x[0-9a-f]+@127\.0\.0\.1:\d+>", contact), contact


def test_baresip_through_trunk_hears_its_echo_and_holds(
    sipp: SippFactory, baresip_factory: BaresipFactory
) -> None:
    trunk = sipp(scenario("uas_trunk"), rtp_echo=True, auto_answer=True).start()
    phone = baresip_factory("101", tone_hz=LOW_TONE)

    phone.dial(trunk.uri("15551234"))
    phone.wait_for("CALL_ESTABLISHED")
    time.sleep(1.5)
    phone.hold()
    phone.wait_for("CALL_REMOTE_SDP", param="answer")
    phone.resume()
    phone.wait_for("CALL_REMOTE_SDP", param="answer")
    phone.hangup()
    phone.wait_for("CALL_CLOSED")

    result = trunk.stop(grace=0.0)  # it lingers after the BYE (uas_trunk.xml)
    assert (result.failed_calls, result.unexpected_messages) == (0, 0), result.summary()
    assert [m.cseq_method for m in trunk.sent(200)] == ["INVITE"] * 3 + ["BYE"]
    offers = [direction(m.body) for m in trunk.received("INVITE")]
    answers = [direction(m.body) for m in trunk.sent(200) if m.body]
    assert offers == ["sendrecv", "sendonly", "sendrecv"]
    assert answers == ["sendrecv", "recvonly", "sendrecv"]
    [recording] = phone.recordings()
    assert recording.dec is not None
    heard, rate = read_wav(recording.dec)
    assert has_tone(heard, rate, LOW_TONE), "the trunk's RTP echo did not come back"


def test_baresip_calling_a_busy_number(sipp: SippFactory, baresip_factory: BaresipFactory) -> None:
    busy = sipp(scenario("uas_busy")).start()
    phone = baresip_factory("101")

    phone.dial(busy.uri("15550000"))

    assert phone.wait_for("CALL_CLOSED").param == "486 Busy Here"
    assert phone.events("CALL_ESTABLISHED") == []


def test_pcap_announcement_and_digits_reach_baresip(
    sipp: SippFactory, baresip_factory: BaresipFactory
) -> None:
    phone = baresip_factory("102", tone_hz=HIGH_TONE)
    caller = sipp(
        scenario("uac_pcap_dtmf"),
        remote=phone.sip_address,
        service="102",
        calls=1,
        duration_ms=2500,  # g711a.pcap is near silent for its first 0.5 s
        # In the order of the pcaps' sequence numbers (see uac_pcap_dtmf.xml).
        variables={"digits": "19*#"},
    )

    result = caller.run(timeout=30)

    assert result.ok, result.summary()
    phone.wait_for("CALL_CLOSED")  # events arrive in order: the digits came before
    assert [e.param for e in phone.events("CALL_DTMF_START")] == list("19*#")
    [recording] = phone.recordings()
    assert recording.dec is not None
    heard, rate = read_wav(recording.dec)
    assert active_seconds(heard, rate) >= 1.0, "the g711a.pcap announcement was not heard"


def test_sipp_play_dtmf_reaches_baresip_on_payload_type_96(
    sipp: SippFactory, baresip_factory: BaresipFactory
) -> None:
    phone = baresip_factory("102")
    caller = sipp(
        scenario("uac_play_dtmf"),
        remote=phone.sip_address,
        service="102",
        calls=1,
        duration_ms=800 + 400 * 2 + 300,
        variables={"digits": "42"},
    )

    result = caller.run(timeout=30)

    assert result.ok, result.summary()
    [answer] = [m for m in caller.messages() if m.status == 200 and m.body]
    assert "a=rtpmap:96 telephone-event/8000" in answer.body
    phone.wait_for("CALL_CLOSED")
    assert [e.param for e in phone.events("CALL_DTMF_START")] == ["4", "2"]


# --- ports


def test_port_blocks_are_disjoint_and_exclusive_until_released(tmp_path: Path) -> None:
    first = PortAllocator(lock_dir=tmp_path)
    a = first.block(2)
    b = first.block(4)
    assert not set(a.ports) & set(b.ports)
    # Even starts: baresip's RTP stays inside its block (it rounds an odd start down).
    assert a.first % 2 == 0 and b.first % 2 == 0

    # Another allocator (another pytest process, say) never gets a held port...
    narrow = PortAllocator(lock_dir=tmp_path, span=range(a.first, a.first + 2))
    with pytest.raises(RuntimeError, match="no 2 consecutive free ports"):
        narrow.block(2)
    # ...but does once it is released.
    first.release()
    assert narrow.block(2).first == a.first
    narrow.release()


def test_bound_ports_are_seen_and_skipped(baresip_factory: BaresipFactory, tmp_path: Path) -> None:
    phone = baresip_factory("101")

    assert is_bound(phone.sip_port, "udp")
    assert is_bound(phone.sip_port + 1, "tcp")  # baresip's second SIP listener
    assert is_bound(phone.ctrl_port, "tcp")
    assert not is_free(phone.sip_port)
    # Not locked by any allocator (a separate lock dir), yet in use: skipped.
    unlocked = PortAllocator(lock_dir=tmp_path, span=range(phone.sip_port, phone.sip_port + 2))
    with pytest.raises(RuntimeError):
        unlocked.block(1)


def direction(sdp: str) -> str:
    """The SDP's direction attribute (sendrecv when absent, RFC 3264 6.1)."""
    match = re.search(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", sdp, re.MULTILINE)
    return match[1] if match else "sendrecv"
