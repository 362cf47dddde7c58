"""The webhook client against mocked HTTP (`responses`), a fake resolver, and once for real."""

from __future__ import annotations

import base64
import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
import responses
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from interpreter.address_policy import AddressPolicy
from interpreter.signature import SIGNATURE_HEADER
from interpreter.webhook import (
    ACCEPT,
    IDEMPOTENCY_HEADER,
    FetchError,
    FetchResult,
    ReplyKind,
    WebhookClient,
)

TOKEN = "f00dfeedf00dfeedf00dfeedf00dfeed"
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hi</Say></Response>'
XML = {"Content-Type": "text/xml"}
HOOKS = "https://hooks.example.com"
CALL = {"CallSid": "CA0001", "From": "+15550001111", "To": "+15550002222", "Digits": "1#"}


def fake_resolver(table: dict[str, list[str]]) -> Callable[..., list[tuple[Any, ...]]]:
    """A getaddrinfo stand-in: no DNS in tests."""

    def resolve(host: str, port: int, family: int = 0, type: int = 0) -> list[tuple[Any, ...]]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in table[host]
        ]

    return resolve


RESOLVER = fake_resolver(
    {
        "hooks.example.com": ["93.184.216.34"],
        "other.example.net": ["93.184.216.99", "2606:2800:220:1::99"],
        "internal.example.com": ["10.0.0.7"],
        "sneaky.example.com": ["93.184.216.50", "192.168.0.50"],
    }
)


def client(**options: Any) -> WebhookClient:
    return WebhookClient(AddressPolicy(resolver=RESOLVER), **options)


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def signed_for(request: requests.PreparedRequest) -> bool:
    """What a customer's server running Twilio's validator would decide."""
    form = MultiDict(parse_qsl(request.body or "", keep_blank_values=True))
    return RequestValidator(TOKEN).validate(request.url, form, request.headers[SIGNATURE_HEADER])


def failed(result: FetchResult, code: FetchError) -> bool:
    return (
        not result.ok
        and result.error_code is code
        and result.error is not None
        and result.error.startswith(f"{code}: ")
    )


# ------------------------------------------------------------------ requests as sent


def test_get_carries_the_parameters_after_the_urls_own_query(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(f"{HOOKS}/voice", body=TWIML, headers=XML)
    result = client().fetch(f"{HOOKS}/voice?lang=fr", "GET", CALL, TOKEN)
    assert result.ok and result.kind is ReplyKind.DOCUMENT and result.body == TWIML
    sent = mocked.calls[0].request
    assert sent.method == "GET" and sent.body is None
    assert sent.url == (
        f"{HOOKS}/voice?lang=fr&CallSid=CA0001&From=%2B15550001111&To=%2B15550002222&Digits=1%23"
    )
    assert signed_for(sent)
    assert result.url == sent.url == result.request.url


def test_post_sends_a_signed_form(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{HOOKS}/voice", body=TWIML, headers=XML)
    params = {**CALL, "SpeechResult": "ça va — 你好", "Event": ["b", "a"]}
    result = client().fetch(f"{HOOKS}/voice?x=1", "post", params, TOKEN)
    assert result.ok
    sent = mocked.calls[0].request
    assert sent.method == "POST"
    assert sent.url == f"{HOOKS}/voice?x=1"
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qsl(sent.body) == [
        *CALL.items(),
        ("SpeechResult", "ça va — 你好"),
        ("Event", "b"),
        ("Event", "a"),
    ]
    assert signed_for(sent)


def test_headers_and_the_request_record(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{HOOKS}/voice", body=TWIML, headers=XML)
    result = client(user_agent="Test/2").fetch(
        f"{HOOKS}/voice", "POST", CALL, TOKEN, idempotency_token="CA0001-3"
    )
    sent = mocked.calls[0].request
    assert sent.headers["User-Agent"] == "Test/2"
    assert sent.headers["Accept"] == ACCEPT == "text/xml, application/xml, text/html"
    assert sent.headers[IDEMPOTENCY_HEADER] == "CA0001-3"
    record = result.request
    assert (record.method, record.url, record.params) == ("POST", sent.url, tuple(CALL.items()))
    assert record.headers[SIGNATURE_HEADER] == sent.headers[SIGNATURE_HEADER]
    assert record.headers[IDEMPOTENCY_HEADER] == "CA0001-3"

    client().fetch(f"{HOOKS}/voice", "POST", CALL, TOKEN)
    assert IDEMPOTENCY_HEADER not in mocked.calls[1].request.headers


def test_the_timeouts_are_exactly_the_configured_ones(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{HOOKS}/voice", body=TWIML, headers=XML)
    client().fetch(f"{HOOKS}/voice", "GET", None, TOKEN)
    client(connect_timeout=1.5, read_timeout=4.0).notify(f"{HOOKS}/voice", "GET", None, TOKEN)
    assert mocked.calls[0].request.req_kwargs["timeout"] == (3.05, 15.0)
    assert mocked.calls[1].request.req_kwargs["timeout"] == (1.5, 4.0)


def test_credentials_in_the_url_are_sent_but_never_shown(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{HOOKS}/voice", body=TWIML, headers=XML)
    result = client().fetch("https://ann:s%40cret@hooks.example.com/voice#top", "POST", CALL, TOKEN)
    sent = mocked.calls[0].request
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"ann:s@cret").decode()
    assert sent.url == f"{HOOKS}/voice"  # neither credentials nor fragment go on the wire
    assert signed_for(sent)
    assert result.request.headers["Authorization"] == "<redacted>"
    assert "s%40cret" not in repr(result) and "s@cret" not in repr(result)


def test_a_method_other_than_get_or_post_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="'PUT' is not valid; use GET or POST"):
        client().fetch(f"{HOOKS}/voice", "PUT", None, TOKEN)


# ----------------------------------------------------------------- failures as results


def test_an_error_status_is_a_failure_with_the_body_kept(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{HOOKS}/voice", status=500, body="Traceback: boom", headers={"X": "y"})
    result = client().fetch(f"{HOOKS}/voice", "POST", CALL, TOKEN)
    assert failed(result, FetchError.HTTP_STATUS)
    assert result.status == 500 and result.body == "Traceback: boom"
    assert result.error == f"http-status: {HOOKS}/voice answered 500 Internal Server Error"


@pytest.mark.parametrize(
    ("raised", "code", "message"),
    [
        (requests.exceptions.ReadTimeout(), FetchError.TIMEOUT, "sent nothing for 15 s"),
        (
            requests.exceptions.ConnectTimeout(),
            FetchError.TIMEOUT,
            "no connection to https://hooks.example.com/voice within 3.05 s",
        ),
        (
            requests.exceptions.ConnectionError("Connection refused"),
            FetchError.CONNECTION_FAILED,
            "connection to https://hooks.example.com/voice failed: Connection refused",
        ),
        (
            requests.exceptions.SSLError("certificate verify failed"),
            FetchError.CONNECTION_FAILED,
            "TLS with https://hooks.example.com/voice failed: certificate verify failed",
        ),
    ],
)
def test_network_problems_are_results(
    mocked: responses.RequestsMock, raised: Exception, code: FetchError, message: str
) -> None:
    mocked.post(f"{HOOKS}/voice", body=raised)
    result = client().fetch(f"{HOOKS}/voice", "POST", CALL, TOKEN)
    assert failed(result, code)
    assert result.status is None
    assert message in (result.error or "")


def test_an_unknown_host_is_a_connection_failure(mocked: responses.RequestsMock) -> None:
    result = client().notify("https://gone.example.org/status", "POST", CALL, TOKEN)
    assert failed(result, FetchError.CONNECTION_FAILED)
    assert "gone.example.org not found" in (result.error or "")
    assert not mocked.calls


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://internal.example.com/voice", "10.0.0.7, a private address"),
        ("http://sneaky.example.com/voice", "192.168.0.50 (of 93.184.216.50, 192.168.0.50)"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata service"),
        ("http://[::1]:8000/voice", "::1 is the loopback address"),
        ("ftp://hooks.example.com/voice.xml", "scheme 'ftp' is not allowed"),
    ],
)
def test_refused_addresses_are_never_requested(
    mocked: responses.RequestsMock, url: str, fragment: str
) -> None:
    result = client().fetch(url, "POST", CALL, TOKEN)
    assert failed(result, FetchError.ADDRESS_REFUSED)
    assert fragment in (result.error or "")
    assert "WEBHOOK_ALLOW_NETWORKS" in (result.error or "") or "scheme" in fragment
    assert result.status is None
    assert result.request.headers[SIGNATURE_HEADER]  # what would have been sent
    assert not mocked.calls


def test_a_malformed_url_is_invalid(mocked: responses.RequestsMock) -> None:
    result = client().fetch("https://hooks.example.com:port/voice", "GET", None, TOKEN)
    assert failed(result, FetchError.INVALID_URL)
    assert "https://hooks.example.com:port/voice is not a valid URL" in (result.error or "")
    assert not mocked.calls


# ------------------------------------------------------------------------- redirects


def test_a_redirect_chain_is_checked_and_signed_at_every_hop(
    mocked: responses.RequestsMock,
) -> None:
    mocked.post(f"{HOOKS}/a", status=307, headers={"Location": "/b?step=2"})
    mocked.post(f"{HOOKS}/b", status=301, headers={"Location": "https://other.example.net/c"})
    mocked.get("https://other.example.net/c", body=TWIML, headers=XML)
    result = client().fetch(f"{HOOKS}/a", "POST", CALL, TOKEN, idempotency_token="t1")
    assert result.ok and result.body == TWIML
    assert result.url == "https://other.example.net/c"
    assert result.redirects == (f"{HOOKS}/a", f"{HOOKS}/b?step=2")
    hops = [call.request for call in mocked.calls]
    assert [(hop.method, hop.url) for hop in hops] == [
        ("POST", f"{HOOKS}/a"),
        ("POST", f"{HOOKS}/b?step=2"),  # 307 keeps the method and the form
        ("GET", "https://other.example.net/c"),  # 301 turns it into a GET, without it
    ]
    assert hops[0].body == hops[1].body and hops[2].body is None
    assert all(signed_for(hop) for hop in hops)
    assert len({hop.headers[SIGNATURE_HEADER] for hop in hops}) == 3
    assert all(hop.headers[IDEMPOTENCY_HEADER] == "t1" for hop in hops)
    assert result.request.method == "GET" and result.request.params == ()


@pytest.mark.parametrize("status", [301, 302, 303])
def test_these_redirects_turn_a_post_into_a_get(
    mocked: responses.RequestsMock, status: int
) -> None:
    mocked.post(f"{HOOKS}/a", status=status, headers={"Location": f"{HOOKS}/b"})
    mocked.get(f"{HOOKS}/b", body=TWIML, headers=XML)
    assert client().fetch(f"{HOOKS}/a", "POST", CALL, TOKEN).ok
    assert mocked.calls[1].request.method == "GET"


def test_a_redirect_loop_is_an_error(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{HOOKS}/a", status=302, headers={"Location": "/b"})
    mocked.get(f"{HOOKS}/b", status=302, headers={"Location": "/a"})
    result = client().fetch(f"{HOOKS}/a", "GET", None, TOKEN)
    assert failed(result, FetchError.REDIRECT_LOOP)
    assert result.error == (
        f"redirect-loop: {HOOKS}/b redirected to {HOOKS}/a, which was already requested"
    )
    assert (result.url, result.status) == (f"{HOOKS}/b", 302)
    assert len(mocked.calls) == 2


def test_more_redirects_than_allowed_is_an_error(mocked: responses.RequestsMock) -> None:
    for hop in range(7):
        mocked.get(f"{HOOKS}/{hop}", status=302, headers={"Location": f"/{hop + 1}"})
    result = client(max_redirects=5).fetch(f"{HOOKS}/0", "GET", None, TOKEN)
    assert failed(result, FetchError.TOO_MANY_REDIRECTS)
    assert "past the limit of 5 redirects" in (result.error or "")
    assert len(mocked.calls) == 6 and len(result.redirects) == 5

    none_allowed = client(max_redirects=0).fetch(f"{HOOKS}/0", "GET", None, TOKEN)
    assert failed(none_allowed, FetchError.TOO_MANY_REDIRECTS)


def test_a_redirect_to_a_private_address_is_refused(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{HOOKS}/a", status=302, headers={"Location": "http://internal.example.com/x"})
    result = client().fetch(f"{HOOKS}/a", "POST", CALL, TOKEN)
    assert failed(result, FetchError.ADDRESS_REFUSED)
    assert "10.0.0.7" in (result.error or "")
    assert result.url == "http://internal.example.com/x"
    assert result.redirects == (f"{HOOKS}/a",)
    assert len(mocked.calls) == 1


def test_a_redirect_without_location_is_an_http_error(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{HOOKS}/a", status=302)
    result = client().fetch(f"{HOOKS}/a", "GET", None, TOKEN)
    assert failed(result, FetchError.HTTP_STATUS)
    assert "302 without a Location header" in (result.error or "")


# ------------------------------------------------------------------------------ bodies


def test_a_declared_body_over_the_cap_is_refused_unread(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{HOOKS}/big", body=b"x" * 101, headers={**XML, "Content-Length": "101"})
    result = client(max_body_bytes=100).fetch(f"{HOOKS}/big", "GET", None, TOKEN)
    assert failed(result, FetchError.TOO_LARGE)
    assert result.error == f"too-large: {HOOKS}/big sent more than 100 bytes"
    assert result.status == 200 and result.body == ""


def test_an_undeclared_body_is_cut_off_while_streaming(mocked: responses.RequestsMock) -> None:
    # responses declares no Content-Length unless told to, so this body is only streamed.
    mocked.get(f"{HOOKS}/big", body=b"<Response>" + b" " * 70_000, headers=XML)
    result = client(max_body_bytes=65_536).fetch(f"{HOOKS}/big", "GET", None, TOKEN)
    assert failed(result, FetchError.TOO_LARGE)
    exact = client(max_body_bytes=70_010).fetch(f"{HOOKS}/big", "GET", None, TOKEN)
    assert exact.ok and len(exact.body) == 70_010


@pytest.mark.parametrize(
    "content_type",
    ["text/xml", "application/xml", "text/html", "text/plain", "TEXT/XML; charset=utf-8"],
)
def test_document_content_types(mocked: responses.RequestsMock, content_type: str) -> None:
    mocked.get(f"{HOOKS}/voice", body=TWIML, headers={"Content-Type": content_type})
    result = client().fetch(f"{HOOKS}/voice", "GET", None, TOKEN)
    assert result.ok and result.kind is ReplyKind.DOCUMENT
    assert (result.content_type, result.body) == (content_type, TWIML)


@pytest.mark.parametrize("content_type", ["application/json", "application/octet-stream", None])
def test_other_content_types_are_refused(
    mocked: responses.RequestsMock, content_type: str | None
) -> None:
    mocked.get(f"{HOOKS}/voice", body="{}", content_type=content_type)
    result = client().fetch(f"{HOOKS}/voice", "GET", None, TOKEN)
    assert failed(result, FetchError.UNSUPPORTED_CONTENT_TYPE)
    assert f"Content-Type {content_type or '(none)'}" in (result.error or "")
    assert result.status == 200


def test_audio_means_play_this_url(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{HOOKS}/hold.mp3", body=b"\xff\xfb" * 1000, headers={"Content-Type": "audio/mpeg"})
    result = client(max_body_bytes=10).fetch(f"{HOOKS}/hold.mp3", "GET", None, TOKEN)
    assert result.ok and result.kind is ReplyKind.AUDIO
    assert (result.url, result.body, result.content_type) == (
        f"{HOOKS}/hold.mp3",
        "",
        "audio/mpeg",
    )


@pytest.mark.parametrize(
    ("raw", "content_type", "text"),
    [
        (
            "<Say>Grüße</Say>".encode("iso-8859-1"),
            "text/xml; charset=ISO-8859-1",
            "<Say>Grüße</Say>",
        ),
        ("<Say>Привет</Say>".encode("koi8-r"), 'text/xml; charset="koi8-r"', "<Say>Привет</Say>"),
        ("<Say>ça</Say>".encode(), "text/xml", "<Say>ça</Say>"),
        (b"\xef\xbb\xbf<Say>bom</Say>", "text/xml; charset=utf-8", "<Say>bom</Say>"),
        (
            '<?xml version="1.0" encoding="windows-1251"?><Say>Да</Say>'.encode("cp1251"),
            "application/xml",
            '<?xml version="1.0" encoding="windows-1251"?><Say>Да</Say>',
        ),
        (b"<Say>\xff</Say>", "text/xml", "<Say>\ufffd</Say>"),
        (b"<Say>ok</Say>", "text/xml; charset=no-such-charset", "<Say>ok</Say>"),
    ],
)
def test_bodies_are_decoded_per_charset(
    mocked: responses.RequestsMock, raw: bytes, content_type: str, text: str
) -> None:
    mocked.get(f"{HOOKS}/voice", body=raw, headers={"Content-Type": content_type})
    result = client().fetch(f"{HOOKS}/voice", "GET", None, TOKEN)
    assert result.ok and result.body == text


def test_notify_needs_only_a_success_status(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{HOOKS}/status", status=204)
    mocked.post(f"{HOOKS}/json", json={"ok": True})
    mocked.post(f"{HOOKS}/missing", status=404, body="no such page")
    assert client().notify(f"{HOOKS}/status", "POST", CALL, TOKEN).ok
    acknowledged = client().notify(f"{HOOKS}/json", "POST", CALL, TOKEN)
    assert acknowledged.ok and acknowledged.kind is None and acknowledged.body == ""
    missing = client().notify(f"{HOOKS}/missing", "POST", CALL, TOKEN)
    assert failed(missing, FetchError.HTTP_STATUS) and missing.status == 404
    assert all(signed_for(call.request) for call in mocked.calls)


# --------------------------------------------------------------------- the real path


def test_end_to_end_over_a_real_socket() -> None:
    """Real sockets on 127.0.0.1: the pinned connection, signatures as a server sees
    them, a redirect, a read timeout and a refused connection."""
    seen: list[dict[str, Any]] = []
    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def handle_one(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = MultiDict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
            url = f"http://{self.headers['Host']}{self.path}"
            seen.append(
                {
                    "method": method,
                    "url": url,
                    "valid": RequestValidator(TOKEN).validate(
                        url, form, self.headers[SIGNATURE_HEADER]
                    ),
                }
            )
            if self.path.startswith("/moved"):
                self.send_response(303)
                self.send_header("Location", "/voice?after=moved")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path == "/slow":
                release.wait(5)
            self.send_response(200)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(TWIML.encode())))
            self.end_headers()
            self.wfile.write(TWIML.encode())

        def do_GET(self) -> None:
            self.handle_one("GET")

        def do_POST(self) -> None:
            self.handle_one("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    # twiml.test exists only in this resolver: reaching the server proves the connection
    # went to the checked address, not to a second lookup of the name.
    policy = AddressPolicy(
        ["127.0.0.0/8", "::1"], resolver=fake_resolver({"twiml.test": ["127.0.0.1"]})
    )
    webhooks = WebhookClient(policy, connect_timeout=2.0, read_timeout=0.3)
    try:
        result = webhooks.fetch(f"http://twiml.test:{port}/moved", "POST", CALL, TOKEN)
        assert result.ok and result.body == TWIML and result.status == 200
        assert result.url == f"http://twiml.test:{port}/voice?after=moved"
        assert seen == [
            {"method": "POST", "url": f"http://twiml.test:{port}/moved", "valid": True},
            {"method": "GET", "url": f"http://twiml.test:{port}/voice?after=moved", "valid": True},
        ]

        started = time.monotonic()
        slow = webhooks.fetch(f"http://twiml.test:{port}/slow", "GET", None, TOKEN)
        assert failed(slow, FetchError.TIMEOUT)
        assert "sent nothing for 0.3 s" in (slow.error or "")
        assert slow.elapsed_ms >= 250 and time.monotonic() - started < 3
        release.set()

        refused = webhooks.notify(f"http://twiml.test:{closed_port}/status", "POST", CALL, TOKEN)
        assert failed(refused, FetchError.CONNECTION_FAILED)
        assert "Connection refused" in (refused.error or "")
    finally:
        release.set()
        server.shutdown()
        server.server_close()
