"""Digest authentication for SIP (RFC 3261 22, RFC 2617, RFC 7616, RFC 8760): the server
that challenges and verifies, and the client that answers challenges on outbound trunks.

Passwords are never kept: the database holds ``ha1(username, realm, password, algorithm)``
once per algorithm (HA1-MD5 and HA1-SHA-256), which is all a server needs.

Nonces are stateless. Each one carries the time it was issued, some randomness and an
HMAC over both and the realm, so every engine process configured with the same secret
accepts the nonces of the others, and expiry needs no table. The only state is a bounded
record of the (nonce, nonce-count) pairs already accepted, which turns a replayed request
into a failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

from media.sip.headers import Challenge, Credentials
from media.sip.syntax import Params, SipParseError

__all__ = [
    "ALGORITHMS",
    "DigestClient",
    "DigestServer",
    "HA1Lookup",
    "Verdict",
    "digest_response",
    "ha1",
]

_HASHES = {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}
ALGORITHMS = tuple(_HASHES)
"""The digest algorithms this module computes, most preferred first."""

HA1Lookup = Callable[[str, str], str | None]
"""``(username, algorithm) -> HA1 in hex``, or None for an unknown user."""

_SCHEME = "Digest"
_QOP = "auth"
_NONCE_TIME = 8  # bytes: milliseconds since the epoch, big-endian
_NONCE_RANDOM = 12
_NONCE_MAC = 16
_NONCE_TEXT = re.compile(r"[A-Za-z0-9_-]{48}")  # base64url of the 36 bytes above
_NONCE_COUNT = re.compile(r"[0-9A-Fa-f]{8}")
_CHALLENGE_QUOTED = frozenset({"realm", "nonce", "opaque", "qop"})
_CREDENTIALS_QUOTED = frozenset(
    {"username", "realm", "nonce", "uri", "response", "cnonce", "opaque"}
)
_CLIENT_NONCES_KEPT = 16


class Verdict(Enum):
    """The outcome of checking an Authorization or Proxy-Authorization value."""

    OK = "ok"
    STALE = "stale"
    """The password was right but the nonce is too old (or, without qop, already used):
    challenge again with ``stale=true`` and the client retries without asking its user."""
    FAILED = "failed"
    """Wrong password, unknown user, replay or malformed value: indistinguishable outside."""


def _canonical_algorithm(name: str | None) -> str | None:
    """The algorithm as this module spells it; absent means MD5 (RFC 2617 3.2.1)."""
    if name is None:
        return "MD5"
    upper = name.upper()
    return upper if upper in _HASHES else None


def _known_algorithm(algorithm: str) -> str:
    name = _canonical_algorithm(algorithm)
    if name is None:
        raise ValueError(f"digest algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    return name


def _hex(algorithm: str, text: str) -> str:
    return _HASHES[algorithm](text.encode("utf-8")).hexdigest()


def ha1(username: str, realm: str, password: str, algorithm: str) -> str:
    """``H(username:realm:password)`` in hex: what the database stores instead of the
    password, one value per algorithm. Text is hashed as UTF-8 (RFC 7616 charset)."""
    return _hex(_known_algorithm(algorithm), f"{username}:{realm}:{password}")


def digest_response(
    algorithm: str,
    ha1_hex: str,
    nonce: str,
    method: str,
    uri: str,
    *,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """The ``response`` value of RFC 7616 3.4.1 (RFC 2617 3.2.2.1).

    With ``qop`` "auth" or "auth-int" it is ``H(HA1:nonce:nc:cnonce:qop:HA2)``; without
    qop it is the RFC 2069 form ``H(HA1:nonce:HA2)``. HA2 hashes ``method:uri``, plus
    ``:H(body)`` for auth-int. ``qop`` is hashed as given (its token is compared
    case-insensitively).
    """
    name = _known_algorithm(algorithm)
    kind = None if qop is None else qop.lower()
    if kind == "auth-int":
        ha2 = _hex(name, f"{method}:{uri}:{_HASHES[name](body).hexdigest()}")
    elif kind in (None, "auth"):
        ha2 = _hex(name, f"{method}:{uri}")
    else:
        raise ValueError(f"qop {qop!r} is not 'auth' or 'auth-int'")
    if qop is None:
        return _hex(name, f"{ha1_hex}:{nonce}:{ha2}")
    if nc is None or cnonce is None:
        raise ValueError(f"qop={qop} needs both nc and cnonce")
    return _hex(name, f"{ha1_hex}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def _urlsafe(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class _Answer:
    """The parameters of one Digest Authorization value that verification needs."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str
    qop: str | None
    nc: str | None
    cnonce: str | None
    opaque: str | None

    @classmethod
    def read(cls, credentials: Credentials | str) -> _Answer | None:
        """The answer's parameters, or None when the value is malformed or not Digest."""
        if isinstance(credentials, str):
            try:
                credentials = Credentials.parse(credentials, "Authorization")
            except SipParseError:
                return None
        if credentials.scheme.lower() != _SCHEME.lower():
            return None
        params = credentials.params
        required = [params.get(name) for name in ("username", "realm", "nonce", "uri", "response")]
        username, realm, nonce, uri, response = required
        if username is None or realm is None or nonce is None or not uri or not response:
            return None
        algorithm = _canonical_algorithm(params.get("algorithm"))
        if algorithm is None:
            return None
        qop, nc, cnonce = params.get("qop"), params.get("nc"), params.get("cnonce")
        if qop is None:
            if nc is not None or cnonce is not None:
                return None
        elif qop.lower() != _QOP or nc is None or not _NONCE_COUNT.fullmatch(nc) or not cnonce:
            return None
        return cls(
            username,
            realm,
            nonce,
            uri,
            response.lower(),
            algorithm,
            qop,
            nc,
            cnonce,
            params.get("opaque"),
        )


class DigestServer:
    """Challenges requests and verifies their answers for one realm.

    ``clock`` must read wall-clock seconds (``time.time``) when several processes share
    ``secret``, because each reads the issue time other processes wrote into a nonce.
    """

    def __init__(
        self,
        realm: str,
        secret: bytes,
        *,
        clock: Callable[[], float],
        nonce_lifetime: float = 300.0,
        algorithms: Iterable[str] = ("SHA-256", "MD5"),
        replay_cache_size: int = 16384,
    ) -> None:
        offered = list(dict.fromkeys(_known_algorithm(name) for name in algorithms))
        if not offered:
            raise ValueError("a digest server needs at least one algorithm to offer")
        if len(secret) < 16:
            raise ValueError("the nonce secret must be at least 16 bytes long")
        self.realm = realm
        self.algorithms = tuple(offered)
        self.nonce_lifetime = nonce_lifetime
        self._secret = secret
        self._clock = clock
        self._opaque = _urlsafe(self._mac(b"opaque", realm.encode("utf-8")))
        # An unknown user is checked against a random HA1 so that it costs the same
        # lookup, hashing and comparison as a wrong password.
        self._dummy_ha1 = {
            name: ha1(secrets.token_hex(8), realm, secrets.token_hex(16), name)
            for name in self.algorithms
        }
        self._seen: OrderedDict[tuple[str, str | None], None] = OrderedDict()
        self._seen_limit = replay_cache_size

    def _mac(self, *parts: bytes) -> bytes:
        mac = hmac.new(self._secret, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(len(part).to_bytes(4, "big"))
            mac.update(part)
        return mac.digest()[:_NONCE_MAC]

    def _new_nonce(self) -> str:
        issued = math.floor(self._clock() * 1000).to_bytes(_NONCE_TIME, "big")
        random = secrets.token_bytes(_NONCE_RANDOM)
        return _urlsafe(issued + random + self._mac(issued, self.realm.encode("utf-8"), random))

    def _nonce_issued(self, nonce: str) -> float | None:
        """When an authentic nonce of ours was issued (seconds), else None."""
        if not _NONCE_TEXT.fullmatch(nonce):
            return None
        raw = base64.urlsafe_b64decode(nonce)
        issued = raw[:_NONCE_TIME]
        random = raw[_NONCE_TIME : _NONCE_TIME + _NONCE_RANDOM]
        mac = raw[_NONCE_TIME + _NONCE_RANDOM :]
        if not hmac.compare_digest(mac, self._mac(issued, self.realm.encode("utf-8"), random)):
            return None
        return int.from_bytes(issued, "big") / 1000

    def challenge(self, *, stale: bool = False) -> list[str]:
        """WWW-Authenticate (or Proxy-Authenticate) values, one per offered algorithm with
        the preferred first (RFC 8760 3), sharing one fresh nonce."""
        nonce = self._new_nonce()
        values = []
        for algorithm in self.algorithms:
            items: list[tuple[str, str | None]] = [
                ("realm", self.realm),
                ("nonce", nonce),
                ("opaque", self._opaque),
                ("qop", _QOP),
                ("algorithm", algorithm),
            ]
            if stale:
                items.append(("stale", "true"))
            values.append(Challenge(_SCHEME, Params(items), _CHALLENGE_QUOTED).serialize())
        return values

    def verify(self, method: str, credentials: Credentials | str, ha1_lookup: HA1Lookup) -> Verdict:
        """Check one Authorization (or Proxy-Authorization) value against ``method``.

        ``ha1_lookup(username, algorithm)`` is called exactly once for every value that is
        well-formed, for our realm and carries an authentic nonce, whether or not the user
        exists; an unknown user is then checked against a dummy HA1.
        """
        answer = _Answer.read(credentials)
        if (
            answer is None
            or answer.realm != self.realm
            or answer.algorithm not in self.algorithms
            or (
                answer.opaque is not None
                and not hmac.compare_digest(answer.opaque.encode(), self._opaque.encode())
            )
        ):
            return Verdict.FAILED
        issued = self._nonce_issued(answer.nonce)
        if issued is None:
            return Verdict.FAILED
        stored = ha1_lookup(answer.username, answer.algorithm)
        known = stored is not None
        expected = digest_response(
            answer.algorithm,
            stored.lower() if stored is not None else self._dummy_ha1[answer.algorithm],
            answer.nonce,
            method,
            answer.uri,
            qop=answer.qop,
            nc=answer.nc,
            cnonce=answer.cnonce,
        )
        matches = hmac.compare_digest(expected.encode(), answer.response.encode("utf-8"))
        if not (matches and known):
            return Verdict.FAILED
        # Only a client that knows the password learns that its nonce is stale (RFC 2617
        # 3.2.1), so that it retries with a fresh one instead of asking its user again.
        if abs(self._clock() - issued) > self.nonce_lifetime:
            return Verdict.STALE
        return self._first_use(answer)

    def _first_use(self, answer: _Answer) -> Verdict:
        """Record the (nonce, nc) pair; a second use is a replay. Without qop there is
        no count, so a reused nonce is answered as stale: a fresh challenge costs a
        legitimate RFC 2069 client nothing and a replayer gets nothing from it."""
        key = (answer.nonce, None if answer.nc is None else answer.nc.lower())
        if key in self._seen:
            return Verdict.FAILED if answer.qop else Verdict.STALE
        self._seen[key] = None
        if len(self._seen) > self._seen_limit:
            self._seen.popitem(last=False)
        return Verdict.OK


class DigestClient:
    """Answers Digest challenges with one username and password (our outbound trunks,
    and the tests of the server)."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self._password = password
        self._counts: OrderedDict[str, int] = OrderedDict()

    def authorize(
        self,
        method: str,
        uri: str,
        challenge_values: Iterable[str | Challenge],
        body: bytes = b"",
    ) -> str:
        """An Authorization (or Proxy-Authorization) value answering the best challenge
        offered: SHA-256 before MD5, qop auth before auth-int before none.

        ``uri`` is the Request-URI as sent; ``body`` matters only for auth-int. Raises
        ValueError when no challenge is a Digest one this client can answer.
        """
        best: tuple[int, Challenge, str, str | None] | None = None
        seen = []
        for value in challenge_values:
            if isinstance(value, str):
                try:
                    value = Challenge.parse(value, "WWW-Authenticate")
                except SipParseError as error:
                    seen.append(str(error))
                    continue
            seen.append(value.serialize())
            usable = self._usable(value)
            if usable is None:
                continue
            algorithm, qop = usable
            rank = ALGORITHMS.index(algorithm)
            if best is None or rank < best[0]:
                best = (rank, value, algorithm, qop)
        if best is None:
            raise ValueError(
                "no Digest challenge with algorithm SHA-256 or MD5 and qop auth, auth-int or "
                f"none among: {'; '.join(seen) or 'no challenges'}"
            )
        _, challenge, algorithm, qop = best
        return self._answer(challenge, algorithm, qop, method, uri, body)

    @staticmethod
    def _usable(challenge: Challenge) -> tuple[str, str | None] | None:
        """(algorithm, qop) to answer ``challenge`` with, or None if we cannot."""
        params = challenge.params
        if challenge.scheme.lower() != _SCHEME.lower() or not params.get("nonce"):
            return None
        if params.get("realm") is None:
            return None
        algorithm = _canonical_algorithm(params.get("algorithm"))
        if algorithm is None:
            return None
        offered = params.get("qop")
        if offered is None:
            return algorithm, None
        options = {option.strip().lower() for option in offered.split(",")}
        for qop in ("auth", "auth-int"):
            if qop in options:
                return algorithm, qop
        return None

    def _answer(
        self,
        challenge: Challenge,
        algorithm: str,
        qop: str | None,
        method: str,
        uri: str,
        body: bytes,
    ) -> str:
        params = challenge.params
        realm = params["realm"] or ""
        nonce = params["nonce"] or ""
        items: list[tuple[str, str | None]] = [
            ("username", self.username),
            ("realm", realm),
            ("nonce", nonce),
            ("uri", uri),
        ]
        secret = ha1(self.username, realm, self._password, algorithm)
        if qop is None:
            response = digest_response(algorithm, secret, nonce, method, uri)
            items.append(("response", response))
        else:
            nc = f"{self._next_count(nonce):08x}"
            cnonce = secrets.token_hex(8)
            response = digest_response(
                algorithm, secret, nonce, method, uri, qop=qop, nc=nc, cnonce=cnonce, body=body
            )
            items += [("response", response), ("cnonce", cnonce), ("qop", qop), ("nc", nc)]
        # A challenge without algorithm means MD5; echoing none suits the oldest servers.
        if "algorithm" in params:
            items.append(("algorithm", algorithm))
        opaque = params.get("opaque")
        if opaque is not None:
            items.append(("opaque", opaque))
        return Credentials(_SCHEME, Params(items), _CREDENTIALS_QUOTED).serialize()

    def _next_count(self, nonce: str) -> int:
        count = self._counts.pop(nonce, 0) + 1
        self._counts[nonce] = count
        while len(self._counts) > _CLIENT_NONCES_KEPT:
            self._counts.popitem(last=False)
        return count
