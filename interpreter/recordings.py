"""Recordings at Twilio's URL shape, for the owning account only (HTTP Basic)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_file

from interpreter.auth import basic_account, challenge, db
from store import calls as store_calls

blueprint = Blueprint("recordings", __name__)


@blueprint.get("/2010-04-01/Accounts/<account_sid>/Recordings/<name>")
def recording(account_sid: str, name: str) -> Response:
    account = basic_account()
    if account is None or account.sid != account_sid:
        return challenge()
    sid = name.removesuffix(".wav")
    with db().transaction() as conn:
        row = store_calls.find_recording(conn, account_sid, sid)
    if row is None or not Path(row["path"]).is_file():
        return Response("No such recording.\n", status=404, mimetype="text/plain")
    return send_file(row["path"], mimetype="audio/wav")
