"""The store against real PostgreSQL: accounts, numbers, bins and the call ledger."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from calls import ledger
from calls.media_client import MediaClient
from store import accounts, bins, numbers, sealing
from store import calls as store_calls
from store.calls import CallRow
from store.sids import new_sid

pytestmark = pytest.mark.integration

SECRET = "test secret key"


def test_auth_tokens_are_stored_hashed_and_sealed(db, account) -> None:
    with db.transaction() as conn:
        row = conn.execute("SELECT * FROM accounts WHERE sid = %s", (account.sid,)).fetchone()
        assert account.token not in row["auth_token_hash"]
        assert account.token.encode() not in bytes(row["auth_token_sealed"])
        assert accounts.authenticate(conn, account.sid, account.token).sid == account.sid
        assert accounts.authenticate(conn, account.sid, account.token + "x") is None
        assert accounts.authenticate(conn, "AC" + "0" * 32, account.token) is None
        assert accounts.authenticate(conn, "not a sid", account.token) is None
        assert accounts.auth_token(conn, account.sid, SECRET) == account.token
        with pytest.raises(ValueError, match="SECRET_KEY differs"):
            accounts.auth_token(conn, account.sid, "another key")


def test_a_suspended_account_does_not_authenticate(db, account) -> None:
    with db.transaction() as conn:
        conn.execute("UPDATE accounts SET status = 'suspended' WHERE sid = %s", (account.sid,))
        assert accounts.authenticate(conn, account.sid, account.token) is None


def test_numbers_belong_to_one_account(db, account) -> None:
    number = "+1555" + str(uuid.uuid4().int)[:7]
    with db.transaction() as conn:
        other, _ = accounts.create_account(conn, "other", SECRET)
        saved = numbers.set_number(conn, account.sid, number, voice_url="https://a.example/v")
        assert saved.voice_method == "POST"
        updated = numbers.set_number(conn, account.sid, number, voice_method="GET")
        assert (updated.sid, updated.voice_url, updated.voice_method) == (
            saved.sid,
            "https://a.example/v",
            "GET",
        )
        with pytest.raises(PermissionError):
            numbers.set_number(conn, other.sid, number, voice_url="https://evil.example/")
        with pytest.raises(TypeError, match="unknown phone number fields"):
            numbers.set_number(conn, account.sid, number, sms_url="x")


def test_a_malformed_number_is_refused_by_the_schema(db, account) -> None:
    with pytest.raises(psycopg.errors.CheckViolation), db.transaction() as conn:
        numbers.set_number(conn, account.sid, "call me maybe")


def test_saving_a_bin_again_keeps_its_sid(db, account) -> None:
    with db.transaction() as conn:
        first = bins.save_bin(conn, account.sid, "menu", "<Response/>")
        second = bins.save_bin(conn, account.sid, "menu", "<Response><Hangup/></Response>")
        assert second.sid == first.sid
        assert bins.get_bin(conn, first.sid).body == "<Response><Hangup/></Response>"


def _event(call_sid: str, seq: int, type_: str = "dtmf") -> dict:
    return {
        "v": 1,
        "type": type_,
        "call": call_sid,
        "seq": seq,
        "node": "n1",
        "at": 1.0,
        "digit": "1",
        "source": "rfc4733",
    }


def _new_call(db, account_sid: str) -> str:
    sid = new_sid("call")

    def build(work: ledger.CallWork) -> None:
        work.create(
            CallRow(
                sid=sid,
                account_sid=account_sid,
                parent_call_sid=None,
                direction="inbound",
                from_number="+1",
                to_number="+2",
                status="ringing",
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
            )
        )

    ledger.create(db, sid, build)
    return sid


def test_events_apply_once_in_order_whatever_order_they_arrive_in(db, account) -> None:
    sid = _new_call(db, account.sid)
    applied: list[int] = []

    def apply(work: ledger.CallWork, event: dict) -> None:
        applied.append(event["seq"])
        work.send({"type": "answer"})

    for seq in (2, 3):
        assert ledger.receive(db, _event(sid, seq))
        ledger.apply_pending(db, sid, apply)
    assert applied == []  # seq 1 is missing: nothing may run ahead of it
    assert not ledger.receive(db, _event(sid, 3))  # a duplicate is absorbed
    ledger.receive(db, _event(sid, 1))
    ledger.apply_pending(db, sid, apply)
    ledger.apply_pending(db, sid, apply)
    assert applied == [1, 2, 3]
    with db.transaction() as conn:
        call = store_calls.get_call(conn, sid)
        assert call.last_event_seq == 3
        assert [c["seq"] for c in store_calls.media_commands(conn, sid)] == [1, 2, 3]


def test_the_outbox_is_sent_once_in_order(db, account) -> None:
    sid = _new_call(db, account.sid)
    for seq in (1, 2):
        ledger.receive(db, _event(sid, seq))
    ledger.apply_pending(db, sid, lambda work, event: work.send({"type": "answer"}))
    sent: list[tuple[str, int]] = []
    client = MediaClient(db, lambda node, command: sent.append((node, command["seq"])))
    assert client.flush(sid) == 2
    assert client.flush(sid) == 0
    assert sent == [("n1", 1), ("n1", 2)]


def test_commands_go_out_from_memory_once_and_the_flush_sends_only_leftovers(db, account) -> None:
    sid = _new_call(db, account.sid)
    ledger.receive(db, _event(sid, 1))
    # A worker that died after committing left command 1 unsent.
    ledger.apply_pending(db, sid, lambda work, event: work.send({"type": "answer"}))
    ledger.receive(db, _event(sid, 2))
    work = ledger.apply_pending(db, sid, lambda work, event: work.send({"type": "hangup"}))
    assert [message["seq"] for _node, message in work.queued] == [2]
    sent: list[int] = []
    client = MediaClient(db, lambda node, command: sent.append(command["seq"]))
    published = client.publish(work.queued)
    assert sent == [2]  # before any query
    assert client.flush(sid, published) == 1
    assert sent == [2, 1]  # the node orders by seq and absorbs repeats
    with db.transaction() as conn:
        assert all(c["sent_at"] is not None for c in store_calls.media_commands(conn, sid))
    assert client.flush(sid) == 0


def test_a_failed_publish_leaves_the_commands_for_the_next_flush(db, account) -> None:
    sid = _new_call(db, account.sid)
    ledger.receive(db, _event(sid, 1))
    ledger.apply_pending(db, sid, lambda work, event: work.send({"type": "answer"}))

    def broken(node: str, command: dict) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        MediaClient(db, broken).flush(sid)
    sent: list[int] = []
    assert MediaClient(db, lambda node, command: sent.append(command["seq"])).flush(sid) == 1
    assert sent == [1]


def test_an_error_while_applying_rolls_the_event_back(db, account) -> None:
    sid = _new_call(db, account.sid)
    ledger.receive(db, _event(sid, 1))

    def explode(work: ledger.CallWork, event: dict) -> None:
        work.send({"type": "answer"})
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        ledger.apply_pending(db, sid, explode)
    with db.transaction() as conn:
        assert store_calls.get_call(conn, sid).last_event_seq == 0
        assert store_calls.media_commands(conn, sid) == []
    seen: list[int] = []
    ledger.apply_pending(db, sid, lambda work, event: seen.append(event["seq"]))
    assert seen == [1]


def test_token_sealing_round_trip() -> None:
    sealed = sealing.seal("secret", "key")
    assert sealing.unseal(sealed, "key") == "secret"
    assert sealing.token_matches("secret", sealing.token_hash("secret"))
    assert not sealing.token_matches("secreT", sealing.token_hash("secret"))


def test_in_call_options_default_and_set(db, account) -> None:
    from store import in_call_options

    with db.transaction() as conn:
        assert in_call_options.options(conn, account.sid) == {"#": "transfer", "*": "abort"}
        in_call_options.set_option(conn, account.sid, "#", "none")
        in_call_options.set_option(conn, account.sid, "5", "transfer")
        assert in_call_options.options(conn, account.sid) == {
            "#": "none",
            "*": "abort",
            "5": "transfer",
        }
        with pytest.raises(ValueError, match="must be one of transfer, abort, mute, remove, none"):
            in_call_options.set_option(conn, account.sid, "5", "explode")
        in_call_options.set_option(conn, account.sid, "6", "mute")
        in_call_options.set_option(conn, account.sid, "9", "remove")
        assert in_call_options.keys_for(in_call_options.options(conn, account.sid)) == {
            "transfer": "5",
            "abort": "*",
            "mute": "6",
            "remove": "9",
        }
