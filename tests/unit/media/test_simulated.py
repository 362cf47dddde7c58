"""The simulated node follows the protocol and Twilio's digit-collection rules."""

from __future__ import annotations

import wave

import pytest

from media.protocol import check_event
from media.simulated import SimulatedNode


@pytest.fixture
def node(tmp_path):
    events: list[dict] = []
    node = SimulatedNode("sim", events.append, recordings=tmp_path, clock=lambda: 100.0)
    node.events = events
    return node


def command(call: str, seq: int, type_: str, **fields) -> dict:
    return {"v": 1, "call": call, "seq": seq, "type": type_, **fields}


def collect(call: str, seq: int, **fields) -> dict:
    return (
        command(
            call,
            seq,
            "collect",
            ref=f"r{seq}",
            prompts=[],
            finish_on_key="#",
            num_digits=None,
            timeout=5,
            inter_digit_timeout=5,
            barge_in=True,
        )
        | fields
    )


def test_incoming_then_events_are_numbered_and_valid(node) -> None:
    call = node.incoming("+1", "+2")
    node.execute(command(call, 1, "answer"))
    node.execute(
        command(call, 2, "say", ref="r1", text="hello", voice="man", language="en", loop=1)
    )
    assert [e["type"] for e in node.events] == ["incoming", "answered", "play_done"]
    assert [e["seq"] for e in node.events] == [1, 2, 3]
    for event in node.events:
        check_event(event)
    assert node.events[2]["at"] > node.events[1]["at"]  # speaking takes virtual time


@pytest.mark.parametrize(
    ("keys", "fields", "digits", "reason", "left"),
    [
        ("1234#9", {}, "1234", "finish_key", "9"),
        ("12345", {"num_digits": 3}, "123", "num_digits", "45"),
        ("12", {}, "12", "timeout", ""),
        ("1w2#", {}, "1", "timeout", "2#"),
        ("#", {}, "", "finish_key", ""),
        ("12#", {"finish_on_key": ""}, "12#", "timeout", ""),
    ],
)
def test_collection_rules(node, keys, fields, digits, reason, left) -> None:
    call = node.attach("+1", "+2", keys=keys)
    node.execute(collect(call, 1, **fields))
    (done,) = node.events
    assert (done["digits"], done["reason"]) == (digits, reason)
    assert "".join(node.calls[call].keys) == left


def test_commands_run_once_and_in_seq_order(node) -> None:
    call = node.attach("+1", "+2")
    node.execute(command(call, 2, "pause", ref="r2", length=1))
    assert node.events == []  # waits for seq 1
    node.execute(command(call, 1, "pause", ref="r1", length=1))
    node.execute(command(call, 1, "pause", ref="r1", length=1))
    assert [e["ref"] for e in node.events] == ["r1", "r2"]


def test_record_writes_a_real_wav(node) -> None:
    call = node.attach("+1", "+2", keys="#")
    node.execute(
        command(
            call,
            1,
            "record",
            ref="r1",
            max_length=10,
            timeout=5,
            finish_on_key="#",
            play_beep=True,
            trim=False,
        )
    )
    (done,) = node.events
    assert done["reason"] == "finish_key" and done["digits"] == "#"
    with wave.open(done["path"]) as recording:
        assert recording.getframerate() == 8000
        assert recording.getnframes() == 8000


def test_hangup_ends_the_call_and_later_commands_do_nothing(node) -> None:
    call = node.attach("+1", "+2")
    node.execute(command(call, 1, "hangup"))
    node.execute(command(call, 2, "pause", ref="r", length=1))
    assert [e["type"] for e in node.events] == ["hangup"]
    assert node.events[0]["cause"] == "local"
