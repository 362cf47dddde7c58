"""Latency of the `#` flow, measured on the wire.

The whole platform runs (`manage.py worker` and `manage.py media` on PostgreSQL and a
broker: `DATABASE_URL`/`CELERY_BROKER_URL` if set, else embedded ones), with three
baresip phones: a subscriber calls a number that dials employee 101; 101 presses `#`,
dials `102#`, 102 answers, 101 presses `#` again. tcpdump records loopback UDP; from the
capture we take

- hold: from the end packet of the first `#` (RFC 4733, employee -> node) to the first
  packet of music on hold the node sends the subscriber;
- merge: from the end packet of the second `#` to the first packet the node sends the
  subscriber that carries 102's tone (the first mixed audio).

Median and p99 over the runs (default 100; `--runs N`), after one warm-up run that is
not counted (the first call of a fresh platform loads code and fills caches in every
process). Each run also prints its own two numbers on stderr. Target: p99 50 ms each.
Needs tcpdump, baresip and root (for the capture).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media.rtp.g711 import decode_pcma, decode_pcmu

SUBSCRIBER_TONE, EMPLOYEE_TONE, COLLEAGUE_TONE = 440, 1000, 1400
HASH_EVENT = 11


def tone_share(samples: np.ndarray, freq: float) -> float:
    """Share of a frame's energy within 60 Hz of `freq`."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / 8000)
    total = spectrum.sum()
    return float(spectrum[np.abs(freqs - freq) < 60].sum() / total) if total > 0 else 0.0


def read_pcap(path: Path) -> list[tuple[float, int, int, bytes]]:
    """(time, source port, destination port, UDP payload) of each IPv4 UDP packet."""
    data = path.read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    offset, packets = 24, []
    while offset + 16 <= len(data):
        seconds, fraction, captured, _ = struct.unpack_from(endian + "IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + captured]
        offset += 16 + captured
        ip = frame[14:] if linktype == 1 else frame[16:] if linktype == 113 else frame[4:]
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        header = (ip[0] & 0x0F) * 4
        source, destination = struct.unpack_from("!HH", ip, header)
        stamp = seconds + fraction / (1e9 if nano else 1e6)
        packets.append((stamp, source, destination, bytes(ip[header + 8 :])))
    return packets


def hash_ends(packets, employee_ports: range) -> list[float]:
    """Times of the first end packet of each `#` press the employee sent."""
    ends, seen = [], set()
    for stamp, source, _destination, payload in packets:
        if source not in employee_ports or len(payload) < 16:
            continue
        if payload[1] & 0x7F in (0, 8):
            continue
        event, flags = payload[12], payload[13]
        timestamp = struct.unpack_from("!I", payload, 4)[0]
        if event == HASH_EVENT and flags & 0x80 and timestamp not in seen:
            seen.add(timestamp)
            ends.append(stamp)
    return ends


def first_frame(packets, subscriber_ports: set[int], after: float, test) -> float | None:
    for stamp, _source, destination, payload in packets:
        if stamp <= after or destination not in subscriber_ports or len(payload) < 172:
            continue
        pt = payload[1] & 0x7F
        if pt not in (0, 8):
            continue
        audio = (decode_pcmu if pt == 0 else decode_pcma)(payload[12:172]).astype(float)
        if test(audio):
            return stamp
    return None


def is_music(audio: np.ndarray) -> bool:
    loud = np.sqrt(np.mean(audio**2)) > 300
    return bool(loud and tone_share(audio, EMPLOYEE_TONE) < 0.5)


def has_colleague(audio: np.ndarray) -> bool:
    return np.sqrt(np.mean(audio**2)) > 300 and tone_share(audio, COLLEAGUE_TONE) > 0.2


def summary(values: list[float]) -> dict:
    if not values:
        return {"runs": 0}
    ms = np.array(values) * 1000
    return {
        "runs": len(values),
        "median_ms": round(float(np.median(ms)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
        "target_p99_ms": 50,
        "met": bool(np.percentile(ms, 99) <= 50),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    missing = [tool for tool in ("tcpdump", "baresip") if shutil.which(tool) is None]
    if missing:
        print(json.dumps({"bench": "transfer_latency", "error": f"needs {', '.join(missing)}"}))
        sys.exit(1)

    from provisioning.extensions import set_extension
    from store import bins, extensions, numbers
    from store.accounts import create_account
    from store.database import Database
    from store.migrate import migrate
    from supervisor.embedded import EmbeddedPostgres, EmbeddedRedis
    from tests.conftest import Services
    from tests.interop.hosts import Platform
    from tests.interop.peers.baresip import Account, Baresip
    from tests.interop.peers.ports import PortAllocator

    work = Path(tempfile.mkdtemp(prefix="transfer-latency-"))
    postgres = redis = None
    database_url = os.environ.get("DATABASE_URL")
    broker_url = os.environ.get("CELERY_BROKER_URL")
    if not database_url:
        postgres = EmbeddedPostgres(work / "pg")
        database_url = postgres.start("postgres")
    if not broker_url:
        redis = EmbeddedRedis(work / "redis")
        broker_url = redis.start()
    migrate(database_url)
    services = Services(database_url, broker_url, f"bench{uuid.uuid4().hex[:6]}", work)
    domain = f"bench-{uuid.uuid4().hex[:8]}.test"
    number = "+1555" + str(uuid.uuid4().int)[:7]
    passwords = {ext: f"bench-{ext}-{uuid.uuid4().hex[:8]}" for ext in ("101", "102")}
    with Database(database_url, max_size=2) as db, db.transaction() as conn:
        account, _ = create_account(conn, f"bench {domain}", "bench secret key")
        extensions.set_sip_domain(conn, account.sid, domain)
        for ext, password in passwords.items():
            set_extension(conn, account.sid, ext, password)
        script = bins.save_bin(conn, account.sid, "bench", "<Response><Dial>101</Dial></Response>")
        numbers.set_number(
            conn,
            account.sid,
            number,
            voice_url=f"{services.settings().public_url}/bins/{script.sid}",
        )
    ports = PortAllocator()
    rtp = ports.block(64)
    platform = Platform(
        services, work, sip_port=ports.port(), trunk_uri=None, rtp_ports=(rtp.first, rtp.last)
    )
    address = f"127.0.0.1:{platform.sip_port}"
    phones: list[Baresip] = []

    def phone(user: str, tone: int, registered: bool) -> Baresip:
        account_ = (
            Account(user, passwords[user], domain, f"sip:{address}", "auto")
            if registered
            else Account(user=user, answermode="manual")
        )
        made = Baresip(work / f"{user}-{len(phones)}", account=account_, tone_hz=tone).start()
        phones.append(made)
        if registered and not made.registered(timeout=10):
            raise RuntimeError(f"{user} did not register")
        return made

    capture_file = work / "capture.pcap"
    capture = subprocess.Popen(
        ["tcpdump", "-i", "lo", "-w", str(capture_file), "-U", "-B", "65536", "udp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    hold, merge = [], []
    try:
        staff = phone("101", EMPLOYEE_TONE, True)
        colleague = phone("102", COLLEAGUE_TONE, True)
        time.sleep(1.0)  # tcpdump is capturing
        windows = []
        for _ in range(args.runs + 1):
            subscriber = phone("subscriber", SUBSCRIBER_TONE, False)
            start = time.time()
            subscriber.dial(f"sip:{number}@{address}")
            staff.wait_for("CALL_ESTABLISHED", timeout=20)
            time.sleep(0.6)
            staff.send_digits("#")
            time.sleep(0.8)
            staff.send_digits("102#", gap=0.15)
            colleague.wait_for("CALL_ESTABLISHED", timeout=20)
            time.sleep(0.6)
            staff.send_digits("#")
            time.sleep(0.8)
            subscriber.hangup()
            for each in (staff, colleague):
                each.wait_for("CALL_CLOSED", timeout=15)
            subscriber.stop()
            windows.append((start, time.time(), staff.rtp_ports, colleague.rtp_ports))
        time.sleep(1.0)
    finally:
        capture.send_signal(signal.SIGINT)
        capture.wait(10)
        for each in phones:
            each.stop()
        platform.stop()
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()
    packets = read_pcap(capture_file)
    node = range(rtp.first, rtp.last + 1)
    for start, end, staff_ports, colleague_ports in windows[1:]:  # after the warm-up
        run = [p for p in packets if start <= p[0] <= end]
        # The subscriber: whoever else the node sent to (baresip's port is not always in
        # the block it was given, so it is taken from the wire).
        subscriber_ports = (
            {destination for _stamp, source, destination, _payload in run if source in node}
            - set(staff_ports)
            - set(colleague_ports)
        )
        presses = hash_ends(run, staff_ports)
        if len(presses) < 3:  # "#", then "102#" ends with one, then "#"
            continue
        first, second = presses[0], presses[2]
        music = first_frame(run, subscriber_ports, first, is_music)
        mixed = first_frame(run, subscriber_ports, second, has_colleague)
        if music is not None:
            hold.append(music - first)
        if mixed is not None:
            merge.append(mixed - second)
        print(
            json.dumps(
                {
                    "run_at": round(start, 3),
                    "hold_ms": round((music - first) * 1000, 1) if music else None,
                    "merge_ms": round((mixed - second) * 1000, 1) if mixed else None,
                }
            ),
            file=sys.stderr,
        )
    print(
        json.dumps(
            {
                "bench": "transfer_latency",
                "hash_to_music_on_hold": summary(hold),
                "second_hash_to_mixed_audio": summary(merge),
            }
        )
    )


if __name__ == "__main__":
    main()
