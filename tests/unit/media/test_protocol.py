"""The command/event schema: well-formed messages pass, every malformed kind is named."""

from __future__ import annotations

import pytest

from media.protocol import ProtocolError, check_command, check_event

CALL = "CA" + "1" * 32


def event(**fields) -> dict:
    return {"v": 1, "call": CALL, "seq": 1, "node": "n1", "at": 1.5, **fields}


def test_valid_messages_pass_unchanged() -> None:
    message = event(type="dtmf", digit="#", source="rfc4733")
    assert check_event(message) is message
    command = {
        "v": 1,
        "call": CALL,
        "seq": 2,
        "type": "collect",
        "ref": "r1",
        "prompts": [{"type": "say", "text": "hi", "voice": "man", "language": "en", "loop": 1}],
        "finish_on_key": "#",
        "num_digits": None,
        "timeout": 5,
        "inter_digit_timeout": 5,
        "barge_in": True,
    }
    assert check_command(command) is command


@pytest.mark.parametrize(
    ("message", "complaint"),
    [
        ([], "JSON object"),
        ({**event(type="answered"), "v": 2}, "version"),
        (event(type="teleport"), "unknown event type"),
        ({k: v for k, v in event(type="answered").items() if k != "seq"}, "lacks field 'seq'"),
        (event(type="answered", seq="1"), "'seq' must be int"),
        (event(type="answered", seq=True), "'seq' must be int"),
        (event(type="answered", seq=0), "seq must be 1 or more"),
        (event(type="dtmf", digit="x", source="inband"), "not one of"),
        ({k: v for k, v in event(type="answered").items() if k != "node"}, "needs 'node'"),
        (event(type="collected", ref="r1", digits=12, reason="timeout"), "'digits' must be str"),
    ],
)
def test_malformed_events_are_refused_with_a_reason(message, complaint) -> None:
    with pytest.raises(ProtocolError, match=complaint):
        check_event(message)


def test_malformed_commands_are_refused() -> None:
    with pytest.raises(ProtocolError, match="prompts must be"):
        check_command(
            {
                "v": 1,
                "call": CALL,
                "seq": 1,
                "type": "collect",
                "ref": "r",
                "prompts": [{"type": "record"}],
                "finish_on_key": "",
                "num_digits": 1,
                "timeout": 1,
                "inter_digit_timeout": 1,
                "barge_in": False,
            }
        )
    with pytest.raises(ProtocolError, match="'loop' must be int"):
        check_command(
            {
                "v": 1,
                "call": CALL,
                "seq": 1,
                "type": "play",
                "ref": "r",
                "url": "u",
                "loop": "forever",
            }
        )
