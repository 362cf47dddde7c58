"""Running a TwiML script: the pure step function `(state, event) -> (state, actions)`.

Nothing here does I/O or reads a clock. A script advances only when an event arrives
(the call started, a document was fetched, a prompt finished, digits were collected,
a recording ended, the call hung up) and answers with actions for the imperative shell
(`interpreter.runner`): media commands for the node, a document to fetch, a status
callback to send, and notes for the call's event log. The state is plain data that
round-trips through JSON, so a script survives any worker restart.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from email.utils import formatdate
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urljoin

from interpreter.twiml import parser
from interpreter.twiml.errors import TwimlError
from interpreter.twiml.verbs import (
    Client,
    Conference,
    Dial,
    Gather,
    Hangup,
    Pause,
    Play,
    Record,
    Redirect,
    Reject,
    Response,
    Say,
    Sip,
)

API_VERSION = "2010-04-01"
APPLICATION_ERROR_SPEECH = "We are sorry, an application error has occurred. Goodbye."

# Twilio's error codes for what can go wrong fetching and running a document.
ERROR_HTTP = 11200  # HTTP retrieval failure
ERROR_CONNECTION = 11205  # HTTP connection failure
ERROR_BAD_HOST = 11210  # HTTP bad host name
ERROR_REDIRECTS = 11215  # HTTP too many redirects
ERROR_INVALID_URL = 11100  # invalid URL format
ERROR_TOO_LARGE = 11750  # response body too large
ERROR_PARSE = 12100  # document parse failure
ERROR_CONTENT_TYPE = 12300  # invalid content type
ERROR_NO_URL = 21201  # no voice URL configured for the number
ERROR_UNSUPPORTED = 13201  # a verb this platform does not run yet

# From the webhook client's failure kinds to Twilio's codes.
FETCH_ERRORS = {
    "timeout": ERROR_CONNECTION,
    "connection-failed": ERROR_CONNECTION,
    "address-refused": ERROR_BAD_HOST,
    "invalid-url": ERROR_INVALID_URL,
    "http-status": ERROR_HTTP,
    "redirect-loop": ERROR_REDIRECTS,
    "too-many-redirects": ERROR_REDIRECTS,
    "too-large": ERROR_TOO_LARGE,
    "unsupported-content-type": ERROR_CONTENT_TYPE,
}

# Documents fetched in a row without running a verb that waits (Redirect to Redirect
# ...): beyond this the script is stopped as an application error.
MAX_FETCH_CHAIN = 20

END_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


# ---------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What the script knows of its call and where its number's webhooks point."""

    sid: str
    account_sid: str
    from_number: str
    to_number: str
    direction: str = "inbound"
    voice_url: str | None = None
    voice_method: str = "POST"
    fallback_url: str | None = None
    fallback_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    parent_call_sid: str | None = None


@dataclass(frozen=True, slots=True)
class Fetch:
    """Action: request a document; its result comes back as a `Fetched` event."""

    id: int
    url: str
    method: str
    params: dict[str, str]
    purpose: Literal["voice", "fallback", "action", "redirect"]
    type: str = "fetch"


@dataclass(frozen=True, slots=True)
class Waiting:
    """What the script waits for: a fetch result, or the end of a media command."""

    kind: Literal["fetch", "media", "hangup", "dial"]
    fetch: Fetch | None = None
    ref: str | None = None
    verb: str | None = None
    action: str | None = None
    method: str = "POST"
    action_on_empty_result: bool = False


@dataclass(frozen=True, slots=True)
class ScriptState:
    call: CallInfo
    status: str = "ringing"
    answered: bool = False
    answered_at: float | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    twiml: str | None = None
    document_url: str | None = None
    pc: int = 0
    waiting: Waiting | None = None
    counter: int = 0
    on_fallback: bool = False
    fetch_chain: int = 0
    callbacks_sent: int = 0
    # The <Dial> in progress: {"ref", "pending": [sids], "answered": sid | None,
    # "answered_at", "failures": [statuses], "ringback": ref | None}.
    dial: dict[str, Any] | None = None
    # <Dial record>'s recording: {"ref", "sid", "channels", "trim", "from", "started_at",
    # "callback", "method", "events", "done": {sid, url, duration} | None}. Outlives the
    # Dial (its record_done may come after the hang-up).
    call_recording: dict[str, Any] | None = None

    @property
    def ended(self) -> bool:
        return self.status in END_STATUSES

    @property
    def document(self) -> Response | None:
        return _parse_cached(self.twiml, self.document_url or "") if self.twiml else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScriptState:
        waiting = data.get("waiting")
        if waiting is not None:
            fetch = waiting.get("fetch")
            waiting = Waiting(**{**waiting, "fetch": Fetch(**fetch) if fetch else None})
        return cls(**{**data, "call": CallInfo(**data["call"]), "waiting": waiting})


@lru_cache(maxsize=512)
def _parse_cached(twiml: str, url: str) -> Response:
    return parser.parse(twiml, name=url or "<document>")


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Start:
    at: float


@dataclass(frozen=True, slots=True)
class Fetched:
    """The result of a `Fetch`, as the shell got it."""

    fetch_id: int
    ok: bool
    url: str
    status: int | None = None
    content_type: str | None = None
    body: str = ""
    error: str | None = None
    error_code: str | None = None
    audio: bool = False
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class Answered:
    at: float


@dataclass(frozen=True, slots=True)
class PromptDone:
    ref: str
    at: float


@dataclass(frozen=True, slots=True)
class Collected:
    ref: str
    digits: str
    reason: str
    at: float
    finish_key: str | None = None


@dataclass(frozen=True, slots=True)
class RecordDone:
    ref: str
    recording_sid: str
    recording_url: str
    duration: int
    digits: str
    reason: str
    at: float
    channels: int = 1


@dataclass(frozen=True, slots=True)
class HungUp:
    cause: str
    at: float


@dataclass(frozen=True, slots=True)
class DialAnswered:
    """A leg placed by <Dial> answered."""

    ref: str
    child: str
    at: float


@dataclass(frozen=True, slots=True)
class DialEnded:
    """A leg placed by <Dial> ended; `status` is its final CallStatus."""

    ref: str
    child: str
    status: str
    duration: int
    at: float


@dataclass(frozen=True, slots=True)
class Pressed:
    """A key the caller pressed outside a digit collection."""

    digit: str
    at: float


@dataclass(frozen=True, slots=True)
class ConferenceLeft:
    """The call left the conference of its <Dial><Conference> (or never got in)."""

    ref: str
    conference_sid: str | None
    reason: str
    at: float


Event = (
    Pressed
    | ConferenceLeft
    | Start
    | Fetched
    | Answered
    | PromptDone
    | Collected
    | RecordDone
    | HungUp
    | DialAnswered
    | DialEnded
)


# -------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Command:
    """Action: a media command for the node that has the call."""

    payload: dict[str, Any]
    type: str = "command"


@dataclass(frozen=True, slots=True)
class Notify:
    """Action: a status callback request (nothing comes back)."""

    url: str
    method: str
    params: dict[str, str]
    type: str = "notify"


@dataclass(frozen=True, slots=True)
class Note:
    """Action: an entry for the call's event log (verbs run, errors, status changes)."""

    kind: str
    data: dict[str, Any]
    type: str = "note"


@dataclass(frozen=True, slots=True)
class Originate:
    """Action: place a new leg for <Dial> (the shell makes its call row and sends the
    originate command on it). `target` is {"number": N} | {"client": name} |
    {"uri": U}; the shell turns a number or client of the account's extensions into
    the extension."""

    child: str
    ref: str
    target: dict[str, str]
    caller_id: str
    timeout: int
    # The keys of the `#` flow for this leg (from `voiceInCallOptions`), else the account's.
    in_call_options: dict[str, str] | None = None
    time_limit: int | None = None  # seconds from the answer
    type: str = "originate"


@dataclass(frozen=True, slots=True)
class HangupCall:
    """Action: end another call of this script's (a <Dial> leg)."""

    sid: str
    type: str = "hangup_call"


@dataclass(frozen=True, slots=True)
class JoinConference:
    """Action: put the call in the account's conference called `name` (the shell finds or
    opens it, enforces its limits and sends the media commands and status callbacks)."""

    ref: str
    name: str
    muted: bool
    beep: str
    start_on_enter: bool
    end_on_exit: bool
    wait_url: str | None
    max_participants: int
    status_callback: str | None
    status_callback_method: str
    status_callback_events: tuple[str, ...]
    coach: str | None
    type: str = "join_conference"


Action = Command | Fetch | Notify | Note | Originate | HangupCall | JoinConference


@dataclass
class _Step:
    """The state being built while one event is processed, and the actions so far."""

    state: ScriptState
    actions: list[Action] = field(default_factory=list)
    now: float = 0.0  # the time of the event being processed

    def set(self, **changes: Any) -> None:
        self.state = replace(self.state, **changes)

    def ref(self) -> str:
        self.set(counter=self.state.counter + 1)
        return f"r{self.state.counter}"

    def command(self, type_: str, **payload: Any) -> None:
        self.actions.append(Command({"type": type_, **payload}))

    def note(self, kind: str, **data: Any) -> None:
        self.actions.append(Note(kind, data))


# ---------------------------------------------------------------------- step itself


def new_state(call: CallInfo) -> ScriptState:
    return ScriptState(call=call)


def step(state: ScriptState, event: Event) -> tuple[ScriptState, list[Action]]:
    """Apply one event to a script; return the new state and what the shell must do."""
    work = _Step(state, now=getattr(event, "at", 0.0) or 0.0)
    match event:
        case Start():
            _start(work)
        case Fetched():
            _fetched(work, event)
        case Answered(at=at):
            if not work.state.ended:
                work.set(answered_at=at, status="in-progress")
                work.note("status", status="in-progress")
        case PromptDone(ref=ref):
            if _waiting_for(work.state, ref):
                work.set(waiting=None)
                _run(work)
        case Collected():
            _collected(work, event)
        case RecordDone():
            _recorded(work, event)
        case HungUp():
            _hung_up(work, event)
        case DialAnswered():
            _dial_answered(work, event)
        case DialEnded():
            _dial_ended(work, event)
        case ConferenceLeft():
            _conference_left(work, event)
        case Pressed(digit="*"):
            dial = work.state.dial
            if dial and dial.get("hangup_on_star") and dial["answered"]:
                # hangupOnStar: the caller ends the dialled call and its script goes on.
                work.note("dial", hangup_on_star=dial["answered"])
                work.actions.append(HangupCall(dial["answered"]))
    return work.state, work.actions


def _waiting_for(state: ScriptState, ref: str) -> bool:
    waiting = state.waiting
    return waiting is not None and waiting.kind == "media" and waiting.ref == ref


def _start(work: _Step) -> None:
    call = work.state.call
    if not call.voice_url:
        work.note("error", code=ERROR_NO_URL, message=f"no voice URL is set for {call.to_number}")
        _application_error(work)
        return
    _fetch(work, call.voice_url, call.voice_method, {}, "voice")


def _fetch(work: _Step, url: str, method: str, extra: dict[str, str], purpose: str) -> None:
    if work.state.fetch_chain >= MAX_FETCH_CHAIN:
        work.note(
            "error",
            code=ERROR_HTTP,
            message=f"{MAX_FETCH_CHAIN} documents fetched in a row without a verb that waits "
            "(a Redirect loop?); ending the call",
            url=url,
        )
        work.set(fetch_chain=0, on_fallback=True)
        _application_error(work)
        return
    work.set(counter=work.state.counter + 1, fetch_chain=work.state.fetch_chain + 1)
    fetch = Fetch(
        id=work.state.counter,
        url=url,
        method=method,
        params={**call_params(work.state), **extra},
        purpose=purpose,  # type: ignore[arg-type]
    )
    work.set(waiting=Waiting(kind="fetch", fetch=fetch))
    work.actions.append(fetch)


def call_params(state: ScriptState) -> dict[str, str]:
    """Twilio's standard request parameters for this call, as of now."""
    call = state.call
    params = {
        "AccountSid": call.account_sid,
        "ApiVersion": API_VERSION,
        "CallSid": call.sid,
        "CallStatus": state.status,
        "Called": call.to_number,
        "Caller": call.from_number,
        "Direction": call.direction,
        "From": call.from_number,
        "To": call.to_number,
    }
    if call.parent_call_sid:
        params["ParentCallSid"] = call.parent_call_sid
    return params


def _fetched(work: _Step, result: Fetched) -> None:
    waiting = work.state.waiting
    if waiting is None or waiting.kind != "fetch" or waiting.fetch.id != result.fetch_id:
        return  # a stale result: the call moved on (hung up, or was redirected)
    fetch = waiting.fetch
    work.set(waiting=None)
    if work.state.ended:
        return  # e.g. the action of a recording cut short by a hangup: nothing to run
    if not result.ok:
        code = FETCH_ERRORS.get(result.error_code or "", ERROR_HTTP)
        _document_failed(work, fetch, result.url, code, result.error or "request failed")
        return
    if result.audio:
        # Twilio plays an audio file returned in place of TwiML.
        twiml = f"<Response><Play>{_xml_escape(result.url)}</Play></Response>"
    else:
        twiml = result.body
    try:
        _parse_cached(twiml, result.url)
    except TwimlError as error:
        _document_failed(work, fetch, result.url, ERROR_PARSE, str(error))
        return
    work.set(twiml=twiml, document_url=result.url, pc=0)
    _run(work)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _document_failed(work: _Step, fetch: Fetch, url: str, code: int, message: str) -> None:
    work.note("error", code=code, message=message, url=url, purpose=fetch.purpose)
    call = work.state.call
    if call.fallback_url and not work.state.on_fallback:
        work.set(on_fallback=True)
        _fetch(
            work,
            call.fallback_url,
            call.fallback_method,
            {"ErrorCode": str(code), "ErrorUrl": url},
            "fallback",
        )
        return
    _application_error(work)


def _application_error(work: _Step) -> None:
    """Twilio's behaviour when no document can run: say so and end the call."""
    _answer(work)
    work.command(
        "say",
        ref=work.ref(),
        text=APPLICATION_ERROR_SPEECH,
        voice="woman",
        language="en-US",
        loop=1,
    )
    _hangup(work, "application-error")


def _answer(work: _Step) -> None:
    if not work.state.answered:
        work.command("answer")
        work.set(answered=True)


def _hangup(work: _Step, reason: str) -> None:
    work.command("hangup", reason=reason)
    work.set(waiting=Waiting(kind="hangup"), end_reason=work.state.end_reason or reason)


def _resolve(work: _Step, url: str) -> str:
    return urljoin(work.state.document_url or "", url) if url else (work.state.document_url or "")


def _prompt(work: _Step, verb: Say | Play | Pause) -> dict[str, Any]:
    match verb:
        case Say():
            return {
                "type": "say",
                "text": verb.text,
                "voice": verb.voice,
                "language": verb.language,
                "loop": verb.loop,
            }
        case Play() if verb.digits and not verb.url:
            return {"type": "send_dtmf", "digits": verb.digits}
        case Play():
            return {"type": "play", "url": _resolve(work, verb.url), "loop": verb.loop}
        case Pause():
            return {"type": "pause", "length": verb.length}
    raise AssertionError(verb)


def _run(work: _Step) -> None:
    """Run verbs from the current position until one has to wait, or the script ends."""
    while not work.state.ended and work.state.waiting is None:
        document = work.state.document
        if document is None:
            return
        if work.state.pc >= len(document.verbs):
            _answer(work)  # a document that says nothing is answered, then hung up
            _hangup(work, "end-of-script")
            return
        verb = document.verbs[work.state.pc]
        work.set(pc=work.state.pc + 1)
        work.note("verb", verb=type(verb).__name__, line=verb.line, url=work.state.document_url)
        _execute(work, verb)


def _execute(work: _Step, verb: Any) -> None:
    match verb:
        case Reject(reason=reason):
            if work.state.answered:
                _hangup(work, "rejected")
            else:
                work.command("reject", reason=reason)
                work.set(
                    waiting=Waiting(kind="hangup"),
                    end_reason="busy" if reason == "busy" else "rejected",
                )
        case Say() | Play() | Pause():
            _answer(work)
            ref = work.ref()
            work.actions.append(Command({**_prompt(work, verb), "ref": ref}))
            _wait(work, Waiting(kind="media", ref=ref, verb=type(verb).__name__))
        case Gather():
            _gather(work, verb)
        case Record():
            _record(work, verb)
        case Redirect(url=url, method=method):
            _fetch(work, _resolve(work, url), method, {}, "redirect")
        case Hangup():
            _answer(work)
            _hangup(work, "hangup-verb")
        case Dial():
            _dial(work, verb)


def _wait(work: _Step, waiting: Waiting) -> None:
    work.set(waiting=waiting, fetch_chain=0)


def _gather(work: _Step, gather: Gather) -> None:
    _answer(work)
    ref = work.ref()
    work.command(
        "collect",
        ref=ref,
        prompts=[_prompt(work, child) for child in gather.children],
        finish_on_key=gather.finish_on_key,
        num_digits=gather.num_digits,
        timeout=gather.timeout,
        inter_digit_timeout=gather.timeout,
        barge_in=gather.barge_in,
    )
    _wait(
        work,
        Waiting(
            kind="media",
            ref=ref,
            verb="Gather",
            action=_resolve(work, gather.action or ""),
            method=gather.method,
            action_on_empty_result=gather.action_on_empty_result,
        ),
    )


def _collected(work: _Step, event: Collected) -> None:
    waiting = work.state.waiting
    if not _waiting_for(work.state, event.ref) or event.reason == "hangup":
        return
    work.set(waiting=None)
    work.note("gather", digits=event.digits, reason=event.reason)
    if event.digits or waiting.action_on_empty_result:
        extra = {"Digits": event.digits}
        if event.finish_key:
            extra["FinishedOnKey"] = event.finish_key
        _fetch(work, waiting.action, waiting.method, extra, "action")
        return
    _run(work)


def _record(work: _Step, record: Record) -> None:
    _answer(work)
    ref = work.ref()
    work.command(
        "record",
        ref=ref,
        max_length=record.max_length,
        timeout=record.timeout,
        finish_on_key=record.finish_on_key,
        play_beep=record.play_beep,
        trim=record.trim == "trim-silence",
    )
    _wait(
        work,
        Waiting(
            kind="media",
            ref=ref,
            verb="Record",
            action=_resolve(work, record.action or ""),
            method=record.method,
        ),
    )


def _recorded(work: _Step, event: RecordDone) -> None:
    recording = work.state.call_recording
    if recording is not None and recording["ref"] == event.ref:
        _call_recorded(work, recording, event)
        return
    waiting = work.state.waiting
    if not _waiting_for(work.state, event.ref):
        return
    work.set(waiting=None)
    work.note("record", recording_sid=event.recording_sid, duration=event.duration)
    if event.duration <= 0:
        _run(work)  # Twilio does not request the action for an empty recording
        return
    _fetch(
        work,
        waiting.action,
        waiting.method,
        {
            "RecordingUrl": event.recording_url,
            "RecordingSid": event.recording_sid,
            "RecordingDuration": str(event.duration),
            "Digits": event.digits or ("hangup" if event.reason == "hangup" else ""),
        },
        "action",
    )


def child_sid(parent: str, ref: str, index: int) -> str:
    """The sid of a <Dial> leg: derived, so that a replayed step makes the same one."""
    return "CA" + hashlib.md5(f"{parent}/{ref}/{index}".encode()).hexdigest()


def recording_sid(call: str, ref: str) -> str:
    """The sid of the recording a media command `ref` makes: known before it ends."""
    return "RE" + hashlib.md5(f"{call}/{ref}".encode()).hexdigest()


def _start_call_recording(work: _Step) -> None:
    """<Dial record>: record what the caller says and hears (mixed, or two channels)."""
    recording = work.state.call_recording
    if recording is None or recording["started_at"] is not None:
        return
    work.command(
        "record",
        ref=recording["ref"],
        max_length=recording["max_length"],
        timeout=0,
        finish_on_key="",
        play_beep=False,
        trim=recording["trim"],
        mode="call",
        channels=recording["channels"],
    )
    work.set(call_recording={**recording, "started_at": work.now})
    work.note("record", recording_sid=recording["sid"], status="in-progress")
    _recording_callback(work, work.state.call_recording, "in-progress", None)


def _call_recorded(work: _Step, recording: dict[str, Any], event: RecordDone) -> None:
    done = {"sid": event.recording_sid, "url": event.recording_url, "duration": event.duration}
    work.set(call_recording={**recording, "done": done})
    work.note("record", recording_sid=event.recording_sid, duration=event.duration)
    status = "completed" if event.duration > 0 else "absent"
    _recording_callback(work, work.state.call_recording, status, event)
    dial = work.state.dial
    if dial is not None and dial.get("result"):
        _dial_finish(work, *dial["result"])


def _recording_callback(
    work: _Step, recording: dict[str, Any], status: str, event: RecordDone | None
) -> None:
    if not recording["callback"] or status not in recording["events"]:
        return
    call = work.state.call
    params = {
        "AccountSid": call.account_sid,
        "CallSid": call.sid,
        "RecordingSid": recording["sid"],
        "RecordingStatus": status,
        "RecordingChannels": str(recording["channels"]),
        "RecordingSource": "DialVerb",
        "RecordingTrack": "both",
        "RecordingStartTime": formatdate(recording["started_at"], usegmt=True),
        "ErrorCode": "0",
    }
    if event is not None:
        params["RecordingUrl"] = event.recording_url
        params["RecordingDuration"] = str(event.duration)
    work.actions.append(Notify(recording["callback"], recording["method"], params))


def _conference(work: _Step, dial: Dial, room: Conference) -> None:
    _answer(work)
    ref = work.ref()
    work.actions.append(
        JoinConference(
            ref=ref,
            name=room.name,
            muted=room.muted,
            beep=room.beep,
            start_on_enter=room.start_conference_on_enter,
            end_on_exit=room.end_conference_on_exit,
            wait_url=room.wait_url,
            max_participants=room.max_participants,
            status_callback=_resolve(work, room.status_callback) if room.status_callback else None,
            status_callback_method=room.status_callback_method,
            status_callback_events=tuple(room.status_callback_event),
            coach=room.coach,
        )
    )
    _wait(
        work,
        Waiting(
            kind="dial",
            ref=ref,
            verb="Conference",
            action=_resolve(work, dial.action) if dial.action else None,
            method=dial.method,
        ),
    )


def _conference_left(work: _Step, event: ConferenceLeft) -> None:
    waiting = work.state.waiting
    if waiting is None or waiting.kind != "dial" or waiting.ref != event.ref:
        return
    work.set(waiting=None)
    work.note("conference_left", conference=event.conference_sid, reason=event.reason)
    if work.state.ended:
        return
    if waiting.action:
        extra = {"ConferenceSid": event.conference_sid or "", "ConferenceLeaveReason": event.reason}
        _fetch(work, waiting.action, waiting.method, extra, "action")
        return
    _run(work)


def _dial(work: _Step, dial: Dial) -> None:
    rooms = [noun for noun in dial.nouns if isinstance(noun, Conference)]
    if rooms:
        _conference(work, dial, rooms[0])
        return
    targets: list[dict[str, str]] = []
    for noun in dial.nouns:
        match noun:
            case Client():
                targets.append({"client": noun.identity})
            case Sip():
                targets.append({"uri": noun.uri})
            case _:
                targets.append({"number": noun.number})
    if not targets:
        work.note("error", code=ERROR_UNSUPPORTED, message=f"line {dial.line}: nothing to dial")
        return
    if not dial.answer_on_bridge:
        _answer(work)
    ref = work.ref()
    call = work.state.call
    caller_id = dial.caller_id or (
        call.to_number if call.direction == "inbound" else call.from_number
    )
    pending = []
    for index, target in enumerate(targets):
        child = child_sid(call.sid, ref, index)
        pending.append(child)
        options = dict(dial.voice_in_call_options) if dial.voice_in_call_options else None
        work.actions.append(
            Originate(child, ref, target, caller_id, dial.timeout, options, dial.time_limit)
        )
    ringback = None
    if work.state.answered:
        ringback = f"{ref}-ringback"
        work.command("tone", ref=ringback, name="ringback")
    if dial.record != "do-not-record":
        record_ref = f"{ref}-record"
        work.set(
            call_recording={
                "ref": record_ref,
                "sid": recording_sid(call.sid, record_ref),
                "channels": 2 if dial.record.endswith("-dual") else 1,
                "trim": dial.trim == "trim-silence",
                "max_length": dial.time_limit,
                "started_at": None,
                "callback": _resolve(work, dial.recording_status_callback)
                if dial.recording_status_callback
                else None,
                "method": dial.recording_status_callback_method,
                "events": list(dial.recording_status_callback_event),
                "done": None,
            }
        )
        if dial.record.startswith("record-from-ringing"):
            _start_call_recording(work)
    work.set(
        dial={
            "ref": ref,
            "pending": pending,
            "answered": None,
            "answered_at": None,
            "failures": [],
            "ringback": ringback,
            "answer_on_bridge": dial.answer_on_bridge,
            "hangup_on_star": dial.hangup_on_star,
        }
    )
    _wait(
        work,
        Waiting(
            kind="dial",
            ref=ref,
            verb="Dial",
            # Without an action Twilio goes on with the next verb (unlike <Gather>).
            action=_resolve(work, dial.action) if dial.action else None,
            method=dial.method,
        ),
    )


def _dial_answered(work: _Step, event: DialAnswered) -> None:
    dial = work.state.dial
    if dial is None or dial["ref"] != event.ref or work.state.ended:
        work.actions.append(HangupCall(event.child))  # too late: nobody waits for it
        return
    if dial["answered"] is not None:
        if event.child != dial["answered"]:
            work.actions.append(HangupCall(event.child))  # first answer wins
        return
    dial = {**dial, "answered": event.child, "answered_at": event.at}
    work.set(dial=dial)
    if dial["ringback"]:
        work.command("stop", ref=dial["ringback"])
    _answer(work)
    work.command("bridge", peer=event.child)
    work.note("dial", answered=event.child)
    _start_call_recording(work)
    for other in dial["pending"]:
        if other != event.child:
            work.actions.append(HangupCall(other))


_DIAL_FAILURE_ORDER = ("busy", "no-answer", "failed", "canceled")


def _dial_ended(work: _Step, event: DialEnded) -> None:
    dial = work.state.dial
    if dial is None or dial["ref"] != event.ref or event.child not in dial["pending"]:
        return
    pending = [sid for sid in dial["pending"] if sid != event.child]
    if event.child == dial["answered"]:
        work.set(dial={**dial, "pending": pending})
        _dial_done(work, "completed", event.child, event.duration)
        return
    failures = [*dial["failures"], event.status]
    work.set(dial={**dial, "pending": pending, "failures": failures})
    if not pending and dial["answered"] is None:
        status = next((s for s in _DIAL_FAILURE_ORDER if s in failures), "failed")
        _dial_done(work, status, event.child, 0)


def _dial_done(work: _Step, status: str, child: str, seconds: int) -> None:
    dial = work.state.dial
    assert dial is not None
    if dial["ringback"] and dial["answered"] is None:
        work.command("stop", ref=dial["ringback"])
    recording = work.state.call_recording
    if recording is not None and recording["started_at"] is not None and not recording["done"]:
        # The action gets the recording's URL: it waits for the recording to be written.
        work.command("stop", ref=recording["ref"])
        work.set(dial={**dial, "result": [status, child, seconds]})
        return
    _dial_finish(work, status, child, seconds)


def _dial_finish(work: _Step, status: str, child: str, seconds: int) -> None:
    waiting = work.state.waiting
    recording = work.state.call_recording
    done = recording["done"] if recording is not None else None
    work.set(dial=None, waiting=None)
    work.note("dial", status=status, child=child, duration=seconds)
    if work.state.ended:
        return
    if waiting is not None and waiting.kind == "dial" and waiting.action:
        extra = {"DialCallStatus": status, "DialCallSid": child}
        if status == "completed":
            extra["DialCallDuration"] = str(seconds)
        if done is not None:
            extra["RecordingUrl"] = done["url"]
            extra["RecordingSid"] = done["sid"]
            extra["RecordingDuration"] = str(done["duration"])
        _fetch(work, waiting.action, waiting.method, extra, "action")
        return
    _run(work)


def _hung_up(work: _Step, event: HungUp) -> None:
    state = work.state
    if state.dial is not None:
        for sid in dict.fromkeys([*state.dial["pending"], state.dial["answered"]]):
            if sid:
                work.actions.append(HangupCall(sid))
        work.set(dial=None)
        state = work.state
    if state.ended:
        return
    if state.answered_at is not None:
        status = "completed"
    elif state.end_reason == "busy":
        status = "busy"
    elif state.end_reason == "rejected":
        status = "no-answer"
    elif event.cause == "remote":
        status = "canceled"
    else:
        status = "failed"
    # A recording cut short by the hangup still has its action requested.
    keep = state.waiting if state.waiting and state.waiting.kind == "fetch" else None
    work.set(
        status=status,
        ended_at=event.at,
        end_reason=state.end_reason or f"{event.cause}-hangup",
        waiting=keep,
    )
    work.note("status", status=status, cause=event.cause)
    _status_callback(work)


def duration(state: ScriptState) -> int:
    if state.answered_at is None or state.ended_at is None:
        return 0
    return max(0, round(state.ended_at - state.answered_at))


def _status_callback(work: _Step) -> None:
    call = work.state.call
    if not call.status_callback:
        return
    params = {
        **call_params(work.state),
        "CallDuration": str(duration(work.state)),
        "Timestamp": formatdate(work.state.ended_at, usegmt=True),
        "CallbackSource": "call-progress-events",
        "SequenceNumber": str(work.state.callbacks_sent),
    }
    work.set(callbacks_sent=work.state.callbacks_sent + 1)
    work.actions.append(Notify(call.status_callback, call.status_callback_method, params))
