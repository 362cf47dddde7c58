"""The webhook client: fetches call documents and sends status callbacks.

Every request the platform makes to a customer's web server goes through here, because
each one has to be made the same careful way:

- Where: the address policy (`interpreter.address_policy`) is applied to every hop, and
  the connection goes to the address that was checked.
- Who: each request is signed with ``X-Twilio-Signature`` (`interpreter.signature`) over
  the exact URL sent on the wire (and, for a POST, its form parameters), so the
  validators customers already run for Twilio accept us.
- Redirects are followed here rather than by `requests`, so that each hop is checked,
  re-signed and counted, and the body of a redirect is never read.
- Bodies are read while streaming and abandoned past a size cap.
- Nothing from the environment is used (proxies, ``.netrc`` credentials) and no cookies
  are kept: one account's web server must never see another's state.

Network and HTTP problems never raise: they come back as a `FetchResult` with ``ok``
false, an error code and a message naming the URL, because what a failure means (try
the fallback URL, speak an application error, log a warning) is the caller's decision.

Behaviour copied from Twilio so existing applications work unchanged: GET carries the
parameters in the query string (after the URL's own), POST sends them form-encoded;
a document may be text/xml, application/xml, text/html or text/plain; an audio/* reply
to a document request means "play this URL" (`ReplyKind.AUDIO`).
"""

from __future__ import annotations

import codecs
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

from interpreter.address_policy import (
    AddressPolicy,
    AddressRefused,
    HostNotFound,
    PinnedAddressAdapter,
)
from interpreter.signature import SIGNATURE_HEADER, Params, sign

DEFAULT_USER_AGENT = "VoicePlatform-Webhook/1.0"
ACCEPT = "text/xml, application/xml, text/html"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
DOCUMENT_TYPES = frozenset({"text/xml", "application/xml", "text/html", "text/plain"})
# A bound on memory, well above TwiML's own 64 KiB document limit, which the parser
# reports with a message of its own.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_KEEP_METHOD = frozenset({307, 308})
_CHUNK_BYTES = 16 * 1024
_USERINFO = re.compile(r"(?<=//)[^/?#]*@")
_DECLARED_ENCODING = re.compile(rb"""\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z][\w.-]*)["']""")


class FetchError(StrEnum):
    """Why a request failed; the first word of `FetchResult.error`."""

    TIMEOUT = "timeout"
    CONNECTION_FAILED = "connection-failed"
    ADDRESS_REFUSED = "address-refused"
    INVALID_URL = "invalid-url"
    HTTP_STATUS = "http-status"
    REDIRECT_LOOP = "redirect-loop"
    TOO_MANY_REDIRECTS = "too-many-redirects"
    TOO_LARGE = "too-large"
    UNSUPPORTED_CONTENT_TYPE = "unsupported-content-type"


class ReplyKind(StrEnum):
    """What a successful document request returned."""

    DOCUMENT = "document"  # markup in `FetchResult.body`
    AUDIO = "audio"  # a sound file: play `FetchResult.url`


@dataclass(frozen=True, slots=True)
class SentRequest:
    """A request as it went out, for the call's trace.

    Credentials written into a URL are sent as an ``Authorization`` header, shown here
    only as ``<redacted>``; the signature is shown, it reveals nothing.
    """

    method: str
    url: str
    params: tuple[tuple[str, str], ...]
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of `WebhookClient.fetch` or `WebhookClient.notify`.

    ``url`` is the last URL requested (after redirects), ``status`` its HTTP status when
    there was an answer, ``content_type`` the raw header. ``error`` is
    ``"<code>: <message>"`` with the code also in ``error_code``. ``kind`` says what a
    successful `fetch` got; `notify` leaves it None and does not read the body.
    """

    ok: bool
    url: str
    status: int | None
    content_type: str | None
    body: str
    error: str | None
    elapsed_ms: int
    request: SentRequest
    kind: ReplyKind | None = None
    error_code: FetchError | None = None
    redirects: tuple[str, ...] = ()


class _Failed(Exception):
    """Ends an exchange early; becomes a failed `FetchResult`."""

    def __init__(
        self,
        code: FetchError,
        message: str,
        status: int | None = None,
        content_type: str | None = None,
        body: str = "",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.content_type = content_type
        self.body = body


class WebhookClient:
    """Makes signed requests to customers' web servers; one per process, thread-safe.

    ``session`` supplies the connection pools; the client mounts its
    `PinnedAddressAdapter` on it for http:// and https://.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 15.0,
        max_redirects: int = 5,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        user_agent: str = DEFAULT_USER_AGENT,
        session: requests.Session | None = None,
    ) -> None:
        self.policy = policy
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_redirects = max_redirects
        self.max_body_bytes = max_body_bytes
        self.user_agent = user_agent
        self.session = session if session is not None else requests.Session()
        transport = PinnedAddressAdapter(policy)
        self.session.mount("http://", transport)
        self.session.mount("https://", transport)

    def fetch(
        self,
        url: str,
        method: str,
        params: Params | None,
        auth_token: str,
        *,
        idempotency_token: str | None = None,
    ) -> FetchResult:
        """Request a call document (TwiML) or an audio file to play in its place."""
        return self._exchange(url, method, params, auth_token, idempotency_token, document=True)

    def notify(
        self,
        url: str,
        method: str,
        params: Params | None,
        auth_token: str,
        *,
        idempotency_token: str | None = None,
    ) -> FetchResult:
        """Send a status callback; any 2xx answer is success, its body is not read."""
        return self._exchange(url, method, params, auth_token, idempotency_token, document=False)

    def _exchange(
        self,
        url: str,
        method: str,
        params: Params | None,
        auth_token: str,
        idempotency_token: str | None,
        *,
        document: bool,
    ) -> FetchResult:
        verb = method.upper()
        if verb not in ("GET", "POST"):
            raise ValueError(f"webhook method {method!r} is not valid; use GET or POST")
        started = time.monotonic()
        redirects: list[str] = []
        sent = SentRequest(verb, _USERINFO.sub("", url, count=1), tuple(_pairs(params)), {})
        try:
            prepared, sent = self._prepare(url, verb, params, auth_token, idempotency_token)
            requested = {(verb, sent.url)}
            while True:
                with self._send(prepared) as response:
                    if response.status_code not in _REDIRECTS:
                        return self._reply(response, sent, document, started, redirects)
                    target = self._redirect_target(response, sent.url)
                    if not (verb == "POST" and response.status_code in _KEEP_METHOD):
                        verb, params = "GET", None
                    following, following_sent = self._prepare(
                        target, verb, params, auth_token, idempotency_token
                    )
                    if (verb, following_sent.url) in requested:
                        raise _Failed(
                            FetchError.REDIRECT_LOOP,
                            f"{sent.url} redirected to {following_sent.url}, "
                            "which was already requested",
                            response.status_code,
                        )
                    if len(redirects) >= self.max_redirects:
                        raise _Failed(
                            FetchError.TOO_MANY_REDIRECTS,
                            f"{sent.url} redirected to {following_sent.url}, past the limit "
                            f"of {self.max_redirects} redirects",
                            response.status_code,
                        )
                requested.add((verb, following_sent.url))
                redirects.append(sent.url)
                prepared, sent = following, following_sent
        except _Failed as failure:
            return FetchResult(
                ok=False,
                url=sent.url,
                status=failure.status,
                content_type=failure.content_type,
                body=failure.body,
                error=f"{failure.code}: {failure.message}",
                elapsed_ms=_elapsed_ms(started),
                request=sent,
                error_code=failure.code,
                redirects=tuple(redirects),
            )

    def _prepare(
        self,
        url: str,
        verb: str,
        params: Params | None,
        auth_token: str,
        idempotency_token: str | None,
    ) -> tuple[requests.PreparedRequest, SentRequest]:
        try:
            target, credentials = _split_credentials(url)
            headers = {"User-Agent": self.user_agent, "Accept": ACCEPT}
            if idempotency_token:
                headers[IDEMPOTENCY_HEADER] = idempotency_token
            pairs = list(_pairs(params))
            prepared = requests.Request(
                verb,
                target,
                headers=headers,
                params=pairs if verb == "GET" else None,
                data=pairs if verb == "POST" else None,
                auth=credentials,
            ).prepare()
        except (requests.RequestException, ValueError) as error:
            shown = _USERINFO.sub("", url, count=1)
            raise _Failed(FetchError.INVALID_URL, f"{shown} is not a valid URL: {error}") from None
        final_url = prepared.url or target
        prepared.headers[SIGNATURE_HEADER] = sign(
            auth_token, final_url, params if verb == "POST" else None
        )
        shown = {
            name: "<redacted>" if name.lower() == "authorization" else value
            for name, value in prepared.headers.items()
        }
        return prepared, SentRequest(verb, final_url, tuple(pairs), shown)

    def _send(self, prepared: requests.PreparedRequest) -> requests.Response:
        url = prepared.url or ""
        try:
            # The early check explains a refusal before anything is sent (and is the one
            # tests see); the transport checks again at the socket, see address_policy.
            self.policy.resolve(url)
            # Not Session.send: with redirects off it still reads a redirect's whole body.
            transport: HTTPAdapter = self.session.get_adapter(url)
            return transport.send(
                prepared,
                stream=True,
                timeout=(self.connect_timeout, self.read_timeout),
                verify=True,
                proxies={},
            )
        except AddressRefused as error:
            raise _Failed(FetchError.ADDRESS_REFUSED, str(error)) from None
        except HostNotFound as error:
            raise _Failed(FetchError.CONNECTION_FAILED, str(error)) from None
        except requests.RequestException as error:
            raise self._failure(error, url) from None

    def _redirect_target(self, response: requests.Response, url: str) -> str:
        status = response.status_code
        location = response.headers.get("Location")
        if not location:
            raise _Failed(
                FetchError.HTTP_STATUS,
                f"{url} answered {status} without a Location header",
                status,
                response.headers.get("Content-Type"),
            )
        return urljoin(url, location)

    def _reply(
        self,
        response: requests.Response,
        sent: SentRequest,
        document: bool,
        started: float,
        redirects: list[str],
    ) -> FetchResult:
        status = response.status_code
        content_type = response.headers.get("Content-Type")
        media_type, charset = _media_type(content_type)
        if status >= 300:
            raw = self._read(response, sent.url, status, content_type, truncate=True)
            raise _Failed(
                FetchError.HTTP_STATUS,
                f"{sent.url} answered {status} {response.reason or ''}".rstrip(),
                status,
                content_type,
                _decode(raw, charset),
            )
        kind: ReplyKind | None = None
        body = ""
        if document:
            if media_type.startswith("audio/"):
                kind = ReplyKind.AUDIO
            elif media_type in DOCUMENT_TYPES:
                kind = ReplyKind.DOCUMENT
                raw = self._read(response, sent.url, status, content_type, truncate=False)
                body = _decode(raw, charset)
            else:
                raise _Failed(
                    FetchError.UNSUPPORTED_CONTENT_TYPE,
                    f"{sent.url} answered with Content-Type {content_type or '(none)'}; "
                    "a document must be text/xml, application/xml, text/html or "
                    "text/plain, or audio/* to be played",
                    status,
                    content_type,
                )
        return FetchResult(
            ok=True,
            url=sent.url,
            status=status,
            content_type=content_type,
            body=body,
            error=None,
            elapsed_ms=_elapsed_ms(started),
            request=sent,
            kind=kind,
            redirects=tuple(redirects),
        )

    def _read(
        self,
        response: requests.Response,
        url: str,
        status: int,
        content_type: str | None,
        *,
        truncate: bool,
    ) -> bytes:
        """The body, at most `max_body_bytes` of it: cut there, or refused when too long."""
        cap = self.max_body_bytes
        too_large = _Failed(
            FetchError.TOO_LARGE, f"{url} sent more than {cap} bytes", status, content_type
        )
        declared = response.headers.get("Content-Length", "")
        if not truncate and declared.isdigit() and int(declared) > cap:
            raise too_large
        data = bytearray()
        try:
            for chunk in response.iter_content(_CHUNK_BYTES):
                data += chunk
                if len(data) > cap:
                    if truncate:
                        return bytes(data[:cap])
                    raise too_large
        except requests.RequestException as error:
            failure = self._failure(error, url)
            failure.status, failure.content_type = status, content_type
            raise failure from None
        return bytes(data)

    def _failure(self, error: requests.RequestException, url: str) -> _Failed:
        causes = list(_causes(error))
        if isinstance(error, requests.ConnectTimeout) or any(
            isinstance(cause, ConnectTimeoutError) and not isinstance(cause, NewConnectionError)
            for cause in causes
        ):
            return _Failed(
                FetchError.TIMEOUT,
                f"no connection to {url} within {self.connect_timeout:g} s",
            )
        if isinstance(error, requests.ReadTimeout) or any(
            isinstance(cause, ReadTimeoutError) for cause in causes
        ):
            return _Failed(FetchError.TIMEOUT, f"{url} sent nothing for {self.read_timeout:g} s")
        if isinstance(error, requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema):
            return _Failed(FetchError.INVALID_URL, f"{url} is not a valid URL: {_detail(causes)}")
        detail = _detail(causes)
        if isinstance(error, requests.exceptions.SSLError):
            return _Failed(FetchError.CONNECTION_FAILED, f"TLS with {url} failed: {detail}")
        return _Failed(FetchError.CONNECTION_FAILED, f"connection to {url} failed: {detail}")


def _pairs(params: Params | None) -> Iterator[tuple[str, str]]:
    for name, value in (params or {}).items():
        if isinstance(value, str):
            yield name, value
        else:
            for item in value:
                yield name, item


def _split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """`url` without user information or fragment, and the credentials it carried."""
    parts = urlsplit(url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    credentials = None
    if userinfo:
        user, _, password = userinfo.partition(":")
        credentials = (unquote(user), unquote(password))
    return urlunsplit((parts.scheme, hostport, parts.path, parts.query, "")), credentials


def _media_type(content_type: str | None) -> tuple[str, str | None]:
    """The lower-cased media type and the charset parameter, if any."""
    media_type, *parameters = (content_type or "").split(";")
    charset = None
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    return media_type.strip().lower(), charset


def _decode(raw: bytes, charset: str | None) -> str:
    """Text per the charset parameter, else the XML declaration, else UTF-8.

    An unknown charset falls back to UTF-8; undecodable bytes become U+FFFD, the way a
    browser shows them, rather than losing the whole document.
    """
    declared = _DECLARED_ENCODING.match(raw[:256])
    encoding = charset or (declared.group(1).decode("ascii") if declared else "utf-8")
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        codec = "utf-8"
    if codec == "utf-8":
        codec = "utf-8-sig"  # a byte order mark is not part of the text
    return raw.decode(codec, errors="replace")


def _causes(error: BaseException) -> Iterator[BaseException]:
    """`error` and what it wraps: requests wraps urllib3, which wraps the socket error."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        reason = getattr(current, "reason", None)
        nested = current.args[0] if current.args else None
        if current.__cause__ is not None:
            current = current.__cause__
        elif isinstance(reason, BaseException):
            current = reason
        elif isinstance(nested, BaseException):
            current = nested
        else:
            current = None


def _detail(causes: list[BaseException]) -> str:
    """The most telling message in a chain: the operating system's words when there are."""
    for cause in reversed(causes):
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    innermost = causes[-1]
    return str(innermost) or type(innermost).__name__


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
