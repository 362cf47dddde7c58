"""Benchmark of G.711 encode, decode and transcoding; prints one JSON line.

Rates are 20 ms frames (160 samples) per CPU second, one frame per call as a stream
sees them, and for encoding a stack of 1000 frames in one call as a mixer would.

Run from the repository root: ``python bench/g711.py``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media.rtp.g711 import (
    decode_pcma,
    decode_pcmu,
    encode_pcma,
    encode_pcmu,
    pcma_to_pcmu,
    pcmu_to_pcma,
)


def frames_per_second(function: Callable[[], object], frames_per_call: int = 1) -> int:
    calls = 0
    started = time.process_time()
    while (elapsed := time.process_time() - started) < 0.5:
        for _ in range(1000):
            function()
        calls += 1000
    return round(calls * frames_per_call / elapsed)


def main() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(-20000, 20000, 160).astype(np.int16)
    stack = rng.integers(-20000, 20000, (1000, 160)).astype(np.int16)
    pcmu = encode_pcmu(frame)
    pcma = encode_pcma(frame)
    result = {
        "benchmark": "g711",
        "pcmu_encode_frames_per_s": frames_per_second(lambda: encode_pcmu(frame)),
        "pcmu_decode_frames_per_s": frames_per_second(lambda: decode_pcmu(pcmu)),
        "pcma_encode_frames_per_s": frames_per_second(lambda: encode_pcma(frame)),
        "pcma_decode_frames_per_s": frames_per_second(lambda: decode_pcma(pcma)),
        "pcmu_to_pcma_frames_per_s": frames_per_second(lambda: pcmu_to_pcma(pcmu)),
        "pcma_to_pcmu_frames_per_s": frames_per_second(lambda: pcma_to_pcmu(pcma)),
        "pcmu_encode_stacked_1000_frames_per_s": frames_per_second(
            lambda: encode_pcmu(stack), frames_per_call=1000
        ),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
