"""From a TwiML document to the verb model, with every problem located and explained.

:func:`parse` and :func:`validate` share one reading: :mod:`.document` turns the input
into a tree (stopping at the first syntax problem), then :class:`_Reader` walks the tree
once, building the model and collecting every semantic problem: unknown or misplaced
elements, unknown attributes, values of the wrong type, missing content.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from typing import Any

from lxml import etree

from . import ssml
from .attributes import TWIML_ATTRIBUTE, URL, InvalidValue, ValueType, twiml_name
from .document import Document, read
from .errors import TwimlError
from .verbs import (
    Client,
    Conference,
    Dial,
    Gather,
    Hangup,
    Node,
    Number,
    Parameter,
    Pause,
    Play,
    Record,
    Redirect,
    Reject,
    Response,
    Say,
    Sip,
)

DEFAULT_MAX_BYTES = 65536

# TwiML that Twilio defines but this platform does not run (yet): named as such rather
# than called unknown, so the author knows the document is fine elsewhere.
_UNSUPPORTED = frozenset({
    "AiSession", "Application", "ApplicationSid", "Autopilot", "Config", "Connect",
    "Conversation", "ConversationRelay", "ConversationRelaySession", "Echo", "Enqueue",
    "Header", "Headers", "Language", "Leave", "Pay", "Prompt", "Queue", "Recording", "Refer",
    "Room", "Sim", "Siprec", "Sms", "Start", "Stop", "Stream", "Task", "Transcription", "Uri",
    "VirtualAgent", "WhatsApp",
})  # fmt: skip
_NOUNS = ("Number", "Client", "Sip", "Conference")
# A <Dial> that rings more parties than this at once is almost surely a mistake.
_MAX_DIAL_NOUNS = 10


def parse(
    source: str | bytes, *, name: str = "<document>", max_bytes: int = DEFAULT_MAX_BYTES
) -> Response:
    """Parse a TwiML voice document, raising :class:`TwimlError` for its first problem."""
    response, problems = _read(source, name, max_bytes)
    if problems:
        raise problems[0]
    assert response is not None  # a document without problems always builds
    return response


def validate(
    source: str | bytes, *, name: str = "<document>", max_bytes: int = DEFAULT_MAX_BYTES
) -> list[TwimlError]:
    """Every problem in a TwiML document, in document order; empty when it is valid.

    A syntax problem is reported alone, since nothing after it can be read reliably.
    """
    return _read(source, name, max_bytes)[1]


def _read(
    source: str | bytes, name: str, max_bytes: int
) -> tuple[Response | None, list[TwimlError]]:
    try:
        document = read(source, name=name, max_bytes=max_bytes)
    except TwimlError as problem:
        return None, [problem]
    reader = _Reader(document, name)
    response = reader.response(document.root)
    problems = sorted(reader.problems, key=lambda problem: (problem.line, problem.column))
    return (None if problems else response), problems


@dataclass(frozen=True, slots=True)
class _AttributeSpec:
    field: str
    value_type: ValueType
    required: bool


@functools.cache
def _attribute_specs(node: type[Node]) -> dict[str, _AttributeSpec]:
    return {
        twiml_name(f.name): _AttributeSpec(
            f.name, f.metadata[TWIML_ATTRIBUTE], f.default is MISSING
        )
        for f in fields(node)
        if TWIML_ATTRIBUTE in f.metadata
    }


def _quoted(value: str) -> str:
    shown = value if len(value) <= 60 else value[:57] + "..."
    return '"' + shown.replace('"', "&quot;") + '"'


def _listing(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(names)


class _Reader:
    """Builds the model from a well-formed tree, collecting problems as it goes.

    A builder returns ``None`` when its element had a problem; the document as a whole
    is then invalid, but reading goes on so that all problems are reported at once.
    """

    def __init__(self, document: Document, name: str) -> None:
        self._document = document
        self._name = name
        self.problems: list[TwimlError] = []
        self._verbs: dict[str, Callable[[etree._Element], Any]] = {
            "Say": self._say,
            "Play": self._play,
            "Pause": self._pause,
            "Gather": self._gather,
            "Hangup": self._hangup,
            "Redirect": self._redirect,
            "Reject": self._reject,
            "Record": self._record,
            "Dial": self._dial,
        }
        self._nouns: dict[str, Callable[[etree._Element], Any]] = {
            "Number": self._number,
            "Client": self._client,
            "Sip": self._sip,
            "Conference": self._conference,
        }

    # -- reporting -------------------------------------------------------------------

    def _problem(self, element: etree._Element, message: str, attribute: str | None = None) -> None:
        where = self._document.position(element)
        self.problems.append(
            TwimlError(message, self._name, where.line, where.column, _tag(element), attribute)
        )

    def _build(self, node: type[Node], element: etree._Element, mark: int, **values: Any) -> Any:
        """The node, unless a problem was found since ``mark``."""
        if len(self.problems) > mark:
            return None
        where = self._document.position(element)
        return node(line=where.line, column=where.column, **values)

    # -- the document ----------------------------------------------------------------

    def response(self, root: etree._Element) -> Response | None:
        mark = len(self.problems)
        if self._foreign_namespace(root):
            return None
        if root.tag != "Response":
            self._problem(root, f"the root element must be <Response>, not <{root.tag}>")
            return None
        self._attributes(root, Response)
        self._no_text(root, "put spoken text in a <Say>")
        verbs = self._children(root, self._verbs, "verbs")
        return self._build(Response, root, mark, verbs=verbs)

    # -- verbs -----------------------------------------------------------------------

    def _say(self, element: etree._Element) -> Say | None:
        mark = len(self.problems)
        values = self._attributes(element, Say)
        pieces: list[str] = []
        found_ssml = self._ssml(element, ssml.SAY_CHILDREN, pieces)
        text = ssml.spoken(pieces)
        if not text and not found_ssml:
            self._problem(element, "<Say> has no text to speak")
        return self._build(Say, element, mark, text=text, **values)

    def _play(self, element: etree._Element) -> Play | None:
        mark = len(self.problems)
        values = self._attributes(element, Play)
        self._no_children(element)
        url = _own_text(element)
        if url:
            self._check_url(element, url)
        elif "digits" not in element.attrib:
            self._problem(element, "<Play> needs the URL of audio to play as its text, or digits")
        return self._build(Play, element, mark, url=url, **values)

    def _pause(self, element: etree._Element) -> Pause | None:
        mark = len(self.problems)
        values = self._attributes(element, Pause)
        self._no_text(element)
        self._no_children(element)
        return self._build(Pause, element, mark, **values)

    def _gather(self, element: etree._Element) -> Gather | None:
        mark = len(self.problems)
        values = self._attributes(element, Gather)
        self._no_text(element, "put prompts in a nested <Say>")
        prompts = {name: self._verbs[name] for name in ("Say", "Play", "Pause")}
        children = self._children(element, prompts, "Say, Play, Pause")
        return self._build(Gather, element, mark, children=children, **values)

    def _hangup(self, element: etree._Element) -> Hangup | None:
        mark = len(self.problems)
        self._attributes(element, Hangup)
        self._no_text(element)
        parameters = self._children(element, {"Parameter": self._parameter}, "Parameter")
        return self._build(Hangup, element, mark, parameters=parameters)

    def _redirect(self, element: etree._Element) -> Redirect | None:
        mark = len(self.problems)
        values = self._attributes(element, Redirect)
        self._no_children(element)
        url = _own_text(element)
        if url:
            self._check_url(element, url)
        else:
            self._problem(element, "<Redirect> needs the URL of the next document as its text")
        return self._build(Redirect, element, mark, url=url, **values)

    def _reject(self, element: etree._Element) -> Reject | None:
        mark = len(self.problems)
        values = self._attributes(element, Reject)
        self._no_text(element)
        parameters = self._children(element, {"Parameter": self._parameter}, "Parameter")
        return self._build(Reject, element, mark, parameters=parameters, **values)

    def _record(self, element: etree._Element) -> Record | None:
        mark = len(self.problems)
        values = self._attributes(element, Record)
        self._no_text(element)
        self._no_children(element)
        return self._build(Record, element, mark, **values)

    def _dial(self, element: etree._Element) -> Dial | None:
        mark = len(self.problems)
        values = self._attributes(element, Dial)
        nouns = self._children(element, self._nouns, "a number as text, or " + _listing(_NOUNS))
        number = _own_text(element)
        noun_names = [child.tag for child in element if child.tag in _NOUNS]
        if number and len(element):
            self._problem(
                element,
                f"<Dial> has both the text {_quoted(number)} and child elements; "
                "put the number in a <Number>",
            )
        elif number:
            # A bare number is a <Number> with default attributes, placed at the <Dial>.
            self._check_number(element, number)
            where = self._document.position(element)
            nouns = (Number(number=number, line=where.line, column=where.column),)
        elif not len(element):
            self._problem(
                element,
                "<Dial> needs something to dial: a number as its text, or " + _listing(_NOUNS),
            )
        if "Conference" in noun_names and len(noun_names) > 1:
            self._problem(element, "<Conference> must be the only noun inside its <Dial>")
        if len(noun_names) > _MAX_DIAL_NOUNS:
            self._problem(
                element,
                f"<Dial> can ring at most {_MAX_DIAL_NOUNS} parties at once; "
                f"it has {len(noun_names)}",
            )
        return self._build(Dial, element, mark, nouns=nouns, **values)

    # -- nouns -----------------------------------------------------------------------

    def _number(self, element: etree._Element) -> Number | None:
        mark = len(self.problems)
        values = self._attributes(element, Number)
        self._no_children(element)
        number = _own_text(element)
        self._check_number(element, number)
        return self._build(Number, element, mark, number=number, **values)

    def _check_number(self, element: etree._Element, number: str) -> None:
        """A phone number (any of the ways people write one) or an extension."""
        digits = number.removeprefix("+")
        if not any(c.isdigit() for c in digits) or not all(c in "0123456789 ().-" for c in digits):
            self._problem(
                element,
                f"<{element.tag}> {_quoted(number)} must be a phone number or extension: "
                "digits with an optional leading +, and spaces, dashes, dots or parentheses",
            )

    def _client(self, element: etree._Element) -> Client | None:
        mark = len(self.problems)
        values = self._attributes(element, Client)
        identity = _own_text(element)
        children = {"Identity": self._identity, "Parameter": self._parameter}
        content = self._children(element, children, "an identity as text, Identity, Parameter")
        identities = [item for item in content if isinstance(item, str)]
        parameters = tuple(item for item in content if isinstance(item, Parameter))
        named = sum(1 for child in element if child.tag == "Identity")
        if identity and named:
            self._problem(element, "<Client> has an identity as text and an <Identity>; keep one")
        elif named > 1:
            self._problem(element, "<Client> has more than one <Identity>")
        elif identities:
            identity = identities[0]
        elif not identity and not named:
            self._problem(element, "<Client> needs an identity: its text or an <Identity> child")
        return self._build(
            Client, element, mark, identity=identity, parameters=parameters, **values
        )

    def _identity(self, element: etree._Element) -> str | None:
        mark = len(self.problems)
        self._attributes(element, None)
        self._no_children(element)
        identity = _own_text(element)
        if not identity:
            self._problem(element, "<Identity> needs the client identity as its text")
        return identity if len(self.problems) == mark else None

    def _sip(self, element: etree._Element) -> Sip | None:
        mark = len(self.problems)
        values = self._attributes(element, Sip)
        self._no_children(element)
        uri = _own_text(element)
        scheme, _, rest = uri.partition(":")
        if scheme.lower() not in ("sip", "sips") or not rest:
            self._problem(
                element,
                f"<Sip> {_quoted(uri)} must be a SIP URI such as sip:alice@example.com",
            )
        return self._build(Sip, element, mark, uri=uri, **values)

    def _conference(self, element: etree._Element) -> Conference | None:
        mark = len(self.problems)
        values = self._attributes(element, Conference)
        self._no_children(element)
        name = _own_text(element)
        if not name:
            self._problem(element, "<Conference> needs the conference room's name as its text")
        return self._build(Conference, element, mark, name=name, **values)

    def _parameter(self, element: etree._Element) -> Parameter | None:
        mark = len(self.problems)
        values = self._attributes(element, Parameter)
        self._no_text(element)
        self._no_children(element)
        if "name" in values and not values["name"].strip():
            self._problem(element, "<Parameter> name must not be empty", "name")
        return self._build(Parameter, element, mark, **values)

    # -- content ---------------------------------------------------------------------

    def _children(
        self,
        parent: etree._Element,
        builders: dict[str, Callable[[etree._Element], Any]],
        allowed: str,
    ) -> tuple[Any, ...]:
        """Build each child element with its builder, reporting the misplaced ones."""
        built = []
        where = f"<{parent.tag}> may contain {allowed}"
        for child in parent:
            name = child.tag
            if self._foreign_namespace(child):
                continue
            if name in builders:
                node = builders[name](child)
                if node is not None:
                    built.append(node)
            elif name in _UNSUPPORTED:
                self._problem(
                    child, f"<{name}> is TwiML that this platform does not support; {where}"
                )
            elif name in _NOUNS:
                self._problem(child, f"<{name}> belongs inside a <Dial>, not <{parent.tag}>")
            elif name in self._verbs or name in ("Parameter", "Identity"):
                self._problem(child, f"<{name}> is not allowed inside <{parent.tag}>; {where}")
            elif parent.tag == "Response":
                suggestion = _suggestion(name, list(self._verbs))
                self._problem(
                    child,
                    f"unknown verb <{name}>; valid verbs are {_listing(sorted(self._verbs))}"
                    + (f"; did you mean <{suggestion}>?" if suggestion else ""),
                )
            else:
                self._problem(child, f"unknown element <{name}> inside <{parent.tag}>; {where}")
        return tuple(built)

    def _ssml(self, element: etree._Element, allowed: frozenset[str], pieces: list[str]) -> bool:
        """Collect the words of ``<Say>`` or an SSML element; True if it has SSML children."""
        pieces.append(element.text or "")
        for child in element:
            name = child.tag
            if self._foreign_namespace(child):
                pass
            elif name not in allowed:
                self._problem(
                    child,
                    f"<{name}> is not allowed inside <{element.tag}>; <{element.tag}> may "
                    + (
                        f"contain text and {_listing(sorted(allowed))}"
                        if allowed
                        else "contain only text"
                    ),
                )
            else:
                spec = ssml.ELEMENTS[name]
                self._ssml_attributes(child, spec)
                if not spec.takes_text and (child.text or "").strip():
                    self._problem(child, f"<{name}> takes no text")
                # Helper libraries put no whitespace between elements, and a pause or
                # emphasis inside a word is rare: every element boundary splits words.
                pieces.append(" ")
                self._ssml(child, spec.children, pieces)
                pieces.append(" ")
            pieces.append(child.tail or "")
        return len(element) > 0

    def _ssml_attributes(self, element: etree._Element, spec: ssml.SsmlElement) -> None:
        valid = sorted(ssml.attribute_name(key) for key in spec.attributes)
        for key in element.attrib:
            if key not in spec.attributes and not self._foreign_attribute(element, key):
                self._unknown_attribute(element, key, valid)

    def _no_text(self, element: etree._Element, hint: str = "") -> None:
        stray = " ".join(_own_text(element).split())
        if stray:
            if element.tag == "Response":
                message = f"text {_quoted(stray)} is not allowed directly inside <Response>"
            else:
                message = f"<{element.tag}> takes no text, but has {_quoted(stray)}"
            self._problem(element, message + (f"; {hint}" if hint else ""))

    def _no_children(self, element: etree._Element) -> None:
        self._children(element, {}, "no child elements")

    # -- attributes ------------------------------------------------------------------

    def _attributes(self, element: etree._Element, node: type[Node] | None) -> dict[str, Any]:
        """The typed values of ``element``'s attributes, keyed by model field name."""
        specs = _attribute_specs(node) if node is not None else {}
        values: dict[str, Any] = {}
        for key, raw in element.attrib.items():
            spec = specs.get(key)
            if spec is None:
                if not self._foreign_attribute(element, key):
                    self._unknown_attribute(element, key, sorted(specs))
                continue
            try:
                values[spec.field] = spec.value_type(raw)
            except InvalidValue as rule:
                self._problem(element, f"<{element.tag} {key}={_quoted(raw)}>: {key} {rule}", key)
        for key, spec in specs.items():
            if spec.required and key not in element.attrib:
                self._problem(element, f"<{element.tag}> needs a {key} attribute", key)
        return values

    def _unknown_attribute(self, element: etree._Element, key: str, valid: list[str]) -> None:
        if not valid:
            self._problem(element, f'<{element.tag}> takes no attributes, but has "{key}"', key)
            return
        suggestion = _suggestion(key, valid)
        self._problem(
            element,
            f'unknown attribute "{key}" on <{element.tag}>; '
            + (f'did you mean "{suggestion}"? ' if suggestion else "")
            + f"valid attributes are {_listing(valid)}",
            key,
        )

    def _check_url(self, element: etree._Element, url: str) -> None:
        try:
            URL(url)
        except InvalidValue as rule:
            self._problem(element, f"<{element.tag}> URL {_quoted(url)} {rule}")

    # -- namespaces ------------------------------------------------------------------

    def _foreign_namespace(self, element: etree._Element) -> bool:
        """Report an element in a namespace; TwiML and the SSML inside it have none."""
        namespace = _namespace(element)
        if namespace is None:
            return False
        self._problem(
            element,
            f'<{_tag(element)}> is in the XML namespace "{namespace}"; namespaced '
            "elements are not supported in TwiML",
        )
        return True

    def _foreign_attribute(self, element: etree._Element, key: str) -> bool:
        if not key.startswith("{"):
            return False
        qname = etree.QName(key)
        prefixes = [p for p, uri in element.nsmap.items() if uri == qname.namespace and p]
        shown = f"{prefixes[0]}:{qname.localname}" if prefixes else ssml.attribute_name(key)
        self._problem(
            element,
            f'attribute "{shown}" on <{_tag(element)}> is in the XML namespace '
            f'"{qname.namespace}"; namespaced attributes are not supported in TwiML',
            shown,
        )
        return True


def _own_text(element: etree._Element) -> str:
    """The element's text without its children's: its content when it has no children."""
    return ("".join([element.text or ""] + [child.tail or "" for child in element])).strip()


def _namespace(element: etree._Element) -> str | None:
    return etree.QName(element).namespace


def _tag(element: etree._Element) -> str:
    """The element's name as written, with its prefix if it has one."""
    localname = etree.QName(element).localname
    return f"{element.prefix}:{localname}" if element.prefix else localname


def _suggestion(name: str, candidates: list[str]) -> str | None:
    for candidate in candidates:
        if candidate.lower() == name.lower():
            return candidate
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return close[0] if close else None
