"""The `#` transfer flow as a pure state machine: every transition and what it sends."""

from __future__ import annotations

from calls import transfer
from calls.transfer import Consult, EndCall, Send

EMPLOYEE, HELD = "CA" + "e" * 32, "CA" + "s" * 32


def sends(effects: list, call: str | None = None) -> list[dict]:
    return [e.command for e in effects if isinstance(e, Send) and call in (None, e.call)]


def consulting() -> tuple[dict, str]:
    flow = transfer.new_flow(EMPLOYEE, HELD, "+15550100")
    flow, _ = transfer.digit(flow, "#")
    flow, effects = transfer.collected(flow, "transfer-1", "102")
    (consult,) = [e for e in effects if isinstance(e, Consult)]
    return flow, consult.child


def test_hash_holds_the_subscriber_with_music_and_collects_digits_with_a_dial_tone() -> None:
    flow = transfer.new_flow(EMPLOYEE, HELD, "+15550100")
    flow, effects = transfer.digit(flow, "#")
    assert flow["state"] == "collecting"
    assert sends(effects, HELD) == [{"type": "hold", "music": True}]
    unbridge, collect = sends(effects, EMPLOYEE)
    assert unbridge == {"type": "unbridge"}
    assert collect["type"] == "collect" and collect["finish_on_key"] == "#"
    assert collect["inter_digit_timeout"] == 3
    assert collect["prompts"] == [{"type": "play", "url": "tone:dial", "loop": 1}]


def test_digits_place_the_consultation_with_ringback_to_the_employee() -> None:
    flow = transfer.new_flow(EMPLOYEE, HELD, "+15550100")
    flow, _ = transfer.digit(flow, "#")
    flow, effects = transfer.collected(flow, "transfer-1", "102")
    [consult] = [e for e in effects if isinstance(e, Consult)]
    assert (consult.dialled, flow["state"], flow["consult"]) == ("102", "consulting", consult.child)
    assert sends(effects, EMPLOYEE) == [{"type": "tone", "ref": "ringback", "name": "ringback"}]


def test_the_answer_bridges_the_employee_with_the_consulted_party() -> None:
    flow, child = consulting()
    flow, effects = transfer.consult_answered(flow, child)
    assert flow["state"] == "talking"
    assert sends(effects, EMPLOYEE) == [
        {"type": "stop", "ref": "ringback"},
        {"type": "bridge", "peer": child},
    ]


def test_hash_again_merges_all_three_into_one_conference() -> None:
    flow, child = consulting()
    flow, _ = transfer.consult_answered(flow, child)
    flow, effects = transfer.digit(flow, "#")
    assert flow["state"] == "conference" and flow["members"] == [HELD, child]
    room = flow["conference"]
    assert sends(effects, HELD) == [
        {"type": "resume", "music": True},
        {"type": "join", "conference": room},
    ]
    assert sends(effects, EMPLOYEE) == [{"type": "join", "conference": room}]
    assert sends(effects, child) == [{"type": "join", "conference": room}]


def test_a_fourth_party_joins_the_same_conference_which_waits_with_music() -> None:
    flow, child = consulting()
    flow, _ = transfer.consult_answered(flow, child)
    flow, _ = transfer.digit(flow, "#")
    room = flow["conference"]
    flow, effects = transfer.digit(flow, "#")
    assert sends(effects, EMPLOYEE)[0] == {"type": "leave"}
    assert sends(effects, HELD) == [{"type": "hold", "music": True}]
    assert sends(effects, child) == [{"type": "hold", "music": True}]
    flow, effects = transfer.collected(flow, "transfer-2", "+442079460000")
    [second] = [e for e in effects if isinstance(e, Consult)]
    assert second.child != child
    flow, _ = transfer.consult_answered(flow, second.child)
    flow, effects = transfer.digit(flow, "#")
    assert flow["conference"] == room and flow["members"] == [HELD, child, second.child]
    assert {"type": "join", "conference": room} in sends(effects, second.child)


def test_star_busy_or_no_answer_bring_the_employee_back_with_an_error_tone() -> None:
    for end in ("star", "busy"):
        flow, child = consulting()
        if end == "star":
            flow, effects = transfer.digit(flow, "*")
            assert EndCall(child) in effects
        else:
            flow, effects = transfer.consult_ended(flow, child)
        assert flow["state"] == "bridged" and flow["consult"] is None
        employee = sends(effects, EMPLOYEE)
        assert {"type": "tone", "ref": "error", "name": "error"} in employee
        assert employee[-1] == {"type": "bridge", "peer": HELD}
        assert sends(effects, HELD) == [{"type": "resume", "music": True}]


def test_no_digits_go_back_without_an_error_and_bad_digits_with_one() -> None:
    for digits, error in (("", False), ("12*", True)):
        flow = transfer.new_flow(EMPLOYEE, HELD, "+15550100")
        flow, _ = transfer.digit(flow, "#")
        flow, effects = transfer.collected(flow, "transfer-1", digits)
        assert flow["state"] == "bridged"
        assert not any(isinstance(e, Consult) for e in effects)
        tones = [c for c in sends(effects, EMPLOYEE) if c["type"] == "tone"]
        assert bool(tones) is error


def test_digits_while_not_bridged_are_ignored_and_stale_results_too() -> None:
    flow, _child = consulting()
    assert transfer.digit(flow, "5") == (flow, [])
    assert transfer.collected(flow, "transfer-1", "103") == (flow, [])
    other = "CA" + "9" * 32
    assert transfer.consult_answered(flow, other) == (flow, [EndCall(other)])


def test_the_employee_hanging_up_while_talking_transfers_the_held_party() -> None:
    flow, child = consulting()
    flow, _ = transfer.consult_answered(flow, child)
    flow, effects = transfer.employee_hung_up(flow)
    assert flow["state"] == "ended"
    assert sends(effects, HELD) == [
        {"type": "resume", "music": True},
        {"type": "bridge", "peer": child},
    ]


def test_the_employee_hanging_up_while_it_rings_ends_the_consultation() -> None:
    flow, child = consulting()
    flow, effects = transfer.employee_hung_up(flow)
    assert EndCall(child) in effects
    assert sends(effects, HELD) == [{"type": "resume", "music": True}]


def test_the_in_call_options_choose_the_keys() -> None:
    flow = transfer.new_flow(EMPLOYEE, HELD, "+15550100", {"transfer": "9", "abort": None})
    assert transfer.digit(flow, "#") == (flow, [])  # not bound here
    flow, _ = transfer.digit(flow, "9")
    assert flow["state"] == "collecting"
    flow, _ = transfer.collected(flow, "transfer-1", "102")
    assert transfer.digit(flow, "*") == (flow, [])  # no key aborts


def test_keys_for_reads_the_bindings() -> None:
    from store.in_call_options import DEFAULTS, keys_for

    none = {"mute": None, "remove": None}
    assert keys_for(DEFAULTS) == {"transfer": "#", "abort": "*", **none}
    assert keys_for({"#": "none", "5": "transfer"}) == {"transfer": "5", "abort": None, **none}
    assert keys_for({"#": "transfer", "6": "mute", "9": "remove"}) == {
        "transfer": "#",
        "abort": None,
        "mute": "6",
        "remove": "9",
    }


KEYS = {"transfer": "#", "abort": "*", "mute": "6", "remove": "9"}


def conference() -> tuple[dict, str]:
    flow = transfer.new_flow(EMPLOYEE, HELD, "+15550100", KEYS)
    flow, _ = transfer.digit(flow, "#")
    flow, effects = transfer.collected(flow, "transfer-1", "102")
    (consult,) = [e for e in effects if isinstance(e, Consult)]
    flow, _ = transfer.consult_answered(flow, consult.child)
    flow, _ = transfer.digit(flow, "#")
    return flow, consult.child


def test_the_controller_mutes_and_unmutes_every_other_participant() -> None:
    flow, child = conference()
    flow, effects = transfer.digit(flow, "6")
    assert sends(effects, HELD) == [{"type": "mute", "muted": True}]
    assert sends(effects, child) == [{"type": "mute", "muted": True}]
    assert sends(effects, EMPLOYEE) == []  # the controller keeps talking
    flow, effects = transfer.digit(flow, "6")
    assert sends(effects, HELD) == sends(effects, child) == [{"type": "mute", "muted": False}]


def test_the_controller_removes_the_last_added_but_never_the_subscriber() -> None:
    flow, child = conference()
    flow, effects = transfer.digit(flow, "9")
    assert [e.call for e in effects if isinstance(e, EndCall)] == [child]
    assert flow["members"] == [HELD] and flow["state"] == "conference"
    flow, effects = transfer.digit(flow, "9")
    assert not [e for e in effects if isinstance(e, EndCall)]
    assert sends(effects, EMPLOYEE) == [{"type": "tone", "ref": "error", "name": "error"}]


def test_mute_and_remove_keys_do_nothing_outside_the_conference_or_unbound() -> None:
    flow = transfer.new_flow(EMPLOYEE, HELD, "+15550100", KEYS)
    assert transfer.digit(flow, "6") == (flow, [])
    assert transfer.digit(flow, "9") == (flow, [])
    flow, _ = conference()
    unbound = {**flow, "keys": {"transfer": "#", "abort": "*"}}
    assert transfer.digit(unbound, "6") == (unbound, [])
