"""The web application against real PostgreSQL: who may read bins, recordings and calls."""

from __future__ import annotations

import base64

import pytest
from twilio.request_validator import RequestValidator

from interpreter import signature
from interpreter.app import create_app
from store import accounts, bins

pytestmark = pytest.mark.integration

PUBLIC = "http://127.0.0.1:8000"


@pytest.fixture
def client(services, db):
    app = create_app(services.settings(public_url=PUBLIC), db=db)
    return app.test_client()


def basic(sid: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()}


@pytest.fixture
def script_bin(db, account):
    with db.transaction() as conn:
        return bins.save_bin(conn, account.sid, "hello", "<Response><Say>hi</Say></Response>")


def test_health_needs_no_credentials_and_shows_no_data(client) -> None:
    reply = client.get("/healthz")
    assert reply.status_code == 200
    assert reply.get_json() == {"status": "ok"}


def test_a_bin_is_served_to_a_request_signed_by_its_account(client, script_bin, account) -> None:
    url = f"{PUBLIC}/bins/{script_bin.sid}"
    params = {"CallSid": "CA" + "1" * 32, "Digits": "12"}
    signed = signature.sign(account.token, url, params)
    assert RequestValidator(account.token).validate(url, params, signed)
    reply = client.post(
        f"/bins/{script_bin.sid}", data=params, headers={"X-Twilio-Signature": signed}
    )
    assert reply.status_code == 200
    assert reply.mimetype == "text/xml"
    assert reply.get_data(as_text=True) == script_bin.body


def test_a_get_with_a_query_string_is_verified_over_the_whole_url(
    client, script_bin, account
) -> None:
    url = f"{PUBLIC}/bins/{script_bin.sid}?CallSid=CA1&From=%2B1555"
    reply = client.get(
        url.removeprefix(PUBLIC), headers={"X-Twilio-Signature": signature.sign(account.token, url)}
    )
    assert reply.status_code == 200


@pytest.mark.parametrize(
    "tamper",
    ["params", "token", "url", "garbage"],
)
def test_a_signature_mismatch_is_refused(client, script_bin, account, tamper) -> None:
    url = f"{PUBLIC}/bins/{script_bin.sid}"
    params = {"CallSid": "CA" + "1" * 32, "Digits": "12"}
    signed = {
        "params": signature.sign(account.token, url, {**params, "Digits": "99"}),
        "token": signature.sign("0" * 32, url, params),
        "url": signature.sign(account.token, url + "x", params),
        "garbage": "not base64 at all!",
    }[tamper]
    reply = client.post(
        f"/bins/{script_bin.sid}", data=params, headers={"X-Twilio-Signature": signed}
    )
    assert reply.status_code == 403
    assert "hi" not in reply.get_data(as_text=True)


def test_another_accounts_signature_or_password_gets_nothing(client, db, script_bin) -> None:
    with db.transaction() as conn:
        other, token = accounts.create_account(conn, "other", "test secret key")
    url = f"{PUBLIC}/bins/{script_bin.sid}"
    signed = client.post(
        f"/bins/{script_bin.sid}", headers={"X-Twilio-Signature": signature.sign(token, url)}
    )
    assert signed.status_code == 403
    assert client.get(f"/bins/{script_bin.sid}", headers=basic(other.sid, token)).status_code == 401


def test_a_bin_needs_credentials_and_missing_bins_look_the_same(
    client, script_bin, account
) -> None:
    assert client.get(f"/bins/{script_bin.sid}").status_code == 401
    owner = basic(account.sid, account.token)
    assert client.get(f"/bins/{script_bin.sid}", headers=owner).status_code == 200
    assert client.get("/bins/EH" + "0" * 32, headers=owner).status_code == 401
    assert client.get("/bins/../../etc/passwd", headers=owner).status_code in (401, 404)


def test_the_console_needs_the_accounts_credentials(client, account) -> None:
    assert client.get("/").status_code == 401
    assert client.get("/", headers=basic(account.sid, "wrong")).status_code == 401
    page = client.get("/", headers=basic(account.sid, account.token))
    assert page.status_code == 200
    assert account.sid in page.get_data(as_text=True)


def test_the_console_never_shows_another_accounts_call(client, db, account) -> None:
    from datetime import UTC, datetime

    from store import calls as store_calls
    from store.calls import CallRow
    from store.sids import new_sid

    with db.transaction() as conn:
        other, token = accounts.create_account(conn, "other", "test secret key")
        sid = new_sid("call")
        store_calls.insert_call(
            conn,
            CallRow(
                sid=sid,
                account_sid=account.sid,
                parent_call_sid=None,
                direction="inbound",
                from_number="+15550111",
                to_number="+15550100",
                status="completed",
                phone_number_sid=None,
                media_node="n1",
                created_at=datetime.now(UTC),
                answered_at=None,
                ended_at=None,
                end_reason=None,
                last_event_seq=0,
                next_command_seq=1,
                next_log_seq=1,
                script={},
            ),
        )
    mine = client.get(f"/calls/{sid}", headers=basic(account.sid, account.token))
    assert mine.status_code == 200
    theirs = client.get(f"/calls/{sid}", headers=basic(other.sid, token))
    assert theirs.status_code == 404
    listing = client.get("/", headers=basic(other.sid, token)).get_data(as_text=True)
    assert sid not in listing


def test_recordings_are_for_their_account_only(client, account) -> None:
    url = f"/2010-04-01/Accounts/{account.sid}/Recordings/RE{'0' * 32}.wav"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=basic(account.sid, account.token)).status_code == 404
