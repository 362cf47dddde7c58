"""The media plane on a test clock, with fake sockets: what goes out, what is reported."""

from __future__ import annotations

import itertools
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from media.plane import MediaPlane
from media.rtp import g711
from media.rtp.packet import RtpPacket
from media.rtp.stream import RtpStream, StreamParameters
from media.rtp.telephone_event import TelephoneEventSender
from media.sip.clock import ManualClock
from media.sip.message import Request
from media.sip.session import _info_digit

PEER = ("127.0.0.1", 7000)
NAT = ("192.0.2.7", 40000)


class FakeEndpoint:
    def __init__(self) -> None:
        self.inbox: list[tuple[bytes, tuple[str, int]]] = []
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.rtcp: list[bytes] = []
        self.closed = False

    def receive(self):
        inbox, self.inbox = self.inbox, []
        return inbox

    def receive_rtcp(self):
        return []

    def send(self, data, address):
        self.sent.append((data, address))

    def send_rtcp(self, data, address):
        self.rtcp.append(data)

    def close(self):
        self.closed = True

    def packets(self) -> list[RtpPacket]:
        return [RtpPacket.parse(data) for data, _ in self.sent]

    def audio(self) -> np.ndarray:
        """Everything sent as PCMU, decoded."""
        payloads = [p.payload for p in self.packets() if p.payload_type == 0]
        return g711.decode_pcmu(b"".join(payloads)) if payloads else np.zeros(0, np.int16)


def params(te: int | None = 101, remote=PEER) -> StreamParameters:
    return StreamParameters(
        remote=remote,
        remote_rtcp=(remote[0], remote[1] + 1),
        payload_type=0,
        codec="PCMU",
        telephone_event_pt=te,
        sends=True,
        receives=True,
    )


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = ManualClock(1000.0)
        self.events: list[tuple[str, str, dict]] = []
        self.plane = MediaPlane(
            self.clock,
            lambda leg, kind, fields: self.events.append((leg, kind, fields)),
            recordings=tmp_path / "recordings",
            fetch=lambda url: (_ for _ in ()).throw(OSError(f"no network for {url}")),
        )
        self.endpoints: dict[str, FakeEndpoint] = {}
        self.sequence = 0
        self.timestamp = 0

    def leg(self, name: str, te: int | None = 101) -> FakeEndpoint:
        endpoint = FakeEndpoint()
        self.endpoints[name] = endpoint
        self.plane.attach(name, RtpStream(endpoint, params(te)))
        return endpoint

    def command(self, leg: str, kind: str, **fields) -> None:
        assert self.plane.command(leg, {"type": kind, **fields})

    def run(self, seconds: float) -> None:
        self.clock.advance(seconds + 1e-9)

    def speak(
        self, leg: str, samples: np.ndarray, source=PEER, seconds: float | None = None
    ) -> None:
        """The peer sends `samples` as PCMU, a packet per tick, while the clock runs."""
        endpoint = self.endpoints[leg]
        frames = len(samples) // 160
        for index in range(frames):
            payload = g711.encode_pcmu(samples[index * 160 : (index + 1) * 160])
            packet = RtpPacket(0, self.sequence & 0xFFFF, self.timestamp, 0x1111, False, payload)
            self.sequence += 1
            self.timestamp += 160
            endpoint.inbox.append((packet.serialize(), source))
            self.clock.advance(0.02)
        if seconds:
            self.run(seconds)

    def press(self, leg: str, digit: str, pt: int = 101) -> None:
        sender = TelephoneEventSender(pt, 0x2222)
        for packet in sender.packets(digit, self.sequence, self.timestamp, 800):
            self.endpoints[leg].inbox.append((packet.serialize(), PEER))
            self.clock.advance(0.02)
        self.sequence += 20
        self.timestamp += 1600
        self.run(0.1)

    def of(self, kind: str) -> list[dict]:
        return [fields for _leg, k, fields in self.events if k == kind]


def tone(freq: float, seconds: float, amplitude: float = 8000) -> np.ndarray:
    t = np.arange(int(seconds * 8000)) / 8000
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def peak(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * 8000 / len(samples))


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_one_packet_per_tick_with_silence_when_nothing_plays(h: Harness) -> None:
    endpoint = h.leg("A")
    h.run(1.0)
    packets = endpoint.packets()
    assert len(packets) == 50
    assert {p.payload for p in packets} == {b"\xff" * 160}
    pairs = list(itertools.pairwise(packets))
    assert all((b.sequence_number - a.sequence_number) % 65536 == 1 for a, b in pairs)
    assert all((b.timestamp - a.timestamp) % 2**32 == 160 for a, b in pairs)
    assert packets[0].marker and not any(p.marker for p in packets[1:])
    assert {address for _, address in endpoint.sent} == {PEER}


def test_symmetric_rtp_latches_to_where_the_peer_sends_from(h: Harness) -> None:
    endpoint = h.leg("A")
    h.speak("A", tone(440, 0.2), source=NAT)
    endpoint.sent.clear()
    h.run(0.2)
    assert {address for _, address in endpoint.sent} == {NAT}


def test_each_rfc4733_press_is_one_dtmf_event(h: Harness) -> None:
    h.leg("A")
    for digit in "12#":
        h.press("A", digit)
    assert [(e["digit"], e["source"]) for e in h.of("dtmf")] == [
        ("1", "rfc4733"),
        ("2", "rfc4733"),
        ("#", "rfc4733"),
    ]


def test_collect_ends_on_the_finish_key(h: Harness) -> None:
    h.leg("A")
    h.command(
        "A",
        "collect",
        ref="g",
        prompts=[],
        finish_on_key="#",
        num_digits=None,
        timeout=5,
        inter_digit_timeout=3,
        barge_in=True,
    )
    for digit in "42#":
        h.press("A", digit)
    assert h.of("collected") == [
        {"ref": "g", "digits": "42", "reason": "finish_key", "finish_key": "#"}
    ]


def test_collect_ends_on_num_digits_and_on_timeouts(h: Harness) -> None:
    h.leg("A")
    collect = dict(prompts=[], finish_on_key="#", timeout=2, inter_digit_timeout=1, barge_in=True)
    h.command("A", "collect", ref="a", num_digits=2, **collect)
    h.press("A", "7")
    h.press("A", "8")
    h.command("A", "collect", ref="b", num_digits=None, **collect)
    h.run(1.9)
    assert [e["ref"] for e in h.of("collected")] == ["a"]
    h.run(0.2)
    h.command("A", "collect", ref="c", num_digits=None, **collect)
    h.press("A", "5")
    h.run(1.0)
    assert [(e["ref"], e["digits"], e["reason"]) for e in h.of("collected")] == [
        ("a", "78", "num_digits"),
        ("b", "", "timeout"),
        ("c", "5", "timeout"),
    ]


def test_barge_in_stops_the_prompt_and_counts_the_digit(h: Harness) -> None:
    endpoint = h.leg("A")
    h.command(
        "A",
        "collect",
        ref="g",
        prompts=[{"type": "tone", "name": "dial"}],
        finish_on_key="#",
        num_digits=1,
        timeout=5,
        inter_digit_timeout=3,
        barge_in=True,
    )
    h.run(0.5)
    h.press("A", "3")
    assert h.of("collected") == [
        {"ref": "g", "digits": "3", "reason": "num_digits", "finish_key": None}
    ]
    endpoint.sent.clear()
    h.run(0.2)
    assert {p.payload for p in endpoint.packets()} == {b"\xff" * 160}  # the tone stopped


def test_without_barge_in_digits_during_the_prompt_count_after_it(h: Harness) -> None:
    h.leg("A")
    h.command(
        "A",
        "collect",
        ref="g",
        prompts=[{"type": "pause", "length": 1}],
        finish_on_key="#",
        num_digits=None,
        timeout=5,
        inter_digit_timeout=3,
        barge_in=False,
    )
    h.press("A", "9")
    assert h.of("collected") == []
    h.press("A", "#")
    h.run(1.0)
    assert h.of("collected") == [
        {"ref": "g", "digits": "9", "reason": "finish_key", "finish_key": "#"}
    ]


def test_a_pause_is_done_after_its_length(h: Harness) -> None:
    h.leg("A")
    h.command("A", "pause", ref="p", length=1)
    h.run(0.96)
    assert h.of("play_done") == []
    h.run(0.1)
    assert h.of("play_done") == [{"ref": "p", "interrupted_by": None}]


def test_a_tone_plays_its_frequencies_for_its_duration(h: Harness) -> None:
    endpoint = h.leg("A")
    h.command("A", "tone", ref="t", name="busy", duration=0.4)
    h.run(0.6)
    assert h.of("play_done") == [{"ref": "t", "interrupted_by": None}]
    audio = endpoint.audio()[:3200]
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    top = sorted(np.argsort(spectrum)[-2:] * 8000 / len(audio))
    assert top == pytest.approx([480, 620], abs=5)


def test_a_bridge_passes_each_side_to_the_other(h: Harness) -> None:
    h.leg("A")
    b = h.leg("B")
    h.command("A", "bridge", peer="B")
    h.speak("A", tone(700, 1.0))
    heard = b.audio()
    assert peak(heard[len(heard) // 2 :]) == pytest.approx(700, abs=10)


def test_music_on_hold_keeps_a_bridged_party_from_being_heard(h: Harness) -> None:
    a = h.leg("A")
    b = h.leg("B")
    h.command("A", "bridge", peer="B")
    h.plane.music_hold("A", True)
    h.speak("A", tone(700, 1.0))
    assert np.all(b.audio() == 0) or np.max(np.abs(b.audio())) < 50
    assert np.max(np.abs(a.audio()[-4000:])) > 1000  # A hears music


def test_send_dtmf_uses_rfc4733_with_the_negotiated_type(h: Harness) -> None:
    endpoint = h.leg("A", te=96)
    h.command("A", "send_dtmf", ref="d", digits="5#")
    h.run(1.0)
    events = [p for p in endpoint.packets() if p.payload_type == 96]
    starts = [p for p in events if p.marker]
    assert len(starts) == 2
    assert {p.timestamp for p in events} == {p.timestamp for p in starts}
    assert h.of("play_done") == [{"ref": "d", "interrupted_by": None}]


def test_send_dtmf_in_band_without_telephone_event(h: Harness) -> None:
    from media.rtp.dtmf_detector import DtmfDetector

    endpoint = h.leg("A", te=None)
    h.command("A", "send_dtmf", ref="d", digits="73")
    h.run(1.0)
    assert all(p.payload_type == 0 for p in endpoint.packets())
    assert [t.digit for t in DtmfDetector().process(endpoint.audio())] == ["7", "3"]


def test_inband_digits_are_detected_without_telephone_event(h: Harness) -> None:
    from tests.interop.peers.pcap import inband_digits

    h.leg("A", te=None)
    h.speak("A", inband_digits("26*", lead_ms=200))
    h.run(0.2)
    assert [(e["digit"], e["source"]) for e in h.of("dtmf")] == [
        ("2", "inband"),
        ("6", "inband"),
        ("*", "inband"),
    ]


def test_a_recording_holds_what_the_peer_said_and_ends_on_its_key(h: Harness) -> None:
    h.leg("A")
    h.command(
        "A",
        "record",
        ref="r",
        max_length=60,
        timeout=5,
        finish_on_key="#",
        play_beep=False,
        trim=False,
    )
    h.speak("A", tone(500, 1.0))
    h.press("A", "#")
    [done] = h.of("record_done")
    assert (done["ref"], done["reason"], done["digits"]) == ("r", "finish_key", "#")
    with wave.open(done["path"]) as recorded:
        assert recorded.getframerate() == 8000
        samples = np.frombuffer(recorded.readframes(recorded.getnframes()), "<i2")
    assert done["duration"] == pytest.approx(len(samples) / 8000, abs=0.01)
    assert peak(samples) == pytest.approx(500, abs=10)


def test_a_hangup_ends_a_collection_and_a_recording_with_reason_hangup(h: Harness) -> None:
    h.leg("A")
    h.leg("B")
    h.command(
        "A",
        "collect",
        ref="g",
        prompts=[],
        finish_on_key="#",
        num_digits=None,
        timeout=5,
        inter_digit_timeout=3,
        barge_in=True,
    )
    h.command("B", "record", ref="r", max_length=60, timeout=5, finish_on_key="", play_beep=False)
    h.run(0.5)
    h.plane.detach("A")
    h.plane.detach("B")
    assert h.of("collected")[0]["reason"] == "hangup"
    assert h.of("record_done")[0]["reason"] == "hangup"
    assert h.endpoints["A"].closed and h.endpoints["B"].closed
    assert h.plane.channels == {}


def test_a_failed_play_is_done_without_audio(h: Harness) -> None:
    h.leg("A")
    h.command("A", "play", ref="p", url="http://127.0.0.1:9/missing.wav", loop=1)
    h.run(0.1)
    assert h.of("play_done") == [{"ref": "p", "interrupted_by": None}]


@pytest.mark.parametrize(
    ("content_type", "body", "digit"),
    [
        ("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", "5"),
        ("application/dtmf-relay", "Signal= #\r\nDuration=160\r\n", "#"),
        ("application/dtmf", "11", "#"),
        ("application/dtmf", "*", "*"),
        ("application/dtmf-relay", "Signal=X\r\n", None),
        ("text/plain", "Signal=5", None),
    ],
)
def test_sip_info_digits(content_type: str, body: str, digit: str | None) -> None:
    request = Request("INFO", "sip:a@127.0.0.1", [("Content-Type", content_type)])
    request.body = body.encode()
    assert _info_digit(request) == digit


def test_rtp_header_layout() -> None:
    endpoint = FakeEndpoint()
    stream = RtpStream(endpoint, params())
    stream.send(None, 0.0)
    data, _ = endpoint.sent[0]
    first, second, sequence, timestamp, ssrc = struct.unpack("!BBHII", data[:12])
    assert (first, second) == (0x80, 0x80)
    assert (sequence, timestamp, ssrc) == (
        stream.sequence - 1,
        (stream.timestamp - 160) % 2**32,
        stream.ssrc,
    )


def test_rtcp_sender_reports_go_out_every_few_seconds_and_a_bye_at_the_end(h: Harness) -> None:
    from media.rtp.rtcp import Bye, SenderReport, parse_compound

    endpoint = h.leg("A")
    h.speak("A", tone(300, 1.0))
    h.run(15.0)
    reports = [parse_compound(data) for data in endpoint.rtcp]
    assert 2 <= len(reports) <= 5  # 5 s apart, randomised by half (RFC 3550 6.2)
    first = reports[0][0]
    assert isinstance(first, SenderReport)
    assert first.ssrc == h.plane.channels["A"].stream.ssrc and first.packet_count > 0
    assert [block.ssrc for block in first.reports] == [0x1111]  # what it received
    h.plane.detach("A")
    assert any(isinstance(packet, Bye) for packet in parse_compound(endpoint.rtcp[-1]))


def converse(h: Harness, tones: dict[str, np.ndarray]) -> None:
    """Each leg's peer sends its samples as PCMU, all in the same ticks."""
    frames = min(len(samples) for samples in tones.values()) // 160
    for index in range(frames):
        for leg, samples in tones.items():
            payload = g711.encode_pcmu(samples[index * 160 : (index + 1) * 160])
            packet = RtpPacket(0, index, index * 160, hash(leg) & 0xFFFF, False, payload)
            h.endpoints[leg].inbox.append((packet.serialize(), PEER))
        h.clock.advance(0.02)


def read_wav(path: str) -> tuple[int, np.ndarray]:
    with wave.open(path) as recorded:
        assert recorded.getframerate() == 8000
        channels = recorded.getnchannels()
        samples = np.frombuffer(recorded.readframes(recorded.getnframes()), "<i2")
    return channels, samples.reshape(-1, channels)


@pytest.mark.parametrize("channels", [1, 2])
def test_a_call_recording_holds_both_parties_until_stopped(h: Harness, channels: int) -> None:
    h.leg("A")
    h.leg("B")
    h.command("A", "bridge", peer="B")
    h.command(
        "A",
        "record",
        ref="call",
        max_length=3600,
        timeout=0,
        finish_on_key="",
        play_beep=False,
        trim=False,
        mode="call",
        channels=channels,
    )
    converse(h, {"A": tone(440, 3.0), "B": tone(1000, 3.0)})
    h.press("A", "#")  # keys do not end a call recording
    assert h.of("record_done") == []
    h.command("A", "stop", ref="call")
    [done] = h.of("record_done")
    assert (done["ref"], done["reason"], done["channels"]) == ("call", "stopped", channels)
    got, samples = read_wav(done["path"])
    assert got == channels
    assert done["duration"] == pytest.approx(len(samples) / 8000, abs=0.01)
    assert done["duration"] == pytest.approx(3.1, abs=0.2)
    middle = samples[4000:20000].astype(float)
    if channels == 2:
        # What A said on the left, what it heard (B) on the right.
        assert peak(middle[:, 0]) == pytest.approx(440, abs=10)
        assert peak(middle[:, 1]) == pytest.approx(1000, abs=10)
    else:
        spectrum = np.abs(np.fft.rfft(middle[:, 0] * np.hanning(len(middle))))
        bins = {f: spectrum[round(f * len(middle) / 8000)] for f in (440, 1000, 700)}
        assert bins[440] > 20 * bins[700] and bins[1000] > 20 * bins[700]
        assert bins[440] == pytest.approx(bins[1000], rel=0.5)


def test_a_call_recording_ends_with_reason_hangup_when_the_leg_goes(h: Harness) -> None:
    h.leg("A")
    h.command(
        "A", "record", ref="call", max_length=3600, timeout=0, finish_on_key="",
        play_beep=False, trim=False, mode="call",
    )  # fmt: skip
    h.run(1.0)
    h.plane.detach("A")
    [done] = h.of("record_done")
    assert done["reason"] == "hangup" and done["duration"] == pytest.approx(1.0, abs=0.1)
