"""Whole calls through the worker's code and real PostgreSQL, on the simulated node.

Customer webhooks are served by `responses`; every request is checked for Twilio's
parameters and a signature that the official validator accepts.
"""

from __future__ import annotations

import time
import uuid
import wave
from urllib.parse import parse_qs

import pytest
import requests
import responses
from twilio.request_validator import RequestValidator

from interpreter.address_policy import AddressPolicy
from interpreter.simulator import Simulator
from interpreter.webhook import WebhookClient
from store import bins, numbers
from store import calls as store_calls

pytestmark = pytest.mark.integration

CUSTOMER = "https://customer.example"
PUBLIC = "http://127.0.0.1:8000"


def resolver(host, port, *args, **kwargs):
    # No DNS in tests: the customer's host is a public address.
    return [(2, 1, 6, "", ("93.184.216.34", port or 443))]


@pytest.fixture
def simulator(db, services, tmp_path) -> Simulator:
    return Simulator(
        db,
        webhooks=WebhookClient(AddressPolicy(resolver=resolver), read_timeout=2.0),
        public_url=PUBLIC,
        secret_key="test secret key",
        recordings=tmp_path,
    )


def dialled_leg(db, account_sid: str, parent: str):
    """The one leg `parent`'s <Dial> placed."""
    with db.transaction() as conn:
        [child] = [
            c for c in store_calls.recent_calls(conn, account_sid) if c.parent_call_sid == parent
        ]
    return child


@pytest.fixture
def number(db, account) -> str:
    value = "+1555" + str(uuid.uuid4().int)[:7]
    with db.transaction() as conn:
        numbers.set_number(
            conn,
            account.sid,
            value,
            voice_url=f"{CUSTOMER}/voice",
            voice_fallback_url=f"{CUSTOMER}/fallback",
            status_callback=f"{CUSTOMER}/status",
        )
    return value


def form(call: responses.Call) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(call.request.body or "").items()}


def assert_signed(call: responses.Call, token: str) -> None:
    assert RequestValidator(token).validate(
        call.request.url, form(call), call.request.headers["X-Twilio-Signature"]
    )


def log_of(db, sid: str) -> list[dict]:
    with db.transaction() as conn:
        return store_calls.call_events(conn, sid)


def commands_of(db, sid: str) -> list[dict]:
    with db.transaction() as conn:
        return [row["payload"] for row in store_calls.media_commands(conn, sid)]


def call_row(db, sid: str):
    with db.transaction() as conn:
        return store_calls.get_call(conn, sid)


@responses.activate
def test_a_gather_call_from_ring_to_status_callback(simulator, db, account, number) -> None:
    responses.post(
        f"{CUSTOMER}/voice",
        body="<Response><Gather action='/menu' numDigits='4'><Say>PIN?</Say></Gather>"
        "<Say>no input</Say></Response>",
        content_type="text/xml",
    )
    responses.post(
        f"{CUSTOMER}/menu",
        body="<Response><Say>Thanks</Say><Hangup/></Response>",
        content_type="text/xml",
    )
    responses.post(f"{CUSTOMER}/status", body="")
    sid = simulator.incoming("+15550111", number, keys="1234")

    voice, menu, status = responses.calls
    for request in (voice, menu, status):
        assert_signed(request, account.token)
        assert form(request)["CallSid"] == sid
        assert form(request)["AccountSid"] == account.sid
    assert form(voice)["CallStatus"] == "ringing"
    assert form(menu)["Digits"] == "1234"
    assert form(menu)["CallStatus"] == "in-progress"
    assert form(status)["CallStatus"] == "completed"
    assert menu.request.headers["I-Twilio-Idempotency-Token"]
    assert [c["type"] for c in commands_of(db, sid)] == [
        "answer",
        "collect",
        "say",
        "hangup",
    ]
    row = call_row(db, sid)
    assert (row.status, row.direction, row.from_number) == ("completed", "inbound", "+15550111")
    assert row.answered_at is not None and row.ended_at >= row.answered_at
    verbs = [e["data"]["verb"] for e in log_of(db, sid) if e["kind"] == "verb"]
    assert verbs == ["Gather", "Say", "Hangup"]


@responses.activate
def test_an_unknown_number_is_refused_without_a_call_row(simulator, db) -> None:
    sid = simulator.incoming("+15550111", "+19999999999")
    assert call_row(db, sid) is None
    assert simulator.node.calls[sid].commands[0]["type"] == "reject"
    assert len(responses.calls) == 0


@responses.activate
def test_a_failing_voice_url_falls_back(simulator, db, number) -> None:
    responses.post(f"{CUSTOMER}/voice", status=500, body="oops")
    responses.post(
        f"{CUSTOMER}/fallback",
        body="<Response><Say>fallback</Say></Response>",
        content_type="text/xml",
    )
    responses.post(f"{CUSTOMER}/status", body="")
    sid = simulator.incoming("+15550111", number)
    fallback = responses.calls[1]
    assert form(fallback)["ErrorCode"] == "11200"
    assert form(fallback)["ErrorUrl"] == f"{CUSTOMER}/voice"
    says = [c["text"] for c in commands_of(db, sid) if c["type"] == "say"]
    assert says == ["fallback"]
    assert [e["data"]["code"] for e in log_of(db, sid) if e["kind"] == "error"] == [11200]


@responses.activate
def test_a_webhook_timeout_then_a_dead_fallback_is_spoken_as_an_error(
    simulator, db, number
) -> None:
    responses.post(f"{CUSTOMER}/voice", body=requests.exceptions.ReadTimeout("slow"))
    responses.post(f"{CUSTOMER}/fallback", body=requests.exceptions.ConnectionError("down"))
    responses.post(f"{CUSTOMER}/status", body="")
    sid = simulator.incoming("+15550111", number)
    assert [c["type"] for c in commands_of(db, sid)] == ["answer", "say", "hangup"]
    assert "application error" in commands_of(db, sid)[1]["text"]
    errors = [e["data"] for e in log_of(db, sid) if e["kind"] == "error"]
    assert [error["code"] for error in errors] == [11205, 11205]
    assert call_row(db, sid).status == "completed"


@responses.activate
def test_an_http_redirect_loop_ends_the_call(simulator, db, number) -> None:
    responses.post(f"{CUSTOMER}/voice", status=302, headers={"Location": f"{CUSTOMER}/loop"})
    responses.get(f"{CUSTOMER}/loop", status=302, headers={"Location": f"{CUSTOMER}/voice"})
    responses.get(f"{CUSTOMER}/voice", status=302, headers={"Location": f"{CUSTOMER}/loop"})
    responses.post(f"{CUSTOMER}/fallback", status=404)
    responses.post(f"{CUSTOMER}/status", body="")
    sid = simulator.incoming("+15550111", number)
    errors = [e["data"]["code"] for e in log_of(db, sid) if e["kind"] == "error"]
    assert errors == [11215, 11200]
    assert call_row(db, sid).status == "completed"


@responses.activate
def test_a_twiml_redirect_loop_ends_the_call(simulator, db, number) -> None:
    responses.post(
        f"{CUSTOMER}/voice",
        body="<Response><Redirect>/voice</Redirect></Response>",
        content_type="text/xml",
    )
    responses.post(f"{CUSTOMER}/status", body="")
    sid = simulator.incoming("+15550111", number)
    assert [c["type"] for c in commands_of(db, sid)] == ["answer", "say", "hangup"]
    assert len(responses.calls) == 20 + 1  # the limit, then the status callback


@responses.activate
def test_private_addresses_are_refused(simulator, db, account) -> None:
    value = "+1555" + str(uuid.uuid4().int)[:7]
    with db.transaction() as conn:
        numbers.set_number(conn, account.sid, value, voice_url="http://169.254.169.254/latest")
    sid = simulator.incoming("+15550111", value)
    (error,) = [e["data"] for e in log_of(db, sid) if e["kind"] == "error"]
    assert error["code"] == 11210
    assert "169.254.169.254" in error["message"]
    assert len(responses.calls) == 0


@responses.activate
def test_script_bins_are_read_from_the_database_for_their_account_only(
    simulator, db, account, services
) -> None:
    from store.accounts import create_account

    with db.transaction() as conn:
        mine = bins.save_bin(conn, account.sid, "x", "<Response><Say>mine</Say></Response>")
        other, _ = create_account(conn, "other", "test secret key")
        theirs = bins.save_bin(conn, other.sid, "y", "<Response><Say>theirs</Say></Response>")
    sid = simulator.start(
        account.sid, f"{PUBLIC}/bins/{mine.sid}", from_number="+1", to_number="+2", at=time.time()
    )
    assert [c["text"] for c in commands_of(db, sid) if c["type"] == "say"] == ["mine"]
    sid = simulator.start(
        account.sid, f"{PUBLIC}/bins/{theirs.sid}", from_number="+1", to_number="+2", at=time.time()
    )
    says = [c["text"] for c in commands_of(db, sid) if c["type"] == "say"]
    assert says == ["We are sorry, an application error has occurred. Goodbye."]
    assert len(responses.calls) == 0


@responses.activate
def test_a_recording_is_stored_and_its_url_sent_to_the_action(simulator, db, number) -> None:
    responses.post(
        f"{CUSTOMER}/voice",
        body="<Response><Record action='/rec' finishOnKey='#'/></Response>",
        content_type="text/xml",
    )
    responses.post(f"{CUSTOMER}/rec", body="<Response/>", content_type="text/xml")
    responses.post(f"{CUSTOMER}/status", body="")
    sid = simulator.incoming("+15550111", number, keys="#")
    params = form(responses.calls[1])
    assert params["Digits"] == "#"
    assert params["RecordingDuration"] == "1"
    recording_sid = params["RecordingSid"]
    assert params["RecordingUrl"].endswith(f"/Recordings/{recording_sid}")
    with db.transaction() as conn:
        rows = conn.execute("SELECT * FROM recordings WHERE call_sid = %s", (sid,)).fetchall()
    assert [row["sid"] for row in rows] == [recording_sid]


@responses.activate
def test_a_repeated_event_changes_nothing(simulator, db, number) -> None:
    responses.post(
        f"{CUSTOMER}/voice",
        body="<Response><Say>a</Say><Say>b</Say></Response>",
        content_type="text/xml",
    )
    responses.post(f"{CUSTOMER}/status", body="")
    sid = simulator.incoming("+15550111", number)
    before = (commands_of(db, sid), log_of(db, sid))
    with db.transaction() as conn:
        first = conn.execute(
            "SELECT payload FROM media_events WHERE call_sid = %s AND seq = 2", (sid,)
        ).fetchone()["payload"]
    simulator.runner.handle(first)
    assert (commands_of(db, sid), log_of(db, sid)) == before


@responses.activate
def test_dial_rings_a_leg_bridges_it_and_reports_to_the_action(
    simulator, db, account, number
) -> None:
    responses.post(
        f"{CUSTOMER}/voice",
        body="<Response><Dial action='/dialled' callerId='+15550999'>"
        "+14155550100</Dial></Response>",
        content_type="text/xml",
    )
    responses.post(
        f"{CUSTOMER}/dialled", body="<Response><Hangup/></Response>", content_type="text/xml"
    )
    responses.post(f"{CUSTOMER}/status", body="")
    sid = simulator.incoming("+15550111", number)

    parent = call_row(db, sid)
    child = dialled_leg(db, account.sid, sid)
    assert (child.direction, child.to_number, child.from_number) == (
        "outbound-dial",
        "+14155550100",
        "+15550999",
    )
    assert child.status == "completed" and child.answered_at is not None
    assert [c["type"] for c in commands_of(db, sid)] == [
        "answer",
        "tone",
        "stop",
        "bridge",
        "hangup",
    ]
    assert commands_of(db, sid)[3]["peer"] == child.sid
    [originate] = commands_of(db, child.sid)
    assert originate["target"] == {"number": "+14155550100"}
    dialled = form(responses.calls[1])
    assert (dialled["DialCallStatus"], dialled["DialCallSid"]) == ("completed", child.sid)
    assert dialled["DialCallDuration"] == "5"
    assert parent.status == "completed"
    with db.transaction() as conn:  # every command of both legs went out and is settled
        for leg in (sid, child.sid):
            assert all(c["sent_at"] is not None for c in store_calls.media_commands(conn, leg))


@responses.activate
def test_dial_record_stores_the_recording_and_reports_it_to_action_and_callback(
    simulator, db, account, number
) -> None:
    responses.post(
        f"{CUSTOMER}/voice",
        body="<Response><Dial action='/dialled' record='record-from-answer-dual' "
        "recordingStatusCallback='/recording'>+14155550100</Dial></Response>",
        content_type="text/xml",
    )
    responses.post(
        f"{CUSTOMER}/dialled", body="<Response><Hangup/></Response>", content_type="text/xml"
    )
    responses.post(f"{CUSTOMER}/recording", body="")
    responses.post(f"{CUSTOMER}/status", body="")
    sid = simulator.incoming("+15550111", number)

    record = next(c for c in commands_of(db, sid) if c["type"] == "record")
    assert (record["mode"], record["channels"]) == ("call", 2)
    assert {"type": "stop", "ref": record["ref"]} in [
        {k: c[k] for k in ("type", "ref") if k in c} for c in commands_of(db, sid)
    ]
    by_url = {call.request.url.rsplit("/", 1)[1]: form(call) for call in responses.calls}
    callback, dialled = by_url["recording"], by_url["dialled"]
    assert callback["RecordingStatus"] == "completed"
    assert callback["RecordingChannels"] == "2" and callback["CallSid"] == sid
    assert callback["RecordingDuration"] == "5"
    assert dialled["DialCallStatus"] == "completed"
    assert dialled["RecordingSid"] == callback["RecordingSid"]
    assert dialled["RecordingUrl"] == callback["RecordingUrl"]
    assert dialled["RecordingDuration"] == callback["RecordingDuration"]
    with db.transaction() as conn:
        stored = store_calls.find_recording(conn, account.sid, dialled["RecordingSid"])
    assert stored is not None and stored["call_sid"] == sid
    assert dialled["RecordingUrl"].endswith(f"/Recordings/{stored['sid']}")
    with wave.open(stored["path"]) as recorded:
        assert recorded.getnchannels() == 2


@responses.activate
@pytest.mark.parametrize(
    ("dialled", "status"), [("+14155550486", "busy"), ("+14155550408", "no-answer")]
)
def test_dial_failures_reach_the_action(simulator, db, account, number, dialled, status) -> None:
    responses.post(
        f"{CUSTOMER}/voice",
        body=f"<Response><Dial action='/dialled'>{dialled}</Dial></Response>",
        content_type="text/xml",
    )
    responses.post(
        f"{CUSTOMER}/dialled", body="<Response><Say>Sorry</Say></Response>", content_type="text/xml"
    )
    responses.post(f"{CUSTOMER}/status", body="")
    simulator.incoming("+15550111", number)
    dialled_form = form(responses.calls[1])
    assert dialled_form["DialCallStatus"] == status
    assert "DialCallDuration" not in dialled_form


@responses.activate
def test_dial_of_an_extension_targets_the_extension(simulator, db, account, number) -> None:
    from provisioning.extensions import set_extension
    from store import extensions

    with db.transaction() as conn:
        extensions.set_sip_domain(conn, account.sid, f"acct-{uuid.uuid4().hex[:8]}.test")
        set_extension(conn, account.sid, "101", "a-long-password")
    responses.post(
        f"{CUSTOMER}/voice", body="<Response><Dial>101</Dial></Response>", content_type="text/xml"
    )
    responses.post(f"{CUSTOMER}/status", body="")
    sid = simulator.incoming("+15550111", number)
    child = dialled_leg(db, account.sid, sid)
    [originate] = commands_of(db, child.sid)
    assert originate["target"] == {"extension": "101", "account": account.sid}


def conference_twiml(*, end_on_exit: bool = False, start: bool = True, limit: int = 10) -> str:
    return (
        "<Response><Dial action='/left'>"
        f"<Conference statusCallback='/conf' statusCallbackEvent='start end join leave' "
        f"endConferenceOnExit='{str(end_on_exit).lower()}' "
        f"startConferenceOnEnter='{str(start).lower()}' maxParticipants='{limit}'>"
        "Sales</Conference></Dial><Say>after</Say></Response>"
    )


def callbacks(kind: str = "/conf") -> list[dict[str, str]]:
    return [form(c) for c in responses.calls if c.request.url.endswith(kind)]


@responses.activate
def test_conference_join_start_and_end_on_exit_with_status_callbacks(
    simulator, db, account, number
) -> None:
    responses.post(f"{CUSTOMER}/voice", body=conference_twiml(end_on_exit=True),
                   content_type="text/xml")  # fmt: skip
    responses.post(f"{CUSTOMER}/conf", body="")
    responses.post(f"{CUSTOMER}/left", body="<Response><Hangup/></Response>",
                   content_type="text/xml")  # fmt: skip
    responses.post(f"{CUSTOMER}/status", body="")
    first = simulator.incoming("+15550111", number)
    responses.replace(responses.POST, f"{CUSTOMER}/voice", body=conference_twiml(),
                      content_type="text/xml")  # fmt: skip
    second = simulator.incoming("+15550122", number)
    assert [c["StatusCallbackEvent"] for c in callbacks()] == [
        "participant-join", "conference-start", "participant-join",
    ]  # fmt: skip
    room = callbacks()[0]["ConferenceSid"]
    assert {c["ConferenceSid"] for c in callbacks()} == {room}
    assert callbacks()[0]["FriendlyName"] == "Sales"
    assert [c["type"] for c in commands_of(db, second)][:2] == ["answer", "join"]

    simulator.node.caller_hangs_up(first)
    simulator.run()
    events = [c["StatusCallbackEvent"] for c in callbacks()]
    assert events[3:] == ["participant-leave", "conference-end"]
    assert "leave" in [c["type"] for c in commands_of(db, second)]
    [left] = [form(c) for c in responses.calls if c.request.url.endswith("/left")]
    assert (left["CallSid"], left["ConferenceSid"]) == (second, room)
    with db.transaction() as conn:
        from store import conferences

        row = conferences.get(conn, room)
        members = conferences.participants(conn, room)
    assert (row["status"], row["end_reason"]) == ("completed", "ended-by-participant")
    assert all(m.left_at is not None for m in members) and len(members) == 2


@responses.activate
def test_a_full_conference_refuses_the_next_caller_with_an_event(
    simulator, db, account, number
) -> None:
    responses.post(f"{CUSTOMER}/voice", body=conference_twiml(limit=2), content_type="text/xml")
    responses.post(f"{CUSTOMER}/conf", body="")
    responses.post(f"{CUSTOMER}/left", body="<Response><Say>full</Say></Response>",
                   content_type="text/xml")  # fmt: skip
    responses.post(f"{CUSTOMER}/status", body="")
    simulator.incoming("+15550111", number)
    simulator.incoming("+15550122", number)
    third = simulator.incoming("+15550133", number)
    [left] = [form(c) for c in responses.calls if c.request.url.endswith("/left")]
    assert left["CallSid"] == third and left["ConferenceLeaveReason"] == "conference-full"
    assert "join" not in [c["type"] for c in commands_of(db, third)]
    with db.transaction() as conn:
        from store import conferences

        kinds = [e["kind"] for e in conferences.events(conn, left["ConferenceSid"])]
    assert "refused" in kinds


@responses.activate
def test_waiting_for_a_moderator_plays_music_until_the_room_starts(
    simulator, db, account, number
) -> None:
    responses.post(f"{CUSTOMER}/voice", body=conference_twiml(start=False),
                   content_type="text/xml")  # fmt: skip
    responses.post(f"{CUSTOMER}/conf", body="")
    responses.post(f"{CUSTOMER}/status", body="")
    waiting = simulator.incoming("+15550111", number)
    assert [c["type"] for c in commands_of(db, waiting)] == ["answer", "join", "hold"]
    responses.replace(responses.POST, f"{CUSTOMER}/voice", body=conference_twiml(start=True),
                      content_type="text/xml")  # fmt: skip
    simulator.incoming("+15550122", number)
    later = [c["type"] for c in commands_of(db, waiting)][3:]
    assert later == ["resume", "tone"]  # music stops, then the join beep
    assert [c["StatusCallbackEvent"] for c in callbacks()].count("conference-start") == 1


@responses.activate
def test_every_leg_is_handed_to_rating_once_when_it_ends(simulator, db, account, number) -> None:
    rated: list[str] = []
    simulator.runner.rate = rated.append
    responses.post(
        f"{CUSTOMER}/voice",
        body="<Response><Dial>+14155550100</Dial><Hangup/></Response>",
        content_type="text/xml",
    )
    responses.post(f"{CUSTOMER}/status", body="")
    sid = simulator.incoming("+15550111", number)
    child = dialled_leg(db, account.sid, sid).sid
    assert sorted(rated) == sorted([sid, child])


@responses.activate
def test_a_dialled_number_goes_out_in_e164_as_the_accounts_country_reads_it(
    simulator, db, account, number
) -> None:
    responses.post(
        f"{CUSTOMER}/voice",
        body="<Response><Dial>(415) 555-0100</Dial></Response>",
        content_type="text/xml",
    )
    responses.post(f"{CUSTOMER}/status", body="")
    sid = simulator.incoming("+15550111", number)
    child = dialled_leg(db, account.sid, sid)
    [originate] = commands_of(db, child.sid)
    assert originate["target"] == {"number": "+14155550100"}


@pytest.fixture
def api(simulator, db, services):
    from interpreter.app import create_app

    def drive(call_sid: str) -> None:
        simulator.runner.drive(call_sid)
        simulator.run()

    app = create_app(services.settings(), db=db, drive=drive)
    return app.test_client()


def room_twiml() -> str:
    return (
        "<Response><Dial action='/left'>"
        "<Conference statusCallback='/conf' statusCallbackEvent='join mute hold'>"
        "Sales</Conference></Dial></Response>"
    )


@responses.activate
def test_the_participants_api_mutes_holds_and_removes_with_status_callbacks(
    simulator, db, account, number, api
) -> None:
    responses.post(f"{CUSTOMER}/voice", body=room_twiml(), content_type="text/xml")
    responses.post(f"{CUSTOMER}/conf", body="")
    responses.post(f"{CUSTOMER}/left", body="<Response><Say>bye</Say></Response>",
                   content_type="text/xml")  # fmt: skip
    responses.post(f"{CUSTOMER}/status", body="")
    first = simulator.incoming("+15550111", number)
    second = simulator.incoming("+15550122", number)
    room = callbacks()[0]["ConferenceSid"]
    base = f"/2010-04-01/Accounts/{account.sid}/Conferences/{room}/Participants"
    auth = (account.sid, account.token)

    listed = api.get(f"{base}.json", auth=auth).get_json()["participants"]
    assert [p["call_sid"] for p in listed] == [first, second]
    assert all(p["muted"] is False and p["hold"] is False for p in listed)

    reply = api.post(f"{base}/{second}.json", data={"Muted": "true"}, auth=auth)
    assert reply.status_code == 200 and reply.get_json()["muted"] is True
    assert {"type": "mute", "muted": True} in [
        {k: c[k] for k in ("type", "muted") if k in c} for c in commands_of(db, second)
    ]
    [mute] = [c for c in callbacks() if c["StatusCallbackEvent"] == "participant-mute"]
    assert (mute["CallSid"], mute["Muted"], mute["ConferenceSid"]) == (second, "true", room)
    assert api.get(f"{base}/{second}.json", auth=auth).get_json()["muted"] is True

    api.post(f"{base}/{second}.json", data={"Hold": "true"}, auth=auth)
    api.post(f"{base}/{second}.json", data={"Hold": "false"}, auth=auth)
    kinds = [c["type"] for c in commands_of(db, second)]
    assert kinds[-2:] == ["hold", "resume"]
    events = [c["StatusCallbackEvent"] for c in callbacks()]
    assert events[-2:] == ["participant-hold", "participant-unhold"]
    assert callbacks()[-2]["Hold"] == "true" and callbacks()[-1]["Hold"] == "false"

    assert api.delete(f"{base}/{second}.json", auth=auth).status_code == 204
    assert "leave" in [c["type"] for c in commands_of(db, second)]
    [left] = [form(c) for c in responses.calls if c.request.url.endswith("/left")]
    assert (left["CallSid"], left["ConferenceLeaveReason"]) == (second, "removed")
    listed = api.get(f"{base}.json", auth=auth).get_json()["participants"]
    assert [p["call_sid"] for p in listed] == [first]
    with db.transaction() as conn:
        from store import conferences

        kinds = [e["kind"] for e in conferences.events(conn, room)]
    assert [k for k in kinds if k in ("mute", "hold", "unhold", "removed", "leave")] == [
        "mute",
        "hold",
        "unhold",
        "removed",
        "leave",
    ]


@responses.activate
def test_the_participants_api_refuses_bad_input_and_other_accounts(
    simulator, db, account, number, api, services
) -> None:
    from store.accounts import create_account

    responses.post(f"{CUSTOMER}/voice", body=room_twiml(), content_type="text/xml")
    responses.post(f"{CUSTOMER}/conf", body="")
    responses.post(f"{CUSTOMER}/status", body="")
    caller = simulator.incoming("+15550111", number)
    room = callbacks()[0]["ConferenceSid"]
    base = f"/2010-04-01/Accounts/{account.sid}/Conferences/{room}/Participants"
    auth = (account.sid, account.token)
    assert api.get(f"{base}.json").status_code == 401
    assert api.get(f"{base}.json", auth=(account.sid, account.token + "x")).status_code == 401
    with db.transaction() as conn:
        other, token = create_account(conn, "other", services.settings().resolved_secret_key())
    # Another account sees no such conference, under its own sid or under ours.
    mine_as_theirs = f"/2010-04-01/Accounts/{other.sid}/Conferences/{room}/Participants.json"
    assert api.get(mine_as_theirs, auth=(other.sid, token)).status_code == 404
    assert api.get(f"{base}.json", auth=(other.sid, token)).status_code == 401
    reply = api.post(f"{base}/{caller}.json", data={"Muted": "maybe"}, auth=auth)
    assert reply.status_code == 400 and "Muted must be true or false" in reply.get_json()["message"]
    assert api.post(f"{base}/{caller}.json", data={}, auth=auth).status_code == 400
    unknown = "CA" + "0" * 32
    assert api.post(f"{base}/{unknown}.json", data={"Muted": "true"}, auth=auth).status_code == 404
    assert "mute" not in [c["type"] for c in commands_of(db, caller)]


def test_the_api_drives_the_call_through_the_broker(db, services) -> None:
    """Without a `drive` given, the web app asks a worker over the real broker."""
    from kombu import Connection, Queue

    from interpreter.app import create_app
    from worker.app import transport_options

    settings = services.settings()
    app = create_app(settings, db=db)
    sid = "CA" + uuid.uuid4().hex
    received: list = []
    with Connection(settings.broker_url, transport_options=transport_options(settings)) as conn:
        queue = Queue(settings.events_queue)
        with conn.SimpleQueue(queue) as simple:
            while True:  # what earlier tests left on the shared queue
                try:
                    simple.get_nowait().ack()
                except simple.Empty:
                    break
            app.extensions["voice_drive"](sid)
            message = simple.get(timeout=5)
            received.append((message.headers.get("task"), message.decode()))
            message.ack()
    [(task, body)] = received
    assert task == "worker.drive_call"
    assert body[0] == [sid]


@responses.activate
def test_a_coach_joins_whispering_to_the_participant_it_names(
    simulator, db, account, number
) -> None:
    responses.post(f"{CUSTOMER}/voice", body=room_twiml(), content_type="text/xml")
    responses.post(f"{CUSTOMER}/conf", body="")
    responses.post(f"{CUSTOMER}/status", body="")
    agent = simulator.incoming("+15550111", number)
    responses.replace(
        responses.POST,
        f"{CUSTOMER}/voice",
        body=f"<Response><Dial><Conference coach='{agent}' muted='true'>Sales</Conference>"
        "</Dial></Response>",
        content_type="text/xml",
    )
    supervisor = simulator.incoming("+15550122", number)
    [join] = [c for c in commands_of(db, supervisor) if c["type"] == "join"]
    assert (join["coach"], join["muted"]) == (agent, True)
    [agent_join] = [c for c in commands_of(db, agent) if c["type"] == "join"]
    assert agent_join["conference"] == join["conference"]


def test_conference_rows_left_by_a_dead_worker_are_written_by_the_next_event(
    simulator, db, account
) -> None:
    """A merge's commands went out, then the worker died before writing the conference
    rows: the note waits in the call's state and whatever the call applies next writes
    them first."""
    from datetime import UTC, datetime

    from calls import ledger, transfer
    from store import conferences
    from store.calls import CallRow

    def make(direction: str, from_number: str, to_number: str, script: dict) -> str:
        sid = "CA" + uuid.uuid4().hex

        def build(work: ledger.CallWork) -> None:
            work.create(
                CallRow(
                    sid=sid, account_sid=account.sid, parent_call_sid=None,
                    direction=direction, from_number=from_number, to_number=to_number,
                    status="in-progress", phone_number_sid=None, media_node="n1",
                    created_at=datetime.now(UTC), answered_at=datetime.now(UTC),
                    ended_at=None, end_reason=None, last_event_seq=0, next_command_seq=1,
                    next_log_seq=1, script=script,
                )
            )  # fmt: skip

        ledger.create(db, sid, build)
        return sid

    held = make("inbound", "+15550111", "+15550100", {})
    added = make("outbound-dial", "+15550100", "+442079460000", {})
    flow = {**transfer.new_flow("CA" + "e" * 32, held, "+15550100"), "conference": "CF" + "9" * 32}
    employee = make(
        "outbound-dial", "+15550100", "101",
        {"transfer": {**flow, "employee": "pending"},
         "conference_notes": [{"conference": flow["conference"], "added": added}]},
    )  # fmt: skip
    with db.transaction() as conn:
        assert conferences.get(conn, flow["conference"]) is None
    with db.transaction() as conn:  # anything for the call: here a signal nobody handles
        store_calls.add_signal(conn, employee, {"type": "signal.nothing", "at": time.time()})
    simulator.runner.drive(employee)
    with db.transaction() as conn:
        room = conferences.get(conn, flow["conference"])
        roles = sorted(p.role for p in conferences.participants(conn, flow["conference"]))
        script = store_calls.get_call(conn, employee).script
    assert room is not None and room["origin_call_sid"] == held
    assert roles == ["employee", "external", "subscriber"]
    assert "conference_notes" not in script


@responses.activate
def test_dial_method_time_limit_and_answer_on_bridge(simulator, db, account, number) -> None:
    responses.post(
        f"{CUSTOMER}/voice",
        body="<Response><Dial action='/dialled' method='GET' timeLimit='30' "
        "answerOnBridge='true'>+14155550100</Dial></Response>",
        content_type="text/xml",
    )
    responses.get(
        f"{CUSTOMER}/dialled", body="<Response><Hangup/></Response>", content_type="text/xml"
    )
    responses.post(f"{CUSTOMER}/status", body="")
    sid = simulator.incoming("+15550111", number)
    child = dialled_leg(db, account.sid, sid)
    [originate] = commands_of(db, child.sid)
    assert originate["time_limit"] == 30
    # answerOnBridge: the caller is answered only when the dialled party answers (and so
    # hears the network's ringing, not ours).
    assert [c["type"] for c in commands_of(db, sid)] == ["answer", "bridge", "hangup"]
    [dialled] = [c for c in responses.calls if "/dialled" in c.request.url]
    assert dialled.request.method == "GET"
    query = parse_qs(dialled.request.url.split("?", 1)[1])
    assert query["DialCallStatus"] == ["completed"] and query["DialCallSid"] == [child.sid]
