"""The SSML subset accepted inside ``<Say>``, and how it flattens to spoken text.

The speech engine takes plain text for now, so SSML is checked (element names, where
each may appear, attribute names) and then reduced to its words. The content model is
the one the official helper library builds: leaf elements hold text only, ``<p>`` may
not nest paragraphs, ``<s>`` may not hold sentences or paragraphs, and ``<w>`` holds only
inline markup.
"""

from __future__ import annotations

from dataclasses import dataclass

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

_INLINE = frozenset({"break", "emphasis", "lang", "phoneme", "prosody", "say-as", "sub", "w"})
_ANY = _INLINE | {"p", "s"}


@dataclass(frozen=True, slots=True)
class SsmlElement:
    attributes: frozenset[str]
    children: frozenset[str]
    takes_text: bool = True


SAY_CHILDREN = _ANY

ELEMENTS: dict[str, SsmlElement] = {
    "break": SsmlElement(frozenset({"strength", "time"}), frozenset(), takes_text=False),
    "emphasis": SsmlElement(frozenset({"level"}), _INLINE),
    "lang": SsmlElement(frozenset({XML_LANG}), _ANY),
    "p": SsmlElement(frozenset(), _INLINE | {"s"}),
    "phoneme": SsmlElement(frozenset({"alphabet", "ph"}), frozenset()),
    "prosody": SsmlElement(frozenset({"volume", "rate", "pitch"}), _ANY),
    "s": SsmlElement(frozenset(), _INLINE),
    "say-as": SsmlElement(frozenset({"interpret-as", "format"}), frozenset()),
    "sub": SsmlElement(frozenset({"alias"}), frozenset()),
    "w": SsmlElement(
        frozenset({"role"}), frozenset({"break", "emphasis", "phoneme", "prosody", "say-as", "sub"})
    ),
}


def attribute_name(key: str) -> str:
    """An lxml attribute key as written in the document (``xml:lang``, not Clark notation)."""
    return "xml:lang" if key == XML_LANG else key


def spoken(pieces: list[str]) -> str:
    """Join text pieces into what is said: runs of whitespace become one space."""
    return " ".join("".join(pieces).split())
