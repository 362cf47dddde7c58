"""Header fields: the ordered container every message carries, the names and compact forms
of the headers RFC 3261 and its extensions define, and the small structured values (CSeq,
Content-Type, authentication challenges and credentials) that have no module of their own.

``Headers`` keeps each header field row in wire order with its unfolded raw value, so an
unmodified message serialises to an equivalent one. Structured values are parsed on first
use and cached until the rows of that header change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Self, TypeVar

from media.sip.syntax import (
    DIGITS,
    GEN_VALUE,
    TOKEN,
    WORD_CLASS,
    Params,
    Scanner,
    SipParseError,
    is_token,
    parse_number,
    quote_string,
    split_commas,
    unquote_string,
)

__all__ = [
    "COMPACT_FORMS",
    "MAX_CSEQ",
    "CSeq",
    "Challenge",
    "ContentType",
    "Credentials",
    "Headers",
    "canonical_name",
    "is_list_header",
    "parse_call_id",
    "parse_content_length",
    "parse_max_forwards",
    "parse_option_tags",
]

T = TypeVar("T")

COMPACT_FORMS = {
    "a": "Accept-Contact",  # RFC 3841
    "b": "Referred-By",  # RFC 3892
    "c": "Content-Type",
    "d": "Request-Disposition",  # RFC 3841
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",  # RFC 3841
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",  # RFC 4474
    "o": "Event",  # RFC 6665
    "r": "Refer-To",  # RFC 3515
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",  # RFC 6665
    "v": "Via",
    "x": "Session-Expires",  # RFC 4028
    "y": "Identity",  # RFC 8224
}
"""Compact header names (single letters) and the full names they stand for."""

# Headers whose value is a comma-separated list, so that several rows may be combined
# into one and one row split into several (RFC 3261 7.3.1).
_LIST_HEADERS = (
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Accept-Resource-Priority",
    "Alert-Info", "Allow", "Allow-Events", "Call-Info", "Contact", "Content-Encoding",
    "Content-Language", "Error-Info", "In-Reply-To", "P-Asserted-Identity",
    "P-Preferred-Identity", "Path", "Proxy-Require", "Reason", "Record-Route",
    "Reject-Contact", "Request-Disposition", "Require", "Resource-Priority", "Route",
    "Security-Client", "Security-Server", "Security-Verify", "Service-Route", "Supported",
    "Unsupported", "Via", "Warning",
)
_SINGLE_HEADERS = (
    "Authentication-Info", "Authorization", "Call-ID", "Content-Disposition", "Content-Length",
    "Content-Transfer-Encoding", "Content-Type", "CSeq", "Date", "Event", "Expires", "From",
    "Identity", "Identity-Info", "Join", "Max-Forwards", "MIME-Version", "Min-Expires",
    "Min-SE", "Organization", "Priority", "Privacy", "Proxy-Authenticate",
    "Proxy-Authorization", "RAck", "Refer-To", "Referred-By", "Replaces", "Reply-To",
    "Retry-After", "RSeq", "Server", "Session-Expires", "SIP-ETag", "SIP-If-Match", "Subject",
    "Subscription-State", "Timestamp", "To", "User-Agent", "WWW-Authenticate",
)
_CANONICAL = {name.lower(): name for name in (*_LIST_HEADERS, *_SINGLE_HEADERS)}
_CANONICAL.update(COMPACT_FORMS)
_LIST_KEYS = frozenset(name.lower() for name in _LIST_HEADERS)

_CALL_ID = re.compile(f"[{WORD_CLASS}]+(?:@[{WORD_CLASS}]+)?")

MAX_CSEQ = 2**31 - 1
"""Largest CSeq sequence number (RFC 3261 8.1.1.5: less than 2**31)."""


def canonical_name(name: str) -> str:
    """The full, conventionally capitalised name of a header ("v" and "VIA" give "Via");
    an unknown name is returned unchanged."""
    return _CANONICAL.get(name.lower(), name)


def is_list_header(name: str) -> bool:
    """True when the header's value is a comma-separated list (RFC 3261 7.3.1)."""
    return canonical_name(name).lower() in _LIST_KEYS


def _key(name: str) -> str:
    return canonical_name(name).lower()


class Headers:
    """The header fields of one message: an ordered list of (name, value) rows.

    Names are stored in their canonical full form ("m" becomes "Contact") and looked up
    case-insensitively by any form. Values are the raw text after the colon, unfolded.
    """

    __slots__ = ("_cache", "_rows")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._rows: list[tuple[str, str, str]] = []
        self._cache: dict[str, dict[object, object]] = {}
        for name, value in fields:
            self.add(name, value)

    @classmethod
    def _from_rows(cls, rows: list[tuple[str, str, str]]) -> Headers:
        """Adopt (key, name, value) rows that the message parser has already checked."""
        headers = cls.__new__(cls)
        headers._rows = rows
        headers._cache = {}
        return headers

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((name, value) for _, name, value in self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _key(name)
        return any(row[0] == key for row in self._rows)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._rows] == [(k, v) for k, _, v in other._rows]

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    def copy(self) -> Headers:
        return Headers._from_rows(list(self._rows))

    def get(self, name: str, default: str | None = None) -> str | None:
        """The raw value of the first row called ``name``."""
        key = _key(name)
        for row_key, _, value in self._rows:
            if row_key == key:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """The raw values of every row called ``name``, in order."""
        key = _key(name)
        return [value for row_key, _, value in self._rows if row_key == key]

    def count(self, name: str) -> int:
        key = _key(name)
        return sum(1 for row in self._rows if row[0] == key)

    def values(self, name: str) -> list[str]:
        """Every element of a list header across all its rows (empty elements dropped);
        for other headers, the same as ``get_all``."""
        rows = self.get_all(name)
        if _key(name) not in _LIST_KEYS:
            return rows
        where = canonical_name(name)
        return [element for row in rows for element in split_commas(row, where) if element]

    def cached(self, name: str, parse: Callable[[list[str]], T]) -> T:
        """``parse(get_all(name))``, computed once until the rows of ``name`` change."""
        key = _key(name)
        per_header = self._cache.setdefault(key, {})
        if parse in per_header:
            return per_header[parse]  # type: ignore[return-value]
        value = parse(self.get_all(name))
        per_header[parse] = value
        return value

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        """Append a row; with ``first`` put it before the other rows of that name (as a
        proxy does with its Via)."""
        row = _checked_row(name, value)
        self._cache.pop(row[0], None)
        if first:
            for index, existing in enumerate(self._rows):
                if existing[0] == row[0]:
                    self._rows.insert(index, row)
                    return
            self._rows.insert(0, row)
        else:
            self._rows.append(row)

    def set(self, name: str, value: str) -> None:
        """Replace every row of ``name`` with one row, where the first one was."""
        row = _checked_row(name, value)
        self._cache.pop(row[0], None)
        rows = []
        placed = False
        for existing in self._rows:
            if existing[0] == row[0]:
                if not placed:
                    rows.append(row)
                    placed = True
                continue
            rows.append(existing)
        if not placed:
            rows.append(row)
        self._rows = rows

    def remove(self, name: str) -> int:
        """Drop every row of ``name``; return how many there were."""
        key = _key(name)
        before = len(self._rows)
        self._rows = [row for row in self._rows if row[0] != key]
        self._cache.pop(key, None)
        return before - len(self._rows)

    def pop_first_value(self, name: str) -> str | None:
        """Remove and return the first element of a list header (the top Via, say),
        splitting a row that holds several."""
        key = _key(name)
        for index, (row_key, row_name, value) in enumerate(self._rows):
            if row_key != key:
                continue
            elements = split_commas(value, row_name)
            self._cache.pop(key, None)
            if len(elements) == 1:
                del self._rows[index]
            else:
                self._rows[index] = (row_key, row_name, ", ".join(elements[1:]))
            return elements[0]
        return None


def _checked_row(name: str, value: str) -> tuple[str, str, str]:
    if not is_token(name):
        raise ValueError(f"header name {name!r} is not a token")
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name} value cannot contain CR or LF: {value!r}")
    full = canonical_name(name)
    return full.lower(), full, value.strip(" \t")


def parse_content_length(text: str, where: str = "Content-Length") -> int:
    """Content-Length = 1*DIGIT (a body size; anything over 2**31-1 is refused)."""
    return parse_number(text, 2**31 - 1, where, "number of bytes")


def parse_max_forwards(text: str, where: str = "Max-Forwards") -> int:
    """Max-Forwards = 1*DIGIT, 0 to 255 (RFC 3261 20.22)."""
    return parse_number(text, 255, where, "hop count")


def parse_call_id(text: str, where: str = "Call-ID") -> str:
    """callid = word ["@" word]."""
    if not _CALL_ID.fullmatch(text):
        raise SipParseError(f"{where}: expected word[@word], found {text!r}")
    return text


def parse_option_tags(rows: list[str], where: str) -> list[str]:
    """The option tags of Require, Proxy-Require, Supported or Unsupported rows."""
    tags = []
    for row in rows:
        for element in split_commas(row, where):
            if not element:
                continue
            if not is_token(element):
                raise SipParseError(f"{where}: option tag {element!r} is not a token")
            tags.append(element)
    return tags


@dataclass(frozen=True, slots=True)
class CSeq:
    """``CSeq: <number> <method>`` (RFC 3261 20.16)."""

    number: int
    method: str

    @classmethod
    def parse(cls, text: str, where: str = "CSeq") -> CSeq:
        scanner = Scanner(text, where)
        scanner.skip_ws()
        digits = scanner.take(DIGITS, "a sequence number")
        if not scanner.skip_ws():
            raise scanner.error("whitespace between the sequence number and the method")
        method = scanner.take(TOKEN, "a method name")
        scanner.expect_end()
        return cls(parse_number(digits, MAX_CSEQ, where, "sequence number"), method)

    def serialize(self) -> str:
        return f"{self.number} {self.method}"

    def __str__(self) -> str:
        return self.serialize()


@dataclass(frozen=True, slots=True)
class ContentType:
    """``Content-Type: type/subtype;param=value`` (RFC 3261 20.15)."""

    type: str
    subtype: str
    params: Params = field(default_factory=Params)

    @classmethod
    def parse(cls, text: str, where: str = "Content-Type") -> ContentType:
        scanner = Scanner(text, where)
        scanner.skip_ws()
        kind = scanner.take(TOKEN, "a media type")
        scanner.skip_ws()
        scanner.expect("/", "'/' between type and subtype")
        scanner.skip_ws()
        subtype = scanner.take(TOKEN, "a media subtype")
        params = scanner.params()
        scanner.expect_end()
        return cls(kind, subtype, params)

    @property
    def mime(self) -> str:
        """``type/subtype`` in lower case, for comparisons."""
        return f"{self.type}/{self.subtype}".lower()

    def serialize(self) -> str:
        params = "".join(
            f";{name}" if value is None else f";{name}={value}"
            for name, value in self.params.items_in_order()
        )
        return f"{self.type}/{self.subtype}{params}"

    def __str__(self) -> str:
        return self.serialize()


@dataclass(frozen=True, slots=True)
class _SchemeAndParams:
    scheme: str
    params: Params = field(default_factory=Params)
    quoted: frozenset[str] = field(default=frozenset(), compare=False)

    @classmethod
    def parse(cls, text: str, where: str = "authentication header") -> Self:
        scanner = Scanner(text, where)
        scanner.skip_ws()
        scheme = scanner.take(TOKEN, "an authentication scheme")
        items: list[tuple[str, str | None]] = []
        quoted = set()
        if scanner.skip_ws() and not scanner.at_end():
            while True:
                name = scanner.take(TOKEN, "an auth-param name")
                scanner.skip_ws()
                scanner.expect("=", f"'=' after {name!r}")
                scanner.skip_ws()
                if scanner.peek() == '"':
                    value = unquote_string(scanner.quoted())
                    quoted.add(name.lower())
                else:
                    value = scanner.take(GEN_VALUE, f"a value for {name!r}")
                items.append((name, value))
                scanner.skip_ws()
                if scanner.at_end():
                    break
                scanner.expect(",", "',' between auth-params")
                scanner.skip_ws()
        scanner.expect_end()
        return cls(scheme, Params(items), frozenset(quoted))

    def serialize(self) -> str:
        parts = []
        for name, value in self.params.items_in_order():
            text = value or ""
            if name.lower() in self.quoted or not is_token(text):
                text = quote_string(text)
            parts.append(f"{name}={text}")
        return f"{self.scheme} {', '.join(parts)}" if parts else self.scheme

    def __str__(self) -> str:
        return self.serialize()


class Challenge(_SchemeAndParams):
    """A WWW-Authenticate or Proxy-Authenticate value: auth-scheme and auth-params.

    Parameter values are unquoted and unescaped; ``quoted`` holds the (lower-case) names
    of those that were quoted strings, so that serialising quotes them again.
    """

    __slots__ = ()


class Credentials(_SchemeAndParams):
    """An Authorization or Proxy-Authorization value: auth-scheme and auth-params, with
    values unquoted as in ``Challenge``."""

    __slots__ = ()
