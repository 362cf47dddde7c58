"""Finding start tags in raw text: the positions lxml does not give."""

from __future__ import annotations

from lxml import etree

from interpreter.twiml.positions import LineIndex, Markup, Position, scan


def test_start_tags_are_found_in_document_order_and_markup_is_skipped() -> None:
    text = (
        '<?xml version="1.0"?>\n'
        "<a>\n"
        "  <!-- <b> not a tag -->\n"
        "  <b x='1 > 0'><![CDATA[<c>]]></b><?pi <d>?>\n"
        "\t<e\n"
        "     y='2'/></a>"
    )
    assert scan(text) == Markup(
        start_tags=(Position(2, 1), Position(4, 3), Position(5, 2)),
        doctype=None,
    )
    # The same order in which lxml yields the elements.
    assert [e.tag for e in etree.fromstring(text.encode()).iter(etree.Element)] == ["a", "b", "e"]


def test_a_doctype_is_located_unless_it_is_inside_a_comment() -> None:
    assert scan('<?xml version="1.0"?>\n  <!DOCTYPE a [<!ENTITY x "y">]><a/>').doctype == Position(
        2, 3
    )
    assert scan("<!-- <!DOCTYPE a> --><a/>").doctype is None
    assert scan("<!doctype a><a/>").doctype == Position(1, 1)


def test_scanning_malformed_text_does_not_fail() -> None:
    # Positions of malformed text mean nothing (lxml refuses it next); it must not raise.
    for text in ("<a><!-- never closed <b>", "<", "<![CDATA[", "<?", "</", "<!"):
        assert isinstance(scan(text), Markup)


def test_every_xml_line_break_style_starts_a_line() -> None:
    lines = LineIndex("ab\r\ncd\ref\ngh")
    assert [lines.position(offset) for offset in (0, 1, 4, 7, 11)] == [
        Position(1, 1),
        Position(1, 2),
        Position(2, 1),
        Position(3, 1),
        Position(4, 2),
    ]
