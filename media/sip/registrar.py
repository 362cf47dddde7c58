"""The registrar (RFC 3261 10.3) and the location service it keeps, without I/O.

``Registrar.register`` applies steps 6 to 8 of RFC 3261 10.3 to one authenticated
REGISTER and says which response to send; ``Registrar.lookup`` answers where an
address-of-record can be reached. Bindings live behind ``BindingStore``, which the engine
backs with PostgreSQL or, when no database is wired, with ``MemoryBindingStore``.
``Throttle`` slows password guessing by refusing sources with too many recent failures.

Times are seconds read from an injected clock; they are compared with ``expires_at``
values written by other processes, so the engine passes wall-clock time.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from media.sip.syntax import SipParseError
from media.sip.uri import Uri, parse_uri

__all__ = [
    "Binding",
    "BindingStore",
    "MemoryBindingStore",
    "RegisterResult",
    "Registrar",
    "RequestedContact",
    "Throttle",
]

_LONGEST_BRIEF_INTERVAL = 3600
"""RFC 3261 10.3 allows 423 only for intervals shorter than an hour."""


@dataclass(frozen=True, slots=True)
class Binding:
    """One Contact registered for an address-of-record.

    ``received`` is the (host, port) the REGISTER came from, which differs from the
    Contact's when the device is behind NAT; requests for the binding go there.
    ``q`` is the Contact's preference (None when it gave none), ``instance`` its
    ``+sip.instance`` (RFC 5626).
    """

    aor: str
    contact: str
    expires_at: float
    call_id: str
    cseq: int
    received: tuple[str, int] | None
    transport: str
    q: float | None = None
    instance: str | None = None
    user_agent: str | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at <= now

    def remaining(self, now: float) -> int:
        """Whole seconds left, rounded up so a live binding never shows ``expires=0``."""
        return max(0, math.ceil(self.expires_at - now))


class RequestedContact(NamedTuple):
    """One Contact of a REGISTER: the URI as text and its ``expires``, ``q`` and
    ``+sip.instance`` parameters (None when absent)."""

    uri: str
    expires: int | None = None
    q: float | None = None
    instance: str | None = None


@dataclass(frozen=True, slots=True)
class RegisterResult:
    """What to answer a REGISTER with.

    ``bindings`` are every binding of the address-of-record after the request (before
    it, when the request failed), highest q first: on a 200 each becomes a Contact with
    ``expires=binding.remaining(at)``. A 423 carries ``min_expires`` for its Min-Expires.
    """

    status: int
    reason: str
    at: float
    bindings: tuple[Binding, ...] = ()
    min_expires: int | None = None


class BindingStore(Protocol):
    """Where bindings are kept. ``save`` replaces every binding of ``aor`` (an empty
    list removes the address-of-record); a database implementation commits it in one
    transaction, which is the atomicity RFC 3261 10.3 asks for."""

    def load(self, aor: str) -> list[Binding]: ...

    def save(self, aor: str, bindings: list[Binding]) -> None: ...

    def all(self) -> list[Binding]: ...


class MemoryBindingStore:
    """A ``BindingStore`` in a dict: for tests, and for an engine without a database."""

    def __init__(self) -> None:
        self._bindings: dict[str, list[Binding]] = {}

    def load(self, aor: str) -> list[Binding]:
        return list(self._bindings.get(aor, ()))

    def save(self, aor: str, bindings: list[Binding]) -> None:
        if bindings:
            self._bindings[aor] = list(bindings)
        else:
            self._bindings.pop(aor, None)

    def all(self) -> list[Binding]:
        return [binding for bindings in self._bindings.values() for binding in bindings]


def _by_preference(bindings: Iterable[Binding]) -> tuple[Binding, ...]:
    """Highest q first; a Contact without q counts as 1.0, and ties keep the order in
    which the contacts were first registered."""
    return tuple(sorted(bindings, key=lambda b: -(1.0 if b.q is None else b.q)))


class Registrar:
    """Location service logic: binds contacts to addresses-of-record and looks them up.

    ``aor`` arguments are the canonical address-of-record of RFC 3261 10.3 step 5 (the
    To URI reduced to ``sip:user@domain``); computing it is the caller's job.

    Too many bindings for one address-of-record is answered 403: it is a limit on the
    account, not trouble with the server, so 503 would be wrong and would send RFC 3263
    clients failing over to other nodes that share the same store; the request succeeds
    once the user's other devices unregister or expire.
    """

    def __init__(
        self,
        store: BindingStore,
        *,
        clock: Callable[[], float],
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        max_bindings_per_aor: int = 10,
    ) -> None:
        if not 0 < min_expires <= default_expires <= max_expires:
            raise ValueError(
                "registration intervals must satisfy 0 < min_expires <= default_expires <= "
                f"max_expires, got {min_expires}, {default_expires}, {max_expires}"
            )
        if min_expires > _LONGEST_BRIEF_INTERVAL:
            raise ValueError(
                f"min_expires must be at most {_LONGEST_BRIEF_INTERVAL}: RFC 3261 10.3 allows "
                f"423 Interval Too Brief only below one hour, got {min_expires}"
            )
        if max_bindings_per_aor < 1:
            raise ValueError(f"max_bindings_per_aor must be at least 1, got {max_bindings_per_aor}")
        self._store = store
        self._clock = clock
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self.max_bindings_per_aor = max_bindings_per_aor

    def register(
        self,
        aor: str,
        contacts: Sequence[RequestedContact | tuple[str, int | None, float | None]],
        *,
        header_expires: int | None = None,
        call_id: str,
        cseq: int,
        wildcard: bool = False,
        source: tuple[str, int] | None,
        transport: str,
        user_agent: str | None = None,
    ) -> RegisterResult:
        """Apply one REGISTER (RFC 3261 10.3 steps 6-8); nothing is saved unless every
        contact of the request can be applied.

        ``contacts`` are the Contact values (a ``RequestedContact`` or a plain
        ``(uri, expires, q)`` tuple); ``wildcard`` says the Contact was ``*``, and
        ``header_expires`` is the Expires header. No contacts and no wildcard is a
        query: the current bindings are returned unchanged.
        """
        now = self._clock()
        current = [binding for binding in self._store.load(aor) if not binding.expired(now)]

        def fail(status: int, reason: str, min_expires: int | None = None) -> RegisterResult:
            return RegisterResult(status, reason, now, _by_preference(current), min_expires)

        if wildcard:
            if contacts:
                return fail(400, "Contact * must be the only Contact")
            if header_expires != 0:
                return fail(400, "Contact * requires Expires: 0")
            if any(b.call_id == call_id and cseq <= b.cseq for b in current):
                return fail(500, "CSeq not higher than the registration it removes")
            self._store.save(aor, [])
            return RegisterResult(200, "OK", now)
        if not contacts:
            return RegisterResult(200, "OK", now, _by_preference(current))

        requested = [RequestedContact(*contact) for contact in contacts]
        intervals = []
        for contact in requested:
            if contact.expires is not None:
                expires = contact.expires
            elif header_expires is not None:
                expires = header_expires
            else:
                expires = self.default_expires
            if 0 < expires < self.min_expires:
                return fail(423, "Interval Too Brief", self.min_expires)
            intervals.append(min(expires, self.max_expires))

        try:
            stored_uris = [parse_uri(binding.contact, "stored Contact") for binding in current]
            uris = [parse_uri(contact.uri, "Contact") for contact in requested]
        except SipParseError as error:
            return fail(400, str(error))

        bindings = list(current)
        binding_uris: list[Uri] = list(stored_uris)
        for contact, uri, expires in zip(requested, uris, intervals, strict=True):
            # The CSeq rule compares with what was stored before this request, so a
            # contact listed twice in one REGISTER is not its own out-of-order update.
            before = next((b for b, u in zip(current, stored_uris, strict=True) if u == uri), None)
            if before is not None and before.call_id == call_id and cseq <= before.cseq:
                return fail(500, "CSeq not higher than the registration it updates")
            index = next((i for i, u in enumerate(binding_uris) if u == uri), None)
            if expires == 0:
                if index is not None:
                    del bindings[index]
                    del binding_uris[index]
                continue
            binding = Binding(
                aor,
                contact.uri,
                now + expires,
                call_id,
                cseq,
                source,
                transport,
                contact.q,
                contact.instance,
                user_agent,
            )
            if index is None:
                bindings.append(binding)
                binding_uris.append(uri)
            else:
                bindings[index] = binding

        if len(bindings) > self.max_bindings_per_aor and len(bindings) > len(current):
            return fail(403, f"Too many registered contacts (at most {self.max_bindings_per_aor})")
        self._store.save(aor, bindings)
        return RegisterResult(200, "OK", now, _by_preference(bindings))

    def restore(self, aor: str, bindings: list[Binding]) -> None:
        """Put back bindings saved before a restart (they keep their own expiry)."""
        self._store.save(aor, bindings)

    def lookup(self, aor: str) -> list[Binding]:
        """The unexpired bindings of ``aor``, highest q first."""
        now = self._clock()
        return list(_by_preference(b for b in self._store.load(aor) if not b.expired(now)))

    def expire(self) -> list[Binding]:
        """Remove every expired binding from the store; return what was removed."""
        now = self._clock()
        by_aor: dict[str, list[Binding]] = {}
        for binding in self._store.all():
            by_aor.setdefault(binding.aor, []).append(binding)
        removed = []
        for aor, bindings in by_aor.items():
            gone = [binding for binding in bindings if binding.expired(now)]
            if gone:
                removed += gone
                self._store.save(aor, [b for b in bindings if not b.expired(now)])
        return removed


@dataclass(slots=True)
class _Source:
    failures: deque[float]
    blocked_until: float | None = None


class Throttle:
    """Counts authentication failures per source IP and blocks a source that fails
    ``max_failures`` times within ``window`` seconds, for ``block`` seconds.

    The engine answers a blocked source 403 before looking at its credentials, so known
    and unknown users are treated alike. At most ``max_sources`` addresses are tracked;
    beyond that the one least recently failed is forgotten.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        max_failures: int = 5,
        window: float = 60.0,
        block: float = 60.0,
        max_sources: int = 10_000,
    ) -> None:
        if max_failures < 1 or max_sources < 1:
            raise ValueError("max_failures and max_sources must be at least 1")
        self._clock = clock
        self.max_failures = max_failures
        self.window = window
        self.block = block
        self.max_sources = max_sources
        self._sources: OrderedDict[str, _Source] = OrderedDict()

    def __len__(self) -> int:
        """How many source addresses are tracked."""
        return len(self._sources)

    def blocked(self, ip: str) -> bool:
        source = self._sources.get(ip)
        if source is None or source.blocked_until is None:
            return False
        if self._clock() < source.blocked_until:
            return True
        del self._sources[ip]
        return False

    def failed(self, ip: str) -> None:
        """Count one failed authentication from ``ip``."""
        now = self._clock()
        source = self._sources.pop(ip, None)
        if source is None or (source.blocked_until is not None and now >= source.blocked_until):
            source = _Source(deque(maxlen=self.max_failures))
        if source.blocked_until is None:
            source.failures.append(now)
            while source.failures and source.failures[0] <= now - self.window:
                source.failures.popleft()
            if len(source.failures) >= self.max_failures:
                source.blocked_until = now + self.block
                source.failures.clear()
        self._sources[ip] = source
        while len(self._sources) > self.max_sources:
            self._sources.popitem(last=False)

    def succeeded(self, ip: str) -> None:
        """Forget the failures of ``ip`` after it authenticated."""
        self._sources.pop(ip, None)
