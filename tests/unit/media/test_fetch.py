"""The node fetches `play` audio only from public addresses or allowed networks."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from media.audio.wav import AudioError
from media.fetch import AddressRefused, check_url, fetch_audio


class Server(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://10.1.2.3/inside.wav")
            self.end_headers()
            return
        if self.path == "/missing":
            self.send_error(404)
            return
        body = b"RIFF-audio"
        self.send_response(200)
        self.send_header("Content-Type", "audio/wav")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def base() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.wav",
        "http://10.0.0.8/a.wav",
        "http://192.168.1.1/a.wav",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/a.wav",
        "http://0.0.0.0/a.wav",
    ],
)
def test_addresses_that_are_not_public_are_refused(url: str) -> None:
    with pytest.raises(AddressRefused, match=r"not a public address.*WEBHOOK_ALLOW_NETWORKS"):
        check_url(url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.wav", "a.wav"])
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(AudioError, match="only http and https"):
        check_url(url)


def test_an_allowed_network_is_fetched_with_its_content_type(base: str) -> None:
    assert fetch_audio(f"{base}/a.wav", ["127.0.0.0/8"]) == (b"RIFF-audio", "audio/wav")
    with pytest.raises(AddressRefused):
        fetch_audio(f"{base}/a.wav")


def test_a_redirect_into_a_private_network_is_refused(base: str) -> None:
    with pytest.raises(AddressRefused, match=r"10\.1\.2\.3"):
        fetch_audio(f"{base}/redirect", ["127.0.0.0/8"])


def test_an_http_error_is_a_clear_error(base: str) -> None:
    with pytest.raises(AudioError, match="HTTP 404"):
        fetch_audio(f"{base}/missing", ["127.0.0.0/8"])


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_name_that_resolves_inside_on_the_second_lookup_is_refused(
    base: str, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    """DNS rebinding: public when checked, loopback when connected to (refused before
    any TLS, whatever the scheme)."""
    port = int(base.rsplit(":", 1)[1])
    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host != "rebind.example":
            return real(host, *args, **kwargs)
        lookups.append(host)
        address = "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with pytest.raises(AddressRefused, match=r"127\.0\.0\.1 is not a public address"):
        fetch_audio(f"{scheme}://rebind.example:{port}/a.wav")
    assert len(lookups) == 2  # checked, then checked again where it connects


def test_an_unreachable_allowed_address_is_a_clear_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(AudioError, match=r"could not be fetched: .*refused"):
        fetch_audio(f"http://127.0.0.1:{port}/a.wav", ["127.0.0.0/8"])


def test_a_server_that_never_answers_times_out_with_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("media.fetch.FETCH_TIMEOUT", 0.3)
    with socket.socket() as silent:  # connections complete in its backlog, never answered
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(AudioError, match=r"could not be fetched: .*timed out"):
            fetch_audio(f"http://127.0.0.1:{port}/a.wav", ["127.0.0.0/8"])
