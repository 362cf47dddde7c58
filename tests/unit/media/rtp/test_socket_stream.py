"""Streams on real loopback sockets inside the media plane: polling, latching, strict RTP.

The plane reads only the sockets its epoll reports ready, connects a leg's RTP socket to
the source it latched to (the kernel then drops anyone else's datagrams), and passes a
payload between two legs of the same codec without re-encoding it.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from media.plane import MAX_READS, REPLAN_TICKS, MediaPlane
from media.rtp import g711
from media.rtp.stream import RtpStream, SocketEndpoint, StreamParameters
from media.sip.clock import ManualClock


def free_pair() -> int:
    for port in range(41000, 42000, 2):
        try:
            SocketEndpoint.bind("127.0.0.1", port).close()
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair")


class Peer:
    """A phone's RTP socket: sends packets to one leg, keeps what the leg sends back."""

    def __init__(self, target: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()
        self.target = ("127.0.0.1", target)
        self.sequence = 0

    def send(
        self, payload: bytes, pt: int = 0, ssrc: int = 0x1234, timestamp: int | None = None
    ) -> None:
        if timestamp is None:
            timestamp = self.sequence * 160
        header = struct.pack("!BBHII", 0x80, pt, self.sequence, timestamp, ssrc)
        self.sequence += 1
        self.sock.sendto(header + payload, self.target)

    def received(self) -> list[tuple[int, bytes]]:
        packets = []
        while True:
            try:
                data = self.sock.recv(2048)
            except BlockingIOError:
                return packets
            packets.append((data[1] & 0x7F, data[12:]))

    def close(self) -> None:
        self.sock.close()


class Node:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = ManualClock(1000.0)
        self.events: list[tuple[str, str, dict]] = []
        self.plane = MediaPlane(
            self.clock,
            lambda leg, kind, fields: self.events.append((leg, kind, fields)),
            recordings=tmp_path,
        )
        self.streams: dict[str, RtpStream] = {}
        self.peers: dict[str, Peer] = {}

    def leg(self, name: str, codec: str = "PCMU") -> Peer:
        port = free_pair()
        endpoint = SocketEndpoint.bind("127.0.0.1", port)
        peer = Peer(port)
        stream = RtpStream(endpoint, self.params(peer.address, codec))
        self.streams[name] = stream
        self.peers[name] = peer
        self.plane.attach(name, stream)
        return peer

    @staticmethod
    def params(remote: tuple[str, int], codec: str = "PCMU") -> StreamParameters:
        return StreamParameters(
            remote=remote,
            remote_rtcp=(remote[0], remote[1] + 1),
            payload_type=0 if codec == "PCMU" else 8,
            codec=codec,
            telephone_event_pt=101,
            sends=True,
            receives=True,
        )

    def tick(self, count: int = 1) -> None:
        for _ in range(count):
            self.clock.advance(0.02)

    def close(self) -> None:
        for name in list(self.streams):
            self.plane.detach(name)
        for peer in self.peers.values():
            peer.close()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    node = Node(tmp_path)
    yield node
    node.close()


def tone(frequency: float, frames: int) -> np.ndarray:
    t = np.arange(160 * frames) / 8000
    return (8000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def test_a_bridged_payload_of_the_same_codec_arrives_untouched(node: Node) -> None:
    a = node.leg("A")
    b = node.leg("B")
    assert node.plane.command("A", {"type": "bridge", "peer": "B"})
    # Every code, 0x7F included (decoding and re-encoding would turn it into 0xFF).
    payloads = [bytes((i * 160 + k) % 256 for k in range(160)) for i in range(12)]
    for payload in payloads:
        a.send(payload)
        node.tick()
    node.tick(10)
    heard = [payload for pt, payload in b.received() if pt == 0]
    start = heard.index(payloads[0])
    assert heard[start : start + len(payloads)] == payloads


def test_a_bridge_between_pcmu_and_pcma_transcodes(node: Node) -> None:
    a = node.leg("A", "PCMU")
    b = node.leg("B", "PCMA")
    assert node.plane.command("A", {"type": "bridge", "peer": "B"})
    sent = tone(1000, 25)
    for index in range(25):
        a.send(g711.encode_pcmu(sent[index * 160 : (index + 1) * 160]))
        node.tick()
    node.tick(10)
    packets = b.received()
    assert {pt for pt, _ in packets} == {8}
    heard = g711.decode_pcma(b"".join(payload for _, payload in packets))
    spectrum = np.abs(np.fft.rfft(heard.astype(float)))
    assert abs(np.argmax(spectrum) * 8000 / len(heard) - 1000) < 10


def test_after_latching_datagrams_from_anyone_else_are_dropped(node: Node) -> None:
    a = node.leg("A")
    stranger = Peer(a.target[1])
    try:
        a.send(bytes([0xFF]) * 160)
        node.tick(2)
        stream = node.streams["A"]
        assert stream.latched and stream.remote == a.address
        received = stream.stats.received_packets
        # An injected digit and injected audio from another port never reach the leg.
        stranger.send(bytes([1, 0x80, 0, 160]), pt=101, ssrc=0x9999)
        stranger.send(bytes([0x00]) * 160, ssrc=0x9999)
        node.tick(5)
        assert stream.stats.received_packets == received
        assert not [event for event in node.events if event[1] == "dtmf"]
        # The leg still sends to the source it latched to, and only there.
        assert a.received()
        assert not stranger.received()
    finally:
        stranger.close()


def test_a_new_offer_answer_latches_afresh(node: Node) -> None:
    a = node.leg("A")
    a.send(bytes([0xFF]) * 160)
    node.tick(2)
    moved = Peer(a.target[1])
    try:
        # A re-INVITE moved the peer's media: the socket takes datagrams from anywhere
        # again and latches to whoever sends the negotiated payload types first.
        node.plane.update("A", node.params(("127.0.0.1", 9)))
        moved.send(bytes([0xFF]) * 160, ssrc=0x5555)
        node.tick(2)
        stream = node.streams["A"]
        assert stream.latched and stream.remote == moved.address
        node.tick(2)
        assert moved.received()
    finally:
        moved.close()


def test_a_malformed_event_packet_is_ignored_and_audio_keeps_flowing(node: Node) -> None:
    a = node.leg("A")
    b = node.leg("B")
    assert node.plane.command("A", {"type": "bridge", "peer": "B"})
    a.send(bytes([0xFF]) * 160)
    a.send(b"\x01", pt=101)  # an RFC 4733 payload is 4 bytes
    node.tick(3)
    assert node.streams["A"].stats.ignored_packets == 1
    b.received()
    for _ in range(5):
        a.send(bytes([0x01]) * 160)
        node.tick()
    node.tick(5)
    assert any(payload == bytes([0x01]) * 160 for _, payload in b.received())


def test_a_flooded_socket_is_read_at_most_max_reads_per_read(node: Node) -> None:
    a = node.leg("A")
    for _ in range(MAX_READS * 4):
        a.send(bytes([0xFF]) * 160)
    node.tick()
    stream = node.streams["A"]
    assert stream.stats.received_packets == MAX_READS
    node.clock.advance(0.0041)  # the reads between ticks, every 4 ms
    assert stream.stats.received_packets == 2 * MAX_READS
    node.clock.advance(0.004)
    assert stream.stats.received_packets == 3 * MAX_READS


def press_end(peer: Peer, digit_code: int = 11) -> None:
    """The three end packets of an RFC 4733 press (no start packets: they carry no news)."""
    for _ in range(3):
        peer.send(bytes([digit_code, 0x80 | 10, 0x03, 0x20]), pt=101, ssrc=0x4444, timestamp=0)


def test_a_key_is_reported_between_ticks(node: Node) -> None:
    a = node.leg("A")
    node.tick()
    start = node.clock.now()
    node.clock.advance(0.005)
    press_end(a)
    node.clock.advance(0.0031)  # the read 8 ms after the tick
    assert [(leg, fields["digit"]) for leg, kind, fields in node.events if kind == "dtmf"] == [
        ("A", "#")
    ]
    assert node.clock.now() - start < 0.0085


def test_music_on_hold_goes_out_at_once_and_the_rate_stays_50_packets_a_second(
    node: Node,
) -> None:
    a = node.leg("A")
    node.tick(3)
    a.received()
    node.clock.advance(0.005)
    node.plane.music_hold("A", True)
    [(_, early)] = a.received()  # before the next tick
    assert max(abs(g711.decode_pcmu(early).astype(int))) > 100  # music, not silence
    node.clock.advance(0.015 + 0.2)
    assert len(a.received()) == 10  # 1 s / 20 ms: the early packet counts as its tick's


def test_a_leg_joining_a_conference_is_heard_at_once(node: Node) -> None:
    a = node.leg("A")
    b = node.leg("B")
    assert node.plane.command("A", {"type": "join", "conference": "room"})
    sent = tone(1000, 10)
    for index in range(5):
        b.send(g711.encode_pcmu(sent[index * 160 : (index + 1) * 160]))
        node.tick()
    node.clock.advance(0.005)
    a.received()
    # B joins between ticks: A gets a mix with what B said last at once, not at the
    # next tick, and that tick then skips A (still 50 packets a second).
    assert node.plane.command("B", {"type": "join", "conference": "room"})
    [(_, first)] = a.received()
    assert max(abs(g711.decode_pcmu(first).astype(int))) > 1000
    node.clock.advance(0.016)
    assert a.received() == []
    node.clock.advance(0.02)
    assert len(a.received()) == 1


def forwarded(node: Node) -> set[str]:
    """The legs the plane's last tick sent in its compiled forwarding pass."""
    plan = node.plane._plan
    return {channel.leg for channel in plan.forwarded} if plan is not None else set()


def test_a_plain_bridge_is_forwarded_in_both_directions(node: Node) -> None:
    a = node.leg("A")
    b = node.leg("B", "PCMA")
    assert node.plane.command("A", {"type": "bridge", "peer": "B"})
    said_a = tone(1000, 30)
    said_b = tone(440, 30)
    for index in range(30):
        a.send(g711.encode_pcmu(said_a[index * 160 : (index + 1) * 160]))
        b.send(g711.encode_pcma(said_b[index * 160 : (index + 1) * 160]), pt=8)
        node.tick()
    assert forwarded(node) == {"A", "B"}
    node.tick(5)
    for peer, decode, frequency in ((b, g711.decode_pcma, 1000), (a, g711.decode_pcmu, 440)):
        heard = decode(b"".join(payload for _, payload in peer.received()[-20:]))
        spectrum = np.abs(np.fft.rfft(heard.astype(float)))
        assert abs(np.argmax(spectrum) * 8000 / len(heard) - frequency) < 10


def test_music_on_hold_takes_a_leg_out_of_forwarding_and_back(node: Node) -> None:
    a = node.leg("A")
    b = node.leg("B")
    assert node.plane.command("A", {"type": "bridge", "peer": "B"})
    voice = bytes([0x11]) * 160
    for _ in range(6):
        a.send(voice)
        b.send(bytes([0xFF]) * 160)
        node.tick()
    assert forwarded(node) == {"A", "B"}
    assert b.received()[-1][1] == voice
    node.plane.music_hold("B", True)
    for _ in range(10):
        a.send(voice)
        b.send(bytes([0xFF]) * 160)
        node.tick()
    assert forwarded(node) == set()
    held = b.received()[-5:]
    assert all(payload != voice for _, payload in held)  # music, not A
    assert len({payload for _, payload in held}) > 1  # and not one repeated frame
    assert {payload for _, payload in a.received()[-5:]} == {bytes([0xFF]) * 160}  # silence
    node.plane.music_hold("B", False)
    for _ in range(REPLAN_TICKS + 2):  # back in the compiled pass within REPLAN_TICKS
        a.send(voice)
        b.send(bytes([0xFF]) * 160)
        node.tick()
    assert forwarded(node) == {"A", "B"}
    assert b.received()[-1][1] == voice


def test_a_key_pressed_on_a_forwarded_leg_is_reported(node: Node) -> None:
    a = node.leg("A")
    b = node.leg("B")
    assert node.plane.command("A", {"type": "bridge", "peer": "B"})
    for _ in range(5):
        a.send(bytes([0xFF]) * 160)
        b.send(bytes([0xFF]) * 160)
        node.tick()
    assert "A" in forwarded(node)
    press_end(a)
    node.tick(2)
    assert [(leg, fields["digit"]) for leg, kind, fields in node.events if kind == "dtmf"] == [
        ("A", "#")
    ]


def test_packets_of_30_ms_pass_a_bridge_whole(node: Node) -> None:
    a = node.leg("A")
    b = node.leg("B")
    assert node.plane.command("A", {"type": "bridge", "peer": "B"})
    said = tone(1000, 60)
    for index in range(40):  # 40 packets of 240 samples: 60 frames of 20 ms
        a.send(g711.encode_pcmu(said[index * 240 : (index + 1) * 240]), timestamp=index * 240)
        b.send(bytes([0xFF]) * 160)
        node.clock.advance(0.03)
    node.tick(10)
    heard = g711.decode_pcmu(b"".join(payload for _, payload in b.received()))
    loud = heard[np.abs(heard) > 1000]
    assert len(loud) > 160 * 40  # most of the 60 frames, none dropped as "odd"
    spectrum = np.abs(np.fft.rfft(heard.astype(float)))
    assert abs(np.argmax(spectrum) * 8000 / len(heard) - 1000) < 10


def test_oversized_and_extended_packets_on_a_latched_leg(node: Node) -> None:
    a = node.leg("A")
    b = node.leg("B")
    assert node.plane.command("A", {"type": "bridge", "peer": "B"})
    a.send(bytes([0xFF]) * 160)
    node.tick(2)
    stream = node.streams["A"]
    assert stream.latched
    ignored = stream.stats.ignored_packets
    a.send(bytes([0x22]) * 1400)  # longer than any packet time the table holds: ignored
    node.tick(2)
    assert stream.stats.ignored_packets == ignored + 1
    # A header extension (X bit, one 32-bit word) is not for the compiled pass: the
    # stream parses it itself and the audio still reaches the peer.
    voice = bytes([0x33]) * 160
    for _ in range(6):
        header = struct.pack("!BBHII", 0x90, 0, a.sequence, a.sequence * 160, 0x1234)
        a.sequence += 1
        a.sock.sendto(header + struct.pack("!HHI", 0xBEDE, 1, 0) + voice, a.target)
        node.tick()
    node.tick(4)
    assert voice in [payload for _, payload in b.received()]
    assert stream.stats.ignored_packets == ignored + 1
