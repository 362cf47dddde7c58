"""Fetching a prompt's audio (`play` of a URL) for the node, never from where it must not.

A script's `<Play>` URL is the customer's to choose, so the node refuses addresses that
are not public (loopback, private, link-local, multicast, reserved) unless they are in
the allowed networks (`WEBHOOK_ALLOW_NETWORKS`, as for webhooks), and checks every
redirect the same way. Only http and https; a timeout and a size limit.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.request
from collections.abc import Iterable
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
    networks = [ipaddress.ip_network(n, strict=False) for n in allowed]
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 0, proto=socket.IPPROTO_TCP)
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
    opener = urllib.request.build_opener(handler)
    request = urllib.request.Request(url, headers={"User-Agent": "voice-media"})
    try:
        with opener.open(request, timeout=FETCH_TIMEOUT) as response:
            data = response.read(FETCH_LIMIT + 1)
            content_type = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        raise AudioError(f"{url}: HTTP {error.code}") from error
    if len(data) > FETCH_LIMIT:
        raise AudioError(f"{url} is larger than {FETCH_LIMIT} bytes")
    return data, content_type
