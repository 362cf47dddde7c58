"""URIs in SIP messages: SIP and SIPS URIs (RFC 3261 19.1), tel URIs (RFC 3966), and any
other absolute URI, which is kept opaque.

Components are held unescaped (``sip:I%20am@h`` has user ``"I am"``) and escaped again
when serialised; equality of SIP URIs follows RFC 3261 19.1.4.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from media.sip.syntax import Params, SipParseError, parse_number, percent_decode, percent_encode

__all__ = [
    "AbsoluteUri",
    "SipUri",
    "TelUri",
    "Uri",
    "host_key",
    "parse_host",
    "parse_uri",
    "split_hostport",
]

# What may appear unescaped in each component (RFC 3261 section 25: unreserved, "%" for
# escapes, and each component's own extra characters).
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()%"
_USER_RUN = re.compile(f"[{_UNRESERVED}&=+$,;?/]*")
_PASSWORD_RUN = re.compile(f"[{_UNRESERVED}&=+$,]*")
_PARAM_RUN = re.compile(f"[{_UNRESERVED}\\[\\]/:&+$]*")
_HEADER_RUN = re.compile(f"[{_UNRESERVED}\\[\\]/?:+$]*")
# The same sets as ``safe`` arguments for percent_encode ("-_.~" and alphanumerics are
# always safe there).
_USER_SAFE = "!*'()&=+$,;?/"
_PASSWORD_SAFE = "!*'()&=+$,"
_PARAM_SAFE = "!*'()[]/:&+$"
_HEADER_SAFE = "!*'()[]/?:+$"

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_HOSTNAME_RE = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)*"
                          r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.?")
_IPV4_RE = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
_TEL_NUMBER_RE = re.compile(r"[0-9A-Fa-f*#+\-.()pw]+")
_OPAQUE_FORBIDDEN = re.compile(r'[\x00-\x20\x7f<>"]')

# uri-parameters that make two SIP URIs differ even when only one of them has it. The
# rules of RFC 3261 19.1.4 name user, ttl, method and maddr; its examples add transport
# ("sip:bob@biloxi.com" and "sip:bob@biloxi.com;transport=udp" "can resolve to different
# transports" and are not equivalent), which is followed here.
_PARAMS_THAT_MUST_BOTH_APPEAR = ("user", "ttl", "method", "maddr", "transport")


def parse_host(text: str, where: str) -> str:
    """Check a host (hostname, IPv4 address or bracketed IPv6 reference); return it."""
    if text.startswith("["):
        if not text.endswith("]"):
            raise SipParseError(f"{where}: IPv6 reference {text!r} lacks its closing ']'")
        try:
            ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            raise SipParseError(f"{where}: {text!r} is not a valid IPv6 reference") from None
        return text
    if _IPV4_RE.fullmatch(text):
        if any(int(octet) > 255 for octet in text.split(".")):
            raise SipParseError(f"{where}: {text!r} is not a valid IPv4 address")
        return text
    if _HOSTNAME_RE.fullmatch(text):
        return text
    raise SipParseError(f"{where}: expected a host name or IP address, found {text!r}")


def _parse_port(text: str, where: str) -> int:
    return parse_number(text, 65535, where, "port number")


def split_hostport(text: str, where: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (host possibly an IPv6 reference) and check both parts."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise SipParseError(f"{where}: IPv6 reference {text!r} lacks its closing ']'")
        host, rest = text[: close + 1], text[close + 1 :]
        if not rest:
            return parse_host(host, where), None
        if rest[0] != ":":
            raise SipParseError(f"{where}: expected ':' and a port after {host!r}, found {rest!r}")
        return parse_host(host, where), _parse_port(rest[1:], where)
    host, colon, port = text.partition(":")
    return parse_host(host, where), (_parse_port(port, where) if colon else None)


def host_key(host: str) -> str:
    """A host in the form in which equal hosts compare equal."""
    if host.startswith("["):
        return "[" + ipaddress.IPv6Address(host[1:-1]).compressed + "]"
    return host.lower().rstrip(".")


def _check_chars(text: str, allowed: re.Pattern[str], what: str, where: str) -> None:
    """``allowed`` matches a run of the characters ``what`` may hold unescaped."""
    end = allowed.match(text).end()  # type: ignore[union-attr]
    if end != len(text):
        raise SipParseError(f"{where}: {text[end]!r} must be escaped in {what} {text!r}")


def _parse_uri_params(text: str, where: str) -> Params:
    items: list[tuple[str, str | None]] = []
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        if not name:
            raise SipParseError(f"{where}: empty URI parameter in {text!r}")
        _check_chars(name, _PARAM_RUN, "a URI parameter name", where)
        name = percent_decode(name, where)
        if eq:
            if not value:
                raise SipParseError(f"{where}: URI parameter {name!r} has '=' but no value")
            _check_chars(value, _PARAM_RUN, "a URI parameter value", where)
            items.append((name, percent_decode(value, where)))
        else:
            items.append((name, None))
    return Params(items)


@dataclass(frozen=True, slots=True, eq=False)
class SipUri:
    """A ``sip:`` or ``sips:`` URI: ``scheme:[user[:password]@]host[:port][;params][?headers]``."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = field(default_factory=Params)
    headers: Params = field(default_factory=Params)
    scheme: str = "sip"

    @classmethod
    def parse(cls, text: str, where: str = "SIP URI") -> SipUri:
        scheme, colon, rest = text.partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in ("sip", "sips"):
            raise SipParseError(f"{where}: expected 'sip:' or 'sips:', found {text[:12]!r}")
        user = password = None
        at = rest.find("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
            raw_user, has_password, raw_password = userinfo.partition(":")
            if not raw_user:
                raise SipParseError(f"{where}: empty user part before '@' in {text!r}")
            _check_chars(raw_user, _USER_RUN, "the user part", where)
            user = percent_decode(raw_user, where)
            if has_password:
                _check_chars(raw_password, _PASSWORD_RUN, "the password", where)
                password = percent_decode(raw_password, where)
        headers = Params()
        question = rest.find("?")
        if question >= 0:
            headers = _parse_uri_headers(rest[question + 1 :], where)
            rest = rest[:question]
        params = Params()
        semicolon = rest.find(";")
        if semicolon >= 0:
            params = _parse_uri_params(rest[semicolon + 1 :], where)
            rest = rest[:semicolon]
        host, port = split_hostport(rest, where)
        return cls(host, user, password, port, params, headers, scheme)

    def serialize(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(percent_encode(self.user, _USER_SAFE))
            if self.password is not None:
                out.append(":")
                out.append(percent_encode(self.password, _PASSWORD_SAFE))
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        for name, value in self.params.items_in_order():
            out.append(";")
            out.append(percent_encode(name, _PARAM_SAFE))
            if value is not None:
                out.append("=")
                out.append(percent_encode(value, _PARAM_SAFE))
        separator = "?"
        for name, value in self.headers.items_in_order():
            out.append(separator)
            out.append(percent_encode(name, _HEADER_SAFE))
            out.append("=")
            out.append(percent_encode(value or "", _HEADER_SAFE))
            separator = "&"
        return "".join(out)

    def __str__(self) -> str:
        return self.serialize()

    def __eq__(self, other: object) -> bool:
        """Equality of RFC 3261 19.1.4 (components compared after unescaping)."""
        if not isinstance(other, SipUri):
            return NotImplemented
        if (
            self.scheme != other.scheme
            or self.user != other.user
            or self.password != other.password
            or self.port != other.port
            or host_key(self.host) != host_key(other.host)
        ):
            return False
        for name in _PARAMS_THAT_MUST_BOTH_APPEAR:
            if (name in self.params) != (name in other.params):
                return False
        for name, value in self.params.items():
            if name in other.params:
                theirs = other.params[name]
                if (value is None) != (theirs is None) or (
                    value is not None and theirs is not None and value.lower() != theirs.lower()
                ):
                    return False
        ours = {name.lower(): value for name, value in self.headers.items()}
        theirs_headers = {name.lower(): value for name, value in other.headers.items()}
        return ours == theirs_headers

    def __hash__(self) -> int:
        return hash((self.scheme, self.user, self.password, host_key(self.host), self.port))

    @property
    def transport(self) -> str | None:
        """The transport parameter, lower-cased (None when absent)."""
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def lr(self) -> bool:
        """True when the URI carries the loose-routing ``lr`` parameter."""
        return "lr" in self.params

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    def with_param(self, name: str, value: str | None = None) -> SipUri:
        """A copy with uri-parameter ``name`` set to ``value``."""
        return SipUri(self.host, self.user, self.password, self.port,
                      self.params.replace(name, value), self.headers, self.scheme)


def _parse_uri_headers(text: str, where: str) -> Params:
    items: list[tuple[str, str | None]] = []
    for part in text.split("&"):
        name, eq, value = part.partition("=")
        if not name or not eq:
            raise SipParseError(f"{where}: URI header {part!r} must be name=value")
        _check_chars(name, _HEADER_RUN, "a URI header name", where)
        _check_chars(value, _HEADER_RUN, "a URI header value", where)
        items.append((percent_decode(name, where), percent_decode(value, where)))
    return Params(items)


@dataclass(frozen=True, slots=True, eq=False)
class TelUri:
    """A ``tel:`` URI (RFC 3966): a telephone number and its parameters."""

    number: str
    params: Params = field(default_factory=Params)

    @property
    def scheme(self) -> str:
        return "tel"

    @classmethod
    def parse(cls, text: str, where: str = "tel URI") -> TelUri:
        scheme, colon, rest = text.partition(":")
        if not colon or scheme.lower() != "tel":
            raise SipParseError(f"{where}: expected 'tel:', found {text[:12]!r}")
        number, semicolon, params_text = rest.partition(";")
        if not _TEL_NUMBER_RE.fullmatch(number):
            raise SipParseError(f"{where}: {number!r} is not a telephone number")
        params = _parse_uri_params(params_text, where) if semicolon else Params()
        return cls(number, params)

    def serialize(self) -> str:
        out = ["tel:", self.number]
        for name, value in self.params.items_in_order():
            out.append(";" + percent_encode(name, _PARAM_SAFE))
            if value is not None:
                out.append("=" + percent_encode(value, _PARAM_SAFE))
        return "".join(out)

    def __str__(self) -> str:
        return self.serialize()

    def _key(self) -> tuple[str, frozenset[tuple[str, str | None]]]:
        digits = "".join(ch for ch in self.number if ch not in "-.()").lower()
        params = frozenset(
            (name.lower(), value.lower() if value is not None else None)
            for name, value in self.params.items()
        )
        return digits, params

    def __eq__(self, other: object) -> bool:
        """Equal when the numbers match once visual separators are removed and the
        parameters match (RFC 3966 section 4)."""
        if not isinstance(other, TelUri):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


@dataclass(frozen=True, slots=True, eq=False)
class AbsoluteUri:
    """Any other absolute URI (``http:``, ``urn:``, ``isbn:`` ...), kept as scheme plus
    the opaque text after the first colon."""

    scheme: str
    opaque: str

    @classmethod
    def parse(cls, text: str, where: str = "URI") -> AbsoluteUri:
        scheme, colon, opaque = text.partition(":")
        if not colon or not _SCHEME_RE.fullmatch(scheme):
            raise SipParseError(f"{where}: expected a URI scheme and ':', found {text[:20]!r}")
        if not opaque:
            raise SipParseError(f"{where}: nothing follows the scheme in {text!r}")
        bad = _OPAQUE_FORBIDDEN.search(opaque)
        if bad is not None:
            raise SipParseError(f"{where}: {bad.group()!r} is not allowed in URI {text!r}")
        return cls(scheme, opaque)

    def serialize(self) -> str:
        return f"{self.scheme}:{self.opaque}"

    def __str__(self) -> str:
        return self.serialize()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AbsoluteUri):
            return NotImplemented
        return self.scheme.lower() == other.scheme.lower() and self.opaque == other.opaque

    def __hash__(self) -> int:
        return hash((self.scheme.lower(), self.opaque))


Uri = SipUri | TelUri | AbsoluteUri


def parse_uri(text: str, where: str = "URI") -> Uri:
    """Parse any URI a SIP message may carry, choosing the class by its scheme."""
    scheme, colon, _ = text.partition(":")
    if not colon or not _SCHEME_RE.fullmatch(scheme):
        raise SipParseError(f"{where}: expected a URI scheme and ':', found {text[:20]!r}")
    lowered = scheme.lower()
    if lowered in ("sip", "sips"):
        return SipUri.parse(text, where)
    if lowered == "tel":
        return TelUri.parse(text, where)
    return AbsoluteUri.parse(text, where)
