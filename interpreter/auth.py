"""Who is asking: HTTP Basic with AccountSid/AuthToken, or a signed webhook request.

Every failure answers the same way, so a caller learns nothing about which accounts exist.
"""

from __future__ import annotations

from flask import Response, current_app, g, request

from interpreter import signature
from settings import Settings
from store import accounts
from store.accounts import Account
from store.database import Database


def db() -> Database:
    return current_app.extensions["voice_db"]


def settings() -> Settings:
    return current_app.config["VOICE_SETTINGS"]


def challenge() -> Response:
    return Response(
        "Authentication required: HTTP Basic with your AccountSid and AuthToken.\n",
        status=401,
        headers={"WWW-Authenticate": 'Basic realm="voice"'},
        mimetype="text/plain",
    )


def basic_account() -> Account | None:
    """The account whose AccountSid/AuthToken came with the request, if they match."""
    credentials = request.authorization
    if credentials is None or credentials.type != "basic":
        return None
    with db().transaction() as conn:
        account = accounts.authenticate(
            conn, credentials.username or "", credentials.password or ""
        )
    g.account = account
    return account


def public_request_url() -> str:
    """The URL the request was made to, as the signer saw it (behind any proxy)."""
    path = request.full_path.rstrip("?")
    return settings().public_url + path


def signed_by(account_sid: str) -> bool:
    """True if the request carries a valid X-Twilio-Signature made with that account's token."""
    given = request.headers.get("X-Twilio-Signature")
    if not given:
        return False
    with db().transaction() as conn:
        token = accounts.auth_token(conn, account_sid, settings().resolved_secret_key())
    params = request.form.to_dict(flat=False) if request.method == "POST" else None
    return signature.verify(token, public_request_url(), params, given)
