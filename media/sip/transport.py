"""The SIP transport layer (RFC 3261 section 18, RFC 3581): UDP, and TCP for requests too
large for UDP, over asyncio.

Receiving (18.2.1, 18.1.2): each datagram or framed stream message is parsed
(``parse_message``) and checked (``check_request`` / ``check_response``). A request that
fails is answered statelessly with the status the failure calls for (400, 505, 513 ...)
when it still holds what a response needs (Via, From, To, Call-ID, CSeq) and is not an
ACK; anything else that fails is dropped. A request that passes gets ``received`` (and
RFC 3581 ``rport``) added to its top Via, then goes to the receiver, normally
``TransactionLayer.receive``. Nothing a peer sends can raise out of the socket callbacks:
unexpected errors are logged with the source.

Sending: ``send(data, destination)`` hands bytes to the socket and returns; UDP never
blocks the loop (a full socket buffer queues in asyncio's transport). Errors known at once
(no route, a host that is not an IP address) raise ``OSError``; errors known later (a TCP
connection that fails) go to ``on_error``. Destinations hold IP addresses: resolving names
(RFC 3263) happens before the transport. Where a response goes is
``response_destination`` (18.2.2 and RFC 3581 section 4).

    transport = Transport("0.0.0.0", 5060, advertised_host="203.0.113.7")
    layer = TransactionLayer(transport, LoopClock(loop), TimerSettings(), user)
    transport.set_receiver(layer.receive)
    await transport.start()
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import logging
import secrets
import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from media.sip.headers import Headers, canonical_name
from media.sip.message import (
    DEFAULT_MAX_SIZE,
    Request,
    Response,
    parse_message,
    stream_frame_length,
)
from media.sip.syntax import SipParseError
from media.sip.validation import check_request, check_response
from media.sip.via import Via

__all__ = [
    "DEFAULT_PORT",
    "UDP_REQUEST_LIMIT",
    "Destination",
    "ErrorCallback",
    "MessageSender",
    "Receiver",
    "Source",
    "Transport",
    "TransportCounters",
    "TransportError",
    "received_via",
    "response_destination",
]

log = logging.getLogger(__name__)

DEFAULT_PORT = 5060
UDP_REQUEST_LIMIT = 1300
"""Requests larger than this go over TCP when the path MTU is unknown (RFC 3261 18.1.1)."""

_RECEIVE_BUFFER = 2 * 1024 * 1024
_PORT_ATTEMPTS = 20
_KEEPALIVE_BYTES = b"\r\n\0 \t"
_ANSWER_NEEDS = ("Via", "From", "To", "Call-ID", "CSeq")


class Destination(NamedTuple):
    """Where a message goes or came from: ``("udp" | "tcp", IP address, port)``. IPv6
    addresses are written without brackets."""

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        """True for a stream transport: no retransmissions, no waiting timers."""
        return self.transport != "udp"


Source = Destination
"""Where a received message came from (the remote address and the transport)."""

Receiver = Callable[[Request | Response, Source], None]
ErrorCallback = Callable[[OSError], None]


class TransportError(OSError):
    """A message could not be handed to the network (the cause is in the message)."""


@dataclass(slots=True)
class TransportCounters:
    """Running totals for monitoring and the benchmark."""

    received: int = 0
    """Datagrams and stream messages received (keep-alives excluded)."""
    sent: int = 0
    parse_errors: int = 0
    """Messages that failed parsing or the checks of ``media.sip.validation``."""
    rejected: int = 0
    """Of those, requests answered statelessly (400, 513 ...); the rest were dropped."""
    keepalives: int = 0
    send_errors: int = 0


class MessageSender(Protocol):
    """What the transaction layer needs of a transport (``Transport`` or a test fake)."""

    @property
    def local_via_host(self) -> str: ...

    @property
    def local_via_port(self) -> int: ...

    def supports(self, transport: str) -> bool: ...

    def send(
        self, data: bytes, destination: Destination, on_error: ErrorCallback | None = None
    ) -> None: ...


def received_via(via: Via, source: Source) -> Via | None:
    """The top Via a server transport must pass up (RFC 3261 18.2.1, RFC 3581 section 4),
    or None when it needs no change: ``received`` is added when the sent-by host is not
    the source address, and always when ``rport`` is present; an ``rport`` without a value
    gets the source port."""
    if via.has_rport:
        return via.with_received(source.host, source.port if via.rport is None else None)
    if not _same_address(via.host, source.host):
        return via.with_param("received", source.host)
    return None


def response_destination(via: Via, source: Source) -> Destination:
    """Where the responses to a request go (RFC 3261 18.2.2, RFC 3581 section 4).

    ``via`` is the request's top Via as the transport passed it up (``received`` added).
    Over a stream, responses go back on the connection the request came in on. Over UDP,
    to ``received`` (else the sent-by host) at ``rport`` (else the sent-by port, else
    5060). ``maddr`` (multicast) is not supported.
    """
    if source.transport != "udp":
        return source
    host = via.received or via.host
    if host.startswith("["):
        host = host[1:-1]
    return Destination("udp", host, via.rport or via.port or DEFAULT_PORT)


class Transport:
    """UDP and (optionally) TCP on one address, with the advertised address that goes in
    Via, Contact and SDP when the engine is behind NAT.

    ``bind_host`` is an IP address (``0.0.0.0`` or ``::`` for every interface, which then
    needs ``advertised_host``); ``bind_port`` 0 picks a free port. ``max_size`` bounds
    every received message (larger ones are answered 513). A request whose Require lists
    an option tag outside ``supported_extensions`` is answered 420 (RFC 3261 8.2.2.3).
    """

    def __init__(
        self,
        bind_host: str,
        bind_port: int = DEFAULT_PORT,
        *,
        advertised_host: str | None = None,
        advertised_port: int | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        tcp: bool = True,
        supported_extensions: Collection[str] = (),
        connect_timeout: float = 4.0,
        idle_timeout: float = 300.0,
    ) -> None:
        if not _is_ip_address(bind_host):
            raise ValueError(f"SIP bind_host must be an IP address, not {bind_host!r}")
        if not 0 <= bind_port <= 65535:
            raise ValueError(f"SIP bind_port must be 0-65535, not {bind_port}")
        if advertised_host is None and ipaddress.ip_address(bind_host).is_unspecified:
            raise ValueError(
                f"SIP bind_host {bind_host} listens on every interface: set advertised_host to "
                "the address peers should reach (it goes in Via and Contact)"
            )
        if advertised_port is not None and not 0 < advertised_port <= 65535:
            raise ValueError(f"SIP advertised_port must be 1-65535, not {advertised_port}")
        self.bind_host = bind_host
        self.bind_port = bind_port
        self.advertised_host = advertised_host
        self.advertised_port = advertised_port
        self.max_size = max_size
        self.tcp_enabled = tcp
        self.supported_extensions = frozenset(supported_extensions)
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.counters = TransportCounters()
        self._receiver: Receiver | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._bound_port = bind_port
        self._connections: dict[tuple[str, int], _StreamConnection] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweep: asyncio.TimerHandle | None = None

    # -- addresses ------------------------------------------------------------------

    @property
    def local_via_host(self) -> str:
        """The host for our Via sent-by, Contact and SDP (IPv6 in brackets)."""
        host = self.advertised_host or self.bind_host
        if ":" in host and not host.startswith("["):
            return f"[{host}]"
        return host

    @property
    def local_via_port(self) -> int:
        return self.advertised_port or self._bound_port

    @property
    def bound_port(self) -> int:
        """The port the sockets are bound to (known after ``start()`` when 0 was asked)."""
        return self._bound_port

    def supports(self, transport: str) -> bool:
        return transport == "udp" or (transport == "tcp" and self.tcp_enabled)

    # -- life cycle -----------------------------------------------------------------

    def set_receiver(self, receiver: Receiver) -> None:
        """Where received messages go (normally ``TransactionLayer.receive``)."""
        self._receiver = receiver

    async def start(self) -> None:
        """Bind the sockets and start passing received messages to the receiver."""
        if self._receiver is None:
            raise RuntimeError("set_receiver() must be called before the SIP transport starts")
        if self._udp is not None:
            raise RuntimeError("the SIP transport is already started")
        loop = asyncio.get_running_loop()
        self._loop = loop
        udp, tcp = self._bind()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _DatagramProtocol(self), sock=udp
        )
        self._sock = udp
        self._bound_port = udp.getsockname()[1]
        if tcp is not None:
            self._server = await loop.create_server(lambda: _StreamConnection(self, None), sock=tcp)
            self._sweep = loop.call_later(self.idle_timeout / 2, self._close_idle)

    def _bind(self) -> tuple[socket.socket, socket.socket | None]:
        """The UDP socket and, with TCP, a TCP socket on the same port. When any port will
        do (``bind_port`` 0), a port free for UDP but taken for TCP is given up for another."""
        family = socket.AF_INET6 if ":" in self.bind_host else socket.AF_INET
        attempts_left = _PORT_ATTEMPTS if self.bind_port == 0 else 1
        while True:
            attempts_left -= 1
            udp = _bound_socket(family, socket.SOCK_DGRAM, self.bind_host, self.bind_port)
            if not self.tcp_enabled:
                return udp, None
            port = udp.getsockname()[1]
            try:
                return udp, _bound_socket(family, socket.SOCK_STREAM, self.bind_host, port)
            except OSError as error:
                udp.close()
                if error.errno != errno.EADDRINUSE or not attempts_left:
                    raise

    async def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
        for connection in list(self._connections.values()):
            connection.close()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None
            self._sock = None

    # -- sending --------------------------------------------------------------------

    def send(
        self, data: bytes, destination: Destination, on_error: ErrorCallback | None = None
    ) -> None:
        """Hand ``data`` to the network; never blocks. Raises OSError for errors known at
        once; ``on_error`` receives those of a TCP connection that fails later."""
        try:
            if destination.transport == "udp":
                self._send_udp(data, destination)
            elif destination.transport == "tcp" and self.tcp_enabled:
                self._send_tcp(data, destination, on_error)
            else:
                raise TransportError(
                    f"SIP transport {destination.transport!r} is not enabled (udp"
                    f"{', tcp' if self.tcp_enabled else ''})"
                )
        except OSError:
            self.counters.send_errors += 1
            raise
        self.counters.sent += 1

    def _send_udp(self, data: bytes, destination: Destination) -> None:
        udp, sock = self._udp, self._sock
        if udp is None or sock is None:
            raise TransportError("the SIP transport is not started")
        address = (_checked_ip(destination.host), destination.port)
        if not udp.get_write_buffer_size():
            # Straight to the socket: errors such as "network unreachable" reach the caller
            # (asyncio's transport would report them without the address).
            try:
                sock.sendto(data, address)
                return
            except (BlockingIOError, InterruptedError):
                pass
        udp.sendto(data, address)

    def _send_tcp(
        self, data: bytes, destination: Destination, on_error: ErrorCallback | None
    ) -> None:
        key = (destination.host, destination.port)
        connection = self._connections.get(key)
        if connection is None:
            if self._loop is None:
                raise TransportError("the SIP transport is not started")
            _checked_ip(destination.host)
            connection = _StreamConnection(self, destination)
            self._connections[key] = connection
            task = self._loop.create_task(self._connect(connection, destination))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        connection.write(data, on_error)

    async def _connect(self, connection: _StreamConnection, destination: Destination) -> None:
        assert self._loop is not None
        try:
            await asyncio.wait_for(
                self._loop.create_connection(
                    lambda: connection, destination.host, destination.port
                ),
                self.connect_timeout,
            )
        except OSError as error:  # TimeoutError included
            log.info("SIP/TCP connection to %s:%s failed: %s", *destination[1:], error)
            connection.failed(error)

    # -- receiving ------------------------------------------------------------------

    def _receive(self, data: bytes, source: Source, stream: bool) -> None:
        """Parse, check and pass up one message (the body of every socket callback)."""
        counters = self.counters
        try:
            message = parse_message(data, max_size=self.max_size, stream=stream)
        except SipParseError as error:
            if not data.strip(_KEEPALIVE_BYTES):
                counters.keepalives += 1
                return
            counters.received += 1
            counters.parse_errors += 1
            if error.status is None:
                log.debug("SIP message from %s:%s dropped: %s", source.host, source.port, error)
                return
            salvaged = _salvage_head(data)
            if salvaged is None:
                log.debug("SIP message from %s:%s dropped: %s", source.host, source.port, error)
                return
            self._reject(*salvaged, error.status, str(error), source)
            return
        counters.received += 1
        if isinstance(message, Request):
            # RFC 2543 requests (no Max-Forwards, RFC 4475 3.4.1) are accepted: the
            # transaction layer matches their transactions too.
            status = check_request(
                message, supported_extensions=self.supported_extensions, allow_rfc2543=True
            )
            if status is not None:
                counters.parse_errors += 1
                self._reject(message.method, message.headers, status, None, source, message)
                return
            stamped = received_via(message.top_via, source)
            if stamped is not None:
                _replace_top_via(message.headers, stamped)
        elif not check_response(message):
            counters.parse_errors += 1
            log.debug("SIP response from %s:%s dropped: malformed", source.host, source.port)
            return
        assert self._receiver is not None
        self._receiver(message, source)

    def _reject(
        self,
        method: str,
        rows: Headers,
        status: int,
        detail: str | None,
        source: Source,
        request: Request | None = None,
    ) -> None:
        """Answer a request that cannot be processed, without a transaction. ``detail``
        is the parse error (sent in a Warning); ``request`` the parsed request, if any."""
        where = f"{source.host}:{source.port}"
        if method == "ACK":
            log.debug("malformed ACK from %s dropped (%s)", where, detail or status)
            return
        reason = detail or "failed the request checks"
        if any(name not in rows for name in _ANSWER_NEEDS):
            log.debug("malformed SIP request from %s dropped (%s)", where, reason)
            return
        headers = Headers()
        for name in _ANSWER_NEEDS:
            for value in rows.get_all(name):
                headers.add(name, value)
        try:
            via = Via.parse_list(headers.get_all("Via")[0])[0]
        except SipParseError:
            log.debug("malformed SIP request from %s dropped: its Via is unusable", where)
            return
        stamped = received_via(via, source)
        if stamped is not None:
            _replace_top_via(headers, stamped)
            via = stamped
        to = headers.get("To") or ""
        if ";tag=" not in to.lower().replace(" ", ""):
            headers.set("To", f"{to};tag={secrets.token_hex(6)}")
        if detail:
            headers.add("Warning", f'399 {self.local_via_host} "{_warning_text(detail)}"')
        if status == 420 and request is not None:
            unsupported = [t for t in request.require if t not in self.supported_extensions]
            headers.add("Unsupported", ", ".join(unsupported))
        response = Response(status, None, headers)
        log.info("SIP request from %s answered %s (%s)", where, status, reason)
        try:
            self.send(response.serialize(), response_destination(via, source))
        except OSError as error:
            log.info("could not answer %s to %s: %s", status, where, error)
            return
        self.counters.rejected += 1

    def _close_idle(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for connection in list(self._connections.values()):
            if now - connection.last_activity > self.idle_timeout:
                connection.close()
        self._sweep = self._loop.call_later(self.idle_timeout / 2, self._close_idle)


class _DatagramProtocol(asyncio.DatagramProtocol):
    __slots__ = ("owner",)

    def __init__(self, owner: Transport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.owner._receive(data, Destination("udp", addr[0], addr[1]), False)
        except Exception:
            log.exception("SIP datagram from %s:%s could not be handled", addr[0], addr[1])

    def error_received(self, exc: Exception) -> None:
        log.info("SIP/UDP socket error: %s", exc)


class _StreamConnection(asyncio.Protocol):
    """One TCP connection, inbound or outbound: frames the byte stream into messages
    (RFC 3261 18.3) and answers CRLF keep-alive pings (RFC 5626 section 3.5.1)."""

    def __init__(self, owner: Transport, destination: Destination | None) -> None:
        self.owner = owner
        self.peer = destination
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.pending: list[tuple[bytes, ErrorCallback | None]] = []
        self.last_activity = owner._loop.time() if owner._loop else 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.peer is None:  # inbound
            host, port = transport.get_extra_info("peername")[:2]
            self.peer = Destination("tcp", host, port)
            self.owner._connections[(host, port)] = self
        pending, self.pending = self.pending, []
        for data, _ in pending:
            transport.write(data)

    def write(self, data: bytes, on_error: ErrorCallback | None) -> None:
        if self.transport is None:
            self.pending.append((data, on_error))
        elif self.transport.is_closing():
            raise ConnectionResetError(f"SIP/TCP connection to {self.peer} is closed")
        else:
            self.last_activity = self.owner._loop.time() if self.owner._loop else 0.0
            self.transport.write(data)

    def failed(self, error: OSError) -> None:
        """The outbound connection could not be made: tell every waiting sender."""
        self._forget()
        pending, self.pending = self.pending, []
        for _, on_error in pending:
            self.owner.counters.send_errors += 1
            if on_error is not None:
                on_error(error)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        try:
            self._feed(data)
        except Exception:
            log.exception("SIP/TCP data from %s could not be handled; closing", peer)
            self.close()

    def _feed(self, data: bytes) -> None:
        owner = self.owner
        if owner._loop is not None:
            self.last_activity = owner._loop.time()
        buffer = self.buffer
        buffer += data
        assert self.peer is not None and self.transport is not None
        while buffer:
            crlf = 0
            while buffer.startswith(b"\r\n", crlf):
                crlf += 2
            if crlf:
                if crlf >= 4:
                    self.transport.write(b"\r\n")
                    owner.counters.keepalives += 1
                del buffer[:crlf]
                continue
            try:
                length = stream_frame_length(bytes(buffer), max_size=owner.max_size)
            except SipParseError as error:
                owner.counters.parse_errors += 1
                log.info("SIP/TCP stream from %s cannot be framed (%s); closing", self.peer, error)
                self.close()
                return
            if length is None:
                return
            frame = bytes(buffer[:length])
            del buffer[:length]
            try:
                owner._receive(frame, self.peer, True)
            except Exception:
                log.exception("SIP message from %s could not be handled", self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        if self.pending:
            lost = exc if isinstance(exc, OSError) else ConnectionResetError("connection lost")
            self.failed(lost)

    def close(self) -> None:
        self._forget()
        if self.transport is not None:
            self.transport.close()

    def _forget(self) -> None:
        if self.peer is not None:
            key = (self.peer.host, self.peer.port)
            if self.owner._connections.get(key) is self:
                del self.owner._connections[key]


def _bound_socket(family: int, kind: int, host: str, port: int) -> socket.socket:
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_DGRAM:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
            except OSError:
                log.debug("SO_RCVBUF not raised for SIP/UDP", exc_info=True)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setblocking(False)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        name = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
        raise OSError(error.errno, f"cannot bind SIP/{name} to {host}:{port}: {error}") from error
    return sock


def _replace_top_via(headers: Headers, via: Via) -> None:
    headers.pop_first_value("Via")
    headers.add("Via", via.serialize(), first=True)


@functools.lru_cache(maxsize=4096)
def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _checked_ip(host: str) -> str:
    if not _is_ip_address(host):
        raise TransportError(f"SIP destination {host!r} is not an IP address (resolve it first)")
    return host


def _same_address(via_host: str, address: str) -> bool:
    """True when a Via sent-by host is the IP address ``address`` (a name never is)."""
    if via_host == address:
        return True
    bare = via_host[1:-1] if via_host.startswith("[") else via_host
    if not (_is_ip_address(bare) and _is_ip_address(address)):
        return False
    return ipaddress.ip_address(bare) == ipaddress.ip_address(address)


def _salvage_head(data: bytes) -> tuple[str, Headers] | None:
    """The method and the rows a stateless answer copies, read leniently from a request
    that did not parse; None when they cannot be found."""
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    end = data.find(b"\r\n\r\n", start)
    head = data[start : end if end >= 0 else len(data)].decode("utf-8", "surrogateescape")
    lines = head.replace("\r\n ", " ").replace("\r\n\t", " ").split("\r\n")
    method = lines[0].split(" ", 1)[0]
    headers = Headers()
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            continue
        name = canonical_name(name.strip(" \t"))
        if name in _ANSWER_NEEDS:
            try:
                headers.add(name, value)
            except ValueError:  # a stray CR or LF, or a name that is not a token
                return None
    return method, headers


def _warning_text(detail: str) -> str:
    """The parse error as a Warning header's quoted text: printable ASCII, no quotes."""
    text = "".join(ch if " " <= ch <= "~" and ch not in '"\\' else "'" for ch in detail)
    return text[:160]
