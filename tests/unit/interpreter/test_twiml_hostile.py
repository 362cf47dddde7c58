"""Hostile TwiML: documents written to hurt the platform, not to run a call.

A TwiML document is fetched from a customer's web server, so anyone who controls such a
server (or sits between it and us) chooses every byte. These tests feed the classic
attacks on XML parsers and check that each one is refused with a located error, without
the attack taking effect: no local file read, no network request, no exponential
memory, no tree built for an oversized document.
"""

from __future__ import annotations

import contextlib
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from lxml import etree

from interpreter.twiml import TwimlError, parse, validate
from interpreter.twiml import document as twiml_document


def refused(source: str | bytes, **options: object) -> TwimlError:
    with pytest.raises(TwimlError) as raised:
        parse(source, name="evil.xml", **options)  # type: ignore[arg-type]
    problems = validate(source, name="evil.xml", **options)  # type: ignore[arg-type]
    assert [str(p) for p in problems] == [str(raised.value)]
    return raised.value


# ------------------------------------------------------------------------- size


@pytest.fixture
def no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the document gets as far as being scanned or parsed."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("an oversized document reached the parser")

    monkeypatch.setattr(twiml_document, "scan", forbidden)
    monkeypatch.setattr(twiml_document, "xml_parser", forbidden)


@pytest.mark.usefixtures("no_parsing")
@pytest.mark.parametrize("kind", [bytes, str])
def test_a_ten_megabyte_document_is_refused_before_parsing(kind: type) -> None:
    body = "<Say>" + "a" * (10 * 1024 * 1024) + "</Say>"
    document = f"<Response>{body}</Response>"
    error = refused(document.encode() if kind is bytes else document)
    assert error.message == "document is larger than the limit of 65536 bytes"
    assert (error.name, error.line, error.column) == ("evil.xml", 1, 1)


@pytest.mark.usefixtures("no_parsing")
def test_the_limit_counts_encoded_bytes_not_characters() -> None:
    document = "<Response><Say>" + "ж" * 40000 + "</Say></Response>"  # 80 kB in UTF-8
    assert len(document) < 65536
    refused(document)


def test_the_limit_is_inclusive_and_configurable() -> None:
    document = b"<Response><Hangup/></Response>"
    assert parse(document, max_bytes=len(document)).verbs
    error = refused(document, max_bytes=len(document) - 1)
    assert error.message == f"document is larger than the limit of {len(document) - 1} bytes"


# ------------------------------------------------------------- DOCTYPE attacks


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE Response [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Response><Say>&lol9;</Say></Response>"""

# One 30 kB entity used 1000 times: 30 MB of text from a document under the size limit.
QUADRATIC_BLOWUP = (
    '<?xml version="1.0"?>\n<!DOCTYPE Response [<!ENTITY a "'
    + "x" * 30000
    + '">]>\n<Response><Say>'
    + "&a;" * 1000
    + "</Say></Response>"
)


def assert_refused_as_doctype(document: str | bytes, line: int = 2) -> None:
    error = refused(document)
    assert error.message.startswith("a DOCTYPE is not allowed in TwiML")
    assert (error.line, error.column) == (line, 1)


def test_billion_laughs_is_refused() -> None:
    assert_refused_as_doctype(BILLION_LAUGHS)


def test_quadratic_blowup_is_refused() -> None:
    assert len(QUADRATIC_BLOWUP.encode()) < 65536
    assert_refused_as_doctype(QUADRATIC_BLOWUP)


def test_any_doctype_is_refused_even_a_harmless_one_in_any_case() -> None:
    assert_refused_as_doctype("\n<!DOCTYPE Response>\n<Response/>")
    assert_refused_as_doctype(b"<?xml version='1.0'?>\n<!doctype Response><Response/>")
    assert_refused_as_doctype("<!DOCTYPE Response><Response/>".encode("utf-16"), line=1)


def test_a_doctype_inside_a_comment_is_only_a_comment() -> None:
    assert parse("<!-- <!DOCTYPE x> --><Response/>").verbs == ()


def test_an_external_entity_cannot_read_a_local_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7f3a")
    document = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE Response [<!ENTITY leak SYSTEM "{secret.as_uri()}">]>\n'
        "<Response><Say>&leak;</Say></Response>"
    )
    error = refused(document)
    assert "TOP-SECRET" not in str(error)
    assert_refused_as_doctype(document)
    # Even if a DOCTYPE got past the refusal, the parser itself would not read the file,
    # where a parser that resolves entities does.
    tree = etree.fromstring(document.encode(), twiml_document.xml_parser())
    assert "TOP-SECRET" not in etree.tostring(tree, encoding="unicode")
    careless = etree.fromstring(document.encode(), etree.XMLParser(resolve_entities=True))
    assert "TOP-SECRET" in etree.tostring(careless, encoding="unicode")


class RecordingServer:
    """A local HTTP server that remembers every request it gets."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                body = b'<!ENTITY % evil "">'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> RecordingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as running:
        # The server really answers, so that "no request" below means something.
        with urllib.request.urlopen(f"{running.url}/alive", timeout=5) as reply:
            assert reply.status == 200
        running.requests.clear()
        yield running


def network_attacks(url: str) -> dict[str, str]:
    return {
        "external DTD": (
            f'<?xml version="1.0"?>\n<!DOCTYPE Response SYSTEM "{url}/twiml.dtd">\n<Response/>'
        ),
        "external entity": (
            f'<?xml version="1.0"?>\n<!DOCTYPE Response [<!ENTITY e SYSTEM "{url}/e">]>\n'
            "<Response><Say>&e;</Say></Response>"
        ),
        "external parameter entity": (
            f'<?xml version="1.0"?>\n<!DOCTYPE Response [<!ENTITY % p SYSTEM "{url}/p"> %p;]>\n'
            "<Response/>"
        ),
    }


class Tripwire(etree.Resolver):
    """An lxml resolver that notes every external resource the parser asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def resolve(self, url: str, pubid: str, context: object) -> object:
        self.asked.append(url)
        return self.resolve_string("", context)


def external_loads(parser: etree.XMLParser, document: str) -> list[str]:
    tripwire = Tripwire()
    parser.resolvers.add(tripwire)
    with contextlib.suppress(etree.XMLSyntaxError):
        etree.fromstring(document.encode(), parser)
    return tripwire.asked


@pytest.mark.parametrize("attack", ["external DTD", "external entity", "external parameter entity"])
def test_a_document_cannot_make_the_parser_fetch_a_url(
    server: RecordingServer, attack: str
) -> None:
    document = network_attacks(server.url)[attack]
    assert_refused_as_doctype(document)
    assert server.requests == []
    # Behind the DOCTYPE refusal, our lxml parser does not even ask for the resource
    # (libxml2 2.13 and later cannot fetch http: itself, so a resolver is the real way
    # out), where a parser that loads DTDs and resolves entities does.
    assert external_loads(twiml_document.xml_parser(), document) == []
    careless = etree.XMLParser(load_dtd=True, resolve_entities=True, no_network=False)
    assert external_loads(careless, document) != []
    assert server.requests == []


def test_xinclude_is_not_processed(server: RecordingServer) -> None:
    document = (
        '<Response xmlns:xi="http://www.w3.org/2001/XInclude">'
        f'<xi:include href="{server.url}/more.xml" parse="xml"/></Response>'
    )
    error = refused(document)
    assert error.message.startswith("<xi:include> is in the XML namespace")
    assert server.requests == []


# ------------------------------------------------------------------ malformed XML


@pytest.mark.parametrize(
    ("document", "line", "column", "message"),
    [
        (
            "<Response>\n  <Say>hello\n</Response>",
            3,
            12,
            "malformed XML: Opening and ending tag mismatch: Say line 2 and Response",
        ),
        ("<Response>\n  <Gather numDigits=3/>\n</Response>", 2, 21, "malformed XML: AttValue"),
        (
            "<Response>\n  <Gather numDigits=\"3'/>\n</Response>",
            3,
            1,
            "malformed XML: Unescaped '<' not allowed in attributes values",
        ),
        ("<Response><Say>a & b</Say></Response>", 1, 19, "malformed XML: xmlParseEntityRef"),
        ("<Response><Say>&nbsp;</Say></Response>", 1, 22, "malformed XML: Entity 'nbsp'"),
        ("<Response/>\n<Response/>", 2, 1, "malformed XML: Extra content at the end"),
        ("", 1, 1, "malformed XML: Document is empty"),
        ("<Response><Say>\x00</Say></Response>", 1, 16, "malformed XML: Invalid character"),
    ],
)
def test_malformed_xml_is_located(document: str, line: int, column: int, message: str) -> None:
    error = refused(document)
    assert error.message.startswith(message)
    assert (error.name, error.line, error.column) == ("evil.xml", line, column)
    assert (error.element, error.attribute) == (None, None)
    assert str(error).startswith(f"evil.xml:{line}:{column}: malformed XML")


def test_invalid_utf8_is_located() -> None:
    error = refused(b"<Response>\n  <Say>caf\xc3\xa9 \xff\xfe</Say>\n</Response>")
    assert error.message == "malformed XML: byte 0xff is not valid UTF-8"
    assert (error.line, error.column) == (2, 13)


def test_bytes_that_do_not_match_the_declared_encoding_are_located() -> None:
    document = b'<?xml version="1.0" encoding="UTF-16"?>\n<Response/>'
    assert refused(document).message.startswith("malformed XML: byte 0x")


def test_an_unsupported_declared_encoding_is_refused() -> None:
    document = b'<?xml version="1.0" encoding="unicode_escape"?><Response/>'
    assert refused(document).message == (
        'unsupported encoding "unicode_escape" in the XML declaration; use UTF-8'
    )


def test_a_lone_surrogate_in_text_is_located() -> None:
    error = refused("<Response>\n<Say>\ud800</Say></Response>")
    assert error.message == "malformed XML: character U+D800 is not allowed"
    assert (error.line, error.column) == (2, 6)


def test_deep_nesting_is_refused_by_the_parser_not_by_a_recursion_error() -> None:
    document = (
        "<Response><Say>" + "<prosody>" * 400 + "x" + "</prosody>" * 400 + "</Say></Response>"
    )
    assert refused(document).message.startswith("malformed XML: Excessive depth")


def test_nesting_within_the_parser_limit_is_read_without_trouble() -> None:
    document = (
        "<Response><Say>" + "<prosody>" * 200 + "x" + "</prosody>" * 200 + "</Say></Response>"
    )
    assert parse(document).verbs[0].text == "x"


def test_a_document_that_is_not_text_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        parse(None)  # type: ignore[arg-type]
