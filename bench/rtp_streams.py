"""How many concurrent G.711 streams the media plane carries on one core.

The plane runs as the engine runs it (an asyncio loop, 20 ms ticks on `LoopClock`)
pinned to one core, with N legs bridged in pairs on real UDP sockets. A load process on
the other core sends every leg 50 PCMU packets a second, where the legs latch to; for
TIMED legs spread over the whole send order it reads what they send back with the
kernel's receive timestamps (SO_TIMESTAMPNS: on loopback, the moment the plane's send
reached the socket, whenever the load process reads it); the others' packets the kernel
drops, as a remote peer costs the plane nothing after the send. For each N the plane
runs a few seconds; we report the p99 deviation of the timed legs' packet intervals
from 20 ms ("send jitter"), the packets the legs' jitter buffers lost and the share of
the core the plane used. Each N is measured TRIALS times and judged by the median trial
(a shared machine's hiccup in one trial is not the plane's capacity); N rises until that
p99 exceeds 2 ms or a packet is lost; the line says the highest N that passed. Target:
1,000 streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import multiprocessing
import os
import socket
import struct
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media.plane import MediaPlane
from media.rtp.stream import RtpStream, SocketEndpoint, StreamParameters
from media.sip.clock import LoopClock

BASE_PORT = 30000
SECONDS = 4.0
WARMUP = 1.0
STEPS = (100, 250, 400, 500, 600, 750, 1000, 1250, 1500, 2000)
TRIALS = 3
TIMED = 125  # legs whose packets are timed (evenly spread over all)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; Python names it from 3.14


def load(
    ports: list[int], sink_port: int, stop: multiprocessing.Event, results: Connection
) -> None:
    """Send 50 packets a second to every port, paced per 20 ms; note when the packets of
    TIMED of them come back; hand back (port, ns) pairs.

    Those ports are sent to from `sink_port`, whose packets are read with the kernel's
    timestamps; the others from the port below it, which reads nothing.
    """
    os.sched_setaffinity(0, {1 % os.cpu_count()})
    timed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    timed.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    timed.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    timed.bind(("127.0.0.1", sink_port))
    timed.setblocking(False)
    dropping = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dropping.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    dropping.bind(("127.0.0.1", sink_port - 2))
    payload = bytes([0xFF]) * 160
    packets = [
        (bytearray(struct.pack("!BBHII", 0x80, 0, 0, 0, 1000 + i) + payload), port, sock)
        for i, port in enumerate(ports)
        for sock in [timed if i % max(1, len(ports) // TIMED) == 0 else dropping]
    ]
    arrivals: list[tuple[int, int]] = []
    control = socket.CMSG_SPACE(16)
    sequence = 0
    start = time.perf_counter()
    tick = 0
    while not stop.is_set():
        for packet, port, sock in packets:
            struct.pack_into("!HI", packet, 2, sequence & 0xFFFF, (sequence * 160) & 0xFFFFFFFF)
            with contextlib.suppress(OSError):
                sock.sendto(packet, ("127.0.0.1", port))
        sequence += 1
        tick += 1
        delay = start + tick * 0.02 - time.perf_counter()
        if delay > 0:  # asleep, not waiting on the socket: the plane's sends wake nobody
            time.sleep(delay)
        while True:
            try:
                _data, ancillary, _flags, source = timed.recvmsg(2048, control)
            except BlockingIOError:
                break
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    arrivals.append((source[1], seconds * 1_000_000_000 + nanoseconds))
    results.send(np.array(arrivals, np.int64).reshape(-1, 2))


def measure(count: int) -> dict:
    os.sched_setaffinity(0, {0})
    sink_port = BASE_PORT - 2  # and the port below it
    ports = [BASE_PORT + 2 * i for i in range(count)]
    stop = multiprocessing.Event()
    receiving, sending = multiprocessing.Pipe(duplex=False)
    generator = multiprocessing.Process(
        target=load, args=(ports, sink_port, stop, sending), daemon=True
    )

    async def run() -> dict:
        loop = asyncio.get_running_loop()
        plane = MediaPlane(LoopClock(loop), lambda *_: None, recordings=Path("/tmp"), precise=True)
        streams = []
        for index, port in enumerate(ports):
            endpoint = SocketEndpoint.bind("127.0.0.1", port)
            params = StreamParameters(
                remote=("127.0.0.1", sink_port),
                remote_rtcp=("127.0.0.1", sink_port + 1),
                payload_type=0,
                codec="PCMU",
                telephone_event_pt=101,
                sends=True,
                receives=True,
            )
            stream = RtpStream(endpoint, params)
            streams.append(stream)
            plane.attach(f"leg{index}", stream)
        for index in range(0, count - 1, 2):
            plane.command(f"leg{index}", {"type": "bridge", "peer": f"leg{index + 1}"})
        generator.start()
        gc.collect()
        gc.freeze()  # as the node does after start-up: long-lived objects leave the GC's sight
        cpu_start = time.process_time()
        await asyncio.sleep(SECONDS)
        cpu = (time.process_time() - cpu_start) / SECONDS
        stop.set()
        lost = sum(s.jitter.stats.lost for s in streams)
        received = sum(s.jitter.stats.received for s in streams)
        arrivals = await loop.run_in_executor(None, receiving.recv)
        for index in range(count):
            plane.detach(f"leg{index}")
        deviations = []
        arrivals = arrivals[np.lexsort((arrivals[:, 1], arrivals[:, 0]))]
        legs = np.split(arrivals[:, 1], np.flatnonzero(np.diff(arrivals[:, 0])) + 1)
        for stamps in (leg for leg in legs if len(leg)):
            stamps = stamps[stamps - stamps[0] >= WARMUP * 1e9] / 1e9
            if len(stamps) > 2:
                deviations.append(np.abs(np.diff(stamps) - 0.020))
        jitter = np.concatenate(deviations) * 1000 if deviations else np.array([np.inf])
        return {
            "streams": count,
            "p99_send_jitter_ms": round(float(np.percentile(jitter, 99)), 3),
            "median_send_jitter_ms": round(float(np.median(jitter)), 3),
            "received": received,
            "lost": lost,
            "cpu": round(cpu, 3),
            "legs_heard": len(deviations),
            "skipped_ticks": plane.skipped_ticks,
        }

    try:
        return asyncio.run(run())
    finally:
        stop.set()
        generator.join(5)


def main() -> None:
    results = []
    best = 0
    for count in STEPS:
        trials = []
        for _ in range(TRIALS):
            # Each trial in a process of its own, as a node starts: no state (sockets, table
            # rows, garbage) carried from the trials before.
            trial = subprocess.run(
                [sys.executable, __file__, "--trial", str(count)],
                capture_output=True,
                text=True,
                check=True,
            )
            trials.append(json.loads(trial.stdout.splitlines()[-1]))
            print(json.dumps(trials[-1]), file=sys.stderr)
        trials.sort(key=lambda trial: trial["p99_send_jitter_ms"])
        result = {**trials[len(trials) // 2], "lost": max(trial["lost"] for trial in trials)}
        result["trials_p99_send_jitter_ms"] = [trial["p99_send_jitter_ms"] for trial in trials]
        results.append(result)
        if result["p99_send_jitter_ms"] > 2.0 or result["lost"] > 0:
            break
        best = count
    print(
        json.dumps(
            {
                "bench": "rtp_streams",
                "max_streams_one_core": best,
                "target": 1000,
                "met": best >= 1000,
                "limits": {"p99_send_jitter_ms": 2.0, "lost": 0},
                "steps": results,
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--trial"]:
        print(json.dumps(measure(int(sys.argv[2]))))
    else:
        main()
