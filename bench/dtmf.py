"""Benchmark of the in-band DTMF detector; prints one JSON line.

detection_rate: all 16 digits x twist x frequency offsets within limits x noise levels
(60 ms tones at -15 dBm0). false_accept_rate: tones outside the limits (frequency off by
3.5 % or more, twist beyond 8/4 dB, 20 ms long, too quiet). talk_off_hits: presses
detected in synthetic speech and music (and espeak-ng speech when `espeakng_loader` is
installed). Throughput: seconds of audio per CPU second for one stream fed 20 ms frames,
and for a bank of 1000 streams fed one 20 ms frame each per tick.

Run from the repository root: ``python bench/dtmf.py``.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media.rtp.dtmf_detector import KEYPAD, DtmfDetector
from tests.unit.media.rtp.dtmf_signals import (
    SPOKEN,
    VOICES,
    espeak_speech,
    music,
    silence,
    synthetic_speech,
    to_int16,
    tone_pair,
)

FRAME = 160


def detect(signal: np.ndarray) -> str:
    detector = DtmfDetector()
    samples = to_int16(signal)
    found = []
    for start in range(0, len(samples), FRAME):
        found += detector.process(samples[start : start + FRAME])
    return "".join(tone.digit for tone in found)


def with_noise(tone: np.ndarray, snr_db: float | None, seed: int) -> np.ndarray:
    signal = np.concatenate([silence(0.05), tone, silence(0.08)])
    if snr_db is not None:
        sigma = np.sqrt(np.mean(tone**2) / 10 ** (snr_db / 10))
        signal = signal + np.random.default_rng(seed).normal(0, sigma, len(signal))
    return signal


def detection_rate() -> tuple[float, int]:
    cases = list(
        itertools.product(
            KEYPAD, (-4.0, 0.0, 4.0, 8.0), (-0.015, 0.0, 0.015), (1, -1), (None, 30.0, 20.0)
        )
    )
    correct = 0
    for seed, (digit, twist, offset, sign, snr) in enumerate(cases):
        tone = tone_pair(
            digit,
            0.06,
            level_dbm0=-15,
            twist_db=twist,
            row_deviation=offset,
            column_deviation=sign * offset,
            seed=seed,
        )
        correct += detect(with_noise(tone, snr, seed)) == digit
    return correct / len(cases), len(cases)


def false_accept_rate() -> tuple[float, int]:
    variants = [{"row_deviation": d} for d in (-0.05, -0.035, 0.035, 0.05)] + [
        {"column_deviation": d} for d in (-0.05, -0.035, 0.035, 0.05)
    ]
    variants += [{"twist_db": 12.0}, {"twist_db": -8.0}, {"level_dbm0": -45.0}]
    cases = [(digit, variant, 0.1) for digit in KEYPAD for variant in variants]
    cases += [(digit, {}, 0.02) for digit in KEYPAD]
    accepted = 0
    for seed, (digit, variant, seconds) in enumerate(cases):
        tone = tone_pair(digit, seconds, seed=seed, **variant)
        accepted += detect(with_noise(tone, None, seed)) != ""
    return accepted / len(cases), len(cases)


def talk_off() -> dict:
    speech = np.concatenate([synthetic_speech(120.0, seed=seed) for seed in range(5)])
    result = {
        "talk_off_synthetic_speech_seconds": len(speech) / 8000,
        "talk_off_synthetic_speech_hits": len(detect(speech)),
    }
    tunes = music(300.0, seed=1)
    result["talk_off_music_seconds"] = len(tunes) / 8000
    result["talk_off_music_hits"] = len(detect(tunes))
    spoken = espeak_speech(SPOKEN, VOICES)
    if spoken is not None:
        result["talk_off_espeak_seconds"] = round(len(spoken) / 8000, 1)
        result["talk_off_espeak_hits"] = len(detect(spoken))
    return result


def throughput() -> dict:
    audio = to_int16(synthetic_speech(60.0, seed=9))
    detector = DtmfDetector()
    started = time.process_time()
    for start in range(0, len(audio), FRAME):
        detector.process(audio[start : start + FRAME])
    single = 60.0 / (time.process_time() - started)
    channels = 1000
    bank_audio = np.tile(audio[: 8000 * 5], (channels, 1))
    bank = DtmfDetector(channels=channels)
    started = time.process_time()
    for start in range(0, bank_audio.shape[1], FRAME):
        bank.process(bank_audio[:, start : start + FRAME])
    elapsed = time.process_time() - started
    ticks = bank_audio.shape[1] / FRAME
    return {
        "throughput_single_stream_audio_s_per_cpu_s": round(single),
        "throughput_bank_1000_audio_s_per_cpu_s": round(channels * 5 / elapsed),
        "bank_1000_cpu_ms_per_20ms_tick": round(elapsed / ticks * 1000, 3),
    }


def main() -> None:
    rate, cases = detection_rate()
    false_rate, false_cases = false_accept_rate()
    result = {
        "benchmark": "dtmf_detector",
        "detection_rate": round(rate, 4),
        "detection_cases": cases,
        "false_accept_rate": round(false_rate, 4),
        "false_accept_cases": false_cases,
        **talk_off(),
        **throughput(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
