"""Fetching a prompt's audio (`play` of a URL) for the node, never from where it must not.

A script's `<Play>` URL is the customer's to choose, so the node refuses addresses that
are not public (loopback, private, link-local, multicast, reserved) unless they are in
the allowed networks (`WEBHOOK_ALLOW_NETWORKS`, as for webhooks), and checks every
redirect the same way. Only http and https; a timeout and a size limit.

The check is made again where the connection is made, on the very addresses it connects
to: a host name resolved once for the check and again for the connection could answer a
public address first and an inside one next (DNS rebinding).
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import socket
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from media.audio.wav import AudioError

FETCH_TIMEOUT = 10.0
FETCH_LIMIT = 50 * 1024 * 1024
MAX_REDIRECTS = 5


class AddressRefused(AudioError):
    """The URL leads to an address the node may not reach."""


def check_url(url: str, allowed: Iterable[str] = ()) -> None:
    """Raise AudioError unless `url` is http(s) to public addresses (or allowed ones)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AudioError(f"only http and https URLs can be played, not {url!r}")
    _resolve(url, parts.hostname, parts.port or 0, tuple(allowed))


def _resolve(url: str, host: str, port: int, allowed: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """`host`'s addresses (getaddrinfo's answers) if every one may be reached."""
    networks = [ipaddress.ip_network(n, strict=False) for n in allowed]
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as error:
        raise AudioError(f"{url}: the host does not resolve ({error})") from error
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if any(address in network for network in networks):
            continue
        if not address.is_global or address.is_multicast:
            raise AddressRefused(
                f"{url}: {address} is not a public address; to play from it, add its network "
                "to WEBHOOK_ALLOW_NETWORKS"
            )
    return infos


def _checked_connection(
    allowed: tuple[str, ...],
    address: tuple[str, int],
    timeout: float | None = None,
    source_address: tuple[str, int] | None = None,
) -> socket.socket:
    """`socket.create_connection`, to the addresses just checked and to no others."""
    host, port = address
    error: OSError | None = None
    for family, kind, proto, _name, target in _resolve(f"{host}:{port}", host, port, allowed):
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not None:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(target)
        except OSError as failed:
            sock.close()
            error = failed
            continue
        return sock
    raise error or OSError(f"{host}: no address to connect to")


class _CheckedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, allowed: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = functools.partial(_checked_connection, allowed)


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, allowed: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = functools.partial(_checked_connection, allowed)


class _CheckedHTTP(urllib.request.HTTPHandler):
    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__()
        self.allowed = allowed

    def http_open(self, req):  # type: ignore[no-untyped-def]
        return self.do_open(functools.partial(_CheckedHTTPConnection, allowed=self.allowed), req)


class _CheckedHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__()
        self.allowed = allowed

    def https_open(self, req):  # type: ignore[no-untyped-def]
        return self.do_open(
            functools.partial(_CheckedHTTPSConnection, allowed=self.allowed),
            req,
            context=self._context,
        )


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, allowed: tuple[str, ...]) -> None:
        self.allowed = allowed

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        check_url(newurl, self.allowed)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_audio(url: str, allowed: Iterable[str] = ()) -> tuple[bytes, str]:
    """The body and Content-Type at `url`."""
    allowed = tuple(allowed)
    check_url(url, allowed)
    handler = _CheckedRedirects(allowed)
    handler.max_redirections = MAX_REDIRECTS
    opener = urllib.request.build_opener(handler, _CheckedHTTP(allowed), _CheckedHTTPS(allowed))
    request = urllib.request.Request(url, headers={"User-Agent": "voice-media"})
    try:
        with opener.open(request, timeout=FETCH_TIMEOUT) as response:
            data = response.read(FETCH_LIMIT + 1)
            content_type = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        raise AudioError(f"{url}: HTTP {error.code}") from error
    except (urllib.error.URLError, OSError) as error:  # refused, unreachable, timed out
        reason = getattr(error, "reason", error)
        raise AudioError(f"{url} could not be fetched: {reason}") from error
    if len(data) > FETCH_LIMIT:
        raise AudioError(f"{url} is larger than {FETCH_LIMIT} bytes")
    return data, content_type
