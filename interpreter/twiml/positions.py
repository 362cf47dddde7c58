"""Where things start in a document's text, as 1-based line and column.

lxml records only a line per element, and that line is where the start tag *ends*, so a
start tag spread over several lines reports the wrong one. This module finds every start
tag in the raw text, in document order, which is the order in which lxml's
``iter()`` yields elements: the parser pairs the two lists. Only start tags matter, and
in well-formed XML every ``<`` outside comments, CDATA sections and processing
instructions (the XML declaration is one) opens markup, so a single pass of one regular
expression is enough.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

_MARKUP = re.compile(
    r"<!--.*?-->"
    r"|<!\[CDATA\[.*?\]\]>"
    r"|<\?.*?\?>"
    r"|<!(?P<declaration>[A-Za-z]*)"
    r"|</"
    r"|(?P<start_tag><)",
    re.DOTALL,
)

# XML treats CR LF and a lone CR as one line break (XML 1.0 section 2.11), as lxml does.
_LINE_BREAK = re.compile(r"\r\n?|\n")


@dataclass(frozen=True, slots=True)
class Position:
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Markup:
    """The start tags of a document in document order, and its DOCTYPE if it has one."""

    start_tags: tuple[Position, ...]
    doctype: Position | None


class LineIndex:
    """Turns character offsets of one text into line and column."""

    def __init__(self, text: str) -> None:
        self._line_starts = [0] + [match.end() for match in _LINE_BREAK.finditer(text)]

    def position(self, offset: int) -> Position:
        line = bisect.bisect_right(self._line_starts, offset)
        return Position(line, offset - self._line_starts[line - 1] + 1)


def scan(text: str) -> Markup:
    """Locate the start tags and the DOCTYPE declaration of ``text``.

    Safe on malformed text (it is run before the XML parser so that a DOCTYPE is refused
    before lxml sees it); positions are only meaningful for well-formed text.
    """
    lines = LineIndex(text)
    start_tags: list[Position] = []
    doctype: Position | None = None
    for match in _MARKUP.finditer(text):
        if match.group("start_tag"):
            start_tags.append(lines.position(match.start()))
        elif doctype is None and (match.group("declaration") or "").upper() == "DOCTYPE":
            doctype = lines.position(match.start())
    return Markup(tuple(start_tags), doctype)
