"""Conference by `#` during a call: the transfer flow of one employee's leg, pure.

The flow lives on the controlling employee's leg (its call row keeps the state as JSON)
and moves through explicit states:

    bridged --#--> collecting --digits#--> consulting --answer--> talking --#--> conference
       ^              |  (* or nothing)        | (busy, no answer, *)   | (*)        |
       +--------------+-----------------------+------------------------+           |
    conference --#--> collecting ... --#--> conference (one more participant)

`step(state, event)` returns the new state and the effects for the shell: media commands
for any call of the flow, a consultation leg to place, a leg to hang up, a conference
to open or join. While the employee collects digits or consults, everyone else (the held
party, or the whole conference) hears music on hold and is not heard by the consulted
party. The employee hears a dial tone while dialling and a short error tone when a
consultation fails. If the employee hangs up while talking to the consulted party, the
held party is connected to it (attended transfer).

In the conference the controller has two more operations, when the in-call options bind
keys to them: "mute" mutes every other participant (pressed again, unmutes them), and
"remove" hangs up the participant added last (never the held party: the subscriber
leaving ends the conference for everyone).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

TRANSFER_KEY = "#"
ABORT_KEY = "*"
INTER_DIGIT_TIMEOUT = 3
FIRST_DIGIT_TIMEOUT = 10


@dataclass(frozen=True, slots=True)
class Send:
    """A media command for `call`."""

    call: str
    command: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Consult:
    """Place the consultation leg `child` to `dialled` (an extension or a number)."""

    child: str
    dialled: str
    caller_id: str


@dataclass(frozen=True, slots=True)
class EndCall:
    call: str


@dataclass(frozen=True, slots=True)
class Note:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


Effect = Send | Consult | EndCall | Note


def new_flow(
    employee: str, held: str, caller_id: str, keys: dict[str, str | None] | None = None
) -> dict[str, Any]:
    """The flow of `employee`, bridged with `held` (the subscriber); `keys` says which key
    transfers and which aborts (the in-call options; default # and *)."""
    return {
        "keys": keys or {"transfer": TRANSFER_KEY, "abort": ABORT_KEY},
        "state": "bridged",
        "employee": employee,
        "held": held,  # the party bridged with the employee before any conference
        "caller_id": caller_id,
        "consult": None,
        "conference": None,  # its name once there is one
        "members": [],  # the other legs in the conference, in joining order
        "attempt": 0,
    }


def _conference_name(flow: dict[str, Any]) -> str:
    digest = hashlib.md5(f"{flow['employee']}/{flow['held']}".encode()).hexdigest()
    return "CF" + digest


def _others(flow: dict[str, Any]) -> list[str]:
    """Who waits while the employee dials or consults."""
    return list(flow["members"]) if flow["conference"] else [flow["held"]]


def _hold_others(flow: dict[str, Any]) -> list[Effect]:
    return [Send(call, {"type": "hold", "music": True}) for call in _others(flow)]


def _back(flow: dict[str, Any], *, error: bool) -> tuple[dict[str, Any], list[Effect]]:
    """The consultation is over: the employee returns to the held party or conference."""
    employee = flow["employee"]
    effects: list[Effect] = []
    if error:
        effects.append(Send(employee, {"type": "tone", "ref": "error", "name": "error"}))
    for call in _others(flow):
        effects.append(Send(call, {"type": "resume", "music": True}))
    if flow["conference"]:
        effects.append(Send(employee, {"type": "join", "conference": flow["conference"]}))
        state = "conference"
    else:
        effects.append(Send(employee, {"type": "bridge", "peer": flow["held"]}))
        state = "bridged"
    return {**flow, "state": state, "consult": None}, effects


def digit(flow: dict[str, Any], key: str) -> tuple[dict[str, Any], list[Effect]]:
    """A key the employee pressed (outside a digit collection)."""
    employee = flow["employee"]
    state = flow["state"]
    keys = flow.get("keys") or {"transfer": TRANSFER_KEY, "abort": ABORT_KEY}
    transfer_key, abort_key = keys.get("transfer"), keys.get("abort")
    if key == transfer_key and state in ("bridged", "conference"):
        effects = [Note("transfer_started")]
        if state == "conference":
            effects.append(Send(employee, {"type": "leave"}))
        else:
            effects.append(Send(employee, {"type": "unbridge"}))
        effects += _hold_others(flow)
        attempt = flow["attempt"] + 1
        effects.append(
            Send(
                employee,
                {
                    "type": "collect",
                    "ref": f"transfer-{attempt}",
                    "prompts": [{"type": "play", "url": "tone:dial", "loop": 1}],
                    "finish_on_key": TRANSFER_KEY,
                    "num_digits": None,
                    "timeout": FIRST_DIGIT_TIMEOUT,
                    "inter_digit_timeout": INTER_DIGIT_TIMEOUT,
                    "barge_in": True,
                },
            )
        )
        return {**flow, "state": "collecting", "attempt": attempt}, effects
    if key == transfer_key and state == "talking":
        return _merge(flow)
    if state == "conference" and key == keys.get("mute"):
        return _mute_others(flow)
    if state == "conference" and key == keys.get("remove"):
        return _remove_last(flow)
    if key == abort_key and state in ("consulting", "talking"):
        consult = flow["consult"]
        new_flow_, effects = _back(flow, error=True)
        return new_flow_, [Note("consultation_aborted"), EndCall(consult), *effects]
    return flow, []  # digits while not bridged are not the transfer flow's


def _mute_others(flow: dict[str, Any]) -> tuple[dict[str, Any], list[Effect]]:
    muted = not flow.get("muted", False)
    others = list(flow["members"])
    effects: list[Effect] = [Note("muted" if muted else "unmuted", {"calls": others})]
    effects += [Send(call, {"type": "mute", "muted": muted}) for call in others]
    return {**flow, "muted": muted}, effects


def _remove_last(flow: dict[str, Any]) -> tuple[dict[str, Any], list[Effect]]:
    removable = [call for call in flow["members"] if call != flow["held"]]
    if not removable:
        return flow, [Send(flow["employee"], {"type": "tone", "ref": "error", "name": "error"})]
    last = removable[-1]
    members = [call for call in flow["members"] if call != last]
    return {**flow, "members": members}, [Note("removed", {"call": last}), EndCall(last)]


def collected(flow: dict[str, Any], ref: str, digits: str) -> tuple[dict[str, Any], list[Effect]]:
    """The digits entered after `#`."""
    if flow["state"] != "collecting" or ref != f"transfer-{flow['attempt']}":
        return flow, []
    if not digits or not digits.lstrip("+").isdigit():
        new, effects = _back(flow, error=bool(digits))
        return new, [Note("transfer_cancelled", {"digits": digits}), *effects]
    digest = hashlib.md5(f"{flow['employee']}/consult/{flow['attempt']}".encode()).hexdigest()
    child = "CA" + digest
    effects: list[Effect] = [
        Note("consulting", {"dialled": digits, "call": child}),
        Consult(child, digits, flow["caller_id"]),
        Send(flow["employee"], {"type": "tone", "ref": "ringback", "name": "ringback"}),
    ]
    return {**flow, "state": "consulting", "consult": child}, effects


def consult_answered(flow: dict[str, Any], call: str) -> tuple[dict[str, Any], list[Effect]]:
    if flow["state"] != "consulting" or call != flow["consult"]:
        return flow, [EndCall(call)]
    employee = flow["employee"]
    return {**flow, "state": "talking"}, [
        Note("consultation_answered", {"call": call}),
        Send(employee, {"type": "stop", "ref": "ringback"}),
        Send(employee, {"type": "bridge", "peer": call}),
    ]


def consult_ended(flow: dict[str, Any], call: str) -> tuple[dict[str, Any], list[Effect]]:
    """The consulted party hung up, was busy or did not answer."""
    if call != flow["consult"] or flow["state"] not in ("consulting", "talking"):
        if call in flow["members"]:
            return {**flow, "members": [m for m in flow["members"] if m != call]}, [
                Note("participant_left", {"call": call})
            ]
        return flow, []
    new, effects = _back(flow, error=True)
    if flow["state"] == "consulting":
        effects.insert(0, Send(flow["employee"], {"type": "stop", "ref": "ringback"}))
    return new, [Note("consultation_failed", {"call": call}), *effects]


def _merge(flow: dict[str, Any]) -> tuple[dict[str, Any], list[Effect]]:
    """Everyone into the conference: the held party (or conference), the employee and the
    consulted party."""
    name = flow["conference"] or _conference_name(flow)
    consult = flow["consult"]
    effects: list[Effect] = [Note("conference", {"conference": name, "added": consult})]
    members = list(flow["members"])
    if not flow["conference"]:
        members.append(flow["held"])
        effects.append(Send(flow["held"], {"type": "resume", "music": True}))
        effects.append(Send(flow["held"], {"type": "join", "conference": name}))
    else:
        for call in flow["members"]:
            effects.append(Send(call, {"type": "resume", "music": True}))
    effects.append(Send(flow["employee"], {"type": "join", "conference": name}))
    effects.append(Send(consult, {"type": "join", "conference": name}))
    members.append(consult)
    return {**flow, "state": "conference", "conference": name, "consult": None,
            "members": members}, effects  # fmt: skip


def employee_hung_up(flow: dict[str, Any]) -> tuple[dict[str, Any], list[Effect]]:
    """The controlling employee left."""
    state = flow["state"]
    if state == "talking":
        # Attended transfer: the held party and the consulted party talk on.
        consult = flow["consult"]
        held = flow["held"]
        return {**flow, "state": "ended"}, [
            Note("transferred", {"held": held, "to": consult}),
            Send(held, {"type": "resume", "music": True}),
            Send(held, {"type": "bridge", "peer": consult}),
        ]
    if state == "consulting":
        return {**flow, "state": "ended"}, [EndCall(flow["consult"]), *[
            Send(call, {"type": "resume", "music": True}) for call in _others(flow)
        ]]  # fmt: skip
    return {**flow, "state": "ended"}, []
