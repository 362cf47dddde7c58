"""Every document the official twilio package builds for our verbs is accepted.

The twilio helper's methods are introspected with ``inspect.signature``; each one is
called with every keyword parameter set to a sample value, the document it renders is
parsed, and each value is looked up, typed, in the model. A parameter that the sample
table lacks fails the test: when a twilio upgrade adds an attribute, we hear about it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from twilio.twiml import TwiML
from twilio.twiml.voice_response import VoiceResponse

from interpreter.twiml import parse, validate
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


@dataclass(frozen=True)
class Sample:
    """A value to give twilio and, when parsing changes it, the typed value expected."""

    given: Any
    expected: Any = None

    @property
    def typed(self) -> Any:
        return self.given if self.expected is None else self.expected


AUDIO = "https://media.example.com/audio/welcome.mp3"
HOOK = "https://app.example.com/hooks/event"

# Sample value per twilio parameter name, chosen to differ from the TwiML default so
# that a value that did not land cannot pass for one that did.
SAMPLES: dict[str, Sample] = {
    # Say, Play, Pause
    "message": Sample("Welcome to the support line"),
    "voice": Sample("Polly.Joanna"),
    "loop": Sample(3),
    "language": Sample("en-GB"),
    "url": Sample(AUDIO),
    "digits": Sample("1w2#"),
    "length": Sample(4),
    # Gather
    "input": Sample("dtmf speech", ("dtmf", "speech")),
    "action": Sample("/gather-done"),
    "method": Sample("get", "GET"),
    "timeout": Sample(17),
    "speech_timeout": Sample("auto"),
    "max_speech_time": Sample(45),
    "profanity_filter": Sample(False),
    "finish_on_key": Sample("*"),
    "num_digits": Sample(4),
    "partial_result_callback": Sample(HOOK),
    "partial_result_callback_method": Sample("GET"),
    "hints": Sample("billing, technical support"),
    "barge_in": Sample(False),
    "debug": Sample(True),
    "action_on_empty_result": Sample(True),
    "speech_model": Sample("phone_call"),
    "enhanced": Sample(True),
    # Reject, Record
    "reason": Sample("busy"),
    "max_length": Sample(120),
    "play_beep": Sample(False),
    "trim": Sample("do-not-trim"),
    "recording_status_callback": Sample(HOOK),
    "recording_status_callback_method": Sample("get", "GET"),
    "recording_status_callback_event": Sample(
        "in-progress completed absent", ("in-progress", "completed", "absent")
    ),
    "transcribe": Sample(True),
    "transcribe_callback": Sample("/transcribed"),
    "recording_configuration_id": Sample("JX" + "4" * 32),
    # Dial
    "number": Sample("+15551230001"),
    "hangup_on_star": Sample(True),
    "time_limit": Sample(600),
    "caller_id": Sample("+15550100"),
    "record": Sample("record-from-ringing-dual"),
    "answer_on_bridge": Sample(True),
    "ring_tone": Sample("de"),
    "recording_track": Sample("inbound"),
    "sequential": Sample(True),
    "refer_url": Sample("/refer"),
    "refer_method": Sample("GET"),
    "events": Sample("call-progress"),
    "passports": Sample("c2hha2VuLGRpdg=="),
    # Number, Client, Sip
    "phone_number": Sample("+1 (555) 123-0002"),
    "send_digits": Sample("ww1234#"),
    "status_callback_event": Sample(
        "initiated ringing answered", ("initiated", "ringing", "answered")
    ),
    "status_callback": Sample(HOOK),
    "status_callback_method": Sample("GET"),
    "byoc": Sample("BY" + "a" * 32),
    "machine_detection": Sample("DetectMessageEnd"),
    "amd_status_callback": Sample(HOOK),
    "amd_status_callback_method": Sample("GET"),
    "machine_detection_timeout": Sample(45),
    "machine_detection_speech_threshold": Sample(3000),
    "machine_detection_speech_end_threshold": Sample(1500),
    "machine_detection_silence_timeout": Sample(8000),
    "identity": Sample("alice"),
    "client_identity": Sample("bob_42"),
    "sip_url": Sample("sip:carol@pbx.example.com;transport=udp"),
    "username": Sample("carol"),
    "password": Sample("s3cret"),
    # Conference
    "name": Sample("AccountNumber"),
    "muted": Sample(True),
    "beep": Sample("onExit"),
    "start_conference_on_enter": Sample(False),
    "end_conference_on_exit": Sample(True),
    "wait_url": Sample("https://app.example.com/hold.xml"),
    "wait_method": Sample("GET"),
    "max_participants": Sample(12),
    "region": Sample("ie1"),
    "coach": Sample("CA" + "b" * 32),
    "event_callback_url": Sample(HOOK),
    "jitter_buffer_size": Sample("small"),
    "participant_label": Sample("agent-7"),
    # Parameter
    "value": Sample("12345"),
    # SSML inside Say: checked to be accepted; only the words reach the model.
    "words": Sample("one two three"),
    "strength": Sample("strong"),
    "time": Sample("500ms"),
    "level": Sample("reduced"),
    "xml_lang": Sample("fr-FR"),
    "alphabet": Sample("ipa"),
    "ph": Sample("pɪˈkɑːn"),
    "volume": Sample("loud"),
    "rate": Sample("slow"),
    "pitch": Sample("high"),
    "interpret_as": Sample("characters"),
    "format": Sample("mdy"),
    "role": Sample("amazon:VBD"),
    "alias": Sample("World Wide Web Consortium"),
}

# Where one name means different things on different elements.
OVERRIDES: dict[tuple[str, str], Sample] = {
    ("Response.dial", "trim"): Sample("trim-silence"),
    ("Dial.conference", "name"): Sample("support-room"),
    ("Dial.conference", "record"): Sample("record-from-start"),
    ("Dial.conference", "status_callback_event"): Sample(
        "start end join leave mute hold modify speaker announcement",
        ("start", "end", "join", "leave", "mute", "hold", "modify", "speaker", "announcement"),
    ),
}

# twilio parameters that are element content, not attributes, in our model.
FIELD_FOR = {
    "message": "text",
    "phone_number": "number",
    "sip_url": "uri",
    "client_identity": "identity",
}


def keyword_parameters(method: Callable[..., Any]) -> list[str]:
    """Every parameter a twilio method takes by name (not ``self`` or ``**kwargs``)."""
    return [
        p.name
        for p in inspect.signature(method).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]


def sample(label: str, parameter: str) -> Sample:
    return OVERRIDES.get((label, parameter)) or SAMPLES[parameter]


def samples_for(label: str, method: Callable[..., Any]) -> dict[str, Sample]:
    names = keyword_parameters(method)
    missing = [n for n in names if (label, n) not in OVERRIDES and n not in SAMPLES]
    if missing:
        pytest.fail(f"twilio's {label} offers {missing}; add sample values to SAMPLES")
    return {name: sample(label, name) for name in names}


@dataclass(frozen=True)
class Case:
    """One twilio method: the element it is called on, and where its node lands."""

    label: str
    parent: Callable[[VoiceResponse], TwiML]
    method: str
    node: Callable[[Response], Any]


def _top(response: Response) -> Any:
    return response.verbs[0]


def _prompt(response: Response) -> Any:
    return response.verbs[0].children[0]


def _noun(response: Response) -> Any:
    return response.verbs[0].nouns[0]


def _parameter(response: Response) -> Any:
    return response.verbs[0].parameters[0]


def _client_parameter(response: Response) -> Any:
    return response.verbs[0].nouns[0].parameters[0]


CASES = [
    *(
        Case(f"Response.{name}", lambda r: r, name, _top)
        for name in ("say", "play", "pause", "gather", "hangup", "redirect", "reject", "record")
    ),
    Case("Response.dial", lambda r: r, "dial", _top),
    *(
        Case(f"Gather.{name}", lambda r: r.gather(), name, _prompt)
        for name in ("say", "play", "pause")
    ),
    *(
        Case(f"Dial.{name}", lambda r: r.dial(), name, _noun)
        for name in ("number", "client", "sip", "conference")
    ),
    Case("Client.identity", lambda r: r.dial().client(), "identity", _noun),
    Case("Client.parameter", lambda r: r.dial().client("dave"), "parameter", _client_parameter),
    Case("Hangup.parameter", lambda r: r.hangup(), "parameter", _parameter),
    Case("Reject.parameter", lambda r: r.reject(), "parameter", _parameter),
]


def build(case: Case) -> tuple[str, dict[str, Sample]]:
    response = VoiceResponse()
    parent = case.parent(response)
    method = getattr(parent, case.method)
    samples = samples_for(case.label, method)
    method(**{name: s.given for name, s in samples.items()})
    return str(response), samples


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.label)
def test_every_parameter_is_accepted_and_typed(case: Case) -> None:
    document, samples = build(case)
    node = case.node(parse(document))
    for name, s in samples.items():
        if case.label == "Response.dial" and name == "number":
            assert node.nouns == (Number(number=s.typed),), document
            continue
        field = FIELD_FOR.get(name, name)
        assert getattr(node, field) == s.typed, f"{field} of {document}"


def test_the_sample_table_covers_every_parameter_twilio_offers() -> None:
    missing = []
    for case in CASES:
        parent = case.parent(VoiceResponse())
        for name in keyword_parameters(getattr(parent, case.method)):
            if (case.label, name) not in OVERRIDES and name not in SAMPLES:
                missing.append(f"{case.label}({name})")
    assert not missing, f"add sample values for: {', '.join(missing)}"


# ------------------------------------------------------------------------------ SSML


def ssml_methods(owner: type) -> list[str]:
    """The SSML element builders a twilio class defines (``break_``, ``say_as`` ...)."""
    return sorted(
        name
        for name, member in vars(owner).items()
        if inspect.isfunction(member) and not name.startswith("_")
    )


def ssml_cases() -> list[tuple[str, str | None]]:
    """(Say method, nested method or None) for every SSML element and nesting twilio builds."""
    say = VoiceResponse().say("x")
    cases: list[tuple[str, str | None]] = []
    for outer in ssml_methods(type(say)):
        cases.append((outer, None))
        container = type(getattr(say, outer)(**ssml_arguments(getattr(say, outer))))
        cases.extend((outer, inner) for inner in ssml_methods(container))
    return cases


def ssml_arguments(method: Callable[..., Any]) -> dict[str, Any]:
    return {name: s.given for name, s in samples_for("Say.ssml", method).items()}


@pytest.mark.parametrize(
    ("outer", "inner"),
    ssml_cases(),
    ids=[f"{outer}.{inner}" if inner else outer for outer, inner in ssml_cases()],
)
def test_every_ssml_element_twilio_builds_is_accepted(outer: str, inner: str | None) -> None:
    response = VoiceResponse()
    say = response.say("Hello")
    element = getattr(say, outer)(**ssml_arguments(getattr(say, outer)))
    if inner is not None:
        getattr(element, inner)(**ssml_arguments(getattr(element, inner)))
    document = str(response)
    assert validate(document) == []
    (parsed,) = parse(document).verbs
    assert parsed.text.startswith("Hello"), document
    if "words" in keyword_parameters(getattr(say, outer)):
        assert SAMPLES["words"].given in parsed.text, document


def test_ssml_cases_cover_twilio_ssml_elements() -> None:
    outers = {outer for outer, _ in ssml_cases()}
    assert outers == {
        "break_", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say_as", "sub", "w"
    }  # fmt: skip


# ------------------------------------------------------------------- all at once


def test_one_document_with_everything_is_valid() -> None:
    response = VoiceResponse()
    for case in CASES:
        method = getattr(case.parent(response), case.method)
        method(**{name: s.given for name, s in samples_for(case.label, method).items()})
    document = response.to_xml()
    assert validate(document) == []
    assert validate(document.encode("utf-8")) == []
    assert len(parse(document).verbs) == len(response.verbs)


# --------------------------------------------------------- defaults, one per verb


def only(build: Callable[[VoiceResponse], Any]) -> Any:
    """The single verb of the document that ``build`` makes with twilio."""
    response = VoiceResponse()
    build(response)
    (verb,) = parse(str(response)).verbs
    return verb


def test_say_defaults() -> None:
    assert only(lambda r: r.say("Hi")) == Say(text="Hi", voice="man", language="en", loop=1)


def test_play_defaults() -> None:
    assert only(lambda r: r.play(AUDIO)) == Play(url=AUDIO, loop=1, digits=None)


def test_pause_defaults() -> None:
    assert only(lambda r: r.pause()) == Pause(length=1)


def test_gather_defaults() -> None:
    assert only(lambda r: r.gather()) == Gather(
        input=("dtmf",),
        action=None,
        method="POST",
        timeout=5,
        speech_timeout=None,
        max_speech_time=60,
        profanity_filter=True,
        finish_on_key="#",
        num_digits=None,
        partial_result_callback=None,
        partial_result_callback_method="POST",
        language="en-US",
        hints=None,
        barge_in=True,
        debug=False,
        action_on_empty_result=False,
        speech_model=None,
        enhanced=False,
        children=(),
    )


def test_hangup_defaults() -> None:
    assert only(lambda r: r.hangup()) == Hangup(parameters=())


def test_redirect_defaults() -> None:
    assert only(lambda r: r.redirect("/next")) == Redirect(url="/next", method="POST")


def test_reject_defaults() -> None:
    assert only(lambda r: r.reject()) == Reject(reason="rejected", parameters=())


def test_record_defaults() -> None:
    assert only(lambda r: r.record()) == Record(
        action=None,
        method="POST",
        timeout=5,
        finish_on_key="1234567890*#",
        max_length=3600,
        play_beep=True,
        trim="trim-silence",
        recording_status_callback=None,
        recording_status_callback_method="POST",
        recording_status_callback_event=("completed",),
        transcribe=False,
        transcribe_callback=None,
        recording_configuration_id=None,
    )


def test_dial_defaults() -> None:
    assert only(lambda r: r.dial("101")) == Dial(
        action=None,
        method="POST",
        timeout=30,
        hangup_on_star=False,
        time_limit=14400,
        caller_id=None,
        record="do-not-record",
        trim="do-not-trim",
        recording_status_callback=None,
        recording_status_callback_method="POST",
        recording_status_callback_event=("completed",),
        recording_configuration_id=None,
        recording_track="both",
        answer_on_bridge=False,
        ring_tone=None,
        sequential=False,
        refer_url=None,
        refer_method="POST",
        events=None,
        passports=None,
        nouns=(Number(number="101"),),
    )


def dialled(build: Callable[[Any], Any]) -> Any:
    (noun,) = only(lambda r: build(r.dial())).nouns
    return noun


AMD_DEFAULTS = {
    "machine_detection": None,
    "amd_status_callback": None,
    "amd_status_callback_method": "POST",
    "machine_detection_timeout": 30,
    "machine_detection_speech_threshold": 2400,
    "machine_detection_speech_end_threshold": 1200,
    "machine_detection_silence_timeout": 5000,
}


def test_number_defaults() -> None:
    assert dialled(lambda dial: dial.number("+15550123")) == Number(
        number="+15550123",
        send_digits=None,
        url=None,
        method="POST",
        status_callback_event=("completed",),
        status_callback=None,
        status_callback_method="POST",
        byoc=None,
        **AMD_DEFAULTS,
    )


def test_client_defaults() -> None:
    assert dialled(lambda dial: dial.client("alice")) == Client(
        identity="alice",
        url=None,
        method="POST",
        status_callback_event=("completed",),
        status_callback=None,
        status_callback_method="POST",
        parameters=(),
    )


def test_sip_defaults() -> None:
    assert dialled(lambda dial: dial.sip("sip:bob@example.com")) == Sip(
        uri="sip:bob@example.com",
        username=None,
        password=None,
        url=None,
        method="POST",
        status_callback_event=("completed",),
        status_callback=None,
        status_callback_method="POST",
        **AMD_DEFAULTS,
    )


def test_conference_defaults() -> None:
    assert dialled(lambda dial: dial.conference("room")) == Conference(
        name="room",
        muted=False,
        beep="true",
        start_conference_on_enter=True,
        end_conference_on_exit=False,
        wait_url=None,
        wait_method="POST",
        max_participants=250,
        record="do-not-record",
        region=None,
        coach=None,
        trim="trim-silence",
        status_callback_event=(),
        status_callback=None,
        status_callback_method="POST",
        recording_status_callback=None,
        recording_status_callback_method="POST",
        recording_status_callback_event=("completed",),
        event_callback_url=None,
        jitter_buffer_size="large",
        participant_label=None,
        recording_configuration_id=None,
    )


def test_parameter_value_defaults_to_empty() -> None:
    hangup = only(lambda r: r.hangup().parameter(name="reason"))
    assert hangup.parameters == (Parameter(name="reason", value=""),)
