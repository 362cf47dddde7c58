"""The pure step function: whole calls as sequences of events, no I/O."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from interpreter import script
from interpreter.script import (
    Answered,
    CallInfo,
    Collected,
    Command,
    Fetch,
    Fetched,
    HungUp,
    Note,
    Notify,
    PromptDone,
    RecordDone,
    ScriptState,
    Start,
)

VOICE_URL = "https://customer.example/voice"
CALL = CallInfo(
    sid="CA" + "1" * 32,
    account_sid="AC" + "2" * 32,
    from_number="+15550111",
    to_number="+15550100",
    voice_url=VOICE_URL,
    status_callback="https://customer.example/status",
)


class Call:
    """Drives a script like the shell does, keeping every action for the assertions."""

    def __init__(self, call: CallInfo = CALL) -> None:
        self.state = script.new_state(call)
        self.actions: list = []
        self.now = 1000.0

    def send(self, event) -> list:
        self.state, actions = script.step(self.state, event)
        # Everything must survive the trip through JSON (it lives in PostgreSQL).
        self.state = ScriptState.from_json(json.loads(json.dumps(self.state.to_json())))
        self.actions.extend(actions)
        return actions

    def start(self) -> Fetch:
        (fetch,) = [a for a in self.send(Start(at=self.now)) if isinstance(a, Fetch)]
        return fetch

    def reply(self, fetch: Fetch, body: str, *, url: str | None = None, **kw) -> list:
        return self.send(
            Fetched(
                fetch_id=fetch.id,
                ok=kw.pop("ok", True),
                url=url or fetch.url,
                status=kw.pop("status", 200),
                content_type=kw.pop("content_type", "text/xml"),
                body=body,
                **kw,
            )
        )

    def done(self, command: dict) -> list:
        self.now += 1
        return self.send(PromptDone(ref=command["ref"], at=self.now))


def commands(actions: list) -> list[dict]:
    return [a.payload for a in actions if isinstance(a, Command)]


def fetches(actions: list) -> list[Fetch]:
    return [a for a in actions if isinstance(a, Fetch)]


def notes(actions: list, kind: str) -> list[dict]:
    return [a.data for a in actions if isinstance(a, Note) and a.kind == kind]


def test_start_fetches_the_voice_url_with_twilios_parameters() -> None:
    fetch = Call().start()
    assert (fetch.url, fetch.method, fetch.purpose) == (VOICE_URL, "POST", "voice")
    assert fetch.params == {
        "AccountSid": CALL.account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": CALL.sid,
        "CallStatus": "ringing",
        "Called": "+15550100",
        "Caller": "+15550111",
        "Direction": "inbound",
        "From": "+15550111",
        "To": "+15550100",
    }


def test_say_play_pause_run_in_order_each_waiting_for_the_node() -> None:
    call = Call()
    fetch = call.start()
    actions = call.reply(
        fetch,
        "<Response><Say voice='alice' loop='2'>Hi</Say><Play>tone.wav</Play>"
        "<Pause length='3'/></Response>",
    )
    answer, say = commands(actions)
    assert answer == {"type": "answer"}
    assert say == {
        "type": "say",
        "text": "Hi",
        "voice": "alice",
        "language": "en",
        "loop": 2,
        "ref": say["ref"],
    }
    (play,) = commands(call.done(say))
    assert play["url"] == "https://customer.example/tone.wav"  # relative to the document
    (pause,) = commands(call.done(play))
    assert pause["length"] == 3
    (hangup,) = commands(call.done(pause))
    assert hangup == {"type": "hangup", "reason": "end-of-script"}


def test_answered_moves_the_status_to_in_progress_for_later_requests() -> None:
    call = Call()
    fetch = call.start()
    actions = call.reply(fetch, "<Response><Gather action='/next'/></Response>")
    call.send(Answered(at=1001.0))
    (collect,) = [c for c in commands(actions) if c["type"] == "collect"]
    (action_fetch,) = fetches(call.send(Collected(collect["ref"], "12", "finish_key", 1002.0, "#")))
    assert action_fetch.params["CallStatus"] == "in-progress"


def test_gather_with_digits_requests_the_action_with_digits() -> None:
    call = Call()
    actions = call.reply(
        call.start(),
        "<Response><Gather action='/menu' method='GET' numDigits='4' timeout='7'>"
        "<Say>Enter your PIN</Say><Pause/></Gather><Say>never</Say></Response>",
    )
    (collect,) = [c for c in commands(actions) if c["type"] == "collect"]
    assert collect["finish_on_key"] == "#"
    assert collect["num_digits"] == 4
    assert collect["timeout"] == collect["inter_digit_timeout"] == 7
    assert [p["type"] for p in collect["prompts"]] == ["say", "pause"]
    after = call.send(Collected(collect["ref"], "1234", "num_digits", 1005.0))
    (fetch,) = fetches(after)
    assert (fetch.url, fetch.method, fetch.purpose) == (
        "https://customer.example/menu",
        "GET",
        "action",
    )
    assert fetch.params["Digits"] == "1234"
    assert commands(after) == []  # the rest of the old document never runs


def test_gather_without_action_posts_to_the_current_document() -> None:
    call = Call()
    actions = call.reply(call.start(), "<Response><Gather/></Response>")
    (collect,) = [c for c in commands(actions) if c["type"] == "collect"]
    (fetch,) = fetches(call.send(Collected(collect["ref"], "5", "finish_key", 1.0, "#")))
    assert fetch.url == VOICE_URL
    assert fetch.params["FinishedOnKey"] == "#"


def test_gather_timeout_without_digits_runs_the_next_verb() -> None:
    call = Call()
    actions = call.reply(call.start(), "<Response><Gather/><Say>Goodbye</Say></Response>")
    (collect,) = [c for c in commands(actions) if c["type"] == "collect"]
    after = call.send(Collected(collect["ref"], "", "timeout", 1.0))
    assert fetches(after) == []
    assert [c["type"] for c in commands(after)] == ["say"]


def test_gather_action_on_empty_result_requests_the_action_anyway() -> None:
    call = Call()
    actions = call.reply(
        call.start(), "<Response><Gather action='/x' actionOnEmptyResult='true'/></Response>"
    )
    (collect,) = [c for c in commands(actions) if c["type"] == "collect"]
    (fetch,) = fetches(call.send(Collected(collect["ref"], "", "timeout", 1.0)))
    assert fetch.params["Digits"] == ""


def test_events_for_another_prompt_are_ignored() -> None:
    call = Call()
    actions = call.reply(call.start(), "<Response><Say>a</Say><Say>b</Say></Response>")
    say = commands(actions)[1]
    assert call.send(PromptDone(ref="r999", at=1.0)) == []
    assert [c["text"] for c in commands(call.done(say))] == ["b"]
    assert call.done(say) == []  # the same completion twice changes nothing


def test_record_requests_the_action_with_the_recording() -> None:
    call = Call()
    actions = call.reply(
        call.start(), "<Response><Record action='/rec' maxLength='20' playBeep='false'/></Response>"
    )
    (record,) = [c for c in commands(actions) if c["type"] == "record"]
    assert (record["max_length"], record["play_beep"], record["finish_on_key"]) == (
        20,
        False,
        "1234567890*#",
    )
    done = RecordDone(record["ref"], "RE" + "3" * 32, "https://p/rec", 4, "#", "finish_key", 9.0)
    (fetch,) = fetches(call.send(done))
    assert fetch.url == "https://customer.example/rec"
    assert fetch.params["RecordingUrl"] == "https://p/rec"
    assert fetch.params["RecordingDuration"] == "4"
    assert fetch.params["Digits"] == "#"


def test_an_empty_recording_skips_the_action() -> None:
    call = Call()
    actions = call.reply(call.start(), "<Response><Record/><Say>next</Say></Response>")
    (record,) = [c for c in commands(actions) if c["type"] == "record"]
    done = RecordDone(record["ref"], "RE" + "3" * 32, "u", 0, "", "silence", 9.0)
    after = call.send(done)
    assert fetches(after) == []
    assert [c["type"] for c in commands(after)] == ["say"]


def test_redirect_fetches_and_replaces_the_document() -> None:
    call = Call()
    (fetch,) = fetches(
        call.reply(
            call.start(),
            "<Response><Redirect method='GET'>/b</Redirect><Say>never</Say></Response>",
        )
    )
    assert (fetch.url, fetch.method, fetch.purpose) == (
        "https://customer.example/b",
        "GET",
        "redirect",
    )
    actions = call.reply(fetch, "<Response><Say>b</Say></Response>")
    assert [c.get("text") for c in commands(actions)] == [None, "b"]  # answer, then say


def test_a_redirect_loop_ends_as_an_application_error() -> None:
    call = Call()
    fetch = call.start()
    for _ in range(script.MAX_FETCH_CHAIN + 5):
        actions = call.reply(fetch, "<Response><Redirect>/loop</Redirect></Response>")
        follow = fetches(actions)
        if not follow:
            break
        (fetch,) = follow
    else:
        pytest.fail("the redirect loop never ended")
    assert [c["type"] for c in commands(actions)] == ["answer", "say", "hangup"]
    assert "Redirect loop" in notes(actions, "error")[0]["message"]


def test_hangup_verb_and_then_the_caller_hangs_up_completes_the_call() -> None:
    call = Call()
    actions = call.reply(call.start(), "<Response><Hangup/></Response>")
    assert [c["type"] for c in commands(actions)] == ["answer", "hangup"]
    call.send(Answered(at=1000.0))
    after = call.send(HungUp(cause="local", at=1012.4))
    assert call.state.status == "completed"
    (notify,) = [a for a in after if isinstance(a, Notify)]
    assert notify.url == "https://customer.example/status"
    assert notify.params["CallStatus"] == "completed"
    assert notify.params["CallDuration"] == "12"
    assert notify.params["SequenceNumber"] == "0"
    assert notify.params["CallbackSource"] == "call-progress-events"


@pytest.mark.parametrize(("reason", "status"), [("busy", "busy"), ("rejected", "no-answer")])
def test_reject_does_not_answer_and_ends_with_twilios_status(reason: str, status: str) -> None:
    call = Call()
    actions = call.reply(call.start(), f"<Response><Reject reason='{reason}'/></Response>")
    assert commands(actions) == [{"type": "reject", "reason": reason}]
    call.send(HungUp(cause="rejected", at=1.0))
    assert call.state.status == status


def test_caller_hanging_up_before_answer_is_canceled() -> None:
    call = Call()
    call.start()
    call.send(HungUp(cause="remote", at=1.0))
    assert call.state.status == "canceled"


def test_a_failed_voice_url_goes_to_the_fallback_with_error_details() -> None:
    call = Call(replace(CALL, fallback_url="https://backup.example/f"))
    fetch = call.start()
    actions = call.reply(fetch, "", ok=False, status=500, error="http-500: Internal Server Error")
    (fallback,) = fetches(actions)
    assert (fallback.url, fallback.purpose) == ("https://backup.example/f", "fallback")
    assert fallback.params["ErrorCode"] == "11200"
    assert fallback.params["ErrorUrl"] == VOICE_URL
    assert notes(actions, "error")[0]["code"] == 11200
    after = call.reply(fallback, "<Response><Say>backup</Say></Response>")
    assert [c.get("text") for c in commands(after)] == [None, "backup"]


def test_without_fallback_an_error_is_spoken_and_the_call_ends() -> None:
    call = Call()
    actions = call.reply(
        call.start(), "", ok=False, status=None, error="timeout: read timeout", error_code="timeout"
    )
    assert [c["type"] for c in commands(actions)] == ["answer", "say", "hangup"]
    assert commands(actions)[1]["text"] == script.APPLICATION_ERROR_SPEECH
    assert notes(actions, "error")[0]["code"] == script.ERROR_CONNECTION


@pytest.mark.parametrize(
    ("error_code", "twilio_code"),
    [
        ("unsupported-content-type", 12300),
        ("redirect-loop", 11215),
        ("too-large", 11750),
        ("address-refused", 11210),
        ("http-status", 11200),
    ],
)
def test_fetch_failures_carry_twilios_error_codes(error_code: str, twilio_code: int) -> None:
    call = Call()
    actions = call.reply(
        call.start(), "", ok=False, status=200, error=error_code, error_code=error_code
    )
    assert notes(actions, "error")[0]["code"] == twilio_code


def test_a_failed_fallback_does_not_fall_back_again() -> None:
    call = Call(replace(CALL, fallback_url="https://backup.example/f"))
    (fallback,) = fetches(call.reply(call.start(), "", ok=False, status=500, error="http-500"))
    actions = call.reply(fallback, "", ok=False, status=404, error="http-404")
    assert fetches(actions) == []
    assert [c["type"] for c in commands(actions)] == ["answer", "say", "hangup"]


def test_an_invalid_document_is_a_parse_error_naming_the_line() -> None:
    call = Call()
    actions = call.reply(call.start(), "<Response>\n  <Sya>hi</Sya>\n</Response>")
    (error,) = notes(actions, "error")
    assert error["code"] == script.ERROR_PARSE
    assert ":2:" in error["message"] and "Sya" in error["message"]
    assert [c["type"] for c in commands(actions)] == ["answer", "say", "hangup"]


def test_an_audio_reply_is_played() -> None:
    call = Call()
    actions = call.reply(
        call.start(),
        "",
        content_type="audio/mpeg",
        audio=True,
        url="https://customer.example/a.mp3",
    )
    assert commands(actions)[1] == {
        "type": "play",
        "url": "https://customer.example/a.mp3",
        "loop": 1,
        "ref": commands(actions)[1]["ref"],
    }


def test_a_stale_fetch_result_is_ignored() -> None:
    call = Call()
    fetch = call.start()
    call.send(HungUp(cause="remote", at=1.0))
    assert commands(call.reply(fetch, "<Response><Say>x</Say></Response>")) == []


def test_play_digits_sends_dtmf() -> None:
    call = Call()
    actions = call.reply(call.start(), "<Response><Play digits='ww12#'/></Response>")
    assert commands(actions)[1]["type"] == "send_dtmf"
    assert commands(actions)[1]["digits"] == "ww12#"


def originates(actions: list) -> list[script.Originate]:
    return [a for a in actions if isinstance(a, script.Originate)]


def hangups(actions: list) -> list[str]:
    return [a.sid for a in actions if isinstance(a, script.HangupCall)]


DIAL_TWO = (
    '<Response><Dial action="/after" timeout="20" callerId="+15550999">'
    "<Number>+15550123</Number><Client>102</Client></Dial><Say>x</Say></Response>"
)


def test_dial_rings_every_noun_with_ringback_to_the_caller() -> None:
    call = Call()
    actions = call.reply(call.start(), DIAL_TWO)
    legs = originates(actions)
    assert [leg.target for leg in legs] == [{"number": "+15550123"}, {"client": "102"}]
    assert {leg.caller_id for leg in legs} == {"+15550999"}
    assert {leg.timeout for leg in legs} == {20}
    assert len({leg.child for leg in legs}) == 2
    assert [c["type"] for c in commands(actions)] == ["answer", "tone"]
    assert commands(actions)[1]["name"] == "ringback"
    # A replayed step makes the same legs.
    again = Call()
    assert [leg.child for leg in originates(again.reply(again.start(), DIAL_TWO))] == [
        leg.child for leg in legs
    ]


def test_dial_first_answer_wins_then_bridges_and_reports_to_the_action() -> None:
    call = Call()
    first, second = originates(call.reply(call.start(), DIAL_TWO))
    actions = call.send(script.DialAnswered(ref=second.ref, child=second.child, at=1010.0))
    assert [c["type"] for c in commands(actions)] == ["stop", "bridge"]
    assert commands(actions)[1]["peer"] == second.child
    assert hangups(actions) == [first.child]
    late = call.send(script.DialAnswered(ref=first.ref, child=first.child, at=1011.0))
    assert hangups(late) == [first.child]
    call.send(
        script.DialEnded(ref=first.ref, child=first.child, status="canceled", duration=0, at=1011.0)
    )
    actions = call.send(
        script.DialEnded(
            ref=second.ref, child=second.child, status="completed", duration=42, at=1052.0
        )
    )
    (fetch,) = fetches(actions)
    assert fetch.url == "https://customer.example/after"
    assert (fetch.params["DialCallStatus"], fetch.params["DialCallSid"]) == (
        "completed",
        second.child,
    )
    assert fetch.params["DialCallDuration"] == "42"


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["busy", "no-answer"], "busy"),
        (["no-answer", "failed"], "no-answer"),
        (["failed", "failed"], "failed"),
    ],
)
def test_dial_nobody_answers_reports_the_best_failure(statuses: list[str], expected: str) -> None:
    call = Call()
    legs = originates(call.reply(call.start(), DIAL_TWO))
    actions = []
    for leg, status in zip(legs, statuses, strict=True):
        actions = call.send(
            script.DialEnded(ref=leg.ref, child=leg.child, status=status, duration=0, at=1.0)
        )
    (fetch,) = fetches(actions)
    assert fetch.params["DialCallStatus"] == expected
    assert "DialCallDuration" not in fetch.params
    assert commands(actions)[0] == {"type": "stop", "ref": f"{legs[0].ref}-ringback"}


def test_dial_without_action_goes_on_with_the_next_verb() -> None:
    call = Call()
    (leg,) = originates(
        call.reply(call.start(), "<Response><Dial>101</Dial><Say>after</Say></Response>")
    )
    call.send(script.DialAnswered(ref=leg.ref, child=leg.child, at=2.0))
    actions = call.send(
        script.DialEnded(ref=leg.ref, child=leg.child, status="completed", duration=5, at=7.0)
    )
    assert [c["type"] for c in commands(actions)] == ["say"]


def test_answer_on_bridge_answers_the_caller_only_when_the_leg_answers() -> None:
    call = Call()
    actions = call.reply(
        call.start(), '<Response><Dial answerOnBridge="true">101</Dial></Response>'
    )
    (leg,) = originates(actions)
    assert commands(actions) == []  # still ringing: no answer, no ringback tone of ours
    actions = call.send(script.DialAnswered(ref=leg.ref, child=leg.child, at=2.0))
    assert [c["type"] for c in commands(actions)] == ["answer", "bridge"]


def notifies(actions: list, url: str) -> list[dict[str, str]]:
    return [a.params for a in actions if isinstance(a, Notify) and a.url == url]


REC = "https://customer.example/rec"


def test_dial_record_from_answer_dual_gives_the_action_and_callback_the_recording() -> None:
    call = Call()
    (leg,) = originates(
        call.reply(
            call.start(),
            '<Response><Dial action="/after" record="record-from-answer-dual" '
            'recordingStatusCallback="/rec" '
            'recordingStatusCallbackEvent="in-progress completed">+15550123</Dial></Response>',
        )
    )
    assert "record" not in [c["type"] for c in commands(call.actions)]
    actions = call.send(script.DialAnswered(ref=leg.ref, child=leg.child, at=1010.0))
    assert [c["type"] for c in commands(actions)] == ["stop", "bridge", "record"]
    record = commands(actions)[2]
    assert (record["mode"], record["channels"], record["timeout"], record["play_beep"]) == (
        "call",
        2,
        0,
        False,
    )
    sid = script.recording_sid(CALL.sid, record["ref"])
    [progress] = notifies(actions, REC)
    assert (progress["RecordingStatus"], progress["RecordingSid"]) == ("in-progress", sid)
    assert progress["RecordingSource"] == "DialVerb" and progress["RecordingChannels"] == "2"
    # The dialled party hangs up: the recording is stopped, and the action waits for it.
    actions = call.send(
        script.DialEnded(ref=leg.ref, child=leg.child, status="completed", duration=42, at=1052.0)
    )
    assert commands(actions) == [{"type": "stop", "ref": record["ref"]}]
    assert fetches(actions) == []
    url = f"https://platform.example/Recordings/{sid}"
    actions = call.send(RecordDone(record["ref"], sid, url, 42, "", "stopped", 1052.1, 2))
    [completed] = notifies(actions, REC)
    assert (completed["RecordingStatus"], completed["RecordingUrl"]) == ("completed", url)
    assert completed["RecordingDuration"] == "42"
    (fetch,) = fetches(actions)
    assert fetch.url == "https://customer.example/after"
    assert fetch.params["DialCallStatus"] == "completed"
    assert (fetch.params["RecordingUrl"], fetch.params["RecordingSid"]) == (url, sid)
    assert fetch.params["RecordingDuration"] == "42"


def test_dial_record_from_ringing_starts_at_once_and_outlives_a_hangup() -> None:
    call = Call()
    actions = call.reply(
        call.start(),
        '<Response><Dial record="record-from-ringing" recordingStatusCallback="/rec">'
        "+15550123</Dial></Response>",
    )
    (leg,) = originates(actions)
    [record] = [c for c in commands(actions) if c["type"] == "record"]
    assert record["channels"] == 1 and notifies(actions, REC) == []  # only "completed"
    call.send(script.DialAnswered(ref=leg.ref, child=leg.child, at=1010.0))
    call.send(HungUp(cause="remote", at=1020.0))
    sid = script.recording_sid(CALL.sid, record["ref"])
    actions = call.send(RecordDone(record["ref"], sid, "u", 20, "", "hangup", 1020.0))
    [completed] = notifies(actions, REC)
    assert (completed["RecordingSid"], completed["RecordingStatus"]) == (sid, "completed")
    assert fetches(actions) == []


def test_dial_without_record_makes_no_recording() -> None:
    call = Call()
    (leg,) = originates(call.reply(call.start(), "<Response><Dial>+15550123</Dial></Response>"))
    actions = call.send(script.DialAnswered(ref=leg.ref, child=leg.child, at=1010.0))
    actions += call.send(
        script.DialEnded(ref=leg.ref, child=leg.child, status="completed", duration=4, at=1014.0)
    )
    assert "record" not in [c["type"] for c in commands(actions)]
    assert call.state.call_recording is None


def test_the_caller_hanging_up_ends_the_dialled_legs() -> None:
    call = Call()
    legs = originates(call.reply(call.start(), DIAL_TWO))
    call.send(Answered(at=1.5))
    call.send(script.DialAnswered(ref=legs[0].ref, child=legs[0].child, at=2.0))
    actions = call.send(HungUp(cause="remote", at=3.0))
    assert sorted(hangups(actions)) == sorted(leg.child for leg in legs)
    assert call.state.status == "completed"


def test_dial_conference_joins_with_every_attribute() -> None:
    call = Call()
    actions = call.reply(
        call.start(),
        '<Response><Dial action="/left"><Conference muted="true" beep="onEnter" '
        'startConferenceOnEnter="false" endConferenceOnExit="true" waitUrl="" '
        'maxParticipants="3" statusCallback="/conf" statusCallbackMethod="GET" '
        'statusCallbackEvent="start end join leave">room 7</Conference></Dial>'
        "<Say>after</Say></Response>",
    )
    assert [c["type"] for c in commands(actions)] == ["answer"]
    (join,) = [a for a in actions if isinstance(a, script.JoinConference)]
    assert (join.name, join.muted, join.beep) == ("room 7", True, "onEnter")
    assert (join.start_on_enter, join.end_on_exit, join.wait_url) == (False, True, "")
    assert join.max_participants == 3
    assert join.status_callback == "https://customer.example/conf"
    assert join.status_callback_method == "GET"
    assert join.status_callback_events == ("start", "end", "join", "leave")
    actions = call.send(
        script.ConferenceLeft(ref=join.ref, conference_sid="CF" + "0" * 32, reason="hangup", at=2)
    )
    (fetch,) = fetches(actions)
    assert fetch.url == "https://customer.example/left"
    assert fetch.params["ConferenceSid"] == "CF" + "0" * 32


def test_leaving_a_conference_without_action_runs_the_next_verb() -> None:
    call = Call()
    actions = call.reply(
        call.start(), "<Response><Dial><Conference>room</Conference></Dial><Say>x</Say></Response>"
    )
    (join,) = [a for a in actions if isinstance(a, script.JoinConference)]
    actions = call.send(
        script.ConferenceLeft(ref=join.ref, conference_sid=None, reason="conference-full", at=2)
    )
    assert [c["type"] for c in commands(actions)] == ["say"]


def test_no_voice_url_is_an_application_error() -> None:
    call = Call(replace(CALL, voice_url=None))
    actions = call.send(Start(at=1.0))
    assert fetches(actions) == []
    assert notes(actions, "error")[0]["code"] == script.ERROR_NO_URL


def test_dial_passes_its_in_call_options_to_the_legs() -> None:
    call = Call()
    actions = call.reply(
        call.start(),
        '<Response><Dial voiceInCallOptions="9=transfer,0=abort">101</Dial></Response>',
    )
    (leg,) = originates(actions)
    assert leg.in_call_options == {"9": "transfer", "0": "abort"}
    again = Call()
    (plain,) = originates(again.reply(again.start(), "<Response><Dial>101</Dial></Response>"))
    assert plain.in_call_options is None


@pytest.mark.parametrize("value", ["#=fly", "##=transfer", "x=abort", "transfer"])
def test_bad_in_call_options_are_refused_with_the_rule(value: str) -> None:
    from interpreter.twiml import parser
    from interpreter.twiml.errors import TwimlError

    with pytest.raises(TwimlError, match="voiceInCallOptions"):
        parser.parse(f'<Response><Dial voiceInCallOptions="{value}">101</Dial></Response>')


def test_hangup_on_star_ends_the_dialled_call_and_goes_on() -> None:
    call = Call()
    actions = call.reply(
        call.start(),
        '<Response><Dial hangupOnStar="true" timeLimit="30">101</Dial><Say>x</Say></Response>',
    )
    (leg,) = originates(actions)
    assert leg.time_limit == 30
    assert hangups(call.send(script.Pressed(digit="*", at=1.0))) == []  # not answered yet
    call.send(script.DialAnswered(ref=leg.ref, child=leg.child, at=2.0))
    assert hangups(call.send(script.Pressed(digit="1", at=3.0))) == []
    assert hangups(call.send(script.Pressed(digit="*", at=4.0))) == [leg.child]
    actions = call.send(
        script.DialEnded(ref=leg.ref, child=leg.child, status="completed", duration=2, at=4.1)
    )
    assert [c["type"] for c in commands(actions)] == ["say"]


def test_star_without_hangup_on_star_does_nothing() -> None:
    call = Call()
    (leg,) = originates(call.reply(call.start(), "<Response><Dial>101</Dial></Response>"))
    call.send(script.DialAnswered(ref=leg.ref, child=leg.child, at=2.0))
    assert hangups(call.send(script.Pressed(digit="*", at=3.0))) == []
