"""Which addresses webhooks may reach, and that the transport connects to the checked one."""

from __future__ import annotations

import datetime
import http.server
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
import requests

from interpreter.address_policy import (
    AddressPolicy,
    AddressRefused,
    HostNotFound,
    PinnedAddressAdapter,
)

DEMO_NETWORKS = ("127.0.0.0/8", "::1")


def fake_resolver(table: dict[str, list[str]]) -> Callable[..., list[tuple[Any, ...]]]:
    """A getaddrinfo stand-in: no DNS in tests."""

    def resolve(host: str, port: int, family: int = 0, type: int = 0) -> list[tuple[Any, ...]]:
        resolve.calls.append((host, port))  # type: ignore[attr-defined]
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in table[host]
        ]

    resolve.calls = []  # type: ignore[attr-defined]
    return resolve


REFUSED = [
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("10.1.2.3", "private address (RFC 1918)"),
    ("172.16.0.1", "private address (RFC 1918)"),
    ("172.31.255.254", "private address (RFC 1918)"),
    ("192.168.1.1", "private address (RFC 1918)"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("169.254.169.254", "cloud metadata service"),
    ("169.254.1.1", "link-local"),
    ("192.0.0.9", "IETF protocol assignment"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.200", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("100::1", "discard-only"),
    ("::127.0.0.1", "IPv4-compatible"),
    ("2001::1", "not a globally routable address"),  # Teredo
    ("::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1, a loopback"),
    ("::ffff:10.0.0.1", "IPv4-mapped form of 10.0.0.1, a private"),
    ("::ffff:169.254.169.254", "IPv4-mapped form of 169.254.169.254, the cloud metadata"),
    ("::ffff:100.64.0.1", "carrier-grade NAT"),
    ("64:ff9b::a00:1", "NAT64 form of 10.0.0.1, a private"),
    ("64:ff9b::7f00:1", "NAT64 form of 127.0.0.1, a loopback"),
    ("2002:a00:1::", "6to4 form of 10.0.0.1, a private"),
    ("2002:a9fe:a9fe::1", "6to4 form of 169.254.169.254"),
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_refused_by_default(address: str, reason: str) -> None:
    refusal = AddressPolicy().refusal(ip_address(address))
    assert refusal is not None
    assert reason in refusal


@pytest.mark.parametrize("address", ALLOWED)
def test_globally_routable_addresses_are_allowed(address: str) -> None:
    assert AddressPolicy().refusal(ip_address(address)) is None


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("64:ff9b::7f00:1", True),
        ("10.0.0.1", False),
        ("169.254.169.254", False),
        ("fe80::1", False),
        ("0.0.0.0", False),
        ("::", False),
        ("8.8.8.8", True),
    ],
)
def test_the_demo_allows_loopback_and_nothing_else(address: str, allowed: bool) -> None:
    policy = AddressPolicy(allow_networks=DEMO_NETWORKS)
    assert (policy.refusal(ip_address(address)) is None) is allowed


def test_configured_networks_allow_private_ranges() -> None:
    policy = AddressPolicy(allow_networks=["10.20.0.0/16", "fd00:1::/32"])
    assert policy.refusal(ip_address("10.20.3.4")) is None
    assert policy.refusal(ip_address("fd00:1::5")) is None
    assert policy.refusal(ip_address("10.21.0.1")) is not None


def test_a_malformed_network_is_named() -> None:
    with pytest.raises(ValueError, match=r"WEBHOOK_ALLOW_NETWORKS: '10\.0\.0\.0/33'"):
        AddressPolicy(allow_networks=["10.0.0.0/33"])


def test_a_name_is_resolved_for_its_port_and_every_address_returned() -> None:
    resolver = fake_resolver({"hooks.example.com": ["93.184.216.34", "2606:2800::1"]})
    policy = AddressPolicy(resolver=resolver)
    assert policy.resolve("https://hooks.example.com/voice") == [
        ip_address("93.184.216.34"),
        ip_address("2606:2800::1"),
    ]
    policy.resolve("http://hooks.example.com:8080/voice")
    policy.resolve("HTTP://hooks.example.com/voice")
    assert resolver.calls == [  # type: ignore[attr-defined]
        ("hooks.example.com", 443),
        ("hooks.example.com", 8080),
        ("hooks.example.com", 80),
    ]


def test_one_private_address_among_public_ones_refuses_the_name() -> None:
    resolver = fake_resolver({"mixed.example.com": ["93.184.216.34", "10.0.0.5"]})
    with pytest.raises(AddressRefused) as refused:
        AddressPolicy(resolver=resolver).resolve("https://mixed.example.com/voice")
    message = str(refused.value)
    assert refused.value.host == "mixed.example.com"
    assert "mixed.example.com" in message
    assert "10.0.0.5 (of 93.184.216.34, 10.0.0.5)" in message
    assert "private address (RFC 1918)" in message
    assert "WEBHOOK_ALLOW_NETWORKS (for example 10.0.0.5/32)" in message


def test_an_address_literal_is_judged_without_a_lookup() -> None:
    resolver = fake_resolver({})
    policy = AddressPolicy(resolver=resolver)
    with pytest.raises(AddressRefused, match=r"169\.254\.169\.254 is the cloud metadata service"):
        policy.resolve("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(AddressRefused, match=r"IPv4-mapped form of 127\.0\.0\.1.*127\.0\.0\.1/32"):
        policy.resolve("http://[::ffff:127.0.0.1]:8000/voice")
    assert policy.resolve("http://[2606:4700:4700::1111]/x") == [ip_address("2606:4700:4700::1111")]
    assert resolver.calls == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/voice.xml", "scheme 'ftp' is not allowed"),
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("gopher://127.0.0.1:6379/_INFO", "scheme 'gopher' is not allowed"),
        ("example.com/voice", r"scheme '\(none\)' is not allowed"),
        ("http:///voice", "no host"),
        ("http://example.com:99999/voice", "port"),
        ("http://[::1/voice", "malformed"),
    ],
)
def test_urls_that_are_not_http_to_a_host_are_refused(url: str, reason: str) -> None:
    with pytest.raises(AddressRefused, match=reason):
        AddressPolicy(resolver=fake_resolver({"example.com": ["93.184.216.34"]})).resolve(url)


def test_a_name_that_does_not_resolve() -> None:
    with pytest.raises(HostNotFound, match=r"nowhere\.example not found"):
        AddressPolicy(resolver=fake_resolver({})).resolve("https://nowhere.example/")
    with pytest.raises(HostNotFound, match="no addresses"):
        AddressPolicy(resolver=fake_resolver({"empty.example": []})).resolve("http://empty.example")


# ----------------------------------------------------------------- the pinned transport


def prepared(url: str) -> requests.PreparedRequest:
    return requests.Request("GET", url).prepare()


def test_the_transport_connects_to_the_checked_address_under_the_original_name() -> None:
    resolver = fake_resolver({"hooks.example.com": ["93.184.216.34", "93.184.216.35"]})
    adapter = PinnedAddressAdapter(AddressPolicy(resolver=resolver))
    pool = adapter.get_connection_with_tls_context(
        prepared("https://hooks.example.com:8443/voice"), verify=True
    )
    assert (pool.host, pool.port) == ("93.184.216.34", 8443)
    assert pool.conn_kw["server_hostname"] == "hooks.example.com"
    plain = adapter.get_connection_with_tls_context(
        prepared("http://hooks.example.com/voice"), verify=True
    )
    assert (plain.host, plain.port) == ("93.184.216.34", 80)


def test_a_name_that_rebinds_to_a_private_address_is_refused_at_the_socket() -> None:
    answers = iter([["93.184.216.34"], ["169.254.169.254"]])

    def rebinding(host: str, port: int, family: int = 0, type: int = 0) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in next(answers)]

    policy = AddressPolicy(resolver=rebinding)
    request = prepared("http://rebind.example/voice")
    policy.resolve(request.url or "")  # the early check sees a public address
    with pytest.raises(AddressRefused, match="cloud metadata service"):
        PinnedAddressAdapter(policy).get_connection_with_tls_context(request, verify=True)


@pytest.fixture
def tls_files(tmp_path: Path) -> Iterator[tuple[Path, Path, Path]]:
    """A CA, and a certificate it issued for twiml.test: (ca, cert, key)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def certificate(subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    site_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("Test CA", ca_key, "Test CA", ca_key, ca=True)
    site = certificate("twiml.test", site_key, "Test CA", ca_key, ca=False)
    paths = tmp_path / "ca.pem", tmp_path / "site.pem", tmp_path / "site.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(site.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        site_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    yield paths


def test_https_through_the_pinned_address_keeps_sni_and_certificate_checks(
    tls_files: tuple[Path, Path, Path],
) -> None:
    ca, cert, key = tls_files
    seen: dict[str, Any] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen["host"] = self.headers["Host"]
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def note_server_name(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        seen["sni"] = name

    context.sni_callback = note_server_name
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        resolver = fake_resolver({"twiml.test": ["127.0.0.1"], "wrong.test": ["127.0.0.1"]})
        adapter = PinnedAddressAdapter(AddressPolicy(DEMO_NETWORKS, resolver=resolver))
        response = adapter.send(
            prepared(f"https://twiml.test:{port}/voice"), verify=str(ca), timeout=5
        )
        assert (response.status_code, response.text) == (200, "ok")
        assert seen == {"sni": "twiml.test", "host": f"twiml.test:{port}"}
        # The certificate names twiml.test; reaching the same address as another name fails.
        with pytest.raises(requests.exceptions.SSLError, match="Hostname mismatch"):
            adapter.send(prepared(f"https://wrong.test:{port}/voice"), verify=str(ca), timeout=5)
    finally:
        server.shutdown()
        server.server_close()
