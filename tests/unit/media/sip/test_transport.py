"""The SIP transport on real sockets on 127.0.0.1: UDP round trips, received/rport,
response routing, stateless answers to malformed requests, size limits, garbage, TCP."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from media.sip.clock import LoopClock, TimerSettings
from media.sip.message import Request, Response, parse_message
from media.sip.transaction import ClientTransaction, ServerTransaction, TransactionLayer
from media.sip.transport import (
    Destination,
    Source,
    Transport,
    TransportError,
    received_via,
    response_destination,
)
from media.sip.via import Via

HOST = "127.0.0.1"


def run(scenario: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(scenario, 10))


def request_bytes(
    method: str = "INVITE",
    *,
    via: str = "SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKabc;rport",
    extra: tuple[str, ...] = (),
    body: bytes = b"",
    length: int | None = None,
    omit: str = "",
) -> bytes:
    lines = [
        f"{method} sip:bob@127.0.0.1 SIP/2.0",
        f"Via: {via}",
        "Max-Forwards: 70",
        "From: <sip:alice@example.com>;tag=a1",
        "To: <sip:bob@example.com>",
        "Call-ID: c1@10.0.0.5",
        f"CSeq: 1 {method}",
        *extra,
        f"Content-Length: {len(body) if length is None else length}",
    ]
    lines = [line for line in lines if not (omit and line.startswith(omit + ":"))]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Peer:
    """A plain UDP socket on 127.0.0.1 playing the remote SIP element."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.loop = asyncio.get_running_loop()

    async def send(self, data: bytes, port: int) -> None:
        await self.loop.sock_sendto(self.sock, data, (HOST, port))

    async def receive(self, timeout: float = 2.0) -> Request | Response:
        data, _ = await asyncio.wait_for(self.loop.sock_recvfrom(self.sock, 65535), timeout)
        return parse_message(data)

    async def receives_nothing(self, timeout: float = 0.2) -> bool:
        try:
            await asyncio.wait_for(self.loop.sock_recvfrom(self.sock, 65535), timeout)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        self.sock.close()


class Inbox:
    """A receiver that queues what the transport passes up."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[Request | Response, Source]] = asyncio.Queue()

    def __call__(self, message: Request | Response, source: Source) -> None:
        self.queue.put_nowait((message, source))

    async def get(self, timeout: float = 2.0) -> tuple[Request | Response, Source]:
        return await asyncio.wait_for(self.queue.get(), timeout)


async def started(
    receiver: Callable[[Request | Response, Source], None], **options: Any
) -> Transport:
    transport = Transport(HOST, 0, **options)
    transport.set_receiver(receiver)
    await transport.start()
    return transport


def with_transport(
    body: Callable[[Transport, Inbox, Peer], Awaitable[None]], **options: Any
) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        transport = await started(inbox, **options)
        peer = Peer()
        try:
            await body(transport, inbox, peer)
        finally:
            peer.close()
            await transport.close()

    run(scenario())


# -- addresses -------------------------------------------------------------------------------


def test_start_needs_a_receiver() -> None:
    async def scenario() -> None:
        with pytest.raises(RuntimeError, match="set_receiver"):
            await Transport(HOST, 0).start()

    run(scenario())


def test_a_port_taken_for_tcp_is_reported_with_the_address() -> None:
    async def scenario() -> None:
        taken = socket.socket()
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        transport = Transport(HOST, port)
        transport.set_receiver(Inbox())
        try:
            with pytest.raises(OSError, match=f"cannot bind SIP/TCP to 127.0.0.1:{port}"):
                await transport.start()
        finally:
            taken.close()

    run(scenario())


def test_advertised_address_goes_in_via() -> None:
    transport = Transport(HOST, 5070, advertised_host="203.0.113.7", advertised_port=5080)
    assert (transport.local_via_host, transport.local_via_port) == ("203.0.113.7", 5080)
    assert Transport(HOST, 5070).local_via_port == 5070
    assert Transport("::1", 5060).local_via_host == "[::1]"
    assert Transport("0.0.0.0", 5060, advertised_host="sip.example.com").local_via_host == (
        "sip.example.com"
    )
    with pytest.raises(ValueError, match="advertised_host"):
        Transport("0.0.0.0", 5060)
    with pytest.raises(ValueError, match="bind_host must be an IP address"):
        Transport("localhost", 5060)


def test_received_and_rport_rules() -> None:
    source = Destination("udp", "192.0.2.9", 40000)
    with_rport = received_via(Via.parse("SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKx;rport"), source)
    assert with_rport is not None
    assert (with_rport.received, with_rport.rport) == ("192.0.2.9", 40000)
    same = Via.parse("SIP/2.0/UDP 192.0.2.9:5062;branch=z9hG4bKx;rport")
    assert received_via(same, source).received == "192.0.2.9"  # type: ignore[union-attr]
    named = received_via(Via.parse("SIP/2.0/UDP pc.example.com;branch=z9hG4bKx"), source)
    assert named is not None and named.received == "192.0.2.9" and not named.has_rport
    assert received_via(Via.parse("SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKx"), source) is None
    v6 = Destination("udp", "2001:db8::9", 5060)
    assert received_via(Via.parse("SIP/2.0/UDP [2001:DB8:0::9];branch=z9hG4bKx"), v6) is None


def test_response_destination_rules() -> None:
    source = Destination("udp", "192.0.2.9", 40000)
    assert response_destination(with_params("rport=40000;received=192.0.2.9"), source) == (
        Destination("udp", "192.0.2.9", 40000)
    )
    assert response_destination(with_params("received=192.0.2.9"), source) == (
        Destination("udp", "192.0.2.9", 5062)
    )
    assert response_destination(Via.parse("SIP/2.0/UDP 192.0.2.9"), source) == (
        Destination("udp", "192.0.2.9", 5060)
    )
    v6 = Via.parse("SIP/2.0/UDP [2001:db8::9]:5070")
    assert response_destination(v6, source) == Destination("udp", "2001:db8::9", 5070)
    tcp = Destination("tcp", "192.0.2.9", 51234)
    assert response_destination(with_params("received=192.0.2.9"), tcp) == tcp


def with_params(params: str) -> Via:
    return Via.parse(f"SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKx;{params}")


# -- UDP -----------------------------------------------------------------------------------


def test_udp_round_trip_with_received_and_rport_filled() -> None:
    async def body(transport: Transport, inbox: Inbox, peer: Peer) -> None:
        await peer.send(request_bytes(), transport.bound_port)
        message, source = await inbox.get()
        assert isinstance(message, Request) and message.method == "INVITE"
        assert source == Destination("udp", HOST, peer.port)
        via = message.top_via
        assert (via.host, via.port) == ("10.0.0.5", 5062)
        assert (via.received, via.rport) == (HOST, peer.port)
        assert str(via).endswith(f";rport={peer.port};received={HOST}")
        # 18.2.2 / RFC 3581: the response goes to received:rport, not to 10.0.0.5:5062.
        destination = response_destination(via, source)
        assert destination == source
        transport.send(message.make_response(180, to_tag="b1").serialize(), destination)
        reply = await peer.receive()
        assert isinstance(reply, Response) and reply.status == 180
        assert reply.top_via.rport == peer.port
        assert transport.counters.received == 1 and transport.counters.sent == 1

    with_transport(body)


def test_responses_are_passed_up_unchanged() -> None:
    async def body(transport: Transport, inbox: Inbox, peer: Peer) -> None:
        request = parse_message(request_bytes(via="SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKr"))
        assert isinstance(request, Request)
        await peer.send(request.make_response(200, to_tag="x").serialize(), transport.bound_port)
        message, _ = await inbox.get()
        assert isinstance(message, Response) and message.status == 200
        assert message.top_via.received is None

    with_transport(body)


def test_the_transaction_layer_answers_through_rport() -> None:
    """End to end: the Via says 10.0.0.5:5062 but the 100 and 200 reach the real source."""

    class Answering:
        def request_received(
            self, tx: ServerTransaction | None, request: Request, source: Source
        ) -> None:
            if tx is not None:
                tx.respond(request.make_response(200, to_tag="b1"))

        def response_received(self, *args: object) -> None: ...
        def transaction_timed_out(self, *args: object) -> None: ...
        def transport_error(self, *args: object) -> None: ...

    async def scenario() -> None:
        transport = Transport(HOST, 0)
        layer = TransactionLayer(
            transport, LoopClock(asyncio.get_running_loop()), TimerSettings(), Answering()
        )
        transport.set_receiver(layer.receive)
        await transport.start()
        peer = Peer()
        try:
            await peer.send(request_bytes("OPTIONS"), transport.bound_port)
            reply = await peer.receive()
            assert isinstance(reply, Response) and reply.status == 200
            assert (reply.top_via.received, reply.top_via.rport) == (HOST, peer.port)
        finally:
            peer.close()
            await transport.close()

    run(scenario())


def test_malformed_requests_are_answered_400_with_a_warning() -> None:
    async def body(transport: Transport, inbox: Inbox, peer: Peer) -> None:
        # The body is shorter than Content-Length: parsing fails, the headers survive.
        await peer.send(request_bytes(length=50, body=b"v=0\r\n"), transport.bound_port)
        reply = await peer.receive()
        assert isinstance(reply, Response) and reply.status == 400
        assert reply.to.tag and reply.call_id == "c1@10.0.0.5"
        assert (reply.top_via.received, reply.top_via.rport) == (HOST, peer.port)
        assert "Content-Length 50" in (reply.headers.get("Warning") or "")
        # Parsed, but a malformed To: refused by the checks.
        bad_to = request_bytes().replace(b"To: <sip:bob@example.com>", b"To: <sip:bob@>")
        await peer.send(bad_to, transport.bound_port)
        assert (await peer.receive()).status == 400  # type: ignore[union-attr]
        await peer.send(request_bytes("FROBNICATE"), transport.bound_port)
        assert (await peer.receive()).status == 501  # type: ignore[union-attr]
        assert inbox.queue.empty()
        counters = transport.counters
        assert (counters.received, counters.parse_errors, counters.rejected) == (3, 3, 3)

    with_transport(body)


def test_malformed_requests_without_what_a_response_needs_are_dropped() -> None:
    async def body(transport: Transport, inbox: Inbox, peer: Peer) -> None:
        port = transport.bound_port
        await peer.send(request_bytes(length=99, omit="Call-ID"), port)
        await peer.send(request_bytes(length=99, via="SIP/2.0/UDP"), port)  # unusable Via
        await peer.send(request_bytes("ACK", length=99), port)  # never answer an ACK
        assert await peer.receives_nothing()
        assert inbox.queue.empty() and transport.counters.parse_errors == 3
        assert transport.counters.rejected == 0

    with_transport(body)


def test_an_oversized_datagram_is_answered_513() -> None:
    async def body(transport: Transport, inbox: Inbox, peer: Peer) -> None:
        big = request_bytes(extra=("Subject: " + "x" * 1200,))
        assert len(big) > 1000
        await peer.send(big, transport.bound_port)
        reply = await peer.receive()
        assert isinstance(reply, Response) and reply.status == 513
        assert inbox.queue.empty()

    with_transport(body, max_size=1000)


def test_garbage_never_raises_out_of_the_datagram_callback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body(transport: Transport, inbox: Inbox, peer: Peer) -> None:
        port = transport.bound_port
        rng = random.Random(3261)
        junk = [
            b"",
            b"\r\n\r\n",  # keep-alive
            b"\x00\x00\x00\x00",
            b"\xff\xfe\xfd" * 50,
            b"SIP/2.0 200 OK\r\n\r\n",  # a response without headers: dropped
            b"INVITE\r\n\r\n",
            b"INVITE sip:x SIP/2.0\r\nVia: \xff\xfe\r\n\r\n",
            request_bytes()[:60],
            *(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(50)),
            *(mutate(rng, request_bytes()) for _ in range(200)),
        ]
        for datagram in junk:
            if datagram:
                await peer.send(datagram, port)
        await peer.send(request_bytes("OPTIONS"), port)  # still alive afterwards
        for _ in range(300):
            message, _ = await inbox.get()
            if isinstance(message, Request) and message.method == "OPTIONS":
                break
        else:
            pytest.fail("the OPTIONS sent after the garbage never arrived")
        assert transport.counters.keepalives >= 2
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    with caplog.at_level(logging.DEBUG, logger="media.sip.transport"):
        with_transport(body)


def mutate(rng: random.Random, data: bytes) -> bytes:
    chars = bytearray(data)
    for _ in range(rng.randrange(1, 6)):
        chars[rng.randrange(len(chars))] = rng.choice(b":;,<>\r\n \x00\xffz9")
    return bytes(chars)


def test_an_exception_in_the_receiver_is_logged_with_the_source(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        calls: list[str] = []

        def receiver(message: Request | Response, source: Source) -> None:
            calls.append(message.call_id)
            if len(calls) == 1:
                raise RuntimeError("TU bug")

        transport = await started(receiver)
        peer = Peer()
        try:
            await peer.send(request_bytes("OPTIONS"), transport.bound_port)
            await peer.send(request_bytes("OPTIONS"), transport.bound_port)
            for _ in range(100):
                if len(calls) == 2:
                    break
                await asyncio.sleep(0.01)
            assert len(calls) == 2
        finally:
            peer.close()
            await transport.close()

    run(scenario())
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "127.0.0.1" in record.getMessage() and record.exc_info is not None


def test_sending_errors_raise_at_once() -> None:
    async def body(transport: Transport, inbox: Inbox, peer: Peer) -> None:
        with pytest.raises(TransportError, match="not an IP address"):
            transport.send(b"x", Destination("udp", "sip.example.com", 5060))
        with pytest.raises(TransportError, match="not enabled"):
            transport.send(b"x", Destination("tls", HOST, 5061))
        with pytest.raises(OSError):
            transport.send(b"x" * 70000, Destination("udp", HOST, peer.port))  # EMSGSIZE
        assert transport.counters.send_errors == 3 and transport.counters.sent == 0

    with_transport(body, tcp=False)


# -- TCP -----------------------------------------------------------------------------------


def test_tcp_request_and_response_on_the_same_connection() -> None:
    async def body(transport: Transport, inbox: Inbox, peer: Peer) -> None:
        reader, writer = await asyncio.open_connection(HOST, transport.bound_port)
        try:
            writer.write(b"\r\n\r\n")  # RFC 5626 ping
            assert await asyncio.wait_for(reader.readexactly(2), 2) == b"\r\n"
            sdp = b"v=0\r\n"
            data = request_bytes(via="SIP/2.0/TCP 10.0.0.5:5062;branch=z9hG4bKt", body=sdp)
            writer.write(data[:40])
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(data[40:] + request_bytes("OPTIONS", via="SIP/2.0/TCP 10.0.0.5"))
            message, source = await inbox.get()
            assert isinstance(message, Request) and message.body == sdp
            assert source.transport == "tcp" and source.reliable
            second, _ = await inbox.get()
            assert isinstance(second, Request) and second.method == "OPTIONS"
            destination = response_destination(message.top_via, source)
            assert destination == source
            transport.send(message.make_response(200, to_tag="t").serialize(), destination)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
            assert head.startswith(b"SIP/2.0 200 OK\r\n")
        finally:
            writer.close()

    with_transport(body)


def test_tcp_between_two_transports_and_a_refused_connection() -> None:
    async def scenario() -> None:
        inbox = Inbox()
        server = await started(inbox)
        client = await started(Inbox())
        errors: list[OSError] = []
        try:
            target = Destination("tcp", HOST, server.bound_port)
            client.send(request_bytes("MESSAGE", via="SIP/2.0/TCP 127.0.0.1"), target)
            message, source = await inbox.get()
            assert isinstance(message, Request) and source.transport == "tcp"
            free = socket.socket()
            free.bind((HOST, 0))
            closed_port = free.getsockname()[1]
            free.close()
            client.send(b"OPTIONS", Destination("tcp", HOST, closed_port), errors.append)
            for _ in range(100):
                if errors:
                    break
                await asyncio.sleep(0.01)
            assert isinstance(errors[0], ConnectionRefusedError)
        finally:
            await client.close()
            await server.close()

    run(scenario())


def test_a_stream_that_cannot_be_framed_is_closed() -> None:
    async def body(transport: Transport, inbox: Inbox, peer: Peer) -> None:
        reader, writer = await asyncio.open_connection(HOST, transport.bound_port)
        writer.write(request_bytes(omit="Content-Length"))
        assert await asyncio.wait_for(reader.read(), 2) == b""  # closed by the transport
        writer.close()
        assert inbox.queue.empty()

    with_transport(body)


def test_a_large_request_goes_over_tcp_and_falls_back_to_udp_when_refused() -> None:
    class Recording:
        def __init__(self) -> None:
            self.events: list[tuple[str, object]] = []

        def request_received(self, *args: object) -> None: ...

        def response_received(
            self, tx: ClientTransaction | None, response: Response, source: Source
        ) -> None:
            self.events.append(("response", response.status))

        def transaction_timed_out(self, tx: object) -> None:
            self.events.append(("timeout", tx))

        def transport_error(self, tx: object, error: OSError) -> None:
            self.events.append(("error", error))

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        for server_tcp in (True, False):
            inbox = Inbox()
            server = await started(inbox, tcp=server_tcp)
            client = await started(lambda message, source: None)
            user = Recording()
            layer = TransactionLayer(client, LoopClock(loop), TimerSettings(), user)
            try:
                message = Request(
                    "MESSAGE",
                    f"sip:bob@127.0.0.1:{server.bound_port}",
                    [
                        ("Max-Forwards", "70"),
                        ("From", "<sip:alice@127.0.0.1>;tag=a"),
                        ("To", "<sip:bob@127.0.0.1>"),
                        ("Call-ID", f"large-{server_tcp}@127.0.0.1"),
                        ("CSeq", "1 MESSAGE"),
                        ("Content-Type", "text/plain"),
                    ],
                    b"y" * 1400,
                )
                layer.send_request(message, Destination("udp", HOST, server.bound_port))
                received, source = await inbox.get()
                expected = "tcp" if server_tcp else "udp"
                assert source.transport == expected
                assert received.top_via.transport == expected.upper()
                assert user.events == []
            finally:
                await client.close()
                await server.close()

    run(scenario())


def test_unsupported_required_extensions_are_answered_420() -> None:
    async def body(transport: Transport, inbox: Inbox, peer: Peer) -> None:
        await peer.send(request_bytes(extra=("Require: 100rel, timer",)), transport.bound_port)
        reply = await peer.receive()
        assert isinstance(reply, Response) and reply.status == 420
        assert reply.headers.get("Unsupported") == "100rel"
        await peer.send(request_bytes(extra=("Require: timer",)), transport.bound_port)
        message, _ = await inbox.get()
        assert isinstance(message, Request) and message.require == ("timer",)

    with_transport(body, supported_extensions={"timer"})
