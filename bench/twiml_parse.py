"""How fast a typical TwiML document is parsed into the verb model.

Run from the repository root: ``python -m bench.twiml_parse``. Prints one JSON line.
"""

from __future__ import annotations

import json
import time

from interpreter.twiml import parse

DOCUMENT = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
    <Gather numDigits="3" action="/menu" method="POST" timeout="5" finishOnKey="#">
        <Say voice="woman" language="en-GB">Welcome. <break time="300ms"/>
            Enter the extension you want, then press pound.</Say>
        <Play>https://media.example.com/prompts/menu.wav</Play>
        <Pause length="1"/>
    </Gather>
    <Say>We did not receive any input.</Say>
    <Dial callerId="+15550100" timeout="20" action="/dial-done" answerOnBridge="true">
        <Number statusCallbackEvent="initiated ringing answered completed"
                statusCallback="/status">+15550111</Number>
        <Sip>sip:101@pbx.example.com</Sip>
    </Dial>
    <Record maxLength="120" playBeep="true" recordingStatusCallback="/recorded"/>
    <Redirect method="GET">/start</Redirect>
</Response>
"""


def main(rounds: int = 2000) -> None:
    started = time.perf_counter()
    for _ in range(rounds):
        parse(DOCUMENT)
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "bench": "twiml_parse",
                "document_bytes": len(DOCUMENT.encode("utf-8")),
                "rounds": rounds,
                "microseconds_per_document": round(elapsed / rounds * 1e6, 1),
                "documents_per_second": round(rounds / elapsed),
            }
        )
    )


if __name__ == "__main__":
    main()
