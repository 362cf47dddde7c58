"""The console (first pages): the account's calls and each call's event log.

Every page needs the account's AccountSid/AuthToken; a call of another account is
answered exactly like a call that does not exist.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template

from interpreter.auth import basic_account, challenge, db
from store import calls as store_calls

blueprint = Blueprint("console", __name__, template_folder="templates")


@blueprint.get("/")
def calls() -> Response | str:
    account = basic_account()
    if account is None:
        return challenge()
    with db().transaction() as conn:
        rows = store_calls.recent_calls(conn, account.sid)
    return render_template("calls.html", account=account, calls=rows)


@blueprint.get("/calls/<sid>")
def call(sid: str) -> Response | str:
    account = basic_account()
    if account is None:
        return challenge()
    with db().transaction() as conn:
        row = store_calls.get_call(conn, sid)
        if row is None or row.account_sid != account.sid:
            return Response("No such call.\n", status=404, mimetype="text/plain")
        events = store_calls.call_events(conn, sid)
    return render_template("call.html", account=account, call=row, events=events)
