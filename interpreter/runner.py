"""The imperative shell around `interpreter.script`: events in, commands and webhooks out.

`ScriptRunner.handle(event)` is all a worker calls for a media event. It stores the
event, applies what is next in line for the call through the pure step function (under
the call's lock, see `calls.ledger`), performs the document fetch the script waits for,
and sends the resulting media commands and status callbacks. The same code runs in a
Celery worker and in `manage.py simulate`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any

from billing import e164
from calls import ledger, transfer
from calls.ledger import CallWork
from calls.media_client import MediaClient
from interpreter import script
from interpreter.script import (
    Answered,
    CallInfo,
    Collected,
    ConferenceLeft,
    DialAnswered,
    DialEnded,
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
from store import accounts, bins, conferences, extensions, in_call_options, numbers
from store import calls as store_calls
from store.calls import CallRow
from store.database import Database
from store.sids import is_sid

log = logging.getLogger(__name__)

Notifier = Callable[[str, Notify], None]


def _timestamp(at: float) -> datetime:
    return datetime.fromtimestamp(at, tz=UTC)


def _log_event(work: CallWork, event: dict[str, Any]) -> None:
    fields = {k: v for k, v in event.items() if k not in ("v", "call", "type", "seq", "at")}
    work.log("event", event=event["type"], event_seq=event["seq"], node_at=event["at"], **fields)


BUILTIN_OUTBOUND = "builtin:outbound"

# A Dial leg's last `hangup` cause, before it was answered, as Twilio's DialCallStatus.
_UNANSWERED_STATUS = {
    "busy": "busy",
    "rejected": "busy",
    "no-answer": "no-answer",
    "canceled": "canceled",
    "local": "canceled",
    "shutdown": "failed",
    "failed": "failed",
    "remote": "failed",
}


def _leg_answered(call: CallRow, at: float) -> None:
    call.status = "in-progress"
    call.answered_at = _timestamp(at)


def _leg_ended(call: CallRow, event: dict[str, Any]) -> int:
    """Close a placed leg's row on its hangup; returns its answered seconds."""
    at = event["at"]
    if call.answered_at is not None:
        call.status = "completed"
        duration = max(0, round(at - call.answered_at.timestamp()))
    else:
        call.status = _UNANSWERED_STATUS.get(event["cause"], "failed")
        duration = 0
    call.ended_at = _timestamp(at)
    call.end_reason = event["cause"]
    return duration


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


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
        rate: Callable[[str], None] | None = None,
    ) -> None:
        self.db = db
        self.media = media
        self.webhooks = webhooks
        self.notify = notify
        self.public_url = public_url.rstrip("/")
        self.secret_key = secret_key
        self.clock = clock
        # Called with a leg's sid once the transaction that ended it has committed.
        self.rate = rate or (lambda _sid: None)
        self._local = threading.local()

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
        applied = ledger.apply_pending(self.db, call_sid, self._apply_event)
        self._after(applied)
        if not _waits_for_document(applied.call):
            return  # nothing to fetch (checked again under the lock below when there is)
        # Each fetch is done under the call's lock, so a redelivered task or a concurrent
        # event never fetches the same document twice; the script's own limit on
        # fetches in a row (`script.MAX_FETCH_CHAIN`) ends a Redirect loop.
        fetched = True
        while fetched:
            work, fetched = ledger.update(self.db, call_sid, self._perform_fetch)
            self._after(work)

    # ------------------------------------------------------------------- internals

    def _after(self, work: CallWork) -> None:
        # This call's commands first, from memory; then what the work does to other
        # calls (their commands go out the same way); then, once all of that is out,
        # each outbox is settled (and anything a crashed worker left is sent).
        nested = getattr(self._local, "unsettled", None)
        unsettled: list[tuple[str, set[int]]] = [] if nested is None else nested
        self._local.unsettled = unsettled
        try:
            unsettled.append((work.call_sid, self.media.publish(work.queued)))
            for callback in work.after_commit:
                callback()
        finally:
            self._local.unsettled = nested
        if work.ended_now:
            self.rate(work.call_sid)
        if nested is None:
            for call_sid, published in unsettled:
                self.media.flush(call_sid, published)

    def _apply_event(self, work: CallWork, event: dict[str, Any]) -> None:
        if event["type"] == "incoming":
            self._incoming(work, event)
            return
        if work.call is None:
            return
        if work.call.script.get("conference_notes"):
            self._conference_notes(work)  # left by a worker that died after the commit
        if event["type"].startswith("signal."):
            self._signal(work, event)
            return
        if event["type"] == "hangup":
            self._left_conferences(work)
        if work.call.script.get("consult") is not None:
            self._consult_event(work, event)
            return
        dial_child = work.call.script.get("dial_child")
        if dial_child is not None:
            self._child_event(work, event, dial_child)
            return
        if self._flow_event(work, event):
            return
        if event["type"] == "hangup":
            if self._flow_takes_hangup(work, event):
                return
            # Whoever hangs up the call a script runs on ends every leg placed for it
            # (its <Dial> legs, consultations and conference participants).
            rows = work.conn.execute(
                "SELECT sid FROM calls WHERE parent_call_sid = %s AND ended_at IS NULL",
                (work.call.sid,),
            ).fetchall()
            for row in rows:
                work.after_commit.append(lambda sid=row["sid"]: self._hangup_call(sid))
        _log_event(work, event)
        step_event = self._step_event(work, event)
        if step_event is not None:
            self._step(work, step_event)

    def _incoming(self, work: CallWork, event: dict[str, Any]) -> None:
        if event.get("origin") == "extension":
            self._outgoing(work, event)
            return
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

    def _outgoing(self, work: CallWork, event: dict[str, Any]) -> None:
        """An employee's phone places a call: the account's outbound script runs it
        (by default, dial what was dialled: an extension, or a number by the trunk)."""
        call = CallInfo(
            sid=event["call"],
            account_sid=event["account"],
            from_number=event["extension"],
            to_number=event["to"],
            voice_url=BUILTIN_OUTBOUND,
        )
        work.create(_call_row(call, node=event["node"], at=event["at"], status="ringing"))
        _log_event(work, event)
        self._step(work, Start(at=event["at"]), script.new_state(call))

    # ------------------------------------------------------------------ <Dial> legs

    def _signal(self, work: CallWork, signal: dict[str, Any]) -> None:
        work.log(
            "signal", **{k: v for k, v in signal.items() if k != "type"}, signal=signal["type"]
        )
        match signal["type"]:
            case "signal.conference_left":
                self._step(
                    work,
                    ConferenceLeft(
                        ref=signal["ref"],
                        conference_sid=signal.get("conference"),
                        reason=signal["reason"],
                        at=signal["at"],
                    ),
                )
            case "signal.participant":
                self._participant_signal(work, signal)
            case "signal.consult_answered" | "signal.consult_ended" | "signal.take_control":
                self._flow_signal(work, signal)
                room = signal.get("flow", {}).get("conference")
                running = room and conferences.get(work.conn, room)["ended_at"] is None
                if signal["type"] == "signal.take_control" and running and not work.call.ended_at:
                    conferences.set_controller(work.conn, room, work.call.sid)
            case "signal.dial_answered":
                self._step(
                    work, DialAnswered(ref=signal["ref"], child=signal["child"], at=signal["at"])
                )
                state = work.call.script.get("state", {})
                dial = state.get("dial") or {}
                is_employee = state.get("call", {}).get("voice_url") == BUILTIN_OUTBOUND
                if is_employee and dial.get("answered") == signal["child"]:
                    # An employee's own call was answered: its `#` starts the flow.
                    keys = in_call_options.keys_for(
                        in_call_options.options(work.conn, work.call.account_sid)
                    )
                    flow = transfer.new_flow(
                        work.call.sid, signal["child"], work.call.from_number, keys
                    )
                    work.call.script = {**work.call.script, "transfer": flow}
            case "signal.dial_ended":
                self._step(
                    work,
                    DialEnded(
                        ref=signal["ref"],
                        child=signal["child"],
                        status=signal["status"],
                        duration=signal["duration"],
                        at=signal["at"],
                    ),
                )

    def _child_event(self, work: CallWork, event: dict[str, Any], dial: dict[str, Any]) -> None:
        """An event of a leg placed by <Dial>: its own status, and a signal to its parent."""
        call = work.call
        assert call is not None
        _log_event(work, event)
        at = event["at"]
        parent = dial["parent"]
        match event["type"]:
            case "ringing" if call.status == "queued":
                call.status = "ringing"
            case "answered" if call.ended_at is None:
                _leg_answered(call, at)
                signal = {"type": "signal.dial_answered", "ref": dial["ref"], "child": call.sid}
                self._tell(work, parent, {**signal, "at": at})
                if dial.get("employee"):
                    # An employee answered the subscriber: its `#` starts the transfer flow.
                    flow = transfer.new_flow(
                        call.sid, parent, dial.get("caller_id", ""), dial.get("keys")
                    )
                    call.script = {**call.script, "transfer": flow}
            case "dtmf" | "collected" if call.script.get("transfer"):
                self._flow_event(work, event)
            case "hangup" if call.ended_at is None and self._flow_takes_hangup(work, event):
                pass  # the transfer flow goes on without this employee
            case "hangup" if call.ended_at is None:
                duration = _leg_ended(call, event)
                signal = {
                    "type": "signal.dial_ended",
                    "ref": dial["ref"],
                    "child": call.sid,
                    "status": call.status,
                    "duration": duration,
                }
                self._tell(work, parent, {**signal, "at": at})

    # ---------------------------------------------------- conference by `#` (calls.transfer)

    def _flow_event(self, work: CallWork, event: dict[str, Any]) -> bool:
        """A digit or collected digits on the controlling employee's leg; True if the
        transfer flow took it."""
        call = work.call
        flow = call.script.get("transfer") if call is not None else None
        if flow is None:
            return False
        if event["type"] == "dtmf":
            new, effects = transfer.digit(flow, event["digit"])
        elif event["type"] == "collected" and str(event.get("ref", "")).startswith("transfer-"):
            new, effects = transfer.collected(flow, event["ref"], event["digits"])
        else:
            return False
        if event["type"] == "dtmf" and not effects:
            return False  # not the flow's key: the script may be collecting it
        _log_event(work, event)
        self._apply_flow(work, new, effects)
        return True

    def _flow_takes_hangup(self, work: CallWork, event: dict[str, Any]) -> bool:
        """The controlling employee hung up; True if the flow handles it (the subscriber's
        script is not resumed while the transfer or conference goes on)."""
        call = work.call
        flow = call.script.get("transfer")
        if flow is None or flow["state"] in ("bridged", "ended"):
            return False
        _log_event(work, event)
        call.status = "completed"
        call.ended_at = _timestamp(event["at"])
        call.end_reason = event["cause"]
        new, effects = transfer.employee_hung_up(flow)
        room = conferences.get(work.conn, flow["conference"]) if flow["conference"] else None
        if flow["state"] == "conference" and room is not None and room["ended_at"] is None:
            # Control passes to the earliest-joined employee still in the conference.
            remaining = [
                p.call_sid
                for p in conferences.participants(work.conn, flow["conference"])
                if p.role == "employee" and p.left_at is None and p.call_sid != call.sid
            ]
            if remaining:
                heir = remaining[0]
                handed = {**flow, "employee": heir, "members": [
                    m for m in flow["members"] if m != heir
                ]}  # fmt: skip
                self._tell(work, heir, {"type": "signal.take_control", "flow": handed, "at": 0})
            else:
                effects = [*effects, transfer.EndCall(flow["held"])]
        self._apply_flow(work, new, effects)
        return True

    def _left_conferences(self, work: CallWork) -> None:
        """The call ended: it leaves its conferences; the subscriber leaving ends one, and
        so does the last employee leaving (the other legs are hung up)."""
        call = work.call
        for sid in conferences.open_for_call(work.conn, call.sid):
            room = conferences.get(work.conn, sid)
            if room["origin_call_sid"] is None:  # a <Conference> room
                self._leave_room(work, sid, call.sid, "hangup")
                continue
            conferences.leave(work.conn, sid, call.sid)
            members = [p for p in conferences.participants(work.conn, sid) if p.left_at is None]
            if room["origin_call_sid"] == call.sid:
                reason = "subscriber-hung-up"
            elif not any(p.role == "employee" for p in members):
                reason = "all-employees-left"
            else:
                continue
            conferences.close(work.conn, sid, reason)
            for member in members:
                work.after_commit.append(lambda sid=member.call_sid: self._hangup_call(sid))

    # ------------------------------------------------------------ <Dial><Conference>

    def _join_room(self, work: CallWork, action: script.JoinConference) -> None:
        call = work.call
        found = work.conn.execute(
            """SELECT sid FROM conferences WHERE account_sid = %s AND friendly_name = %s
               AND origin_call_sid IS NULL AND status <> 'completed'
               ORDER BY created_at DESC LIMIT 1 FOR UPDATE""",
            (call.account_sid, action.name),
        ).fetchone()
        sid = (
            found["sid"]
            if found
            else script.child_sid(call.sid, action.ref, 0).replace("CA", "CF", 1)
        )
        options = {
            "sid": sid,
            "ref": action.ref,
            "end_on_exit": action.end_on_exit,
            "start_on_enter": action.start_on_enter,
            "beep": action.beep,
            "muted": action.muted,
            "callback": action.status_callback,
            "callback_method": action.status_callback_method,
            "events": list(action.status_callback_events),
        }
        if found is None:
            work.conn.execute(
                """INSERT INTO conferences (sid, account_sid, friendly_name, status)
                   VALUES (%s, %s, %s, 'init') ON CONFLICT (sid) DO NOTHING""",
                (sid, call.account_sid, action.name),
            )
            conferences.add_event(work.conn, sid, "created", name=action.name)
        present = [p for p in conferences.participants(work.conn, sid) if p.left_at is None]
        if len(present) >= action.max_participants:
            conferences.add_event(
                work.conn, sid, "refused", call=call.sid, reason="max-participants"
            )
            work.log("conference", step="refused", conference=sid, limit=action.max_participants)
            self._tell(
                work,
                call.sid,
                {"type": "signal.conference_left", "ref": action.ref, "conference": sid,
                 "reason": "conference-full", "at": self.clock()},
            )  # fmt: skip
            return
        role = "subscriber" if call.direction == "inbound" else "external"
        conferences.join(work.conn, sid, call.sid, role, call.from_number)
        call.script = {**call.script, "room": options}
        room = conferences.get(work.conn, sid)
        starts = room["status"] == "init" and action.start_on_enter
        work.send(
            {"type": "join", "conference": sid, "muted": action.muted,
             **({"coach": action.coach} if action.coach else {})}
        )  # fmt: skip
        if room["status"] == "init" and not starts and action.wait_url != "":
            work.send({"type": "hold", "music": True})  # music until the room starts
        self._room_callback(work, sid, options, "join", call.sid)
        if starts:
            work.conn.execute(
                """UPDATE conferences SET status = 'in-progress', started_at = now()
                   WHERE sid = %s""",
                (sid,),
            )
            conferences.add_event(work.conn, sid, "start", by=call.sid)
            self._room_callback(work, sid, options, "start", call.sid)
            for member in present:
                work.after_commit.append(
                    lambda other=member.call_sid: self._send_to(
                        other, {"type": "resume", "music": True}
                    )
                )
        if action.beep in ("true", "onEnter"):
            for member in present:
                work.after_commit.append(
                    lambda other=member.call_sid: self._send_to(
                        other, {"type": "tone", "ref": "beep", "name": "beep"}
                    )
                )

    def _participant_signal(self, work: CallWork, signal: dict[str, Any]) -> None:
        """The REST API changed a participant (interpreter/participants.py)."""
        call = work.call
        sid = signal["conference"]
        if call.ended_at is not None or sid not in conferences.open_for_call(work.conn, call.sid):
            return  # gone meanwhile
        room = conferences.get(work.conn, sid)
        is_room = room["origin_call_sid"] is None  # a <Conference> room, not a `#` one
        options = dict(call.script.get("room") or {})
        if signal.get("remove"):
            conferences.add_event(work.conn, sid, "removed", call=call.sid, by="api")
            if not is_room:
                work.send({"type": "hangup", "reason": "removed"})
                return
            work.send({"type": "leave"})
            self._leave_room(work, sid, call.sid, "removed")
            self._step(
                work,
                ConferenceLeft(
                    ref=options["ref"], conference_sid=sid, reason="removed", at=signal["at"]
                ),
            )
            return
        if "muted" in signal:
            muted = bool(signal["muted"])
            work.send({"type": "mute", "muted": muted})
            conferences.set_muted(work.conn, sid, call.sid, muted)
            options["muted"] = muted
            event = "participant-mute" if muted else "participant-unmute"
            self._room_callback(work, sid, options, "mute", call.sid, event=event)
        if "hold" in signal:
            hold = bool(signal["hold"])
            work.send({"type": "hold" if hold else "resume", "music": True})
            conferences.set_on_hold(work.conn, sid, call.sid, hold)
            options["hold"] = hold
            event = "participant-hold" if hold else "participant-unhold"
            self._room_callback(work, sid, options, "hold", call.sid, event=event)
        if is_room:
            call.script = {**call.script, "room": options}

    def _room_callback(
        self,
        work: CallWork,
        sid: str,
        options: dict[str, Any],
        kind: str,
        call_sid: str,
        *,
        event: str | None = None,
    ) -> None:
        if not options.get("callback") or kind not in options.get("events", []):
            return
        room = conferences.get(work.conn, sid)
        params = {
            "AccountSid": room["account_sid"],
            "ConferenceSid": sid,
            "FriendlyName": room["friendly_name"],
            "StatusCallbackEvent": event
            or (f"conference-{kind}" if kind in ("start", "end") else f"participant-{kind}"),
            "CallSid": call_sid,
            "Muted": str(bool(options.get("muted"))).lower(),
            "Hold": str(bool(options.get("hold"))).lower(),
            "EndConferenceOnExit": str(bool(options.get("end_on_exit"))).lower(),
            "StartConferenceOnEnter": str(bool(options.get("start_on_enter"))).lower(),
            "SequenceNumber": str(room["next_event_seq"]),
            "Timestamp": formatdate(self.clock(), usegmt=True),
        }
        notify = Notify(options["callback"], options.get("callback_method") or "POST", params)
        work.log("status_callback", url=notify.url, method=notify.method, params=params)
        account = room["account_sid"]
        work.after_commit.append(lambda: self.notify(account, notify))

    def _leave_room(self, work: CallWork, sid: str, call_sid: str, reason: str) -> None:
        """`call_sid` leaves a <Conference> room; one with endConferenceOnExit ends it."""
        row = store_calls.get_call(work.conn, call_sid)
        options = (row.script.get("room") if row else None) or {}
        conferences.leave(work.conn, sid, call_sid)
        self._room_callback(work, sid, options, "leave", call_sid)
        present = [p for p in conferences.participants(work.conn, sid) if p.left_at is None]
        if options.get("end_on_exit") or not present:
            conferences.close(work.conn, sid, "ended-by-participant" if present else "empty")
            self._room_callback(work, sid, options, "end", call_sid)
            for member in present:
                other = member.call_sid
                work.after_commit.append(
                    lambda other=other: self._send_to(other, {"type": "leave"})
                )
                other_row = store_calls.get_call(work.conn, other)
                ref = ((other_row.script.get("room") if other_row else None) or {}).get("ref")
                if ref:
                    self._tell(
                        work,
                        other,
                        {"type": "signal.conference_left", "ref": ref, "conference": sid,
                         "reason": "conference-ended", "at": self.clock()},
                    )  # fmt: skip

    def _conference_note(self, work: CallWork, flow: dict[str, Any], data: dict[str, Any]) -> None:
        call = work.call
        name = data["conference"]
        held = store_calls.get_call(work.conn, flow["held"])
        # For an incoming call, the number the employee talks to is the subscriber's; for
        # the employee's own call, the number it dialled.
        held_number = (
            (held.from_number if held.direction == "inbound" else held.to_number) if held else ""
        )
        created = conferences.open_conference(
            work.conn,
            name,
            call.account_sid,
            friendly_name=name,
            origin_call_sid=flow["held"],
            controller_call_sid=call.sid,
            origin_number=held_number,
        )
        if created:
            conferences.add_event(work.conn, name, "start", controller=call.sid)
            conferences.join(work.conn, name, flow["held"], "subscriber", held_number)
            own = call.to_number if call.direction == "outbound-dial" else call.from_number
            conferences.join(work.conn, name, call.sid, "employee", own, controller=True)
        added = store_calls.get_call(work.conn, data["added"])
        extension = bool(added and added.script.get("consult", {}).get("extension"))
        conferences.join(
            work.conn,
            name,
            data["added"],
            "employee" if extension else "external",
            added.to_number if added else "",
        )

    def _apply_flow(self, work: CallWork, flow: dict[str, Any], effects: list) -> None:
        call = work.call
        call.script = {**call.script, "transfer": flow}
        # Commands for the other calls go out together in one short transaction, after ours.
        others: dict[str, list[dict[str, Any]]] = {}
        for effect in effects:
            match effect:
                case transfer.Note(kind="conference", data=data):
                    # The rows of the conference are written once the commands are out
                    # (they are not needed to hear each other); until then the note waits
                    # in the call's state, so a worker dying in between loses nothing.
                    work.log("transfer", step="conference", **data)
                    pending = [*call.script.get("conference_notes", []), data]
                    call.script = {**call.script, "conference_notes": pending}
                    if len(pending) == 1:
                        work.after_commit.append(lambda sid=call.sid: self._write_notes(sid))
                case transfer.Note(kind="muted" | "unmuted" as kind, data=data):
                    work.log("transfer", step=kind, **data)
                    for member in data["calls"]:
                        conferences.set_muted(
                            work.conn, flow["conference"], member, kind == "muted"
                        )
                case transfer.Note(kind="removed", data=data):
                    work.log("transfer", step="removed", **data)
                    conferences.add_event(
                        work.conn, flow["conference"], "removed", call=data["call"], by=call.sid
                    )
                case transfer.Note(kind=kind, data=data):
                    work.log("transfer", step=kind, **data)
                case transfer.Send(call=target, command=command) if target == call.sid:
                    if call.ended_at is None:
                        work.send(command)
                case transfer.Send(call=target, command=command):
                    if not others:
                        # Before anything else this step left for after the commit.
                        work.after_commit.insert(0, lambda: self._send_to_calls(others))
                    others.setdefault(target, []).append(command)
                case transfer.EndCall(call=target):
                    work.after_commit.append(lambda target=target: self._hangup_call(target))
                case transfer.Consult(child=child, dialled=dialled):
                    self._consult(work, child, dialled, flow)

    def _write_notes(self, call_sid: str) -> None:
        work, _ = ledger.update(self.db, call_sid, self._conference_notes)
        self._after(work)

    def _conference_notes(self, work: CallWork) -> None:
        """Write the conference rows of merges whose commands went out already."""
        script_ = work.call.script
        notes = script_.get("conference_notes")
        if not notes:
            return
        work.call.script = {k: v for k, v in script_.items() if k != "conference_notes"}
        for data in notes:
            self._conference_note(work, script_["transfer"], data)

    def _send_to(self, call_sid: str, *commands: dict[str, Any]) -> None:
        self._send_to_calls({call_sid: list(commands)})

    def _send_to_calls(self, commands: dict[str, list[dict[str, Any]]]) -> None:
        """Commands for other running calls: published at once, settled with the rest."""
        for call_sid, queued in ledger.send_commands(self.db, commands):
            published = self.media.publish(queued)
            unsettled = getattr(self._local, "unsettled", None)
            if unsettled is None:
                self.media.flush(call_sid, published)
            else:
                unsettled.append((call_sid, published))

    def _consult(self, work: CallWork, child_sid: str, dialled: str, flow: dict[str, Any]) -> None:
        employee = work.call
        root = flow["held"]
        target: dict[str, str]
        if extensions.get_extension(work.conn, employee.account_sid, dialled) is not None:
            target = {"extension": dialled, "account": employee.account_sid}
            caller = (
                employee.to_number
                if employee.direction == "outbound-dial"
                else (employee.from_number)
            )
        else:
            number = self._e164(work, employee.account_sid, dialled)
            if number is None:
                # Not a number anyone can be called at: the employee goes back at once.
                work.log("transfer", step="not_a_number", dialled=dialled)
                self._tell(
                    work,
                    employee.sid,
                    {"type": "signal.consult_ended", "call": child_sid, "at": self.clock()},
                )
                return
            dialled = number
            target = {"number": number}
            caller = self._account_number(work, employee.account_sid) or employee.from_number
        row = _call_row(
            CallInfo(
                sid=child_sid,
                account_sid=employee.account_sid,
                from_number=caller,
                to_number=dialled,
                direction="outbound-dial",
                parent_call_sid=root,
            ),
            node=employee.media_node,
            at=self.clock(),
            status="queued",
        )
        row.script = {"consult": {"employee": employee.sid, "extension": "extension" in target}}
        row.next_command_seq = 2
        if store_calls.get_call(work.conn, child_sid) is not None:
            return  # a replayed step: placed already
        store_calls.insert_call(work.conn, row)
        command = {
            "v": 1,
            "call": child_sid,
            "seq": 1,
            "type": "originate",
            "target": target,
            "from": {"user": caller},
            "timeout": 30,
        }
        store_calls.queue_media_command(work.conn, child_sid, 1, employee.media_node, command)
        work.log("consult_leg", child=child_sid, target=target)
        work.after_commit.append(lambda: self.media.flush(child_sid))

    @staticmethod
    def _e164(work: CallWork, account_sid: str, dialled: str) -> str | None:
        """`dialled` in E.164 as the account's country reads it; None if it is no number."""
        account = accounts.get_account(work.conn, account_sid)
        try:
            return e164.normalise(dialled, account.country if account else "US")
        except e164.NotE164:
            return None

    @staticmethod
    def _account_number(work: CallWork, account_sid: str) -> str | None:
        row = work.conn.execute(
            "SELECT number FROM phone_numbers WHERE account_sid = %s ORDER BY created_at LIMIT 1",
            (account_sid,),
        ).fetchone()
        return row["number"] if row else None

    def _consult_event(self, work: CallWork, event: dict[str, Any]) -> None:
        """An event of a consultation leg: its status, and a signal to the employee."""
        call = work.call
        consult = call.script["consult"]
        _log_event(work, event)
        at = event["at"]
        match event["type"]:
            case "ringing" if call.status == "queued":
                call.status = "ringing"
            case "answered" if call.ended_at is None:
                _leg_answered(call, at)
                self._tell(
                    work,
                    consult["employee"],
                    {"type": "signal.consult_answered", "call": call.sid, "at": at},
                )
            case "dtmf" | "collected" if call.script.get("transfer"):
                self._flow_event(work, event)
            case "hangup" if call.ended_at is None:
                if call.script.get("transfer") and self._flow_takes_hangup(work, event):
                    return
                _leg_ended(call, event)
                self._tell(
                    work,
                    consult["employee"],
                    {"type": "signal.consult_ended", "call": call.sid, "at": at},
                )

    def _flow_signal(self, work: CallWork, signal: dict[str, Any]) -> None:
        call = work.call
        if signal["type"] == "signal.take_control":
            if call.ended_at is None:
                work.log("transfer", step="took_control")
                call.script = {**call.script, "transfer": signal["flow"]}
            return
        flow = call.script.get("transfer")
        if flow is None:
            return
        if signal["type"] == "signal.consult_answered":
            new, effects = transfer.consult_answered(flow, signal["call"])
        else:
            new, effects = transfer.consult_ended(flow, signal["call"])
        self._apply_flow(work, new, effects)

    def _tell(self, work: CallWork, call_sid: str, signal: dict[str, Any]) -> None:
        store_calls.add_signal(work.conn, call_sid, signal)
        work.after_commit.append(lambda: self.drive(call_sid))

    def _originate(self, work: CallWork, action: script.Originate) -> None:
        parent = work.call
        assert parent is not None
        target = dict(action.target)
        name = target.get("number") or target.get("client")
        if name is not None:
            extension = extensions.get_extension(work.conn, parent.account_sid, name)
            if extension is not None or "client" in target:
                target = {"extension": name, "account": parent.account_sid}
            else:
                # A number as dialled in the account's country goes out as E.164.
                target = {"number": self._e164(work, parent.account_sid, name) or name}
        to = target.get("extension") or target.get("number") or target.get("uri") or ""
        child = CallInfo(
            sid=action.child,
            account_sid=parent.account_sid,
            from_number=action.caller_id,
            to_number=to,
            direction="outbound-dial",
            parent_call_sid=parent.sid,
        )
        row = _call_row(child, node=parent.media_node, at=self.clock(), status="queued")
        row.script = {
            "dial_child": {
                "parent": parent.sid,
                "ref": action.ref,
                "employee": "extension" in target,
                "caller_id": action.caller_id,
                "keys": in_call_options.keys_for(
                    action.in_call_options or in_call_options.options(work.conn, parent.account_sid)
                ),
            }
        }
        row.next_command_seq = 2
        store_calls.insert_call(work.conn, row)
        command = {
            "v": 1,
            "call": child.sid,
            "seq": 1,
            "type": "originate",
            "target": target,
            "from": {"user": action.caller_id},
            "timeout": action.timeout,
            **({"time_limit": action.time_limit} if action.time_limit else {}),
        }
        store_calls.queue_media_command(work.conn, child.sid, 1, parent.media_node, command)
        work.log("dial_leg", child=child.sid, target=target, timeout=action.timeout)
        work.after_commit.append(lambda: self.media.flush(child.sid))

    def _hangup_call(self, call_sid: str) -> None:
        def change(work: CallWork) -> None:
            if work.call is not None and work.call.ended_at is None:
                work.send({"type": "hangup"})

        work, _ = ledger.update(self.db, call_sid, change)
        self._after(work)

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
                sid = script.recording_sid(work.call.sid, event["ref"])
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
                    channels=event.get("channels", 1),
                )
            case "hangup":
                return HungUp(cause=event["cause"], at=at)
            case "dtmf":
                return script.Pressed(digit=event["digit"], at=at)
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
                case script.Originate():
                    self._originate(work, action)
                case script.JoinConference():
                    self._join_room(work, action)
                case script.HangupCall(sid=sid):
                    work.log("hangup_call", call=sid)
                    work.after_commit.append(lambda sid=sid: self._hangup_call(sid))
        call.script = {**call.script, "state": state.to_json()}
        call.status = state.status
        call.answered_at = _timestamp(state.answered_at) if state.answered_at else None
        call.ended_at = _timestamp(state.ended_at) if state.ended_at else None
        call.end_reason = state.end_reason

    def _perform_fetch(self, work: CallWork) -> bool:
        if "state" not in work.call.script:
            return False  # a leg placed by <Dial>: no script of its own
        state = ScriptState.from_json(work.call.script["state"])
        waiting = state.waiting
        if waiting is None or waiting.kind != "fetch":
            return False
        self._step(work, self._fetch_document(work, waiting.fetch), state)
        return True

    def _builtin_outbound(self, work: CallWork, fetch: Fetch) -> Fetched:
        """The default outbound script of an employee's call: dial the dialled extension
        as the extension, or the dialled number through the trunk with the account's
        first number as caller id."""
        call = work.call
        assert call is not None
        caller = call.from_number
        if extensions.get_extension(work.conn, call.account_sid, call.to_number) is None:
            row = work.conn.execute(
                "SELECT number FROM phone_numbers WHERE account_sid = %s"
                " ORDER BY created_at LIMIT 1",
                (call.account_sid,),
            ).fetchone()
            caller = row["number"] if row else caller
        body = (
            f'<Response><Dial callerId="{_escape(caller)}" answerOnBridge="true">'
            f"<Number>{_escape(call.to_number)}</Number></Dial></Response>"
        )
        work.log("webhook_reply", url=fetch.url, status=200, source="builtin")
        return Fetched(
            fetch_id=fetch.id,
            ok=True,
            url=fetch.url,
            status=200,
            content_type="text/xml",
            body=body,
            at=self.clock(),
        )

    def _fetch_document(self, work: CallWork, fetch: Fetch) -> Fetched:
        account_sid = work.call.account_sid
        if fetch.url == BUILTIN_OUTBOUND:
            return self._builtin_outbound(work, fetch)
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


def _waits_for_document(call: CallRow | None) -> bool:
    """Whether the call's script, as just committed, waits for a document to be fetched."""
    if call is None:
        return False
    waiting = call.script.get("state", {}).get("waiting")
    return bool(waiting) and waiting.get("kind") == "fetch"
