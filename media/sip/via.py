"""The Via header field (RFC 3261 20.42 and 18.2.1, rport from RFC 3581): the path a
request has taken, which its responses retrace, and the branch that names a transaction.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace

from media.sip.syntax import (
    DIGITS,
    TOKEN,
    Params,
    Scanner,
    SipParseError,
    is_token,
    parse_number,
    split_commas,
)
from media.sip.uri import parse_host, split_hostport

__all__ = ["MAGIC_COOKIE", "Via"]

MAGIC_COOKIE = "z9hG4bK"
"""Prefix of branches made by RFC 3261 elements (section 8.1.1.7)."""

_HOST_RUN = re.compile(r"[A-Za-z0-9\-.]+")


@dataclass(frozen=True, slots=True)
class Via:
    """One via-parm: ``SIP/2.0/UDP host[:port];branch=...;received=...;rport``.

    ``protocol`` and ``transport`` are upper-cased; ``host`` is the sent-by host as
    written (an IPv6 reference keeps its brackets).
    """

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=Params)
    protocol: str = "SIP/2.0"

    @classmethod
    def parse(cls, text: str, where: str = "Via") -> Via:
        scanner = Scanner(text, where)
        scanner.skip_ws()
        name = scanner.take(TOKEN, "the protocol name 'SIP'")
        scanner.skip_ws()
        scanner.expect("/", "'/' after the protocol name")
        scanner.skip_ws()
        version = scanner.take(TOKEN, "the protocol version")
        scanner.skip_ws()
        scanner.expect("/", "'/' after the protocol version")
        scanner.skip_ws()
        transport = scanner.take(TOKEN, "a transport (UDP, TCP, TLS, SCTP ...)")
        if not scanner.skip_ws():
            raise scanner.error("whitespace between the transport and sent-by")
        start = scanner.pos
        if scanner.peek() == "[":
            close = text.find("]", start)
            if close < 0:
                raise scanner.error("']' closing the IPv6 reference")
            scanner.pos = close + 1
        else:
            scanner.take(_HOST_RUN, "the sent-by host")
        if scanner.peek() == ":":
            scanner.pos += 1
            scanner.take(DIGITS, "a port number after ':'")
        host, port = split_hostport(text[start : scanner.pos], where)
        params = scanner.params()
        scanner.expect_end()
        _check_params(params, where)
        return cls(transport.upper(), host, port, params, f"{name}/{version}".upper())

    @classmethod
    def parse_list(cls, text: str, where: str = "Via") -> list[Via]:
        """Parse a header value holding one or more comma-separated via-parms."""
        vias = []
        for element in split_commas(text, where):
            if not element:
                raise SipParseError(f"{where}: empty element in comma-separated list {text!r}")
            vias.append(cls.parse(element, where))
        return vias

    def serialize(self) -> str:
        out = [f"{self.protocol}/{self.transport} {self.host}"]
        if self.port is not None:
            out.append(f":{self.port}")
        for name, value in self.params.items_in_order():
            out.append(f";{name}" if value is None else f";{name}={value}")
        return "".join(out)

    def __str__(self) -> str:
        return self.serialize()

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def rfc3261_branch(self) -> str | None:
        """The branch when it is an RFC 3261 transaction id (magic cookie plus at least
        one more character); None means the transaction layer must fall back to RFC 2543
        matching (section 17.2.3), as for a bare ``z9hG4bK`` (RFC 4475 3.2.1)."""
        branch = self.branch
        if branch and branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE):
            return branch
        return None

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def has_rport(self) -> bool:
        """True when the rport parameter is present, with or without a value."""
        return "rport" in self.params

    @property
    def rport(self) -> int | None:
        """The port of an rport parameter that has a value (RFC 3581)."""
        value = self.params.get("rport")
        return int(value) if value is not None else None

    @property
    def ttl(self) -> int | None:
        value = self.params.get("ttl")
        return int(value) if value is not None else None

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    def with_param(self, name: str, value: str | None = None) -> Via:
        return replace(self, params=self.params.replace(name, value))

    def with_received(self, address: str, rport: int | None = None) -> Via:
        """A copy with ``received`` set and, when given, the rport value filled in."""
        params = self.params.replace("received", address)
        if rport is not None:
            params = params.replace("rport", str(rport))
        return replace(self, params=params)


def _check_params(params: Params, where: str) -> None:
    for name, value in params.items():
        key = name.lower()
        if key == "branch":
            if value is None or not is_token(value):
                raise SipParseError(f"{where}: branch must be a token, found {value!r}")
        elif key == "ttl":
            parse_number(value or "", 255, where, "ttl")
        elif key == "maddr":
            if value is None:
                raise SipParseError(f"{where}: maddr needs a host")
            parse_host(value, where)
        elif key == "received":
            _check_address(value, where)
        elif key == "rport" and value is not None:
            parse_number(value, 65535, where, "rport port number")


def _check_address(value: str | None, where: str) -> None:
    """received = IPv4address / IPv6address (a bracketed IPv6 reference is tolerated)."""
    if value is None:
        raise SipParseError(f"{where}: received needs an IP address")
    bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        raise SipParseError(f"{where}: received must be an IP address, found {value!r}") from None
