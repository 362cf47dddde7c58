"""The TwiML voice model: a document's verbs and the nouns of ``<Dial>``.

Every class is a frozen, slotted dataclass built only by keyword. Fields that come from
TwiML attributes carry ``metadata=attribute(VALUE_TYPE)``: the field name is the
attribute's name in snake_case, the default is Twilio's documented default, and the
value type (see :mod:`.attributes`) says what is valid. Fields without it (``text``,
the ``url`` of ``Play``, ``children`` ...) come from element content.

Every node carries the ``line`` and ``column`` of its start tag so that errors found when
the verb runs can point at it; they take no part in equality or hashing, so a parsed
verb equals one written by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .attributes import (
    BOOLEAN,
    DIGITS,
    LANGUAGE,
    TEXT,
    URL,
    VOICE,
    Choice,
    Integer,
    IntegerOr,
    Keys,
    Tokens,
    attribute,
    in_call_options,
    sid,
)

Method = Literal["GET", "POST"]
GatherInput = Literal["dtmf", "speech"]
RejectReason = Literal["rejected", "busy"]
Trim = Literal["trim-silence", "do-not-trim"]
RecordingEvent = Literal["in-progress", "completed", "absent"]
DialRecord = Literal[
    "do-not-record",
    "record-from-answer",
    "record-from-ringing",
    "record-from-answer-dual",
    "record-from-ringing-dual",
]
RecordingTrack = Literal["both", "inbound", "outbound"]
# The countries whose ringback tone Twilio can play instead of the caller's own.
RingTone = Literal[
    "at", "au", "bg", "br", "be", "ch", "cl", "cn", "cz", "de", "dk", "ee", "es", "fi",
    "fr", "gr", "hu", "il", "in", "it", "lt", "jp", "mx", "my", "nl", "no", "nz", "ph",
    "pl", "pt", "ru", "se", "sg", "th", "uk", "us", "us-old", "tw", "ve", "za",
]  # fmt: skip
CallProgressEvent = Literal["initiated", "ringing", "answered", "completed"]
MachineDetection = Literal["Enable", "DetectMessageEnd"]
Beep = Literal["true", "false", "onEnter", "onExit"]
ConferenceRecord = Literal["do-not-record", "record-from-start"]
ConferenceEvent = Literal[
    "start", "end", "join", "leave", "mute", "hold", "modify", "speaker", "announcement"
]
JitterBufferSize = Literal["off", "small", "medium", "large"]
Region = Literal["us1", "us2", "ie1", "de1", "sg1", "br1", "au1", "jp1", "in1"]

# Attribute value types shared by several verbs and nouns.
_METHOD = attribute(Choice.of(Method))
_URL = attribute(URL)
_TEXT = attribute(TEXT)
_BOOL = attribute(BOOLEAN)
_TRIM = attribute(Choice.of(Trim))
_RECORDING_EVENTS = attribute(Tokens.of(RecordingEvent))
_CALL_PROGRESS_EVENTS = attribute(Tokens.of(CallProgressEvent))
_MACHINE_DETECTION = attribute(Choice.of(MachineDetection))


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """Where an element's start tag is in its document (0 when built by hand)."""

    line: int = field(default=0, compare=False)
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Parameter(Node):
    """A custom ``<Parameter name value>`` of a ``<Client>``, ``<Hangup>`` or ``<Reject>``."""

    name: str = field(metadata=_TEXT)
    value: str = field(default="", metadata=_TEXT)


@dataclass(frozen=True, slots=True, kw_only=True)
class Say(Node):
    """Text to speech. SSML children are accepted and flattened into ``text``."""

    text: str
    voice: str = field(default="man", metadata=attribute(VOICE))
    language: str = field(default="en", metadata=attribute(LANGUAGE))
    # 0 repeats until the call ends.
    loop: int = field(default=1, metadata=attribute(Integer(0)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Play(Node):
    """An audio file (``url``, the element's text) and/or DTMF ``digits`` to send."""

    url: str = ""
    # 0 repeats until the call ends.
    loop: int = field(default=1, metadata=attribute(Integer(0)))
    digits: str | None = field(default=None, metadata=attribute(DIGITS))


@dataclass(frozen=True, slots=True, kw_only=True)
class Pause(Node):
    length: int = field(default=1, metadata=attribute(Integer(1)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Gather(Node):
    """Collect DTMF (and, on Twilio, speech) while the nested prompts play."""

    input: tuple[GatherInput, ...] = field(
        default=("dtmf",), metadata=attribute(Tokens.of(GatherInput))
    )
    # None: the current document's URL.
    action: str | None = field(default=None, metadata=_URL)
    method: Method = field(default="POST", metadata=_METHOD)
    timeout: int = field(default=5, metadata=attribute(Integer(0)))
    # None: the value of timeout.
    speech_timeout: int | Literal["auto"] | None = field(
        default=None, metadata=attribute(IntegerOr("auto", Integer(0)))
    )
    max_speech_time: int = field(default=60, metadata=attribute(Integer(1)))
    profanity_filter: bool = field(default=True, metadata=_BOOL)
    # "": no key finishes the input; it ends by timeout or numDigits.
    finish_on_key: str = field(default="#", metadata=attribute(Keys(single=True)))
    # None: no limit.
    num_digits: int | None = field(default=None, metadata=attribute(Integer(1)))
    partial_result_callback: str | None = field(default=None, metadata=_URL)
    partial_result_callback_method: Method = field(default="POST", metadata=_METHOD)
    language: str = field(default="en-US", metadata=attribute(LANGUAGE))
    hints: str | None = field(default=None, metadata=_TEXT)
    barge_in: bool = field(default=True, metadata=_BOOL)
    debug: bool = field(default=False, metadata=_BOOL)
    action_on_empty_result: bool = field(default=False, metadata=_BOOL)
    speech_model: str | None = field(default=None, metadata=_TEXT)
    enhanced: bool = field(default=False, metadata=_BOOL)
    children: tuple[Say | Play | Pause, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup(Node):
    parameters: tuple[Parameter, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Redirect(Node):
    url: str
    method: Method = field(default="POST", metadata=_METHOD)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject(Node):
    reason: RejectReason = field(default="rejected", metadata=attribute(Choice.of(RejectReason)))
    parameters: tuple[Parameter, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Record(Node):
    # None: the current document's URL.
    action: str | None = field(default=None, metadata=_URL)
    method: Method = field(default="POST", metadata=_METHOD)
    # Seconds of silence that end the recording; 0 never ends it on silence.
    timeout: int = field(default=5, metadata=attribute(Integer(0)))
    finish_on_key: str = field(default="1234567890*#", metadata=attribute(Keys(single=False)))
    max_length: int = field(default=3600, metadata=attribute(Integer(1, 86400)))
    play_beep: bool = field(default=True, metadata=_BOOL)
    trim: Trim = field(default="trim-silence", metadata=_TRIM)
    recording_status_callback: str | None = field(default=None, metadata=_URL)
    recording_status_callback_method: Method = field(default="POST", metadata=_METHOD)
    recording_status_callback_event: tuple[RecordingEvent, ...] = field(
        default=("completed",), metadata=_RECORDING_EVENTS
    )
    transcribe: bool = field(default=False, metadata=_BOOL)
    transcribe_callback: str | None = field(default=None, metadata=_URL)
    recording_configuration_id: str | None = field(default=None, metadata=_TEXT)


@dataclass(frozen=True, slots=True, kw_only=True)
class Number(Node):
    """A phone number or extension to dial; a bare number inside ``<Dial>`` becomes one."""

    number: str
    send_digits: str | None = field(default=None, metadata=attribute(DIGITS))
    # TwiML run on the called party once it answers, before the two are bridged.
    url: str | None = field(default=None, metadata=_URL)
    method: Method = field(default="POST", metadata=_METHOD)
    status_callback_event: tuple[CallProgressEvent, ...] = field(
        default=("completed",), metadata=_CALL_PROGRESS_EVENTS
    )
    status_callback: str | None = field(default=None, metadata=_URL)
    status_callback_method: Method = field(default="POST", metadata=_METHOD)
    byoc: str | None = field(default=None, metadata=attribute(sid("BY")))
    machine_detection: MachineDetection | None = field(default=None, metadata=_MACHINE_DETECTION)
    amd_status_callback: str | None = field(default=None, metadata=_URL)
    amd_status_callback_method: Method = field(default="POST", metadata=_METHOD)
    machine_detection_timeout: int = field(default=30, metadata=attribute(Integer(3, 60)))
    machine_detection_speech_threshold: int = field(
        default=2400, metadata=attribute(Integer(1000, 6000))
    )
    machine_detection_speech_end_threshold: int = field(
        default=1200, metadata=attribute(Integer(500, 5000))
    )
    machine_detection_silence_timeout: int = field(
        default=5000, metadata=attribute(Integer(2000, 10000))
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Client(Node):
    """A client identity, from the element's text or an ``<Identity>`` child."""

    identity: str
    url: str | None = field(default=None, metadata=_URL)
    method: Method = field(default="POST", metadata=_METHOD)
    status_callback_event: tuple[CallProgressEvent, ...] = field(
        default=("completed",), metadata=_CALL_PROGRESS_EVENTS
    )
    status_callback: str | None = field(default=None, metadata=_URL)
    status_callback_method: Method = field(default="POST", metadata=_METHOD)
    parameters: tuple[Parameter, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Sip(Node):
    """A SIP URI (the element's text) to dial."""

    uri: str
    username: str | None = field(default=None, metadata=_TEXT)
    password: str | None = field(default=None, metadata=_TEXT)
    url: str | None = field(default=None, metadata=_URL)
    method: Method = field(default="POST", metadata=_METHOD)
    status_callback_event: tuple[CallProgressEvent, ...] = field(
        default=("completed",), metadata=_CALL_PROGRESS_EVENTS
    )
    status_callback: str | None = field(default=None, metadata=_URL)
    status_callback_method: Method = field(default="POST", metadata=_METHOD)
    machine_detection: MachineDetection | None = field(default=None, metadata=_MACHINE_DETECTION)
    amd_status_callback: str | None = field(default=None, metadata=_URL)
    amd_status_callback_method: Method = field(default="POST", metadata=_METHOD)
    machine_detection_timeout: int = field(default=30, metadata=attribute(Integer(3, 60)))
    machine_detection_speech_threshold: int = field(
        default=2400, metadata=attribute(Integer(1000, 6000))
    )
    machine_detection_speech_end_threshold: int = field(
        default=1200, metadata=attribute(Integer(500, 5000))
    )
    machine_detection_silence_timeout: int = field(
        default=5000, metadata=attribute(Integer(2000, 10000))
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Conference(Node):
    """A named conference room (the element's text) to join."""

    name: str
    muted: bool = field(default=False, metadata=_BOOL)
    beep: Beep = field(default="true", metadata=attribute(Choice.of(Beep)))
    start_conference_on_enter: bool = field(default=True, metadata=_BOOL)
    end_conference_on_exit: bool = field(default=False, metadata=_BOOL)
    # None: the default hold music; "": silence.
    wait_url: str | None = field(default=None, metadata=_URL)
    wait_method: Method = field(default="POST", metadata=_METHOD)
    max_participants: int = field(default=250, metadata=attribute(Integer(2, 250)))
    record: ConferenceRecord = field(
        default="do-not-record", metadata=attribute(Choice.of(ConferenceRecord))
    )
    region: Region | None = field(default=None, metadata=attribute(Choice.of(Region)))
    # The call this participant coaches: only that call hears it.
    coach: str | None = field(default=None, metadata=attribute(sid("CA")))
    trim: Trim = field(default="trim-silence", metadata=_TRIM)
    status_callback_event: tuple[ConferenceEvent, ...] = field(
        default=(), metadata=attribute(Tokens.of(ConferenceEvent))
    )
    status_callback: str | None = field(default=None, metadata=_URL)
    status_callback_method: Method = field(default="POST", metadata=_METHOD)
    recording_status_callback: str | None = field(default=None, metadata=_URL)
    recording_status_callback_method: Method = field(default="POST", metadata=_METHOD)
    recording_status_callback_event: tuple[RecordingEvent, ...] = field(
        default=("completed",), metadata=_RECORDING_EVENTS
    )
    event_callback_url: str | None = field(default=None, metadata=_URL)
    jitter_buffer_size: JitterBufferSize = field(
        default="large", metadata=attribute(Choice.of(JitterBufferSize))
    )
    participant_label: str | None = field(default=None, metadata=_TEXT)
    recording_configuration_id: str | None = field(default=None, metadata=_TEXT)


DialNoun = Number | Client | Sip | Conference


@dataclass(frozen=True, slots=True, kw_only=True)
class Dial(Node):
    """Connect the call to other parties. Parsed and validated; run in a later issue."""

    # None: go on with the next verb when the dialled call ends.
    action: str | None = field(default=None, metadata=_URL)
    method: Method = field(default="POST", metadata=_METHOD)
    timeout: int = field(default=30, metadata=attribute(Integer(1, 600)))
    hangup_on_star: bool = field(default=False, metadata=_BOOL)
    time_limit: int = field(default=14400, metadata=attribute(Integer(1, 86400)))
    caller_id: str | None = field(default=None, metadata=_TEXT)
    record: DialRecord = field(default="do-not-record", metadata=attribute(Choice.of(DialRecord)))
    trim: Trim = field(default="do-not-trim", metadata=_TRIM)
    recording_status_callback: str | None = field(default=None, metadata=_URL)
    recording_status_callback_method: Method = field(default="POST", metadata=_METHOD)
    recording_status_callback_event: tuple[RecordingEvent, ...] = field(
        default=("completed",), metadata=_RECORDING_EVENTS
    )
    recording_configuration_id: str | None = field(default=None, metadata=_TEXT)
    recording_track: RecordingTrack = field(
        default="both", metadata=attribute(Choice.of(RecordingTrack))
    )
    answer_on_bridge: bool = field(default=False, metadata=_BOOL)
    # None: the ringback tone of the caller's country.
    ring_tone: RingTone | None = field(default=None, metadata=attribute(Choice.of(RingTone)))
    sequential: bool = field(default=False, metadata=_BOOL)
    refer_url: str | None = field(default=None, metadata=_URL)
    refer_method: Method = field(default="POST", metadata=_METHOD)
    events: str | None = field(default=None, metadata=_TEXT)
    passports: str | None = field(default=None, metadata=_TEXT)
    # Our extension (not Twilio's): the keys of the `#` flow on this call's legs, e.g.
    # "#=transfer,*=abort"; without it the account's in-call options apply.
    voice_in_call_options: tuple[tuple[str, str], ...] | None = field(
        default=None, metadata=attribute(in_call_options)
    )
    nouns: tuple[DialNoun, ...] = ()


Verb = Say | Play | Pause | Gather | Hangup | Redirect | Reject | Record | Dial


@dataclass(frozen=True, slots=True, kw_only=True)
class Response(Node):
    """A whole TwiML document: the verbs to run in order."""

    verbs: tuple[Verb, ...] = ()
