"""Conference participants over Twilio's REST shape: list, read, mute, hold, remove.

    GET    /2010-04-01/Accounts/{AccountSid}/Conferences/{ConferenceSid}/Participants.json
    GET    .../Participants/{CallSid}.json
    POST   .../Participants/{CallSid}.json   Muted=true|false, Hold=true|false
    DELETE .../Participants/{CallSid}.json

HTTP Basic with the owning account's AccountSid and AuthToken; another account's
conference is a 404, as one that does not exist. A change is left as a signal for the
participant's call and that call is driven at once by a worker (through `drive`), so it
is applied under the call's lock like every other step: the node mutes or holds the leg,
the participant row changes, the conference records an event, and a <Conference> room
sends its `mute`/`hold` status callbacks. Removing a participant of a <Conference> room
takes it out of the room (its script goes on after <Dial>, as on Twilio); removing one
of a `#` conference hangs its leg up, as the controller's "remove" key does.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from interpreter.auth import basic_account, challenge, db
from store import calls as store_calls
from store import conferences
from store.conferences import Participant

blueprint = Blueprint("participants", __name__)

BASE = "/2010-04-01/Accounts/<account_sid>/Conferences/<conference_sid>/Participants"
_BOOLEANS = {"true": True, "false": False}


def _error(status: int, message: str) -> Response:
    response = jsonify({"status": status, "message": message})
    response.status_code = status
    return response


def _resource(room: dict[str, Any], participant: Participant, **override: Any) -> dict[str, Any]:
    account_sid, conference_sid = room["account_sid"], room["sid"]
    return {
        "account_sid": account_sid,
        "conference_sid": conference_sid,
        "call_sid": participant.call_sid,
        "label": participant.role,
        "muted": override.get("muted", participant.muted),
        "hold": override.get("hold", participant.on_hold),
        "coaching": False,
        "status": "connected" if participant.left_at is None else "completed",
        "date_created": participant.joined_at.isoformat(),
        "uri": f"/2010-04-01/Accounts/{account_sid}/Conferences/{conference_sid}"
        f"/Participants/{participant.call_sid}.json",
    }


def _lookup(
    account_sid: str, conference_sid: str, call_sid: str | None
) -> tuple[dict[str, Any], list[Participant]] | Response:
    account = basic_account()
    if account is None or account.sid != account_sid:
        return challenge()
    with db().transaction() as conn:
        room = conferences.get(conn, conference_sid)
        present = (
            [p for p in conferences.participants(conn, conference_sid) if p.left_at is None]
            if room is not None
            else []
        )
    if room is None or room["account_sid"] != account_sid:
        return _error(404, f"The requested resource {request.path} was not found")
    if call_sid is not None:
        present = [p for p in present if p.call_sid == call_sid]
        if not present:
            return _error(404, f"{call_sid} is not a participant of {conference_sid}")
    return room, present


@blueprint.get(BASE + ".json")
def list_participants(account_sid: str, conference_sid: str) -> Response:
    found = _lookup(account_sid, conference_sid, None)
    if isinstance(found, Response):
        return found
    room, present = found
    return jsonify({"participants": [_resource(room, p) for p in present]})


@blueprint.get(BASE + "/<call_sid>.json")
def read_participant(account_sid: str, conference_sid: str, call_sid: str) -> Response:
    found = _lookup(account_sid, conference_sid, call_sid)
    if isinstance(found, Response):
        return found
    room, (participant,) = found
    return jsonify(_resource(room, participant))


@blueprint.post(BASE + "/<call_sid>.json")
def update_participant(account_sid: str, conference_sid: str, call_sid: str) -> Response:
    found = _lookup(account_sid, conference_sid, call_sid)
    if isinstance(found, Response):
        return found
    room, (participant,) = found
    if room["ended_at"] is not None:
        return _error(409, f"conference {conference_sid} has ended")
    changes: dict[str, bool] = {}
    for field, key in (("Muted", "muted"), ("Hold", "hold")):
        raw = request.form.get(field)
        if raw is None:
            continue
        if raw.lower() not in _BOOLEANS:
            return _error(400, f"{field} must be true or false, not {raw!r}")
        changes[key] = _BOOLEANS[raw.lower()]
    if not changes:
        return _error(400, "nothing to change: give Muted and/or Hold")
    _signal(call_sid, {"conference": conference_sid, **changes})
    return jsonify(_resource(room, participant, **changes))


@blueprint.delete(BASE + "/<call_sid>.json")
def remove_participant(account_sid: str, conference_sid: str, call_sid: str) -> Response:
    found = _lookup(account_sid, conference_sid, call_sid)
    if isinstance(found, Response):
        return found
    _signal(call_sid, {"conference": conference_sid, "remove": True})
    return Response(status=204)


def _signal(call_sid: str, fields: dict[str, Any]) -> None:
    with db().transaction() as conn:
        store_calls.add_signal(
            conn, call_sid, {"type": "signal.participant", "at": time.time(), **fields}
        )
    current_app.extensions["voice_drive"](call_sid)
