"""The command/event protocol between workers and media nodes: one JSON schema, version 1.

Commands go from a worker to the node that owns the call, on the node's own queue
(`<prefix>.media.<node>`); events go from a node to any worker, on `<prefix>.events`.
Both are JSON objects with these envelope fields:

    {"v": 1, "type": "...", "call": "CA...", "seq": 7, ...type-specific fields}

- `call`: the call (leg) id; the node that accepts or originates a leg chooses it.
- `seq`: numbers the messages of one call in one direction, from 1 without gaps.
  Events: the worker applies them in `seq` order and exactly once. Commands: the node
  executes each `seq` once and ignores a repeat (a worker may resend after a crash).
- Events also carry `node` (who sent it) and `at` (the node's clock, Unix seconds).
- A command that runs for a while (a prompt, a digit collection, a recording) carries
  `ref`, chosen by the worker; the event that reports its end carries the same `ref`.

Commands (fields beyond the envelope):
    answer
    reject        reason: "rejected" | "busy"
    hangup        reason: str (optional)
    say           ref, text, voice, language, loop
    play          ref, url, loop
    pause         ref, length (seconds)
    send_dtmf     ref, digits (0-9 * # and w for a half-second wait)
    collect       ref, prompts: [say|play|pause without ref], finish_on_key ("" for none),
                  num_digits (null for any), timeout (first digit, seconds),
                  inter_digit_timeout (seconds), barge_in (a digit stops the prompts)
    record        ref, max_length, timeout (silence, seconds; 0: none), finish_on_key,
                  play_beep, trim; mode: "call" (optional, <Dial record>) records what
                  the leg says and what it hears, until `stop` with this ref or the
                  hang-up, mixed or with channels: 2 (said on the left, heard on the right)

Events (fields beyond the envelope):
    incoming      from, to, headers (dict, optional): a new call arrived at the node
    answered      the call is answered (ours by `answer`, or the far end's)
    dtmf          digit, source: "rfc4733" | "inband" | "info"
    play_done     ref, interrupted_by (digit or null)
    collected     ref, digits, reason: "finish_key" | "num_digits" | "timeout" | "hangup",
                  finish_key (the key that ended it, or null)
    record_done   ref, path, duration (seconds), digits, reason: "finish_key" |
                  "max_length" | "silence" | "hangup" | "stopped", channels (1 or 2)
    hangup        cause: "remote" | "local" | "rejected" | "busy" | "no-answer" |
                  "canceled" | "failed", sip_code (optional)
    ringing       an originated leg is ringing (180/183)
    held          by: "remote" (the peer put us on hold) | "local" (we held it)
    resumed       by: as for held
    talking       conference, talking (bool): a conference member started or stopped
                  talking (energy with hysteresis)

Call-control commands (the SIP engine):
    originate     target: {"extension": E, "account": A} | {"number": N} (through the
                  trunk) | {"uri": U}; from: {"user", "display_name"}; timeout (seconds);
                  time_limit (seconds from the answer, optional: then the leg is hung up).
                  Its `call` is the new leg's id, chosen by the worker, with seq 1.
    hold, resume  re-INVITE the peer with a=sendonly / a=sendrecv; with `music: true`
                  instead play it music on hold (no re-INVITE) and keep its audio
                  from its bridge or conference

Media commands (the media plane; audio is 8 kHz, moved in 20 ms frames):
    tone          ref, name: "dial" | "ringback" | "busy" | "error" | "beep",
                  duration (seconds, optional; without it the tone plays until `stop`)
    stop          ref (optional): end that prompt (or every prompt) now; its play_done
                  follows. With the ref of a recording: end it; its record_done follows
    bridge        peer: the other leg (on this node); each hears the other, no mixer
    unbridge      undo `bridge`
    join          conference (a name, node-wide), muted, deaf, beep (tone to all on
                  join), coach (the leg this one whispers to)
    leave         beep (optional)
    mute          muted, deaf (optional): in a conference; in a bridge, muted alone
    `play` also takes `url` "tone:<name>" for a named tone.
    DTMF is reported as `dtmf` events whatever else runs; during `collect` and
    `record` the digits also count there. Sources: RFC 4733 with the negotiated
    payload type, in-band (only from peers that negotiated no telephone-event), SIP
    INFO (application/dtmf-relay or application/dtmf).

`incoming` also says where the call came from: origin "trunk" | "extension" (with
account and extension, after digest authentication) | "external".
"""

from __future__ import annotations

from typing import Any

VERSION = 1

_PROMPT = {"say", "play", "pause"}
DIGITS = set("0123456789*#ABCD")

# Required fields per message type, with the Python types JSON gives them.
COMMANDS: dict[str, dict[str, tuple[type, ...]]] = {
    "answer": {},
    "reject": {"reason": (str,)},
    "hangup": {},
    "say": {"ref": (str,), "text": (str,), "voice": (str,), "language": (str,), "loop": (int,)},
    "play": {"ref": (str,), "url": (str,), "loop": (int,)},
    "pause": {"ref": (str,), "length": (int, float)},
    "send_dtmf": {"ref": (str,), "digits": (str,)},
    "collect": {
        "ref": (str,),
        "prompts": (list,),
        "finish_on_key": (str,),
        "num_digits": (int, type(None)),
        "timeout": (int, float),
        "inter_digit_timeout": (int, float),
        "barge_in": (bool,),
    },
    "record": {
        "ref": (str,),
        "max_length": (int, float),
        "timeout": (int, float),
        "finish_on_key": (str,),
        "play_beep": (bool,),
        "trim": (bool,),
    },
    "originate": {"target": (dict,)},
    "hold": {},
    "resume": {},
    "tone": {"ref": (str,), "name": (str,)},
    "stop": {},
    "bridge": {"peer": (str,)},
    "unbridge": {},
    "join": {"conference": (str,)},
    "leave": {},
    "mute": {"muted": (bool,)},
}

EVENTS: dict[str, dict[str, tuple[type, ...]]] = {
    "incoming": {"from": (str,), "to": (str,)},
    "answered": {},
    "dtmf": {"digit": (str,), "source": (str,)},
    "play_done": {"ref": (str,)},
    "collected": {"ref": (str,), "digits": (str,), "reason": (str,)},
    "record_done": {
        "ref": (str,),
        "path": (str,),
        "duration": (int, float),
        "digits": (str,),
        "reason": (str,),
    },
    "hangup": {"cause": (str,)},
    "ringing": {},
    "held": {"by": (str,)},
    "resumed": {"by": (str,)},
    "talking": {"conference": (str,), "talking": (bool,)},
}


class ProtocolError(ValueError):
    """A message that does not follow this module's schema."""


def _check(kind: str, message: Any, schemas: dict[str, dict[str, tuple[type, ...]]]) -> dict:
    if not isinstance(message, dict):
        raise ProtocolError(f"{kind} must be a JSON object, not {type(message).__name__}")
    if message.get("v") != VERSION:
        raise ProtocolError(f"{kind} version {message.get('v')!r} is not {VERSION}")
    type_ = message.get("type")
    if type_ not in schemas:
        raise ProtocolError(
            f"unknown {kind} type {type_!r}; known types are {', '.join(sorted(schemas))}"
        )
    fields = {"call": (str,), "seq": (int,), **schemas[type_]}
    for name, types in fields.items():
        if name not in message:
            raise ProtocolError(f"{kind} {type_!r} lacks field {name!r}")
        value = message[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join(t.__name__ for t in types)
            raise ProtocolError(f"{kind} {type_!r} field {name!r} must be {expected}")
    if message["seq"] < 1:
        raise ProtocolError(f"{kind} {type_!r} seq must be 1 or more")
    return message


def check_command(message: Any) -> dict:
    """Return the command if it follows the schema, else raise `ProtocolError`."""
    command = _check("command", message, COMMANDS)
    if command["type"] == "collect":
        for prompt in command["prompts"]:
            if not isinstance(prompt, dict) or prompt.get("type") not in _PROMPT:
                raise ProtocolError("collect prompts must be say, play or pause objects")
    return command


def check_event(message: Any) -> dict:
    """Return the event if it follows the schema, else raise `ProtocolError`."""
    event = _check("event", message, EVENTS)
    if not isinstance(event.get("node"), str) or not isinstance(event.get("at"), int | float):
        raise ProtocolError(f"event {event['type']!r} needs 'node' (str) and 'at' (number)")
    if event["type"] == "dtmf" and event["digit"] not in DIGITS:
        raise ProtocolError(f"dtmf digit {event['digit']!r} is not one of 0-9 * # A-D")
    return event
