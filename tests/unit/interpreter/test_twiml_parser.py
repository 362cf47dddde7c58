"""The TwiML parser: what it builds, and how it explains what it refuses."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from interpreter.twiml import TwimlError, parse, validate
from interpreter.twiml.verbs import (
    Client,
    Conference,
    Dial,
    Gather,
    Hangup,
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


def only(body: str) -> object:
    """The one verb of ``<Response>{body}</Response>``."""
    (verb,) = parse(f"<Response>{body}</Response>").verbs
    return verb


def problem(document: str, name: str = "doc.xml") -> TwimlError:
    """The first problem of a document, checking that parse and validate agree."""
    with pytest.raises(TwimlError) as raised:
        parse(document, name=name)
    problems = validate(document, name=name)
    assert problems and str(problems[0]) == str(raised.value)
    return raised.value


def body_problem(body: str) -> TwimlError:
    return problem(f"<Response>{body}</Response>")


# --------------------------------------------------------------------- building


def test_a_typical_document_builds_the_model() -> None:
    document = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
    <Gather numDigits="3" action="/menu" method="get" timeout="7">
        <Say voice="woman" language="en-GB">Enter your extension</Say>
        <Play loop="2">/prompts/tone.wav</Play>
        <Pause length="2"/>
    </Gather>
    <Say>We did not hear you.</Say>
    <Redirect>/start</Redirect>
</Response>
"""
    assert parse(document) == Response(
        verbs=(
            Gather(
                num_digits=3,
                action="/menu",
                method="GET",
                timeout=7,
                children=(
                    Say(text="Enter your extension", voice="woman", language="en-GB"),
                    Play(url="/prompts/tone.wav", loop=2),
                    Pause(length=2),
                ),
            ),
            Say(text="We did not hear you."),
            Redirect(url="/start"),
        )
    )


def test_str_and_bytes_give_the_same_model() -> None:
    document = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Grüße</Say></Response>'
    assert parse(document) == parse(document.encode("utf-8"))
    assert only("<Say>Grüße</Say>") == Say(text="Grüße")


def test_bytes_in_the_declared_encoding_or_with_a_bom_are_decoded() -> None:
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?><Response><Say>café</Say></Response>'
    assert parse(latin.encode("latin-1")).verbs == (Say(text="café"),)
    utf16 = "<Response><Say>привет</Say></Response>".encode("utf-16")
    assert parse(utf16).verbs == (Say(text="привет"),)
    bom = b"\xef\xbb\xbf<Response><Say>hi</Say></Response>"
    assert parse(bom).verbs == (Say(text="hi"),)


def test_an_empty_response_has_no_verbs() -> None:
    assert parse("<Response/>") == Response(verbs=())


def test_comments_are_allowed_anywhere() -> None:
    document = """<!-- greeting --><Response><!-- a <Say> in a comment is not a verb -->
    <Say>Hello <!-- inline --> there</Say>
    <Dial>+1555<!-- split -->0100</Dial>
</Response><!-- done -->"""
    assert parse(document).verbs == (
        Say(text="Hello there"),
        Dial(nouns=(Number(number="+15550100"),)),
    )


def test_model_is_immutable_and_hashable_and_positions_do_not_count() -> None:
    say = only("<Say>hi</Say>")
    assert say == Say(text="hi") and hash(say) == hash(Say(text="hi"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        say.text = "changed"  # type: ignore[misc]
    assert not hasattr(say, "__dict__")


# -------------------------------------------------------------------- positions


def test_each_verb_and_noun_knows_its_line_and_column() -> None:
    document = """<?xml version="1.0"?>
<?style sheet?>
<Response>
  <!-- <Say>not this</Say> -->
  <![CDATA[ ignored? no: CDATA is text, so this would be an error ]]>
</Response>"""
    assert problem(document).line == 3  # the CDATA text is stray text in <Response>

    document = """<?xml version="1.0"?>
<Response>
  <!-- <Say>not this</Say> -->
  <Say><![CDATA[<not a tag>]]></Say>
    <Gather
        numDigits="1"><Play>/a.wav</Play></Gather>
\t<Dial><Number>101</Number>  <Number
  sendDigits="1">102</Number></Dial>
</Response>"""
    response = parse(document)
    say, gather, dial = response.verbs
    assert (response.line, response.column) == (2, 1)
    assert (say.line, say.column) == (4, 3)
    assert say.text == "<not a tag>"
    assert (gather.line, gather.column) == (5, 5)
    assert (gather.children[0].line, gather.children[0].column) == (6, 23)
    assert (dial.line, dial.column) == (7, 2)
    assert [(n.line, n.column) for n in dial.nouns] == [(7, 8), (7, 30)]


def test_positions_count_characters_not_bytes_and_every_line_break_style() -> None:
    document = "<Response>\r\n<Say>é</Say><Say>ü</Say>\r<Pause/>\n  <Hangup/></Response>"
    say1, say2, pause, hangup = parse(document.encode("utf-8")).verbs
    assert [(v.line, v.column) for v in (say1, say2, pause, hangup)] == [
        (2, 1),
        (2, 13),
        (3, 1),
        (4, 3),
    ]


def test_a_bare_number_in_dial_is_placed_where_the_dial_is() -> None:
    dial = parse("<Response>\n  <Dial> +1 (555) 010-0100 </Dial></Response>").verbs[0]
    (number,) = dial.nouns
    assert number == Number(number="+1 (555) 010-0100")
    assert (number.line, number.column) == (2, 3)


# ------------------------------------------------------------------- attributes


def test_booleans_methods_and_choices_ignore_case_and_are_stored_canonically() -> None:
    gather = only('<Gather actionOnEmptyResult="TRUE" bargeIn="False" method="get"/>')
    assert gather.action_on_empty_result is True
    assert gather.barge_in is False
    assert gather.method == "GET"
    conference = only(
        '<Dial><Conference beep="ONENTER" jitterBufferSize="Off">r</Conference></Dial>'
    )
    assert conference.nouns[0].beep == "onEnter"
    assert conference.nouns[0].jitter_buffer_size == "off"


def test_event_lists_take_spaces_or_commas_and_drop_repeats() -> None:
    dial = only(
        '<Dial><Number statusCallbackEvent="ringing, answered completed ringing">1</Number></Dial>'
    )
    assert dial.nouns[0].status_callback_event == ("ringing", "answered", "completed")


def test_finish_on_key_may_be_empty_and_record_takes_several_keys() -> None:
    assert only('<Gather finishOnKey=""/>').finish_on_key == ""
    assert only('<Record finishOnKey="#*1"/>').finish_on_key == "#*1"


def test_record_attributes_are_typed() -> None:
    record = only(
        '<Record action="/saved" maxLength="20" timeout="0" playBeep="FALSE" trim="Do-Not-Trim" '
        'recordingStatusCallbackEvent="in-progress,completed" transcribe="true"/>'
    )
    assert record == Record(
        action="/saved",
        max_length=20,
        timeout=0,
        play_beep=False,
        trim="do-not-trim",
        recording_status_callback_event=("in-progress", "completed"),
        transcribe=True,
    )


def test_speech_timeout_is_seconds_or_auto() -> None:
    assert only('<Gather speechTimeout="auto"/>').speech_timeout == "auto"
    assert only('<Gather speechTimeout="3"/>').speech_timeout == 3


def test_play_may_send_digits_without_a_url() -> None:
    assert only('<Play digits="ww12#"/>') == Play(url="", digits="ww12#")


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a.xml",
        "HTTP://example.com:8080/a?b=c#d",
        "/relative/path.xml",
        "next.xml",
        "?page=2",
        "//cdn.example.com/a.mp3",
        "",
    ],
)
def test_urls_are_kept_as_written(url: str) -> None:
    assert only(f'<Gather action="{url}"/>').action == url


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("file:///etc/passwd", 'the scheme "file" is not allowed'),
        ("javascript:alert(1)", 'the scheme "javascript" is not allowed'),
        (" JavaScript:alert(1)", 'the scheme "javascript" is not allowed'),
        ("ftp://example.com/a", 'the scheme "ftp" is not allowed'),
        ("http:///no-host", "must name a host"),
        ("http://[::1/broken", "must be a valid http(s) URL"),
        ("/a&#9;b", "without control characters"),
    ],
)
def test_urls_with_other_schemes_are_refused(url: str, complaint: str) -> None:
    error = body_problem(f'<Record recordingStatusCallback="{url}"/>')
    assert error.attribute == "recordingStatusCallback"
    assert complaint in error.message


def test_url_text_of_play_and_redirect_is_checked_too() -> None:
    assert 'the scheme "file" is not allowed' in body_problem("<Play>file:///x.wav</Play>").message
    error = body_problem("<Redirect>javascript:go()</Redirect>")
    assert error.message.startswith('<Redirect> URL "javascript:go()" must be an http(s) URL')


# ------------------------------------------------------------------------- Say


def test_ssml_inside_say_is_flattened_to_its_words() -> None:
    say = only(
        "<Say voice='Polly.Joanna'>Hello<break time='1s'/>world. "
        "<emphasis level='strong'>Really</emphasis> <say-as interpret-as='digits'>123</say-as>"
        "<p><s>One</s><s>Two</s></p><lang xml:lang='fr-FR'>bonjour</lang>"
        "<prosody rate='slow'><w role='amazon:VB'>read</w></prosody>"
        "<sub alias='World Wide Web'>WWW</sub><phoneme ph='x'>y</phoneme></Say>"
    )
    assert say.text == "Hello world. Really 123 One Two bonjour read WWW y"


def test_say_may_hold_only_ssml_and_ssml_nesting_is_checked() -> None:
    assert body_problem("<Say>Hi <Play>/a.wav</Play></Say>").message == (
        "<Play> is not allowed inside <Say>; <Say> may contain text and "
        "break, emphasis, lang, p, phoneme, prosody, s, say-as, sub, w"
    )
    assert body_problem("<Say><s><p>x</p></s></Say>").message.startswith(
        "<p> is not allowed inside <s>"
    )
    assert body_problem("<Say><sub alias='a'>b<break/></sub></Say>").message == (
        "<break> is not allowed inside <sub>; <sub> may contain only text"
    )
    assert body_problem("<Say>a<break>b</break></Say>").message == "<break> takes no text"


def test_ssml_attributes_are_checked_by_name() -> None:
    error = body_problem("<Say><break tiem='1s'/></Say>")
    assert error.message == (
        'unknown attribute "tiem" on <break>; did you mean "time"? '
        "valid attributes are strength, time"
    )
    assert (error.element, error.attribute) == ("break", "tiem")


def test_say_needs_something_to_say() -> None:
    assert body_problem("<Say>  </Say>").message == "<Say> has no text to speak"
    assert only("<Say><break time='2s'/></Say>") == Say(text="")


# ------------------------------------------------------------------------ Dial


def test_dial_holds_nouns_of_every_kind() -> None:
    dial = only(
        '<Dial callerId="+15550100" answerOnBridge="true" timeout="20">'
        "<Number sendDigits='ww1'>+15550111</Number>"
        "<Client>agent_7<Parameter name='queue' value='sales'/></Client>"
        "<Client><Identity>agent_8</Identity></Client>"
        "<Sip username='u' password='p'>sips:101@pbx.example.com</Sip>"
        "</Dial>"
    )
    assert dial == Dial(
        caller_id="+15550100",
        answer_on_bridge=True,
        timeout=20,
        nouns=(
            Number(number="+15550111", send_digits="ww1"),
            Client(identity="agent_7", parameters=(Parameter(name="queue", value="sales"),)),
            Client(identity="agent_8"),
            Sip(uri="sips:101@pbx.example.com", username="u", password="p"),
        ),
    )


def test_dial_conference() -> None:
    dial = only(
        '<Dial><Conference startConferenceOnEnter="false" endConferenceOnExit="true" '
        'muted="true" beep="false" waitUrl="" maxParticipants="2" coach="CA'
        + "0" * 32
        + '" statusCallbackEvent="join leave">  Room 1  </Conference></Dial>'
    )
    assert dial.nouns == (
        Conference(
            name="Room 1",
            start_conference_on_enter=False,
            end_conference_on_exit=True,
            muted=True,
            beep="false",
            wait_url="",
            max_participants=2,
            coach="CA" + "0" * 32,
            status_callback_event=("join", "leave"),
        ),
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<Dial/>", "<Dial> needs something to dial: a number as its text, or Number, Client"),
        ("<Dial>101<Number>102</Number></Dial>", '<Dial> has both the text "101" and child'),
        (
            "<Dial><Conference>a</Conference><Number>1</Number></Dial>",
            "<Conference> must be the only noun inside its <Dial>",
        ),
        ("<Dial>" + "<Number>1</Number>" * 11 + "</Dial>", "at most 10 parties at once; it has 11"),
        ("<Dial>call me</Dial>", '<Dial> "call me" must be a phone number or extension'),
        ("<Dial><Number>12a</Number></Dial>", '<Number> "12a" must be a phone number'),
        ("<Dial><Sip>bob@example.com</Sip></Dial>", '<Sip> "bob@example.com" must be a SIP URI'),
        ("<Dial><Conference> </Conference></Dial>", "<Conference> needs the conference room"),
        ("<Dial><Client/></Dial>", "<Client> needs an identity"),
        (
            "<Dial><Client>a<Identity>b</Identity></Client></Dial>",
            "<Client> has an identity as text and an <Identity>",
        ),
        ("<Dial><Client><Parameter value='1'/>a</Client></Dial>", "<Parameter> needs a name"),
        ("<Dial><Say>hi</Say></Dial>", "<Say> is not allowed inside <Dial>; <Dial> may contain"),
        ("<Dial><Queue>support</Queue></Dial>", "<Queue> is TwiML that this platform does not"),
    ],
)
def test_dial_content_is_checked(body: str, message: str) -> None:
    assert message in body_problem(body).message


def test_sip_uri_and_header_children_are_named_unsupported() -> None:
    problems = validate("<Response><Dial><Sip><Uri>sip:a@b</Uri></Sip></Dial></Response>")
    assert [p.message for p in problems] == [
        '<Sip> "" must be a SIP URI such as sip:alice@example.com',
        "<Uri> is TwiML that this platform does not support; <Sip> may contain no child elements",
    ]


# ---------------------------------------------------------------- error reports


def test_a_wrong_attribute_value_is_located_and_explained() -> None:
    document = '<Response>\n  <Say>hi</Say>\n  <Gather\n    numDigits="abc"/>\n</Response>'
    error = problem(document, name="menu.xml")
    assert isinstance(error, ValueError)
    assert (error.name, error.line, error.column) == ("menu.xml", 3, 3)
    assert (error.element, error.attribute) == ("Gather", "numDigits")
    assert error.message == '<Gather numDigits="abc">: numDigits must be a positive integer'
    assert str(error) == (
        'menu.xml:3:3: <Gather numDigits="abc">: numDigits must be a positive integer'
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('<Gather numDigits="abc"/>', 'numDigits="abc">: numDigits must be a positive integer'),
        ('<Gather numDigits="0"/>', "numDigits must be a positive integer"),
        ('<Gather numDigits="٣"/>', "numDigits must be a positive integer"),
        ('<Gather numDigits="1_0"/>', "numDigits must be a positive integer"),
        ('<Gather numDigits="' + "9" * 5000 + '"/>', "numDigits must be a positive integer"),
        ('<Gather timeout="-1"/>', 'timeout="-1">: timeout must be a non-negative integer'),
        ('<Record maxLength="0"/>', "maxLength must be an integer from 1 to 86400"),
        ('<Dial timeout="601">1</Dial>', "timeout must be an integer from 1 to 600"),
        (
            '<Dial><Conference maxParticipants="251">r</Conference></Dial>',
            "maxParticipants must be an integer from 2 to 250",
        ),
        ('<Gather bargeIn="yes"/>', 'bargeIn="yes">: bargeIn must be true or false'),
        ('<Gather actionOnEmptyResult="1"/>', "actionOnEmptyResult must be true or false"),
        ('<Redirect method="PUT">/a</Redirect>', "method must be one of GET, POST"),
        ('<Gather finishOnKey="##"/>', 'finishOnKey must be one key of 0-9, *, # or "" for none'),
        ('<Gather finishOnKey="a"/>', "finishOnKey must be one key of 0-9, *, #"),
        ('<Record finishOnKey="12x"/>', "finishOnKey must be keys from 0-9, *, #"),
        ('<Reject reason="no"/>', 'reason="no">: reason must be one of rejected, busy'),
        ('<Gather input="voice"/>', "input must be one or more of dtmf, speech"),
        ('<Play digits="12x"/>', "digits must be DTMF digits 0-9, *, #, with w or W"),
        ('<Say language="english!">x</Say>', 'language must be a language tag such as "en"'),
        (
            '<Gather speechTimeout="soon"/>',
            'speechTimeout must be a non-negative integer or "auto"',
        ),
        ('<Dial ringTone="xx">1</Dial>', "ringTone must be one of at, au,"),
        ('<Dial record="yes">1</Dial>', "record must be one of do-not-record, record-from-answer"),
        (
            '<Dial><Number byoc="BY123">1</Number></Dial>',
            "byoc must be BY followed by 32 hex digits",
        ),
    ],
)
def test_wrong_types_are_refused(body: str, message: str) -> None:
    assert message in body_problem(body).message


def test_unknown_attribute_suggests_the_right_spelling() -> None:
    error = body_problem('<Gather finishonkey="#"/>')
    assert error.message.startswith(
        'unknown attribute "finishonkey" on <Gather>; did you mean "finishOnKey"? '
        "valid attributes are action, actionOnEmptyResult, bargeIn,"
    )
    assert error.attribute == "finishonkey"
    assert "did you mean" not in body_problem('<Pause zzz="1"/>').message
    assert (
        body_problem('<Hangup reason="x"/>').message
        == '<Hangup> takes no attributes, but has "reason"'
    )


def test_unknown_verb_lists_the_valid_ones() -> None:
    error = body_problem("\n <Dail>1</Dail>")
    assert error.message == (
        "unknown verb <Dail>; valid verbs are Dial, Gather, Hangup, Pause, Play, Record, "
        "Redirect, Reject, Say; did you mean <Dial>?"
    )
    assert (error.line, error.column, error.element) == (2, 2, "Dail")
    assert body_problem("<say>hi</say>").message.endswith("did you mean <Say>?")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "<Gather><Dial>1</Dial></Gather>",
            "<Dial> is not allowed inside <Gather>; <Gather> may contain Say, Play, Pause",
        ),
        ("<Gather><Gather/></Gather>", "<Gather> is not allowed inside <Gather>"),
        ("<Gather><Foo/></Gather>", "unknown element <Foo> inside <Gather>"),
        ("<Number>1</Number>", "<Number> belongs inside a <Dial>, not <Response>"),
        (
            "<Pause><Say>x</Say></Pause>",
            "<Say> is not allowed inside <Pause>; <Pause> may contain no child elements",
        ),
        ("<Record>hello</Record>", '<Record> takes no text, but has "hello"'),
        ("<Gather>Press 1</Gather>", '<Gather> takes no text, but has "Press 1"; put prompts in'),
        ("<Enqueue>support</Enqueue>", "<Enqueue> is TwiML that this platform does not support"),
        ("<Stream url='wss://x'/>", "<Stream> is TwiML that this platform does not support"),
        ("<Redirect/>", "<Redirect> needs the URL of the next document as its text"),
        ("<Play/>", "<Play> needs the URL of audio to play as its text, or digits"),
        (
            "<Hangup><Say>x</Say></Hangup>",
            "<Say> is not allowed inside <Hangup>; <Hangup> may contain Parameter",
        ),
    ],
)
def test_wrong_nesting_is_refused(body: str, message: str) -> None:
    assert message in body_problem(body).message


def test_text_directly_inside_response_is_refused() -> None:
    error = problem("<Response>\n  Hello <Say>x</Say> there\n</Response>")
    assert error.message == (
        'text "Hello there" is not allowed directly inside <Response>; put spoken text in a <Say>'
    )
    assert (error.line, error.column, error.element) == (1, 1, "Response")


def test_the_root_must_be_response() -> None:
    error = problem('<?xml version="1.0"?>\n<Say>hi</Say>')
    assert error.message == "the root element must be <Response>, not <Say>"
    assert (error.line, error.column) == (2, 1)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            '<Response xmlns="urn:example"/>',
            '<Response> is in the XML namespace "urn:example"; namespaced elements are not',
        ),
        (
            '<Response xmlns:x="urn:x"><x:Say>hi</x:Say></Response>',
            '<x:Say> is in the XML namespace "urn:x"',
        ),
        (
            '<Response xmlns:x="urn:x"><Say x:voice="man">hi</Say></Response>',
            'attribute "x:voice" on <Say> is in the XML namespace "urn:x"; namespaced attributes',
        ),
        (
            '<Response><Say xml:lang="en">hi</Say></Response>',
            'attribute "xml:lang" on <Say> is in the XML namespace',
        ),
    ],
)
def test_foreign_namespaces_are_refused(document: str, message: str) -> None:
    assert problem(document).message.startswith(message)


def test_validate_reports_every_semantic_problem_in_document_order() -> None:
    document = """<Response>
  <Gather numDigits="x" timeout="-2"><Dial>1</Dial></Gather>
  <Dail/>
  <Say loop="many">hi</Say>
</Response>"""
    problems = validate(document, name="d.xml")
    assert [(p.line, p.column, p.attribute) for p in problems] == [
        (2, 3, "numDigits"),
        (2, 3, "timeout"),
        (2, 38, None),
        (3, 3, None),
        (4, 3, "loop"),
    ]
    assert str(problem(document, name="d.xml")) == str(problems[0])


def test_a_valid_document_has_no_problems() -> None:
    assert validate("<Response><Hangup/></Response>") == []


def test_errors_survive_pickling_with_their_location() -> None:
    error = body_problem('<Gather numDigits="x"/>')
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.name, copy.line, copy.column, copy.element, copy.attribute, copy.message) == (
        error.name,
        error.line,
        error.column,
        error.element,
        error.attribute,
        error.message,
    )
    assert str(copy) == str(error)


def test_hangup_and_reject_carry_parameters() -> None:
    assert only('<Hangup><Parameter name="a" value="1"/></Hangup>') == Hangup(
        parameters=(Parameter(name="a", value="1"),)
    )
    assert only('<Reject reason="BUSY"><Parameter name="b"/></Reject>') == Reject(
        reason="busy", parameters=(Parameter(name="b"),)
    )
