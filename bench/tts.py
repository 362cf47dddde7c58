"""Benchmark of <Say> speech (espeak-ng through `media.audio.tts`); prints one JSON line.

start_ms: the first synthesis of the process, which loads and starts espeak-ng.
uncached_10_words_ms: median and 90th percentile over 40 different ten-word sentences,
each spoken once (text to 8 kHz samples, resampling included); realtime_factor is
seconds of speech made per second. cached_lookup_us: the same sentence asked for again.
long_text_4096_chars_ms: Twilio's longest <Say>, uncached.

Run from the repository root: ``python bench/tts.py``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media.audio import RATE
from media.audio.tts import MAX_CHARACTERS, clear_cache, synthesize

WORDS = (
    "please", "hold", "while", "we", "connect", "your", "call", "to", "the", "next",
    "available", "agent", "for", "sales", "support", "billing", "press", "one", "two", "three",
    "four", "five", "your", "account", "number", "then", "pound", "thank", "you", "for",
    "calling", "our", "office", "is", "closed", "today", "leave", "a", "message", "after",
    "the", "tone",
)  # fmt: skip


def sentences(count: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, 10)).capitalize() + "." for _ in range(count)]


def milliseconds(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def main() -> None:
    clear_cache()
    started = time.perf_counter()
    synthesize("Welcome.")
    start_ms = milliseconds(started)

    times, seconds = [], []
    for text in sentences(40):
        started = time.perf_counter()
        audio = synthesize(text)
        times.append(milliseconds(started))
        seconds.append(len(audio) / RATE)

    text = sentences(1, seed=1)[0]
    synthesize(text)
    lookups = []
    for _ in range(1000):
        started = time.perf_counter()
        synthesize(text)
        lookups.append(milliseconds(started) * 1000)

    long_text = (" ".join(sentences(60, seed=2)))[:MAX_CHARACTERS]
    started = time.perf_counter()
    long_audio = synthesize(long_text)
    long_ms = milliseconds(started)

    result = {
        "benchmark": "tts",
        "start_ms": round(start_ms, 1),
        "uncached_10_words_median_ms": round(float(np.median(times)), 2),
        "uncached_10_words_p90_ms": round(float(np.percentile(times, 90)), 2),
        "speech_seconds_per_sentence": round(float(np.median(seconds)), 2),
        "realtime_factor": round(sum(seconds) / (sum(times) / 1000)),
        "cached_lookup_median_us": round(float(np.median(lookups)), 2),
        "long_text_4096_chars_ms": round(long_ms),
        "long_text_speech_seconds": round(len(long_audio) / RATE, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
