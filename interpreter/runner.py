"""The imperative shell around `interpreter.script`: events in, commands and webhooks out.

`ScriptRunner.handle(event)` is all a worker calls for a media event. It stores the
event, applies what is next in line for the call through the pure step function (under
the call's lock, see `calls.ledger`), performs the document fetch the script waits for,
and sends the resulting media commands and status callbacks. The same code runs in a
Celery worker and in `manage.py simulate`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from calls import ledger
from calls.ledger import CallWork
from calls.media_client import MediaClient
from interpreter import script
from interpreter.script import (
    Answered,
    CallInfo,
    Collected,
    Fetch,
    Fetched,
    HungUp,
    Notify,
    PromptDone,
    RecordDone,
    ScriptState,
    Start,
)
from interpreter.webhook import ReplyKind, WebhookClient
from store import accounts, bins, numbers
from store import calls as store_calls
from store.calls import CallRow
from store.database import Database
from store.sids import is_sid, new_sid

log = logging.getLogger(__name__)

Notifier = Callable[[str, Notify], None]


def _timestamp(at: float) -> datetime:
    return datetime.fromtimestamp(at, tz=UTC)


def _log_event(work: CallWork, event: dict[str, Any]) -> None:
    fields = {k: v for k, v in event.items() if k not in ("v", "call", "type", "seq", "at")}
    work.log("event", event=event["type"], event_seq=event["seq"], node_at=event["at"], **fields)


def _call_row(call: CallInfo, *, node: str, at: float, status: str) -> CallRow:
    return CallRow(
        sid=call.sid,
        account_sid=call.account_sid,
        parent_call_sid=call.parent_call_sid,
        direction=call.direction,
        from_number=call.from_number,
        to_number=call.to_number,
        status=status,
        phone_number_sid=None,
        media_node=node,
        created_at=_timestamp(at),
        answered_at=None,
        ended_at=None,
        end_reason=None,
        last_event_seq=0,
        next_command_seq=1,
        next_log_seq=1,
        script={},
    )


class ScriptRunner:
    def __init__(
        self,
        db: Database,
        *,
        media: MediaClient,
        webhooks: WebhookClient,
        notify: Notifier,
        public_url: str,
        secret_key: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.media = media
        self.webhooks = webhooks
        self.notify = notify
        self.public_url = public_url.rstrip("/")
        self.secret_key = secret_key
        self.clock = clock

    # ---------------------------------------------------------------- entry points

    def handle(self, event: dict[str, Any]) -> None:
        """Take one media event (already checked against `media.protocol`)."""
        ledger.receive(self.db, event)
        self.drive(event["call"])

    def start_call(self, call: CallInfo, *, node: str, at: float) -> None:
        """Start a script on a call that a node already has (not announced by `incoming`).

        Used for calls the platform places itself and by the simulator.
        """

        def create(work: CallWork) -> None:
            work.create(_call_row(call, node=node, at=at, status="ringing"))
            self._step(work, Start(at=at), script.new_state(call))

        self._after(ledger.create(self.db, call.sid, create))
        self.drive(call.sid)

    def drive(self, call_sid: str) -> None:
        """Apply whatever is ready for the call, fetch what it waits for, send the rest."""
        self._after(ledger.apply_pending(self.db, call_sid, self._apply_event))
        # Each fetch is done under the call's lock, so a redelivered task or a concurrent
        # event never fetches the same document twice; the script's own limit on
        # fetches in a row (`script.MAX_FETCH_CHAIN`) ends a Redirect loop.
        fetched = True
        while fetched:
            work, fetched = ledger.update(self.db, call_sid, self._perform_fetch)
            self._after(work)

    # ------------------------------------------------------------------- internals

    def _after(self, work: CallWork) -> None:
        self.media.flush(work.call_sid)
        for callback in work.after_commit:
            callback()

    def _apply_event(self, work: CallWork, event: dict[str, Any]) -> None:
        if event["type"] == "incoming":
            self._incoming(work, event)
            return
        if work.call is None:
            return
        _log_event(work, event)
        step_event = self._step_event(work, event)
        if step_event is not None:
            self._step(work, step_event)

    def _incoming(self, work: CallWork, event: dict[str, Any]) -> None:
        number = self._route(work, event["to"])
        if number is None:
            log.warning("call %s to unknown number %r refused", event["call"], event["to"])
            work.send_without_call(event["node"], {"type": "reject", "reason": "forbidden"})
            return
        call = CallInfo(
            sid=event["call"],
            account_sid=number.account_sid,
            from_number=event["from"],
            to_number=event["to"],
            voice_url=number.voice_url,
            voice_method=number.voice_method,
            fallback_url=number.voice_fallback_url,
            fallback_method=number.voice_fallback_method,
            status_callback=number.status_callback,
            status_callback_method=number.status_callback_method,
        )
        row = _call_row(call, node=event["node"], at=event["at"], status="ringing")
        row.phone_number_sid = number.sid
        work.create(row)
        _log_event(work, event)
        self._step(work, Start(at=event["at"]), script.new_state(call))

    @staticmethod
    def _route(work: CallWork, to: str) -> numbers.PhoneNumber | None:
        candidates = [to, to.lstrip("+"), "+" + to.lstrip("+")]
        for candidate in dict.fromkeys(candidates):
            number = numbers.find_number(work.conn, candidate)
            if number is not None:
                return number
        return None

    def _step_event(self, work: CallWork, event: dict[str, Any]) -> script.Event | None:
        at = event["at"]
        match event["type"]:
            case "answered":
                return Answered(at=at)
            case "play_done":
                return PromptDone(ref=event["ref"], at=at)
            case "collected":
                return Collected(
                    ref=event["ref"],
                    digits=event["digits"],
                    reason=event["reason"],
                    finish_key=event.get("finish_key"),
                    at=at,
                )
            case "record_done":
                sid = new_sid("recording")
                store_calls.insert_recording(
                    work.conn,
                    sid,
                    work.call.account_sid,
                    work.call.sid,
                    event["path"],
                    round(event["duration"]),
                )
                return RecordDone(
                    ref=event["ref"],
                    recording_sid=sid,
                    recording_url=(
                        f"{self.public_url}/2010-04-01/Accounts/{work.call.account_sid}"
                        f"/Recordings/{sid}"
                    ),
                    duration=round(event["duration"]),
                    digits=event["digits"],
                    reason=event["reason"],
                    at=at,
                )
            case "hangup":
                return HungUp(cause=event["cause"], at=at)
        return None  # dtmf outside a collection: the script does not use it

    def _step(self, work: CallWork, event: script.Event, state: ScriptState | None = None) -> None:
        call = work.call
        if state is None:
            state = ScriptState.from_json(call.script["state"])
        state, actions = script.step(state, event)
        for action in actions:
            match action:
                case script.Command(payload=payload):
                    seq = work.send(payload)
                    fields = {k: v for k, v in payload.items() if k != "type"}
                    work.log("command", command=payload["type"], command_seq=seq, **fields)
                case Fetch():
                    work.log(
                        "webhook_request",
                        purpose=action.purpose,
                        url=action.url,
                        method=action.method,
                        params=action.params,
                    )
                case Notify():
                    work.log(
                        "status_callback",
                        url=action.url,
                        method=action.method,
                        params=action.params,
                    )
                    work.after_commit.append(
                        lambda action=action, account=call.account_sid: self.notify(account, action)
                    )
                case script.Note(kind=kind, data=data):
                    work.log(kind, **data)
        call.script = {"state": state.to_json()}
        call.status = state.status
        call.answered_at = _timestamp(state.answered_at) if state.answered_at else None
        call.ended_at = _timestamp(state.ended_at) if state.ended_at else None
        call.end_reason = state.end_reason

    def _perform_fetch(self, work: CallWork) -> bool:
        state = ScriptState.from_json(work.call.script["state"])
        waiting = state.waiting
        if waiting is None or waiting.kind != "fetch":
            return False
        self._step(work, self._fetch_document(work, waiting.fetch), state)
        return True

    def _fetch_document(self, work: CallWork, fetch: Fetch) -> Fetched:
        account_sid = work.call.account_sid
        bin_prefix = f"{self.public_url}/bins/"
        if fetch.url.startswith(bin_prefix):
            # Our own script bins are read from the database, not over HTTP.
            sid = fetch.url[len(bin_prefix) :].split("?")[0].split("#")[0]
            found = bins.get_bin(work.conn, sid) if is_sid(sid, "script_bin") else None
            ok = found is not None and found.account_sid == account_sid
            work.log("webhook_reply", url=fetch.url, status=200 if ok else 404, source="bin")
            return Fetched(
                fetch_id=fetch.id,
                ok=ok,
                url=fetch.url,
                status=200 if ok else 404,
                content_type="text/xml",
                body=found.body if ok else "",
                error=None if ok else f"no script bin {sid} in this account",
                at=self.clock(),
            )
        token = accounts.auth_token(work.conn, account_sid, self.secret_key)
        result = self.webhooks.fetch(
            fetch.url,
            fetch.method,
            fetch.params,
            token,
            # The same request after a worker crash carries the same token.
            idempotency_token=f"{work.call_sid}-{fetch.id}",
        )
        work.log(
            "webhook_reply",
            url=result.url,
            status=result.status,
            ok=result.ok,
            error=result.error,
            content_type=result.content_type,
            body=result.body[:4000],
            elapsed_ms=result.elapsed_ms,
        )
        return Fetched(
            fetch_id=fetch.id,
            ok=result.ok,
            url=result.url,
            status=result.status,
            content_type=result.content_type,
            body=result.body,
            error=result.error,
            error_code=result.error_code,
            audio=result.kind == ReplyKind.AUDIO,
            at=self.clock(),
        )
