"""Request signing compatible with Twilio's ``X-Twilio-Signature`` header.

Customers' web servers authenticate our webhook requests the way they authenticate
Twilio's: with the official helper libraries' request validators, keyed by the account's
auth token. So the signed string is exactly what those validators rebuild on their side:
the full URL the request went to, then, for a form-encoded POST, every parameter name
followed by its value, names in code-point order. When a name repeats, its values are
taken sorted and without duplicates, because that is what the official Python validator
(``twilio.request_validator``) reconstructs; signing them in send order would fail there.
The digest is HMAC-SHA1 keyed by the auth token, base64-encoded.

``verify`` is the inbound side (our own endpoints, and tests). It accepts the URL with
and without the scheme's default port, as the official validators do, since a proxy or
framework may show either form of the URL the client signed. A Flask view calls it as
``verify(token, request.url, request.form, request.headers.get(SIGNATURE_HEADER))``;
``request.form`` (a multi-dict) contributes all values of a repeated name. Werkzeug
shows ``request.url`` as an IRI (``/café`` where the client sent ``/caf%C3%A9``), so
non-ASCII characters are also tried percent-encoded as UTF-8, the form clients send.
Escapes Werkzeug decodes in the path (``%2F``, ``%7E``) cannot be recovered from
``request.url``; a view that must accept those should pass the raw request URI.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterator, Mapping, Sequence
from urllib.parse import quote, urlsplit

SIGNATURE_HEADER = "X-Twilio-Signature"

Params = Mapping[str, str | Sequence[str]]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def sign(auth_token: str, url: str, params: Params | None = None) -> str:
    """The ``X-Twilio-Signature`` value for a request to `url`.

    `params` are the form parameters of a POST; a GET carries its parameters in `url`,
    so it passes None.
    """
    digest = hmac.new(
        auth_token.encode("utf-8"), _signed_string(url, params).encode("utf-8"), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(auth_token: str, url: str, params: Params | None, signature: str | None) -> bool:
    """Whether `signature` was made with `auth_token` for this URL and these parameters.

    A missing or malformed signature is simply not valid. The comparison takes the same
    time wherever the strings differ.
    """
    if not signature:
        return False
    offered = signature.strip().encode("utf-8")
    return any(
        hmac.compare_digest(sign(auth_token, variant, params).encode("ascii"), offered)
        for form in dict.fromkeys((url, _as_uri(url)))
        for variant in _url_variants(form)
    )


def _url_variants(url: str) -> tuple[str, ...]:
    """`url` as given, plus the same URL with the scheme's default port added or removed.

    Anything else in the URL is kept byte for byte. A non-default port is never dropped:
    a signature over ``https://host/`` does not vouch for ``https://host:8443/``.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return (url,)
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    start = url.find("//")
    if default is None or not parts.netloc or start < 0:
        return (url,)
    netloc_end = start + 2 + len(parts.netloc)
    head, netloc, tail = url[: start + 2], url[start + 2 : netloc_end], url[netloc_end:]
    if port == default:
        return (url, head + netloc[: netloc.rindex(":")] + tail)
    if port is None and not netloc.endswith(":"):
        return (url, f"{head}{netloc}:{default}{tail}")
    return (url,)


def _as_uri(url: str) -> str:
    return _NON_ASCII.sub(lambda match: quote(match.group(0), safe=""), url)


def _signed_string(url: str, params: Params | None) -> str:
    return url + "".join(name + value for name, value in _sorted_pairs(params))


def _sorted_pairs(params: Params | None) -> Iterator[tuple[str, str]]:
    if not params:
        return
    for name in sorted(params):
        for value in sorted(set(_values(params, name))):
            yield name, value


def _values(params: Params, name: str) -> Sequence[str]:
    getlist = getattr(params, "getlist", None)
    if callable(getlist):
        # A werkzeug MultiDict (Flask's request.form) answers [] with its first value only.
        return getlist(name)
    value = params[name]
    return [value] if isinstance(value, str) else value
