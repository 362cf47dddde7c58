"""Benchmark: SIP messages parsed per second, printed as one JSON line.

Run from the repository root: ``python -m bench.sip_parse``. Three figures for a typical
INVITE with an SDP body: ``parse_message`` alone (what a transport does for every
datagram), parse plus the fields a transaction layer reads (top Via branch and sent-by,
CSeq, Call-ID, From and To tags), and parse plus the checks a UAS runs (``check_request``).
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable

from media.sip.message import Request, parse_message
from media.sip.validation import check_request

_SDP = (
    "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\ns=-\r\n"
    "c=IN IP4 192.0.2.101\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
)
INVITE = (
    "INVITE sip:+15550100@pbx.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bK-524287-1---5c2a6f6e1b8e;rport\r\n"
    "Max-Forwards: 70\r\n"
    'From: "Alice" <sip:alice@example.com>;tag=9fxced76sl\r\n'
    "To: <sip:+15550100@pbx.example.com>\r\n"
    "Call-ID: 3848276298220188511@192.0.2.101\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:alice@192.0.2.101:5060;transport=udp>\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE\r\n"
    "Supported: replaces, timer\r\n"
    "User-Agent: bench/1.0\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(_SDP)}\r\n\r\n{_SDP}"
).encode()


def _parse_only() -> object:
    return parse_message(INVITE)


def _transaction_fields() -> object:
    message = parse_message(INVITE)
    via, cseq = message.top_via, message.cseq
    return (
        via.branch,
        via.sent_by,
        cseq.number,
        cseq.method,
        message.call_id,
        message.from_.tag,
        message.to.tag,
    )


def _uas_checks() -> object:
    message = parse_message(INVITE)
    assert isinstance(message, Request)
    return check_request(message, supported_extensions=("replaces", "timer"))


def _rate(work: Callable[[], object], seconds: float = 1.0) -> float:
    """Calls per second of ``work``, the best of three timed runs."""
    best = 0.0
    for _ in range(3):
        calls = 0
        start = time.perf_counter()
        deadline = start + seconds / 3
        while True:
            for _ in range(200):
                work()
            calls += 200
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, calls / (now - start))
    return best


def main() -> None:
    _rate(_transaction_fields, 0.2)  # warm up
    print(
        json.dumps(
            {
                "bench": "sip_parse",
                "message_bytes": len(INVITE),
                "parse_per_second": round(_rate(_parse_only)),
                "parse_and_transaction_fields_per_second": round(_rate(_transaction_fields)),
                "parse_and_check_request_per_second": round(_rate(_uas_checks)),
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
