"""Benchmark of the conference mixer; prints one JSON line.

Wall time of one `Mixer.tick()` (mixing plus talking detection) for a node of 1,000
participants: 100 conferences of 10, 10 conferences of 100, and a mix of sizes (one of
200, then conferences of 2 to 30) with some participants muted, deaf, on hold or
coaching. Every tick gets fresh random audio; writing it into ``input`` is not timed.
Median and 99th percentile over 2,000 ticks, against the 1 ms target (a 20 ms tick must
leave the rest of the budget to RTP, codecs and players). ``churn``: 100 conferences of
10 where one participant leaves and one joins before every tick, so each timed tick
also regroups the slots.

Run from the repository root: ``python -m bench.mixer``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media.audio.mixer import FRAME, Mixer

TICKS = 2000
WARMUP = 50
TARGET_MS = 1.0


def node(sizes: list[int], seed: int, flags: bool = False) -> Mixer:
    mixer = Mixer()
    rng = np.random.default_rng(seed)
    for number, size in enumerate(sizes):
        slots = [mixer.join(f"conference-{number}") for _ in range(size)]
        if flags and size > 3:
            mixer.set(slots[0], muted=True)
            mixer.set(slots[1], deaf=bool(rng.integers(2)), hold=bool(rng.integers(2)))
            mixer.set(slots[2], coach_of=slots[3])
    return mixer


def tick_ms(mixer: Mixer, seed: int, churn: bool = False) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    rows = mixer.capacity
    # Speech-like levels: most frames quiet, some loud, so talking changes happen.
    scale = rng.choice([30, 3000], size=(64, rows, 1), p=[0.7, 0.3])
    audio = (rng.standard_normal((64, rows, FRAME)) * scale).astype(np.int16)
    times = []
    for tick in range(WARMUP + TICKS):
        if churn:
            conference = f"conference-{tick % 100}"
            mixer.leave(mixer.members(conference)[0])
            mixer.join(conference)
        mixer.input[:] = audio[tick % len(audio)]
        started = time.perf_counter()
        mixer.tick()
        times.append(time.perf_counter() - started)
    measured = np.array(times[WARMUP:]) * 1000
    return float(np.median(measured)), float(np.percentile(measured, 99))


def main() -> None:
    mixed_sizes = [200]
    while sum(mixed_sizes) < 1000:
        mixed_sizes.append(min(2 + (len(mixed_sizes) * 7) % 29, 1000 - sum(mixed_sizes)))
    cases = {
        "100x10": [10] * 100,
        "10x100": [100] * 10,
        "mixed_sizes_with_flags": mixed_sizes,
        "churn_100x10": [10] * 100,
    }
    result: dict[str, object] = {
        "benchmark": "mixer",
        "participants": 1000,
        "ticks": TICKS,
        "target_ms": TARGET_MS,
    }
    for seed, (name, sizes) in enumerate(cases.items()):
        mixer = node(sizes, seed, flags=name.endswith("flags"))
        median, p99 = tick_ms(mixer, seed, churn=name.startswith("churn"))
        result[f"{name}_conferences"] = len(sizes)
        result[f"{name}_tick_median_ms"] = round(median, 3)
        result[f"{name}_tick_p99_ms"] = round(p99, 3)
        result[f"{name}_meets_target"] = median < TARGET_MS
    print(json.dumps(result))


if __name__ == "__main__":
    main()
