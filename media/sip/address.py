"""name-addr and addr-spec (RFC 3261 section 25): the values of To, From, Contact, Route,
Record-Route and the other headers that carry an address with header parameters.

In the addr-spec form (no angle brackets) a ';' ends the URI, so the parameters belong to
the header (RFC 3261 20.10); a URI holding '?' or ',' must be enclosed in <>.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from media.sip.syntax import (
    Params,
    Scanner,
    SipParseError,
    parse_delta_seconds,
    quote_string,
    split_commas,
    unquote_string,
)
from media.sip.uri import Uri, parse_uri

__all__ = ["Address"]

_DISPLAY_RUN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~ \t]*")  # *(token LWS)
_ADDR_SPEC_RUN = re.compile(r"[^; \t]*")
_QVALUE_RE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


@dataclass(frozen=True, slots=True)
class Address:
    """A URI with an optional display name and header parameters (tag, expires, q ...).

    ``display_name`` is None when absent and unescaped when it was a quoted string.
    Parameter values are kept as received (a quoted value keeps its quotes; see
    ``Params.unquoted``).
    """

    uri: Uri
    display_name: str | None = None
    params: Params = field(default_factory=Params)

    @classmethod
    def parse(cls, text: str, where: str = "address") -> Address:
        scanner = Scanner(text, where)
        scanner.skip_ws()
        display_name = None
        first = scanner.peek()
        if first == '"':
            display_name = unquote_string(scanner.quoted())
            scanner.skip_ws()
            uri = _bracketed_uri(scanner, "'<' after the quoted display name")
        elif first == "<":
            uri = _bracketed_uri(scanner, "'<'")
        else:
            uri, display_name = _unquoted_form(scanner)
        params = scanner.params()
        scanner.expect_end()
        return cls(uri, display_name, params)

    @classmethod
    def parse_list(cls, text: str, where: str = "address list") -> list[Address]:
        """Parse a comma-separated list of addresses (Contact, Route, Record-Route)."""
        addresses = []
        for element in split_commas(text, where):
            if not element:
                raise SipParseError(f"{where}: empty element in comma-separated list {text!r}")
            addresses.append(cls.parse(element, where))
        return addresses

    def serialize(self) -> str:
        out = []
        if self.display_name:
            out.append(quote_string(self.display_name))
            out.append(" ")
        out.append(f"<{self.uri}>")
        for name, value in self.params.items_in_order():
            out.append(f";{name}" if value is None else f";{name}={value}")
        return "".join(out)

    def __str__(self) -> str:
        return self.serialize()

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def expires(self) -> int | None:
        """The ``expires`` Contact parameter in seconds (None when absent)."""
        value = self.params.get("expires")
        if value is None:
            return None
        return parse_delta_seconds(value, "Contact expires parameter")

    @property
    def q(self) -> float | None:
        """The ``q`` Contact parameter (None when absent)."""
        value = self.params.get("q")
        if value is None:
            return None
        if not _QVALUE_RE.fullmatch(value):
            raise SipParseError(f"Contact q parameter: expected a qvalue 0-1, found {value!r}")
        return float(value)

    def with_tag(self, tag: str) -> Address:
        return replace(self, params=self.params.replace("tag", tag))

    def with_param(self, name: str, value: str | None = None) -> Address:
        return replace(self, params=self.params.replace(name, value))


def _bracketed_uri(scanner: Scanner, expected: str) -> Uri:
    if scanner.peek() != "<":
        raise scanner.error(expected)
    text = scanner.text
    close = text.find(">", scanner.pos)
    if close < 0:
        raise scanner.error("'>' closing the URI opened by '<'")
    uri = parse_uri(text[scanner.pos + 1 : close], scanner.where)
    scanner.pos = close + 1
    return uri


def _unquoted_form(scanner: Scanner) -> tuple[Uri, str | None]:
    """Either ``token *(LWS token) <uri>`` or a bare addr-spec."""
    text = scanner.text
    start = scanner.pos
    end = _DISPLAY_RUN.match(text, start).end()  # type: ignore[union-attr]
    if end > start and text.startswith("<", end):
        scanner.pos = end
        return _bracketed_uri(scanner, "'<'"), text[start:end].strip(" \t")
    end = _ADDR_SPEC_RUN.match(text, start).end()  # type: ignore[union-attr]
    uri_text = text[start:end]
    uri = parse_uri(uri_text, scanner.where)
    for ch in "?,":
        if ch in uri_text:
            raise SipParseError(
                f"{scanner.where}: URI {uri_text!r} contains {ch!r} so it must be enclosed in <>"
            )
    scanner.pos = end
    return uri, None
