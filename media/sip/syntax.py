"""Lexical rules of RFC 3261 section 25 shared by every SIP header parser.

Character classes (token, word, unreserved ...), quoted strings, %HH escapes, comma
splitting that respects quotes and angle brackets, generic parameters, and the one error
type every parser raises: ``SipParseError``. Header values reach these functions already
unfolded (each LWS continuation replaced by one SP), so only SP and HTAB are whitespace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from urllib.parse import quote as _percent_quote
from urllib.parse import unquote as _percent_unquote

__all__ = [
    "DIGITS",
    "GEN_VALUE",
    "TOKEN",
    "WORD_CLASS",
    "Params",
    "Scanner",
    "SipParseError",
    "is_token",
    "parse_delta_seconds",
    "parse_number",
    "percent_decode",
    "percent_encode",
    "quote_string",
    "split_commas",
    "unquote_string",
]


class SipParseError(ValueError):
    """A SIP message or header value does not follow the RFC 3261 grammar.

    ``status`` is the response a UAS should send for a request that fails this way (400
    unless stated otherwise), or None when nothing may be sent back: a malformed response
    is dropped, and an incomplete stream message just needs more bytes.
    """

    def __init__(self, message: str, status: int | None = 400) -> None:
        super().__init__(message)
        self.status = status


# Runs of one or more characters of a class, for Scanner.take and fullmatch checks.
# Whitespace is SP and HTAB only: header values arrive unfolded.
_TOKEN_CLASS = r"A-Za-z0-9\-.!%*_+`'~"
WORD_CLASS = _TOKEN_CLASS + r"()<>:\\\"/\[\]?{}"
"""The characters of ``word`` (Call-ID), as the body of a regular-expression class."""
TOKEN = re.compile(f"[{_TOKEN_CLASS}]+")
GEN_VALUE = re.compile(f"[{_TOKEN_CLASS}:\\[\\]]+")
"""gen-value = token / host (quoted strings are read separately)."""
DIGITS = re.compile(r"[0-9]+")

_WHITESPACE_RUN = re.compile(r"[ \t]*")
_PARAM = re.compile(
    f'[ \\t]*;[ \\t]*({TOKEN.pattern})'
    f'(?:[ \\t]*=[ \\t]*("(?:[^"\\\\]|\\\\.)*"|{GEN_VALUE.pattern}))?'
)
_MAX_DELTA_SECONDS = 2**32 - 1
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def is_token(text: str) -> bool:
    """True when ``text`` is a non-empty RFC 3261 token."""
    return TOKEN.fullmatch(text) is not None


def parse_number(text: str, maximum: int, where: str, what: str) -> int:
    """``1*DIGIT`` (leading zeros allowed) no greater than ``maximum``; ``what`` names
    the expected value in the error."""
    if not DIGITS.fullmatch(text):
        raise SipParseError(f"{where}: expected {what}, found {text[:24]!r}")
    significant = text.lstrip("0") or "0"
    if len(significant) > len(str(maximum)) or int(significant) > maximum:
        raise SipParseError(f"{where}: {text[:24]} is more than the largest {what}, {maximum}")
    return int(significant)


def parse_delta_seconds(text: str, where: str) -> int:
    """delta-seconds = 1*DIGIT, at most 2**32-1 (RFC 3261 20.19)."""
    return parse_number(text, _MAX_DELTA_SECONDS, where, "number of seconds")


def percent_decode(text: str, where: str) -> str:
    """Undo %HH escapes once (never recursively, RFC 3986); bytes that are not UTF-8
    survive as surrogates so that ``percent_encode`` gives them back unchanged."""
    if "%" not in text:
        return text
    bad = _BAD_ESCAPE_RE.search(text)
    if bad is not None:
        found = text[bad.start() : bad.start() + 3]
        raise SipParseError(f"{where}: '%' must be followed by two hex digits, found {found!r}")
    return _percent_unquote(text, errors="surrogateescape")


def percent_encode(text: str, safe: str) -> str:
    """Escape every character that is neither alphanumeric, "-_.~" nor in ``safe``."""
    return _percent_quote(text, safe=safe, errors="surrogateescape")


def unquote_string(quoted: str) -> str:
    """Return the content of a quoted-string (quotes included in ``quoted``) with each
    quoted-pair replaced by the character it protects."""
    inner = quoted[1:-1]
    if "\\" not in inner:
        return inner
    out = []
    i = 0
    while i < len(inner):
        ch = inner[i]
        if ch == "\\" and i + 1 < len(inner):
            i += 1
            ch = inner[i]
        out.append(ch)
        i += 1
    return "".join(out)


def quote_string(text: str) -> str:
    """Return ``text`` as a quoted-string, escaping '"', '\\' and control characters.

    CR and LF cannot be carried by a quoted-pair, so they raise ValueError.
    """
    if "\r" in text or "\n" in text:
        raise ValueError(f"a quoted string cannot carry CR or LF: {text!r}")
    out = ['"']
    for ch in text:
        if ch in '"\\' or (ord(ch) < 0x20 and ch != "\t") or ch == "\x7f":
            out.append("\\")
        out.append(ch)
    out.append('"')
    return "".join(out)


def split_commas(text: str, where: str) -> list[str]:
    """Split a header value at the commas that separate its elements.

    Commas inside quoted strings and inside <...> belong to the element. Each element is
    stripped of surrounding whitespace; empty elements are kept so callers can reject
    them where the grammar does not allow them.
    """
    if "," not in text:
        return [text.strip(" \t")]
    parts = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            i = _end_of_quoted(text, i, where)
            continue
        if ch == "<":
            close = text.find(">", i)
            if close < 0:
                raise SipParseError(f"{where}: '<' at offset {i} is never closed by '>'")
            i = close + 1
            continue
        if ch == ",":
            parts.append(text[start:i].strip(" \t"))
            start = i + 1
        i += 1
    parts.append(text[start:].strip(" \t"))
    return parts


def _end_of_quoted(text: str, start: int, where: str) -> int:
    """Index just past the quoted-string opening at ``start``."""
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        i += 1
    raise SipParseError(f"{where}: quoted string opened at offset {start} is never closed")


class Params(Mapping[str, str | None]):
    """An immutable ordered set of ``;name[=value]`` parameters.

    Names compare case-insensitively; a parameter without a value maps to None. When a
    name repeats, lookups see the first occurrence and iteration sees every one.
    """

    __slots__ = ("_index", "_items")

    def __init__(self, items: Iterable[tuple[str, str | None]] = ()) -> None:
        self._items: tuple[tuple[str, str | None], ...] = tuple(items)
        index: dict[str, str | None] = {}
        for name, value in self._items:
            index.setdefault(name.lower(), value)
        self._index = index

    def __getitem__(self, name: str) -> str | None:
        return self._index[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Params):
            return NotImplemented
        return self._index == other._index

    def __hash__(self) -> int:
        return hash(frozenset(self._index.items()))

    def __repr__(self) -> str:
        return f"Params({list(self._items)!r})"

    def items_in_order(self) -> tuple[tuple[str, str | None], ...]:
        """Every (name, value) pair in wire order, repeats included."""
        return self._items

    def unquoted(self, name: str) -> str | None:
        """The value of ``name`` with quoted-string quoting removed."""
        value = self.get(name)
        if value is not None and len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            return unquote_string(value)
        return value

    def replace(self, name: str, value: str | None) -> Params:
        """A copy where ``name`` has ``value``: replaced in place if present, else appended."""
        key = name.lower()
        if key not in self._index:
            return Params((*self._items, (name, value)))
        items = []
        done = False
        for item_name, item_value in self._items:
            if item_name.lower() == key:
                if not done:
                    items.append((item_name, value))
                    done = True
                continue
            items.append((item_name, item_value))
        return Params(items)

    def remove(self, name: str) -> Params:
        """A copy without any parameter called ``name``."""
        key = name.lower()
        return Params(item for item in self._items if item[0].lower() != key)


class Scanner:
    """A cursor over one header value. Every error it makes names the header (``where``),
    what the grammar expected and the offset where it was not found."""

    __slots__ = ("pos", "text", "where")

    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.where = where
        self.pos = 0

    def error(self, expected: str) -> SipParseError:
        if self.pos < len(self.text):
            found = repr(self.text[self.pos : self.pos + 12])
        else:
            found = "the end of the value"
        return SipParseError(
            f"{self.where}: expected {expected} at offset {self.pos}, found {found}"
        )

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ws(self) -> bool:
        """Skip SP and HTAB; True when at least one was skipped."""
        start = self.pos
        self.pos = _WHITESPACE_RUN.match(self.text, start).end()  # type: ignore[union-attr]
        return self.pos > start

    def expect(self, ch: str, expected: str) -> None:
        if self.peek() != ch:
            raise self.error(expected)
        self.pos += 1

    def take(self, run: re.Pattern[str], expected: str) -> str:
        """Consume what ``run`` (a pattern such as TOKEN) matches here; it must match."""
        match = run.match(self.text, self.pos)
        if match is None or match.end() == self.pos:
            raise self.error(expected)
        self.pos = match.end()
        return match.group()

    def quoted(self) -> str:
        """Consume a quoted-string and return it raw, quotes included."""
        if self.peek() != '"':
            raise self.error("'\"' opening a quoted string")
        start = self.pos
        self.pos = _end_of_quoted(self.text, start, self.where)
        return self.text[start : self.pos]

    def expect_end(self) -> None:
        self.skip_ws()
        if not self.at_end():
            raise self.error("the end of the value")

    def params(self) -> Params:
        """Consume ``*( SEMI generic-param )``: ``name [= value]`` where a value is a
        token, a host or a quoted string (kept raw, quotes included)."""
        items: list[tuple[str, str | None]] = []
        text = self.text
        match = _PARAM.match(text, self.pos)
        while match is not None:
            items.append((match.group(1), match.group(2)))
            self.pos = match.end()
            match = _PARAM.match(text, self.pos)
        save = self.pos
        self.skip_ws()
        follower = self.peek()
        if follower == ";":
            self.pos += 1
            self.skip_ws()
            raise self.error("a parameter name after ';'")
        if follower == "=" and items:
            self.pos += 1
            self.skip_ws()
            if self.peek() == '"':
                self.quoted()  # raises: the quoted string is not closed
            raise self.error(f"a value for parameter {items[-1][0]!r}")
        self.pos = save
        return Params(items)
