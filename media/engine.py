"""The media node's engine: SIP call control behind the command/event protocol.

It registers phones (digest auth, per-source throttling), classifies every new INVITE
(from the configured trunk, from an authenticated extension, or from outside), announces
calls as `incoming` events, and carries out the worker's commands on call legs: answer,
reject, hangup, originate (to all contacts of an extension at once, to a number through
the trunk, or to a SIP URI), hold and resume. It never decides where a call goes: that is
the worker's job, so the engine is never an open relay on its own.

Nothing here touches a database: the `Directory` (extensions and their digests) and the
bindings' persistence are handed in.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from media.fetch import fetch_audio
from media.plane import MediaPlane, run_inline
from media.protocol import VERSION
from media.rtp.stream import Endpoint, RtpStream, SocketEndpoint, StreamParameters
from media.sip.clock import Clock, LoopClock, TimerHandle, TimerSettings
from media.sip.dialog import new_call_id, new_tag
from media.sip.digest import DigestClient, DigestServer, Verdict
from media.sip.headers import Headers
from media.sip.message import Request, Response
from media.sip.registrar import Binding, Registrar, RequestedContact, Throttle
from media.sip.session import (
    LocalMedia,
    Session,
    UacCalling,
    UasProceeding,
    end_cause,
)
from media.sip.stack import SipStack
from media.sip.syntax import SipParseError
from media.sip.transaction import ClientTransaction, ServerTransaction, TransactionLayer
from media.sip.transport import Destination, MessageSender, Source, Transport
from media.sip.uri import SipUri, parse_uri

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], None]

REJECT_STATUS = {
    "busy": 486,
    "rejected": 603,
    "forbidden": 403,
    "not-found": 404,
    "unavailable": 480,
    "failed": 500,
}


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """An extension as the engine sees it: whose it is and its password's digests."""

    owner: str  # opaque to the engine (the account)
    extension: str
    realm: str
    ha1: dict[str, str]  # algorithm -> HA1


class Directory(Protocol):
    def extension(self, domain: str, user: str) -> DirectoryEntry | None: ...
    def owner_extension(self, owner: str, extension: str) -> DirectoryEntry | None: ...
    def save_bindings(self, owner: str, extension: str, bindings: list[Binding]) -> None: ...


@dataclass(frozen=True, slots=True)
class TrunkConfig:
    uri: SipUri
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True)
class EngineConfig:
    node: str
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    advertised_host: str | None = None
    media_host: str | None = None
    rtp_ports: tuple[int, int] = (20000, 30000)
    trunk: TrunkConfig | None = None
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    timers: TimerSettings = field(default_factory=TimerSettings)
    # One challenge per algorithm, in this order; a phone takes the first it supports
    # (RFC 8760 2.4). MD5 alone by default, as Asterisk and FreeSWITCH do: libre-based
    # phones (baresip) and many desk phones fail on a challenge whose algorithm they
    # lack, or on a second challenge for the same realm, instead of picking one.
    digest_algorithms: tuple[str, ...] = ("MD5",)
    recordings: Path = Path("var/recordings")
    # Private networks `play` may fetch audio from (WEBHOOK_ALLOW_NETWORKS).
    fetch_allow_networks: tuple[str, ...] = ()
    user_agent: str = "voice-engine"


class PortPool:
    """Even RTP ports (RTCP on the odd one above), handed out and taken back."""

    def __init__(self, low: int, high: int) -> None:
        self._free = deque(range(low + (low % 2), high - 1, 2))
        self.in_use: set[int] = set()

    def take(self) -> int:
        if not self._free:
            raise RuntimeError("no free RTP ports")
        port = self._free.popleft()
        self.in_use.add(port)
        return port

    def give_back(self, port: int) -> None:
        if port in self.in_use:
            self.in_use.discard(port)
            self._free.append(port)


@dataclass
class CommandGate:
    """Runs a leg's commands in `seq` order, each once."""

    last: int = 0
    held: dict[int, dict[str, Any]] = field(default_factory=dict)

    def admit(self, command: dict[str, Any]) -> list[dict[str, Any]]:
        seq = command["seq"]
        if seq <= self.last or seq in self.held:
            return []
        self.held[seq] = command
        ready = []
        while self.last + 1 in self.held:
            self.last += 1
            ready.append(self.held.pop(self.last))
        return ready


class Leg:
    """A call leg of the protocol: one session, or a fork of sessions ringing at once."""

    def __init__(self, engine: Engine, leg_id: str) -> None:
        self.engine = engine
        self.id = leg_id
        self.next_event_seq = 1
        self.gate = CommandGate()
        self.sessions: list[Session] = []
        self.answered: Session | None = None
        self.rang = False
        self.ended = False
        self.failures: list[tuple[str, int | None]] = []
        self.timeout: TimerHandle | None = None
        self.cancelled_by_us = False
        self.holding = {"remote": False, "local": False}
        self.timers: list[TimerHandle] = []
        self.time_limit: float | None = None  # an originated leg ends this long after answer

    @property
    def session(self) -> Session | None:
        return self.answered or (self.sessions[0] if len(self.sessions) == 1 else None)

    def emit(self, type_: str, **fields: Any) -> None:
        self.engine.emit_event(self, type_, **fields)

    # ---- SessionListener, for each session of the leg

    def session_ringing(self, session: Session) -> None:
        if not self.rang and not self.ended:
            self.rang = True
            self.emit("ringing")

    def session_answered(self, session: Session) -> None:
        if self.ended:
            session.hangup()
            return
        if self.answered is not None and self.answered is not session:
            session.hangup()  # a second fork answered too: first answer wins
            return
        self.answered = session
        if self.timeout is not None:
            self.timeout.cancel()
        for other in self.sessions:
            if other is not session:
                other.hangup()
        self.engine.attach_media(self, session)
        if self.time_limit:
            self.timers.append(
                self.engine.clock.call_later(self.time_limit, lambda: self.hangup("local"))
            )
        self.emit("answered", **_media_fields(session))

    def session_media_changed(self, session: Session) -> None:
        """After an offer/answer in the call: report who holds whom now, if it changed."""
        if session is not self.answered or session.media is None:
            return
        self.engine.update_media(self, session)
        holds = {"remote": session.media.on_hold, "local": session.on_hold_locally}
        for by, held in holds.items():
            if held != self.holding[by]:
                self.holding[by] = held
                self.emit("held" if held else "resumed", by=by, **_media_fields(session))

    def session_ended(self, session: Session, cause: str, sip_code: int | None) -> None:
        self.engine.release_media(session)
        if self.ended:
            return
        if self.answered is not None and session is not self.answered:
            return
        if self.answered is None and any(not s.ended for s in self.sessions):
            self.failures.append((cause, sip_code))
            return  # other forks still ring
        self.failures.append((cause, sip_code))
        if self.cancelled_by_us and self.answered is None:
            cause, sip_code = self.cancel_cause, sip_code
        elif self.answered is None:
            cause, sip_code = _best_failure(self.failures)
        self.ended = True
        for timer in (self.timeout, *self.timers):
            if timer is not None:
                timer.cancel()
        self.engine.plane.detach(self.id)  # its last prompt, digits, recording first
        self.emit("hangup", cause=cause, sip_code=sip_code)
        self.engine.forget_leg(self)

    cancel_cause = "local"

    def session_dtmf(self, session: Session, digit: str) -> None:
        """A digit by SIP INFO (application/dtmf-relay)."""
        if session is self.answered and not self.ended:
            self.engine.plane.info_digit(self.id, digit)

    def hangup(self, cause: str = "local") -> None:
        if self.ended:
            return
        self.cancelled_by_us = True
        self.cancel_cause = cause
        if not self.sessions:
            self.ended = True
            self.engine.plane.detach(self.id)
            self.emit("hangup", cause=cause, sip_code=None)
            self.engine.forget_leg(self)
            return
        for session in list(self.sessions):
            session.hangup()


def _best_failure(failures: list[tuple[str, int | None]]) -> tuple[str, int | None]:
    """The outcome of a fork that nobody answered: busy beats rejected beats the rest."""
    for wanted in ("busy", "rejected", "no-answer", "canceled"):
        for cause, code in failures:
            if cause == wanted:
                return cause, code
    return failures[0] if failures else ("failed", None)


def _stream_parameters(session: Session) -> StreamParameters:
    media = session.media
    assert media is not None
    return StreamParameters(
        remote=(media.remote_address, media.remote_port),
        remote_rtcp=(media.remote_address, media.remote_rtcp_port),
        payload_type=media.payload_type,
        codec=media.codec,
        telephone_event_pt=media.telephone_event_pt,
        sends=media.sends and media.remote_port != 0,
        receives=media.receives,
    )


def _run_in_executor(
    work: Callable[[], Any], done: Callable[[Any, BaseException | None], None]
) -> None:
    """Slow media work (speech, downloads) on the loop's thread pool; `done` on the loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        run_inline(work, done)
        return
    future = loop.run_in_executor(None, work)

    def finished(completed: asyncio.Future) -> None:
        error = completed.exception()
        done(None if error else completed.result(), error)

    future.add_done_callback(finished)


def _media_fields(session: Session) -> dict[str, Any]:
    media = session.media
    if media is None:
        return {}
    return {
        "codec": media.codec,
        "telephone_event_pt": media.telephone_event_pt,
        "remote_rtp": f"{media.remote_address}:{media.remote_port}",
    }


class MediaAllocator(Protocol):
    """Hands out the local RTP address of each new leg and takes it back; `endpoint`
    gives the sockets behind an address (None where there are none, as in unit tests
    of signalling alone)."""

    def take(self) -> LocalMedia: ...
    def release(self, media: LocalMedia) -> None: ...
    def endpoint(self, media: LocalMedia) -> Endpoint | None: ...


class SocketPorts:
    """RTP/RTCP port pairs from a range, each bound from the moment the port goes into
    an SDP until its leg ends, so no other program takes it and early packets land."""

    def __init__(self, bind_host: str, media_host: str, low: int, high: int) -> None:
        self.bind_host = bind_host
        self.media_host = media_host
        self.pool = PortPool(low, high)
        self._endpoints: dict[int, SocketEndpoint] = {}

    def take(self) -> LocalMedia:
        for _ in range(len(self.pool._free) + 1):
            port = self.pool.take()
            try:
                self._endpoints[port] = SocketEndpoint.bind(self.bind_host, port)
            except OSError as error:
                log.warning("RTP port %s is taken (%s); trying another", port, error)
                continue  # not given back: something else holds it
            return LocalMedia(self.media_host, port)
        raise RuntimeError("no free RTP ports")

    def endpoint(self, media: LocalMedia) -> Endpoint | None:
        return self._endpoints.get(media.port)

    def release(self, media: LocalMedia) -> None:
        endpoint = self._endpoints.pop(media.port, None)
        if endpoint is not None:
            endpoint.close()
        self.pool.give_back(media.port)

    def close(self) -> None:
        for endpoint in self._endpoints.values():
            endpoint.close()
        self._endpoints.clear()


class Engine:
    """The SIP side of a media node; `execute` takes commands, `emit` gives events."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        directory: Directory,
        emit: Emit,
        clock: Clock,
        wall_clock: Callable[[], float] = time.time,
        transport: MessageSender | None = None,
        media: MediaAllocator | None = None,
        run_blocking: Callable[..., None] | None = None,
    ) -> None:
        self.config = config
        self.directory = directory
        self._emit = emit
        self.clock = clock
        self.wall_clock = wall_clock
        self.transport = transport or Transport(
            config.sip_host,
            config.sip_port,
            advertised_host=config.advertised_host,
        )
        self.transactions = TransactionLayer(self.transport, clock, config.timers, self)
        self.stack = SipStack(
            self.transport, self.transactions, clock, config.timers, user_agent=config.user_agent
        )
        self.registrar = Registrar(_bindings_store(), clock=wall_clock)
        self.throttle = Throttle(wall_clock)
        self._digest: dict[str, DigestServer] = {}
        self.media = media or SocketPorts(
            config.sip_host,
            config.media_host or self.transport.local_via_host.strip("[]"),
            *config.rtp_ports,
        )
        self.plane = MediaPlane(
            clock,
            self._plane_event,
            recordings=config.recordings,
            run_blocking=run_blocking or _run_in_executor,
            fetch=lambda url: fetch_audio(url, config.fetch_allow_networks),
            precise=isinstance(clock, LoopClock),
        )
        self.legs: dict[str, Leg] = {}
        self.dialogs: dict[tuple[str, str, str], Session] = {}
        self.invites: dict[ServerTransaction, Session] = {}
        self._sweep: TimerHandle | None = None

    # ================================================================ lifecycle

    async def start(self) -> None:
        self.transport.set_receiver(self.transactions.receive)
        await self.transport.start()
        self._sweep = self.clock.call_later(30.0, self._expire_bindings)
        log.info(
            "SIP engine %s on udp:%s:%s",
            self.config.node,
            self.config.sip_host,
            self.transport.bound_port,
        )

    async def stop(self) -> None:
        for leg in list(self.legs.values()):
            leg.hangup("shutdown")
        await asyncio.sleep(0.2)  # let the BYEs and CANCELs leave
        if self._sweep is not None:
            self._sweep.cancel()
        if isinstance(self.media, SocketPorts):
            self.media.close()
        await self.transport.close()

    def restore_bindings(self, bindings: list[tuple[str, str, Binding]]) -> int:
        """Take back registrations this node saved before it restarted: (owner,
        extension, binding) each. Returns how many are still live."""
        by_aor: dict[str, list[Binding]] = {}
        now = self.wall_clock()
        for owner, extension, binding in bindings:
            if not binding.expired(now):
                key = _aor_key(owner, extension)
                by_aor.setdefault(key, []).append(replace(binding, aor=key))
        for key, live in by_aor.items():
            self.registrar.restore(key, live)
        return sum(len(live) for live in by_aor.values())

    def _expire_bindings(self) -> None:
        self.registrar.expire()
        self._sweep = self.clock.call_later(30.0, self._expire_bindings)

    # ================================================================ protocol

    def emit_event(self, leg: Leg, type_: str, **fields: Any) -> None:
        event = {
            "v": VERSION,
            "type": type_,
            "call": leg.id,
            "seq": leg.next_event_seq,
            "node": self.config.node,
            "at": self.wall_clock(),
            **fields,
        }
        leg.next_event_seq += 1
        self._emit(event)

    def execute(self, command: dict[str, Any]) -> None:
        """Carry out a command (already checked against `media.protocol`)."""
        leg = self.legs.get(command["call"])
        if leg is None:
            if command["type"] == "originate" and command["seq"] == 1:
                leg = Leg(self, command["call"])
                self.legs[leg.id] = leg
            else:
                log.info("command %s for unknown leg %s ignored", command["type"], command["call"])
                return
        for ready in leg.gate.admit(command):
            try:
                self._run(leg, ready)
            except Exception:
                log.exception("leg %s: command %s failed", leg.id, ready["type"])

    def _run(self, leg: Leg, command: dict[str, Any]) -> None:
        session = leg.session
        match command["type"]:
            case "answer":
                if session is not None:
                    session.accept()
            case "reject":
                if session is not None:
                    status = command.get("sip_code") or REJECT_STATUS.get(command["reason"], 603)
                    session.reject(int(status))
            case "hangup":
                leg.hangup("local")
            case "hold" | "resume" if command.get("music"):
                # Music on hold played by us; the peer is not re-INVITEd.
                self.plane.music_hold(leg.id, command["type"] == "hold")
            case "hold" | "resume":
                if session is not None:
                    session.hold() if command["type"] == "hold" else session.resume()
            case "originate":
                self._originate(leg, command)
            case other:
                if not self.plane.command(leg.id, command):
                    log.info("leg %s: command %s is not carried out by this node", leg.id, other)

    def forget_leg(self, leg: Leg) -> None:
        self.legs.pop(leg.id, None)
        self.plane.detach(leg.id)

    def _plane_event(self, leg_id: str, type_: str, fields: dict[str, Any]) -> None:
        leg = self.legs.get(leg_id)
        if leg is not None and not leg.ended:
            leg.emit(type_, **fields)

    def attach_media(self, leg: Leg, session: Session) -> None:
        endpoint_of = getattr(self.media, "endpoint", None)
        endpoint = endpoint_of(session.local_media) if endpoint_of is not None else None
        if endpoint is None or session.media is None:
            return
        stream = RtpStream(
            endpoint, _stream_parameters(session), cname=f"{leg.id}@{self.config.node}"
        )
        self.plane.attach(leg.id, stream)

    def update_media(self, leg: Leg, session: Session) -> None:
        if session.media is not None:
            self.plane.update(leg.id, _stream_parameters(session))

    # ================================================================== media

    def take_media(self) -> LocalMedia:
        return self.media.take()

    def release_media(self, session: Session) -> None:
        self.media.release(session.local_media)
        if session.dialog is not None:
            self.dialogs.pop(session.dialog.id, None)

    # ============================================ TransactionUser: requests

    def request_received(
        self, transaction: ServerTransaction | None, request: Request, source: Source
    ) -> None:
        try:
            self._request(transaction, request, source)
        except SipParseError as error:
            if transaction is not None:
                transaction.respond(self.stack.response_to(request, error.status or 400))
        except Exception:
            log.exception("%s from %s failed", request.method, source)
            if transaction is not None and request.method != "ACK":
                transaction.respond(self.stack.response_to(request, 500))

    def _request(
        self, transaction: ServerTransaction | None, request: Request, source: Source
    ) -> None:
        method = request.method
        to_tag = request.to.tag
        if method == "ACK":
            session = self._dialog_session(request)
            if session is not None:
                session.request(None, request)
            return
        if transaction is None:
            return  # a CANCEL matching no INVITE: the transaction layer answered 481
        if method == "CANCEL":
            transaction.respond(self.stack.response_to(request, 200))
            session = self.invites.get(transaction.cancelled) if transaction.cancelled else None
            if session is not None:
                session.cancelled()
            return
        if to_tag:
            session = self._dialog_session(request)
            if session is None:
                transaction.respond(self.stack.response_to(request, 481))
            else:
                session.request(transaction, request)
            return
        match method:
            case "INVITE":
                self._new_invite(transaction, request, source)
            case "REGISTER":
                self._register(transaction, request, source)
            case "OPTIONS":
                response = self.stack.response_to(request, 200, to_tag=new_tag())
                response.headers.add("Allow", SipStack.ALLOW + ", REGISTER")
                response.headers.add("Accept", "application/sdp")
                transaction.respond(response)
            case "BYE":
                transaction.respond(self.stack.response_to(request, 481))
            case _:
                response = self.stack.response_to(request, 405, to_tag=new_tag())
                response.headers.add("Allow", SipStack.ALLOW + ", REGISTER")
                transaction.respond(response)

    def _dialog_session(self, request: Request) -> Session | None:
        key = (request.call_id, request.to.tag or "", request.from_.tag or "")
        return self.dialogs.get(key)

    # ---------------------------------------------------------- authentication

    def _digest_server(self, realm: str) -> DigestServer:
        server = self._digest.get(realm)
        if server is None:
            server = DigestServer(
                realm,
                self.config.secret,
                clock=self.wall_clock,
                algorithms=self.config.digest_algorithms,
            )
            self._digest[realm] = server
        return server

    def _authenticate(
        self,
        transaction: ServerTransaction,
        request: Request,
        source: Source,
        entry: DirectoryEntry | None,
        realm: str,
        *,
        proxy: bool,
    ) -> bool:
        """Digest-check the request; answers the challenge or refusal itself if it fails.

        An unknown user is checked against nothing and refused exactly like a wrong
        password, after the same challenge.
        """
        if self.throttle.blocked(source.host):
            transaction.respond(self.stack.response_to(request, 403, to_tag=new_tag()))
            return False
        server = self._digest_server(realm)
        offered = request.proxy_authorization if proxy else request.authorization
        mine = [c for c in offered if (c.params.get("realm") or "").lower() == realm]
        if not mine:
            self._challenge(transaction, request, server, proxy=proxy, stale=False)
            return False

        def lookup(username: str, algorithm: str) -> str | None:
            if entry is None or username != entry.extension:
                return None
            return entry.ha1.get(algorithm)

        verdict = server.verify(request.method, mine[0], lookup)
        if verdict is Verdict.OK:
            self.throttle.succeeded(source.host)
            return True
        if verdict is Verdict.STALE:
            self._challenge(transaction, request, server, proxy=proxy, stale=True)
            return False
        self.throttle.failed(source.host)
        log.info("%s from %s: authentication failed", request.method, source.host)
        transaction.respond(self.stack.response_to(request, 403, to_tag=new_tag()))
        return False

    def _challenge(
        self,
        transaction: ServerTransaction,
        request: Request,
        server: DigestServer,
        *,
        proxy: bool,
        stale: bool,
    ) -> None:
        response = self.stack.response_to(request, 407 if proxy else 401, to_tag=new_tag())
        header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        for value in server.challenge(stale=stale):
            response.headers.add(header, value)
        transaction.respond(response)

    # ---------------------------------------------------------------- REGISTER

    def _register(self, transaction: ServerTransaction, request: Request, source: Source) -> None:
        aor = request.to.uri
        if not isinstance(aor, SipUri) or not aor.user:
            transaction.respond(self.stack.response_to(request, 404, to_tag=new_tag()))
            return
        realm = aor.host.lower()
        entry = self.directory.extension(realm, aor.user)
        if not self._authenticate(transaction, request, source, entry, realm, proxy=False):
            return
        assert entry is not None
        contacts = [
            RequestedContact(
                address.uri.serialize(),
                address.expires,
                address.q,
                (address.params.get("+sip.instance") or None),
            )
            for address in request.contact
        ]
        result = self.registrar.register(
            _aor_key(entry.owner, entry.extension),
            contacts,
            header_expires=request.expires,
            call_id=request.call_id,
            cseq=request.cseq.number,
            wildcard=request.contact_wildcard,
            source=(source.host, source.port),
            transport=source.transport,
            user_agent=request.headers.get("User-Agent"),
        )
        response = self.stack.response_to(request, result.status, to_tag=new_tag())
        if result.status == 423 and result.min_expires:
            response.headers.add("Min-Expires", str(result.min_expires))
        if result.status == 200:
            for binding in result.bindings:
                response.headers.add(
                    "Contact", f"<{binding.contact}>;expires={binding.remaining(result.at)}"
                )
            self.directory.save_bindings(entry.owner, entry.extension, list(result.bindings))
        transaction.respond(response)

    # ------------------------------------------------------------------ INVITE

    def _new_invite(self, transaction: ServerTransaction, request: Request, source: Source) -> None:
        if request.max_forwards == 0:
            transaction.respond(self.stack.response_to(request, 483, to_tag=new_tag()))
            return
        origin: dict[str, Any]
        trunk = self.config.trunk
        if trunk is not None and _is_trunk(trunk, source):
            origin = {"origin": "trunk"}
        else:
            caller = request.from_.uri
            entry = None
            realm = ""
            if isinstance(caller, SipUri) and caller.user:
                realm = caller.host.lower()
                entry = self.directory.extension(realm, caller.user)
            if entry is not None:
                if not self._authenticate(transaction, request, source, entry, realm, proxy=True):
                    return
                origin = {
                    "origin": "extension",
                    "account": entry.owner,
                    "extension": entry.extension,
                }
            else:
                origin = {"origin": "external"}
        leg = Leg(self, "CA" + uuid.uuid4().hex)
        session = Session(leg.id, "uas", self.stack, leg, self.take_media())
        session.invite = request
        session.invite_transaction = transaction
        state = UasProceeding(session, transaction, request)
        session.enter(state)
        leg.sessions.append(session)
        self.legs[leg.id] = leg
        self.invites[transaction] = session
        session.on_release = self._session_released
        # The dialog exists once we answer; index it by the tag we will use.
        self.dialogs[(request.call_id, state.local_tag, request.from_.tag or "")] = session
        session.ring()
        caller = request.from_
        leg.emit(
            "incoming",
            **{
                "from": _user_or_uri(caller.uri),
                "to": _user_or_uri(request.uri),
                "display_name": caller.display_name,
                "sip_call_id": request.call_id,
                **origin,
            },
        )

    def _session_released(self, session: Session) -> None:
        self.stack.forget_session(session)
        if session.invite_transaction is not None:
            self.invites.pop(session.invite_transaction, None)  # type: ignore[arg-type]
        if session.dialog is not None:
            self.dialogs.pop(session.dialog.id, None)

    # --------------------------------------------------------------- originate

    def _originate(self, leg: Leg, command: dict[str, Any]) -> None:
        target = command.get("target") or {}
        caller = command.get("from") or {}
        from_user = str(caller.get("user") or "anonymous")
        display = caller.get("display_name")
        requests: list[tuple[Request, Destination, DigestClient | None]] = []
        if "extension" in target:
            entry = self.directory.owner_extension(target["account"], target["extension"])
            bindings = (
                self.registrar.lookup(_aor_key(entry.owner, entry.extension)) if entry else []
            )
            if not bindings:
                leg.emit("hangup", cause="failed", sip_code=480)
                leg.ended = True
                self.forget_leg(leg)
                return
            for binding in bindings:
                uri = parse_uri(binding.contact, "Contact")
                destination = (
                    Destination(binding.transport, binding.received[0], binding.received[1])
                    if binding.received
                    else self.stack.destination(uri)
                )
                to = f"<sip:{entry.extension}@{entry.realm}>"
                requests.append(
                    (self._invite(binding.contact, to, from_user, display), destination, None)
                )
        elif "number" in target:
            trunk = self.config.trunk
            if trunk is None:
                log.warning("leg %s: no trunk configured for %s", leg.id, target["number"])
                leg.emit("hangup", cause="failed", sip_code=503)
                leg.ended = True
                self.forget_leg(leg)
                return
            number = str(target["number"])
            uri = f"sip:{number}@{trunk.uri.host}" + (
                f":{trunk.uri.port}" if trunk.uri.port else ""
            )
            client = DigestClient(trunk.username, trunk.password or "") if trunk.username else None
            requests.append(
                (
                    self._invite(uri, f"<{uri}>", from_user, display),
                    self.stack.destination(trunk.uri),
                    client,
                )
            )
        elif "uri" in target:
            uri = str(target["uri"])
            requests.append(
                (
                    self._invite(uri, f"<{uri}>", from_user, display),
                    self.stack.destination(parse_uri(uri)),
                    None,
                )
            )
        else:
            log.warning("leg %s: originate without a target", leg.id)
            leg.emit("hangup", cause="failed", sip_code=None)
            leg.ended = True
            self.forget_leg(leg)
            return
        for request, destination, client in requests:
            session = Session(leg.id, "uac", self.stack, leg, self.take_media())
            offer = session.local_offer()
            request.headers.add("Content-Type", "application/sdp")
            request.body = offer.serialize().encode()
            session.invite = request
            session.on_release = self._session_released
            leg.sessions.append(session)
            transaction = self.stack.send_to(request, destination, session)
            session.invite_transaction = transaction
            session.enter(
                UacCalling(session, transaction, authenticator=client, destination=destination)
            )
        if command.get("time_limit"):
            leg.time_limit = float(command["time_limit"])
        timeout = float(command.get("timeout") or 60)
        leg.timeout = self.clock.call_later(timeout, lambda: leg.hangup("no-answer"))

    def _invite(self, uri: str, to: str, from_user: str, display: str | None) -> Request:
        host = self.transport.local_via_host
        headers = Headers()
        headers.add("Max-Forwards", "70")
        name = f'"{display}" ' if display else ""
        headers.add("From", f"{name}<sip:{from_user}@{host}>;tag={new_tag()}")
        headers.add("To", to)
        headers.add("Call-ID", new_call_id(host))
        headers.add("CSeq", f"{secrets.randbelow(2**16) + 1} INVITE")
        headers.add("Contact", self.stack.contact())
        headers.add("Allow", SipStack.ALLOW)
        return Request("INVITE", uri, headers)

    # ============================================ TransactionUser: responses

    def response_received(
        self, transaction: ClientTransaction | None, response: Response, source: Source
    ) -> None:
        try:
            if transaction is None:
                self._stray(response)
                return
            session = self.stack.owners.get(transaction)
            invite_2xx = response.cseq.method == "INVITE" and 200 <= response.status < 300
            if response.status >= 200 and not invite_2xx:
                # A 2xx to an INVITE may be retransmitted on the same transaction (RFC
                # 6026); the session's release forgets it.
                self.stack.forget(transaction)
            if session is None:
                return
            session.response(transaction, response)
            dialog = session.dialog
            if dialog is not None and not session.ended and dialog.id not in self.dialogs:
                self.dialogs[dialog.id] = session
        except Exception:
            log.exception("response %s from %s failed", response.status, source)

    def _stray(self, response: Response) -> None:
        """A 2xx retransmission after its INVITE transaction is gone: re-ACK it."""
        if response.status < 200 or response.status >= 300 or response.cseq.method != "INVITE":
            return
        key = (response.call_id, response.from_.tag or "", response.to.tag or "")
        session = self.dialogs.get(key)
        if session is not None:
            session.stray_2xx(response)
            return
        for leg in self.legs.values():
            for candidate in leg.sessions:
                invite = candidate.invite
                if (
                    invite is not None
                    and candidate.role == "uac"
                    and (invite.call_id == response.call_id)
                ):
                    candidate.stray_2xx(response)
                    return

    def transaction_timed_out(self, transaction: ClientTransaction | ServerTransaction) -> None:
        # A server transaction times out on Timer H (no ACK for a failure): nothing to do.
        if isinstance(transaction, ClientTransaction):
            session = self.stack.forget(transaction)
            if session is not None:
                session.timed_out(transaction)

    def transport_error(
        self, transaction: ClientTransaction | ServerTransaction, error: OSError
    ) -> None:
        log.info("transport error on %s: %s", transaction, error)
        self.transaction_timed_out(transaction)


def _bindings_store():
    from media.sip.registrar import MemoryBindingStore

    return MemoryBindingStore()


def _aor_key(owner: str, extension: str) -> str:
    return f"{owner}/{extension}"


def _is_trunk(trunk: TrunkConfig, source: Source) -> bool:
    from media.sip.stack import resolve

    host = resolve(trunk.uri.host.strip("[]"))
    return source.host == host and source.port == (trunk.uri.port or 5060)


def _user_or_uri(uri: Any) -> str:
    if isinstance(uri, SipUri) and uri.user:
        return uri.user
    return str(uri)


__all__ = ["DirectoryEntry", "Engine", "EngineConfig", "TrunkConfig", "end_cause"]
