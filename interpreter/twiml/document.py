"""Reading a TwiML document safely: from untrusted bytes or text to an lxml tree.

The document comes from a customer's web server, so it is hostile until proven
otherwise. In order, and each step before any work the next one would do:

1. the size limit, checked on the raw input;
2. decoding to text (a BOM, else the XML declaration's encoding, else UTF-8), so that
   element positions can be computed on the same text lxml parses;
3. refusing any DOCTYPE: TwiML never needs one, and it is how entity expansion
   ("billion laughs"), external entities (XXE) and external DTDs get in;
4. parsing with an lxml parser that would not resolve entities, load a DTD or touch the
   network even if a DOCTYPE got through (:func:`xml_parser`).

Only the first problem is reported: after a syntax error nothing else can be trusted.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from lxml import etree

from .errors import TwimlError
from .positions import LineIndex, Position, scan

_BYTE_ORDER_MARKS = (
    # UTF-32 first: its little-endian mark begins with UTF-16's.
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_DECLARED_ENCODING = re.compile(rb"<\?xml[^>]*?\sencoding\s*=\s*[\"']([A-Za-z][\w.-]*)[\"']")
# Character sets a web server plausibly sends. Python knows many more codecs, some of
# which are not character sets at all (unicode_escape rewrites backslashes).
_SUPPORTED_ENCODINGS = re.compile(
    r"utf-?8|utf-?16|us-ascii|ascii|iso-8859-\d{1,2}|latin-?1|windows-125\d|cp125\d|koi8-[ru]",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Document:
    """A well-formed document without a DOCTYPE, and where each element starts."""

    root: etree._Element
    start_tags: dict[etree._Element, Position]

    def position(self, element: etree._Element) -> Position:
        return self.start_tags[element]


def xml_parser() -> etree.XMLParser:
    """The only lxml parser TwiML goes through.

    The input is always UTF-8 (see :func:`read`), which overrides whatever encoding the
    XML declaration names. Comments and processing instructions are dropped, which also
    joins the text around them.
    """
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        encoding="utf-8",
        remove_comments=True,
        remove_pis=True,
    )


def read(source: str | bytes, *, name: str, max_bytes: int) -> Document:
    """Parse ``source`` into a :class:`Document`, or raise the first :class:`TwimlError`."""
    if not isinstance(source, str | bytes):
        raise TypeError(f"a TwiML document is str or bytes, not {type(source).__name__}")
    too_large = TwimlError(f"document is larger than the limit of {max_bytes} bytes", name)
    # Each character is at least one byte: a long text is refused before it is encoded.
    if len(source) > max_bytes:
        raise too_large
    if isinstance(source, str):
        text = source.removeprefix("\ufeff")
        data = _encode(text, name)
        if len(data) > max_bytes:
            raise too_large
    else:
        text = _decode(source, name)
        data = text.encode("utf-8")
    markup = scan(text)
    if markup.doctype is not None:
        raise TwimlError(
            "a DOCTYPE is not allowed in TwiML: it can define entities and load external "
            "files; remove it",
            name,
            markup.doctype.line,
            markup.doctype.column,
        )
    parser = xml_parser()
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        line, column = error.position
        message = error.msg
        errors = parser.error_log.filter_from_errors()
        if errors:
            first = errors[0]
            line, column, message = first.line, first.column, first.message
        # lxml appends the position to its own message; we put ours in front instead.
        message = re.sub(r", line \d+, column \d+$", "", message.strip())
        raise TwimlError(f"malformed XML: {message}", name, line, max(column, 1)) from None
    elements = list(root.iter(etree.Element))
    # Both lists are in document order; a length mismatch would be a bug in positions.
    return Document(root, dict(zip(elements, markup.start_tags, strict=True)))


def _encode(text: str, name: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        # Only a lone surrogate gets here, and XML does not allow one anywhere.
        where = LineIndex(text).position(error.start)
        raise TwimlError(
            f"malformed XML: character U+{ord(text[error.start]):04X} is not allowed",
            name,
            where.line,
            where.column,
        ) from None


def _decode(data: bytes, name: str) -> str:
    encoding = "utf-8"
    for mark, mark_encoding in _BYTE_ORDER_MARKS:
        if data.startswith(mark):
            encoding = mark_encoding
            break
    else:
        declared = _DECLARED_ENCODING.match(data)
        if declared:
            encoding = declared.group(1).decode("ascii")
            if not _SUPPORTED_ENCODINGS.fullmatch(encoding):
                raise TwimlError(
                    f'unsupported encoding "{encoding}" in the XML declaration; use UTF-8',
                    name,
                )
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        before = data[: error.start].decode(encoding, errors="replace")
        where = LineIndex(before).position(len(before))
        raise TwimlError(
            f"malformed XML: byte 0x{data[error.start]:02x} is not valid {encoding.upper()}",
            name,
            where.line,
            where.column,
        ) from None
