"""Script bins at stable URLs: `/bins/<sid>`.

Only the owning account reads a bin: with a request signed by its auth token (the way the
platform itself, or another Twilio-compatible platform, fetches a voice URL) or with its
AccountSid/AuthToken over HTTP Basic (a developer looking at it). A missing bin and
another account's bin get the same answer, so probing reveals nothing.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from interpreter.auth import basic_account, challenge, db, signed_by
from store import bins
from store.sids import is_sid

blueprint = Blueprint("bins", __name__)


@blueprint.route("/bins/<sid>", methods=["GET", "POST"])
def show(sid: str) -> Response:
    found = None
    if is_sid(sid, "script_bin"):
        with db().transaction() as conn:
            found = bins.get_bin(conn, sid)
    if found is not None:
        account = basic_account()
        if (account and account.sid == found.account_sid) or signed_by(found.account_sid):
            mimetype = (
                "application/vnd.voicexml+xml" if found.language == "voicexml" else "text/xml"
            )
            return Response(found.body, mimetype=mimetype)
    if "X-Twilio-Signature" in request.headers:
        return Response("Signature does not match.\n", status=403, mimetype="text/plain")
    return challenge()
