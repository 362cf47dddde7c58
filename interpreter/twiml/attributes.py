"""TwiML attribute values: how the raw string of an attribute becomes a typed value.

Each model field that comes from an attribute carries its value type in its metadata,
``field(default=..., metadata=attribute(VALUE_TYPE))``; the parser reads it from there,
so the model is the single description of what a verb accepts (a field without a
default is a required attribute). The TwiML
name of a field is its name in lowerCamelCase (``finish_on_key`` is ``finishOnKey``), the
same rule the official helper libraries use.

A value type is called with the raw string and returns the typed value, or raises
:class:`InvalidValue` whose text completes "<attribute> ...", e.g. "must be a positive
integer". Enumerations are matched ignoring case and stored in TwiML's spelling.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_args
from urllib.parse import urlsplit

TWIML_ATTRIBUTE = "twiml_attribute"


class InvalidValue(ValueError):
    """The rule an attribute value broke, phrased to follow the attribute's name."""


ValueType = Callable[[str], Any]


def attribute(value_type: ValueType) -> Mapping[str, ValueType]:
    """Field metadata: the field is filled from the TwiML attribute of its camelCase name."""
    return {TWIML_ATTRIBUTE: value_type}


def twiml_name(field_name: str) -> str:
    head, *rest = field_name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _listing(values: tuple[str, ...]) -> str:
    return ", ".join(values)


@dataclass(frozen=True, slots=True)
class Integer:
    minimum: int
    maximum: int | None = None

    def __call__(self, raw: str) -> int:
        value = raw.strip()
        # str.isdigit() and int() also accept non-ASCII digits and underscores, and
        # int() refuses very long inputs with its own error: match ASCII digits first.
        if re.fullmatch(r"[+-]?[0-9]{1,18}", value):
            number = int(value)
            if number >= self.minimum and (self.maximum is None or number <= self.maximum):
                return number
        raise InvalidValue(self._rule())

    def _rule(self) -> str:
        if self.maximum is not None:
            return f"must be an integer from {self.minimum} to {self.maximum}"
        if self.minimum == 0:
            return "must be a non-negative integer"
        if self.minimum == 1:
            return "must be a positive integer"
        return f"must be an integer of at least {self.minimum}"


@dataclass(frozen=True, slots=True)
class IntegerOr:
    """An integer, or one keyword (``speechTimeout`` is seconds or ``auto``)."""

    keyword: str
    integer: Integer

    def __call__(self, raw: str) -> int | str:
        if raw.strip().lower() == self.keyword:
            return self.keyword
        try:
            return self.integer(raw)
        except InvalidValue as problem:
            raise InvalidValue(f'{problem} or "{self.keyword}"') from None


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value == "true":
        return True
    if value == "false":
        return False
    raise InvalidValue("must be true or false")


@dataclass(frozen=True, slots=True)
class Choice:
    """One of the values of a ``Literal`` type."""

    values: tuple[str, ...]

    @classmethod
    def of(cls, literal: Any) -> Choice:
        return cls(get_args(literal))

    def __call__(self, raw: str) -> str:
        wanted = raw.strip().lower()
        for value in self.values:
            if value.lower() == wanted:
                return value
        raise InvalidValue(f"must be one of {_listing(self.values)}")


@dataclass(frozen=True, slots=True)
class Tokens:
    """Several values of a ``Literal`` type, separated by spaces or commas.

    Twilio documents spaces; its REST API and many hand-written documents use commas.
    Order is kept, repeats are dropped.
    """

    values: tuple[str, ...]

    @classmethod
    def of(cls, literal: Any) -> Tokens:
        return cls(get_args(literal))

    def __call__(self, raw: str) -> tuple[str, ...]:
        by_lower = {value.lower(): value for value in self.values}
        chosen: list[str] = []
        for token in re.split(r"[\s,]+", raw.strip()):
            value = by_lower.get(token.lower())
            if value is None:
                rule = f"must be one or more of {_listing(self.values)}, separated by spaces"
                raise InvalidValue(rule)
            if value not in chosen:
                chosen.append(value)
        return tuple(chosen)


@dataclass(frozen=True, slots=True)
class Keys:
    """DTMF keys: one key or none (``<Gather finishOnKey>``), or a set of keys."""

    single: bool

    def __call__(self, raw: str) -> str:
        keys = raw.strip()
        if re.fullmatch(r"[0-9*#]?" if self.single else r"[0-9*#]*", keys):
            return keys
        if self.single:
            raise InvalidValue('must be one key of 0-9, *, # or "" for none')
        raise InvalidValue('must be keys from 0-9, *, # (for example "1234567890*#")')


def _digits(raw: str) -> str:
    """DTMF to send: keys, with ``w`` or ``W`` for a pause."""
    value = raw.strip()
    if re.fullmatch(r"[0-9*#wW]+", value):
        return value
    raise InvalidValue("must be DTMF digits 0-9, *, #, with w or W for a pause")


def _url(raw: str) -> str:
    """An http(s) URL or a relative reference, kept as written.

    Relative references are resolved by the interpreter against the document's own URL;
    any other scheme (``file:``, ``javascript:``, ``ftp:`` ...) would make the platform
    read something that is not the customer's web server.
    """
    if re.search(r"[\x00-\x1f\x7f]", raw):
        raise InvalidValue("must be a URL without control characters")
    try:
        parts = urlsplit(raw.strip())
    except ValueError:
        raise InvalidValue("must be a valid http(s) URL or a relative URL") from None
    if parts.scheme and parts.scheme.lower() not in ("http", "https"):
        raise InvalidValue(
            f'must be an http(s) URL or a relative URL; the scheme "{parts.scheme}" is not allowed'
        )
    if parts.scheme and not parts.hostname:
        raise InvalidValue("must name a host after http:// or https://")
    return raw


def _text(raw: str) -> str:
    return raw


@dataclass(frozen=True, slots=True)
class Pattern:
    """Free text of a known shape; ``description`` completes "must be ..."."""

    regex: str
    description: str

    def __call__(self, raw: str) -> str:
        value = raw.strip()
        if re.fullmatch(self.regex, value):
            return value
        raise InvalidValue(f"must be {self.description}")


BOOLEAN: ValueType = _boolean
DIGITS: ValueType = _digits
URL: ValueType = _url
TEXT: ValueType = _text
LANGUAGE = Pattern(
    r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*", 'a language tag such as "en", "en-US" or "cmn-CN"'
)
VOICE = Pattern(r"[A-Za-z0-9][A-Za-z0-9._-]*", 'a voice name such as "man" or "Polly.Joanna"')


def sid(prefix: str) -> Pattern:
    """A Twilio-style resource identifier: two letters and 32 hex digits."""
    return Pattern(f"{prefix}[0-9a-fA-F]{{32}}", f"{prefix} followed by 32 hex digits")


IN_CALL_OPERATIONS = ("transfer", "abort", "mute", "remove", "none")


def in_call_options(raw: str) -> tuple[tuple[str, str], ...]:
    """Our extension `voiceInCallOptions="#=transfer,*=abort"`: keys to in-call operations."""
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        key, equals, operation = item.strip().partition("=")
        key, operation = key.strip(), operation.strip()
        if not equals or len(key) != 1 or key not in "0123456789*#":
            raise InvalidValue(
                "must be KEY=OPERATION pairs separated by commas, each KEY one of 0-9 * #"
            )
        if operation not in IN_CALL_OPERATIONS:
            raise InvalidValue(f"operations are {_listing(IN_CALL_OPERATIONS)}, not {operation!r}")
        pairs[key] = operation
    return tuple(pairs.items())
