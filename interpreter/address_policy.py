"""Which network addresses a webhook may reach, and a transport that reaches only those.

Webhook URLs are written by customers and requested from inside our network, so without
a policy any account could make the platform fetch its loopback services, the cloud
metadata service at 169.254.169.254 or hosts on the private network (server-side request
forgery). By default only globally routable addresses are allowed; an operator allows
more with networks in CIDR notation (``WEBHOOK_ALLOW_NETWORKS``; the demo allows
loopback so that scripts served from the same machine work).

A name is judged by everything it resolves to: one refused address refuses the URL, so a
name cannot smuggle a private address in beside a public one. An IPv6 address that
carries an IPv4 address (IPv4-mapped, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) is
judged as that IPv4 address, since that is where the packets end up.

Checking a name and then letting the HTTP library resolve it again would let a name
answer with a public address to the check and a private one to the connection (DNS
rebinding). `PinnedAddressAdapter` closes that gap for `requests`: it resolves and checks
the name when urllib3 picks a connection pool and gives urllib3 the checked address to
connect to, while the ``Host`` header, TLS SNI and certificate verification keep using
the name from the URL.

Residual limits, accepted knowingly:

- The connection goes to the first approved address only; urllib3 does not fall back to
  the name's other addresses when that one is unreachable.
- Proxies are not supported: a proxy resolves the name itself, out of our sight. The
  webhook client sends without any (none are taken from the environment either).
- The webhook client also checks each URL before sending, to explain a refusal early,
  so a name is looked up twice per request; only the transport's answer is connected
  to. Tests that mock HTTP at the adapter (``responses``) see only the early check.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from typing import Any, Protocol
from urllib.parse import urlsplit

from requests import PreparedRequest
from requests.adapters import HTTPAdapter

IPAddress = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

ALLOW_SETTING = "WEBHOOK_ALLOW_NETWORKS"
SCHEMES = {"http": 80, "https": 443}


class Resolver(Protocol):
    """The shape of `socket.getaddrinfo`, the default: (host, port, family, type)."""

    def __call__(
        self, host: str, port: int, family: int = ..., type: int = ...
    ) -> Iterable[tuple[Any, ...]]: ...


class AddressRefused(Exception):
    """The policy does not allow a request to this URL."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        try:
            self.host = urlsplit(url).hostname or ""
        except ValueError:
            self.host = ""
        super().__init__(f"webhook to {self.host or url!r} refused: {reason}")


class HostNotFound(Exception):
    """The URL's host name does not resolve to any address."""

    def __init__(self, url: str, host: str, detail: str) -> None:
        self.url = url
        self.host = host
        super().__init__(f"webhook host {host} not found: {detail}")


def _named(*pairs: tuple[str, str]) -> tuple[tuple[Network, str], ...]:
    return tuple((ip_network(network), why) for network, why in pairs)


# Refused unless allowed by configuration; the first network that matches names the
# reason. Anything else that is not globally routable is refused without a special name.
_REFUSED_IPV4 = _named(
    ("0.0.0.0/8", "an unspecified ('this network') address"),
    ("127.0.0.0/8", "a loopback address"),
    ("10.0.0.0/8", "a private address (RFC 1918)"),
    ("172.16.0.0/12", "a private address (RFC 1918)"),
    ("192.168.0.0/16", "a private address (RFC 1918)"),
    ("100.64.0.0/10", "a carrier-grade NAT address (RFC 6598)"),
    ("169.254.169.254/32", "the cloud metadata service (link-local)"),
    ("169.254.0.0/16", "a link-local address"),
    ("192.0.0.0/24", "an IETF protocol assignment (RFC 6890)"),
    ("192.0.2.0/24", "a documentation address (RFC 5737)"),
    ("198.51.100.0/24", "a documentation address (RFC 5737)"),
    ("203.0.113.0/24", "a documentation address (RFC 5737)"),
    ("198.18.0.0/15", "a benchmarking address (RFC 2544)"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
)
_REFUSED_IPV6 = _named(
    ("::/128", "the unspecified address"),
    ("::1/128", "the loopback address"),
    ("::/96", "an IPv4-compatible address (deprecated)"),
    ("fc00::/7", "a unique local (private) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address (deprecated)"),
    ("ff00::/8", "a multicast address"),
    ("2001:db8::/32", "a documentation address (RFC 3849)"),
    ("3fff::/20", "a documentation address (RFC 9637)"),
    ("100::/64", "a discard-only address (RFC 6666)"),
)
_NAT64 = ip_network("64:ff9b::/96")


class AddressPolicy:
    """Allows globally routable addresses and those in `allow_networks`, nothing else."""

    def __init__(
        self,
        allow_networks: Iterable[str | Network] = (),
        *,
        resolver: Resolver = socket.getaddrinfo,
    ) -> None:
        self.allow_networks = tuple(_network(item) for item in allow_networks)
        self.resolver = resolver

    def resolve(self, url: str) -> list[IPAddress]:
        """The addresses `url`'s host resolves to, all of them allowed.

        Raises `AddressRefused` for a scheme other than http(s), a URL without a host, or
        any refused address; `HostNotFound` when the name does not resolve.
        """
        try:
            parts = urlsplit(url)
        except ValueError as error:
            raise AddressRefused(url, f"the URL is malformed ({error})") from None
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise AddressRefused(
                url, f"the scheme {parts.scheme or '(none)'!r} is not allowed; use http or https"
            )
        host = parts.hostname
        if not host:
            raise AddressRefused(url, "the URL has no host")
        try:
            port = parts.port or SCHEMES[scheme]
        except ValueError:
            raise AddressRefused(url, f"the port in {parts.netloc!r} is not valid") from None
        try:
            addresses: list[IPAddress] = [ip_address(host)]
            literal = True
        except ValueError:
            addresses = self._lookup(url, host, port)
            literal = False
        for address in addresses:
            reason = self.refusal(address)
            if reason is None:
                continue
            if literal:
                where = f"{address} is"
            elif len(addresses) == 1:
                where = f"it resolves to {address},"
            else:
                where = f"it resolves to {address} (of {', '.join(map(str, addresses))}),"
            raise AddressRefused(
                url,
                f"{where} {reason}; if this is intended, allow its network in "
                f"{ALLOW_SETTING} (for example {_single(address)})",
            )
        return addresses

    def refusal(self, address: IPAddress) -> str | None:
        """Why `address` is refused, or None when it is allowed."""
        carried = _carried_ipv4(address)
        if self._allowed(address) or (carried is not None and self._allowed(carried[0])):
            return None
        if carried is not None:
            ipv4, form = carried
            reason = self.refusal(ipv4)
            return None if reason is None else f"the {form} form of {ipv4}, {reason}"
        named = _REFUSED_IPV4 if isinstance(address, IPv4Address) else _REFUSED_IPV6
        for network, why in named:
            if address in network:
                return why
        if not address.is_global or address.is_reserved or address.is_private:
            return "not a globally routable address"
        return None

    def _allowed(self, address: IPAddress) -> bool:
        return any(address in network for network in self.allow_networks)

    def _lookup(self, url: str, host: str, port: int) -> list[IPAddress]:
        try:
            entries = self.resolver(host, port, 0, socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            raise HostNotFound(url, host, str(error) or type(error).__name__) from None
        addresses: list[IPAddress] = []
        for entry in entries:
            address = ip_address(entry[4][0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise HostNotFound(url, host, "no addresses")
        return addresses


class PinnedAddressAdapter(HTTPAdapter):
    """A `requests` transport that connects only to an address the policy approved.

    The check runs where urllib3 chooses the connection pool, so the address checked is
    the address connected to. The pool is keyed by address and, for https, by the name
    used for SNI and certificate verification.
    """

    def __init__(self, policy: AddressPolicy, **kwargs: Any) -> None:
        self.policy = policy
        super().__init__(**kwargs)

    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        address = self.policy.resolve(request.url or "")[0]
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = host_params["host"]
        host_params["host"] = str(address)
        return host_params, pool_kwargs

    def add_headers(self, request: PreparedRequest, **kwargs: Any) -> None:
        # The socket is opened to an address, so name the site explicitly, as http.client
        # would have from the URL.
        if "Host" not in request.headers:
            request.headers["Host"] = _authority(request.url or "")


def _network(item: str | Network) -> Network:
    if isinstance(item, IPv4Network | IPv6Network):
        return item
    try:
        return ip_network(item.strip(), strict=False)
    except ValueError:
        raise ValueError(
            f"{ALLOW_SETTING}: {item!r} is not a network; use CIDR notation such as "
            "127.0.0.0/8 or 10.1.0.0/16"
        ) from None


def _carried_ipv4(address: IPAddress) -> tuple[IPv4Address, str] | None:
    if isinstance(address, IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "IPv4-mapped"
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
    if address.sixtofour is not None:
        return address.sixtofour, "6to4"
    return None


def _single(address: IPAddress) -> str:
    carried = _carried_ipv4(address)
    target = carried[0] if carried else address
    return f"{target}/{target.max_prefixlen}"


def _authority(url: str) -> str:
    parts = urlsplit(url)
    authority = parts.netloc.rpartition("@")[2]
    if parts.port is not None and parts.port == SCHEMES.get(parts.scheme.lower()):
        authority = authority[: authority.rindex(":")]
    return authority.removesuffix(":")
