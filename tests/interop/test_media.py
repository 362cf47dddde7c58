"""The media plane against real peers: DTMF in every form, prompts, recording, the
two-party bridge and the conference mixer, each proven by what a peer sent or recorded.

The engine runs in-process (`EngineHost`); the test plays the worker's part and sends
the commands itself. Tones are measured with an FFT in the WAV files baresip recorded
(`dec`: what it heard) or in the recordings our engine wrote.
"""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from media.audio.wav import write_wav
from tests.interop.conftest import BaresipFactory, SippFactory
from tests.interop.hosts import EngineHost
from tests.interop.peers.baresip import Account, Baresip
from tests.interop.peers.pcap import inband_digits, write_pcmu_pcap
from tests.interop.peers.ports import PortAllocator
from tests.interop.peers.sipp import scenario
from tests.interop.peers.tones import (
    active_seconds,
    dominant_frequency,
    has_tone,
    read_wav,
    tone_levels,
)

pytestmark = pytest.mark.interop

TONES = (440, 700, 1000, 1400)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[EngineHost]:
    with PortAllocator() as ports:
        rtp = ports.block(64)
        engine = EngineHost(
            ports.port(), rtp_ports=(rtp.first, rtp.last), recordings=tmp_path / "recordings"
        )
        try:
            yield engine
        finally:
            engine.stop()


def answer_next(host: EngineHost, timeout: float = 15.0) -> str:
    """Wait for the next incoming call, answer it, and return its id once answered."""
    incoming = host.wait_for(lambda e: e["type"] == "incoming", timeout)
    call = incoming["call"]
    host.command(call, "answer")
    host.wait_for(lambda e: e["call"] == call and e["type"] == "answered")
    return call


def digits_of(host: EngineHost, call: str) -> list[tuple[str, str]]:
    return [
        (e["digit"], e["source"]) for e in host.history if e["call"] == call and e["type"] == "dtmf"
    ]


def wait_until(condition, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def ended(host: EngineHost, call: str) -> bool:
    return any(e["call"] == call and e["type"] == "hangup" for e in host.history)


def caller(factory: BaresipFactory, user: str, tone_hz: int) -> Baresip:
    return factory(user, tone_hz=tone_hz, account=Account(user=user, answermode="manual"))


def heard(phone: Baresip, skip: float = 0.5) -> tuple[np.ndarray, int]:
    [recording] = phone.recordings()
    assert recording.dec is not None
    samples, rate = read_wav(recording.dec)
    return samples[int(skip * rate) :], rate


# --- DTMF in


def test_sipp_pcap_rfc4733_digits_each_reported_once_in_order(
    sipp: SippFactory, host: EngineHost
) -> None:
    peer = sipp(
        scenario("uac_pcap_dtmf"),
        remote=f"127.0.0.1:{host.port}",
        service="15550100",
        calls=1,
        duration_ms=1000,
        variables={"digits": "123456789*#"},  # the pcaps' own order (uac_pcap_dtmf.xml)
    )
    sipp_thread = threading.Thread(target=peer.run, kwargs={"timeout": 40})
    sipp_thread.start()
    call = answer_next(host)
    sipp_thread.join()
    wait_until(lambda: ended(host, call), what="the caller's BYE")
    assert digits_of(host, call) == [(d, "rfc4733") for d in "123456789*#"]


def test_sipp_play_dtmf_on_payload_type_96_each_reported_once(
    sipp: SippFactory, host: EngineHost
) -> None:
    peer = sipp(
        scenario("uac_play_dtmf"),
        remote=f"127.0.0.1:{host.port}",
        service="15550100",
        calls=1,
        duration_ms=800 + 400 * 5 + 400,
        variables={"digits": "90#*1"},
    )
    sipp_thread = threading.Thread(target=peer.run, kwargs={"timeout": 40})
    sipp_thread.start()
    call = answer_next(host)
    sipp_thread.join()
    wait_until(lambda: ended(host, call), what="the caller's BYE")
    assert digits_of(host, call) == [(d, "rfc4733") for d in "90#*1"]


def test_inband_digits_in_the_audio_are_detected(sipp: SippFactory, host: EngineHost) -> None:
    digits = "159#0*"
    peer = sipp(
        scenario("uac_pcap_inband"),
        remote=f"127.0.0.1:{host.port}",
        service="15550100",
        calls=1,
        duration_ms=3500,
    )
    peer.workdir.mkdir(parents=True, exist_ok=True)
    write_pcmu_pcap(peer.workdir / "inband.pcap", inband_digits(digits))
    sipp_thread = threading.Thread(target=peer.run, kwargs={"timeout": 40})
    sipp_thread.start()
    call = answer_next(host)
    sipp_thread.join()
    wait_until(lambda: ended(host, call), what="the caller's BYE")
    assert digits_of(host, call) == [(d, "inband") for d in digits]


def test_baresip_digits_each_reported_once_and_collected(
    baresip_factory: BaresipFactory, host: EngineHost
) -> None:
    phone = caller(baresip_factory, "201", 440)
    phone.dial(f"sip:15550100@127.0.0.1:{host.port}")
    call = answer_next(host)
    phone.wait_for("CALL_ESTABLISHED")
    host.command(
        call,
        "collect",
        ref="g1",
        prompts=[],
        finish_on_key="#",
        num_digits=None,
        timeout=10,
        inter_digit_timeout=5,
        barge_in=True,
    )
    phone.send_digits("4711#")
    collected = host.wait_for(lambda e: e["call"] == call and e["type"] == "collected")
    assert (collected["digits"], collected["reason"], collected["finish_key"]) == (
        "4711",
        "finish_key",
        "#",
    )
    assert digits_of(host, call) == [(d, "rfc4733") for d in "4711#"]


# --- prompts and recording


def test_say_arrives_as_speech_length_audio(
    baresip_factory: BaresipFactory, host: EngineHost
) -> None:
    phone = caller(baresip_factory, "202", 440)
    phone.dial(f"sip:15550100@127.0.0.1:{host.port}")
    call = answer_next(host)
    text = "Thank you for calling. Your call is important to us."
    host.command(call, "say", ref="s1", text=text, voice="woman", language="en-US", loop=1)
    done = host.wait_for(lambda e: e["call"] == call and e["type"] == "play_done", timeout=20)
    assert done["ref"] == "s1"
    phone.hangup()
    phone.wait_for("CALL_CLOSED")
    samples, rate = heard(phone, skip=0.0)
    speech = active_seconds(samples, rate, threshold_dbfs=-40.0)
    assert 1.5 <= speech <= 8.0, f"{speech:.2f} s of non-silent audio"
    assert not has_tone(samples, rate, 440), "the caller heard itself"


def test_play_of_a_wav_arrives_with_its_frequency(
    baresip_factory: BaresipFactory, host: EngineHost, tmp_path: Path
) -> None:
    rate = 44100
    t = np.arange(rate * 2) / rate
    write_wav(tmp_path / "tone.wav", (np.sin(2 * np.pi * 1250 * t) * 12000).astype(np.int16), rate)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0),
        lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path)),
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        phone = caller(baresip_factory, "203", 440)
        phone.dial(f"sip:15550100@127.0.0.1:{host.port}")
        call = answer_next(host)
        url = f"http://127.0.0.1:{server.server_address[1]}/tone.wav"
        host.command(call, "play", ref="p1", url=url, loop=1)
        host.wait_for(lambda e: e["call"] == call and e["type"] == "play_done", timeout=20)
        phone.hangup()
        phone.wait_for("CALL_CLOSED")
    finally:
        server.shutdown()
    samples, rate = heard(phone, skip=0.0)
    assert dominant_frequency(samples, rate) == pytest.approx(1250, abs=15)
    assert 1.5 <= active_seconds(samples, rate) <= 2.6


def test_a_recording_of_a_peers_tone_holds_that_tone(
    baresip_factory: BaresipFactory, host: EngineHost
) -> None:
    phone = caller(baresip_factory, "204", 700)
    phone.dial(f"sip:15550100@127.0.0.1:{host.port}")
    call = answer_next(host)
    host.command(
        call,
        "record",
        ref="r1",
        max_length=2,
        timeout=10,
        finish_on_key="#",
        play_beep=True,
        trim=False,
    )
    done = host.wait_for(lambda e: e["call"] == call and e["type"] == "record_done", timeout=15)
    assert done["reason"] == "max_length"
    assert done["duration"] == pytest.approx(2.0, abs=0.1)
    samples, rate = read_wav(done["path"])
    assert rate == 8000
    assert has_tone(samples, rate, 700)


# --- bridge and conference


def test_bridge_each_peer_hears_the_other_and_not_itself(
    baresip_factory: BaresipFactory, host: EngineHost
) -> None:
    alice = caller(baresip_factory, "301", 440)
    bob = caller(baresip_factory, "302", 1000)
    alice.dial(f"sip:15550100@127.0.0.1:{host.port}")
    a = answer_next(host)
    bob.dial(f"sip:15550100@127.0.0.1:{host.port}")
    b = answer_next(host)
    host.command(a, "bridge", peer=b)
    time.sleep(2.5)
    alice.hangup()
    bob.hangup()
    for phone, own, other in ((alice, 440, 1000), (bob, 1000, 440)):
        phone.wait_for("CALL_CLOSED")
        samples, rate = heard(phone)
        assert has_tone(samples, rate, other), f"{phone.uri} did not hear {other} Hz"
        assert not has_tone(samples, rate, own), f"{phone.uri} heard itself"


def test_conference_of_four_mute_and_music_on_hold(
    baresip_factory: BaresipFactory, host: EngineHost
) -> None:
    phones = [caller(baresip_factory, f"40{i}", tone) for i, tone in enumerate(TONES)]
    calls, established = [], []
    for phone in phones:
        phone.dial(f"sip:15550100@127.0.0.1:{host.port}")
        calls.append(answer_next(host))
        phone.wait_for("CALL_ESTABLISHED")
        established.append(time.monotonic())
    room = "room-" + uuid.uuid4().hex[:6]
    for call in calls:
        host.command(call, "join", conference=room)
    joined = time.monotonic()
    time.sleep(3.0)
    host.command(calls[0], "mute", muted=True)  # 440 Hz is no longer heard
    muted = time.monotonic()
    time.sleep(3.0)
    host.command(calls[3], "hold", music=True)  # 1400 Hz hears music and is not heard
    held = time.monotonic()
    time.sleep(3.0)
    for phone in phones:
        phone.hangup()
        phone.wait_for("CALL_CLOSED")
    talking = {e["call"] for e in host.history if e["type"] == "talking" and e["talking"]}
    assert talking == set(calls), "every member was reported talking"

    def window(index: int, start: float, end: float) -> tuple[np.ndarray, int, tuple]:
        [recording] = phones[index].recordings()
        samples, rate = read_wav(recording.dec)
        # Half a second of margin for jitter buffers at both ends.
        return samples, rate, (start - established[index] + 0.5, end - established[index] - 0.3)

    # What each phone sent: baresip's sine source is not equally loud at every frequency
    # (about 2 dB apart from 440 to 1400 Hz), so the mixer's gain is heard minus sent.
    sent = {}
    for index, own in enumerate(TONES):
        [recording] = phones[index].recordings()
        samples, rate = read_wav(recording.enc)
        sent[own] = tone_levels(samples, rate, [own], window=(1.0, 3.0))[own]
    for index, own in enumerate(TONES):
        samples, rate, span = window(index, joined, muted)
        others = [f for f in TONES if f != own]
        levels = tone_levels(samples, rate, list(TONES), window=span)
        gains = {f: levels[f] - sent[f] for f in others}
        assert max(gains.values()) - min(gains.values()) <= 2.0, (levels, sent)
        assert all(abs(gain) <= 3.0 for gain in gains.values()), (levels, sent)
        assert levels[own] < min(levels[f] for f in others) - 30, f"{own} Hz heard itself"
        excerpt = samples[int(span[0] * rate) : int(span[1] * rate)]
        assert all(has_tone(excerpt, rate, f) for f in others), (own, levels)

    for index in (1, 2, 3):
        samples, rate, span = window(index, muted, held)
        excerpt = samples[int(span[0] * rate) : int(span[1] * rate)]
        assert not has_tone(excerpt, rate, 440), f"phone {index} still heard the muted member"

    samples, rate, span = window(3, held, held + 2.5)
    excerpt = samples[int(span[0] * rate) : int(span[1] * rate)]
    assert not any(has_tone(excerpt, rate, f) for f in (700, 1000)), "held member heard the room"
    assert active_seconds(excerpt, rate) >= 1.5, "held member heard no music"
    for index in (1, 2):
        samples, rate, span = window(index, held, held + 2.5)
        excerpt = samples[int(span[0] * rate) : int(span[1] * rate)]
        assert not has_tone(excerpt, rate, 1400), "the held member was still heard"


# --- the whole platform: a script's Gather heard and answered by a real phone


class Customer(http.server.BaseHTTPRequestHandler):
    """A customer's web app: answers /voice with a Gather, records the /action form."""

    forms: list[dict[str, str]] = []  # noqa: RUF012 - shared with the test on purpose

    def do_POST(self) -> None:
        from urllib.parse import parse_qsl

        length = int(self.headers.get("Content-Length", 0))
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        Customer.forms.append({"path": self.path, **form})
        if self.path == "/voice":
            body = (
                '<Response><Gather numDigits="3" action="/action" timeout="10">'
                "<Say>Please enter your three digit code.</Say></Gather></Response>"
            )
        else:
            body = "<Response><Say>Thank you.</Say><Hangup/></Response>"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def test_a_phone_answers_a_gather_through_the_whole_platform(
    services, db, account, tmp_path: Path, baresip_factory: BaresipFactory
) -> None:
    from store import numbers
    from tests.interop.hosts import running_platform

    Customer.forms = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Customer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    number = "+1555" + str(uuid.uuid4().int)[:7]
    with db.transaction() as conn:
        numbers.set_number(
            conn,
            account.sid,
            number,
            voice_url=f"http://127.0.0.1:{server.server_address[1]}/voice",
            voice_method="POST",
        )
    try:
        with running_platform(services, tmp_path) as platform:
            phone = caller(baresip_factory, "501", 440)
            phone.dial(f"sip:{number}@127.0.0.1:{platform.sip_port}")
            phone.wait_for("CALL_ESTABLISHED", timeout=20)
            time.sleep(1.0)  # into the prompt: the first digit barges in
            phone.send_digits("739")
            closed = phone.wait_for("CALL_CLOSED", timeout=30)
    finally:
        server.shutdown()
    assert closed is not None
    actions = [form for form in Customer.forms if form["path"] == "/action"]
    assert [form["Digits"] for form in actions] == ["739"], platform.tail()
    samples, rate = heard(phone, skip=0.0)
    assert active_seconds(samples, rate) >= 1.0, "the prompt was not heard"
