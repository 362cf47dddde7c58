"""Test signals for the in-band DTMF detector: tone pairs, noise, speech-like and music.

Shared by `test_dtmf_detector.py` and `bench/dtmf.py` so that the benchmark measures
the same signals the tests assert on. Everything is 8 kHz float64 on the int16 scale
and reproducible from a seed. Real speech comes from espeak-ng when the
`espeakng_loader` package is installed; `espeak_speech` returns None otherwise.
"""

from __future__ import annotations

import importlib.util

import numpy as np
from numpy.typing import NDArray

from media.rtp.dtmf_detector import (
    COLUMN_FREQUENCIES,
    DBM0_AMPLITUDE,
    KEYPAD,
    ROW_FREQUENCIES,
    SAMPLE_RATE,
)

Signal = NDArray[np.float64]


def amplitude(level_dbm0: float) -> float:
    return DBM0_AMPLITUDE * 10 ** (level_dbm0 / 20)


def tone_pair(
    digit: str,
    seconds: float,
    level_dbm0: float = -10.0,
    twist_db: float = 0.0,
    row_deviation: float = 0.0,
    column_deviation: float = 0.0,
    seed: int = 0,
) -> Signal:
    """A DTMF tone. ``twist_db`` > 0 is normal twist: the column tone that much weaker.

    ``level_dbm0`` is the level of the stronger tone. Phases are random per seed.
    """
    index = KEYPAD.index(digit)
    row = ROW_FREQUENCIES[index // 4] * (1 + row_deviation)
    column = COLUMN_FREQUENCIES[index % 4] * (1 + column_deviation)
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    row_level = level_dbm0 - max(0.0, -twist_db)
    column_level = level_dbm0 - max(0.0, twist_db)
    phases = rng.uniform(0, 2 * np.pi, 2)
    return amplitude(row_level) * np.sin(2 * np.pi * row * t + phases[0]) + amplitude(
        column_level
    ) * np.sin(2 * np.pi * column * t + phases[1])


def silence(seconds: float) -> Signal:
    return np.zeros(round(seconds * SAMPLE_RATE))


def to_int16(signal: Signal) -> NDArray[np.int16]:
    return np.clip(np.round(signal), -32768, 32767).astype(np.int16)


# F1, F2, F3 (Hz) of English vowels, after Peterson and Barney's averages.
_VOWELS = np.array(
    [
        (730, 1090, 2440),
        (270, 2290, 3010),
        (300, 870, 2240),
        (530, 1840, 2480),
        (570, 840, 2410),
        (660, 1720, 2410),
        (490, 1350, 1690),
        (440, 1020, 2240),
        (390, 1990, 2550),
        (640, 1190, 2390),
    ],
    dtype=float,
)
_BANDWIDTHS = np.array([90.0, 110.0, 170.0])


def _envelope(frequencies: Signal, formants: Signal) -> Signal:
    """Magnitude of a three-formant vocal tract at ``frequencies`` (per row of formants)."""
    response = np.zeros_like(frequencies)
    for i, gain in enumerate((1.0, 0.6, 0.3)):
        offset = (frequencies - formants[..., i : i + 1]) / (_BANDWIDTHS[i] / 2)
        response += gain / np.sqrt(1 + offset**2)
    return response


def _voiced(rng: np.random.Generator, samples: int) -> Signal:
    start_pitch = rng.uniform(85, 260)
    end_pitch = start_pitch * rng.uniform(0.75, 1.3)
    t = np.arange(samples) / SAMPLE_RATE
    pitch = np.linspace(start_pitch, end_pitch, samples) * (
        1 + 0.02 * np.sin(2 * np.pi * rng.uniform(4, 7) * t)
    )
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    first, second = _VOWELS[rng.integers(len(_VOWELS), size=2)]
    # Formants glide from one vowel to the next; the envelope is sampled every 10 ms.
    points = max(2, samples // 80)
    mix = np.linspace(0, 1, points)[:, None]
    formants = first * (1 - mix) + second * mix
    point_pitch = np.interp(np.linspace(0, samples - 1, points), np.arange(samples), pitch)
    harmonics = np.arange(1, int(SAMPLE_RATE / 2 / min(start_pitch, end_pitch) * 1.05) + 1)
    frequencies = point_pitch[:, None] * harmonics[None, :]
    gains = _envelope(frequencies, formants) / harmonics  # glottal source tilt
    gains[frequencies >= SAMPLE_RATE / 2 - 100] = 0.0
    sample_points = np.linspace(0, samples - 1, points)
    out = np.zeros(samples)
    for k, harmonic in enumerate(harmonics):
        gain = np.interp(np.arange(samples), sample_points, gains[:, k])
        out += gain * np.sin(harmonic * phase)
    return out


def _unvoiced(rng: np.random.Generator, samples: int) -> Signal:
    noise = rng.normal(size=samples)
    spectrum = np.fft.rfft(noise)
    frequencies = np.fft.rfftfreq(samples, 1 / SAMPLE_RATE)
    centre = rng.uniform(1500, 3800)
    spectrum *= 1 / np.sqrt(1 + ((frequencies - centre) / 600) ** 2)
    return np.fft.irfft(spectrum, samples)


def synthetic_speech(seconds: float, seed: int = 0, level_dbm0: float = -15.0) -> Signal:
    """Speech-like audio: voiced syllables with gliding pitch and formants, fricatives,
    pauses, each syllable at its own level around ``level_dbm0`` (RMS)."""
    rng = np.random.default_rng(seed)
    total = round(seconds * SAMPLE_RATE)
    parts = []
    length = 0
    while length < total:
        samples = int(rng.uniform(0.06, 0.35) * SAMPLE_RATE)
        kind = rng.uniform()
        if kind < 0.7:
            part = _voiced(rng, samples)
        elif kind < 0.9:
            part = _unvoiced(rng, samples)
        else:
            part = np.zeros(samples)
        if part.any():
            ramp = np.minimum(1, np.minimum(np.arange(samples), np.arange(samples)[::-1]) / 80)
            rms = np.sqrt(np.mean(part**2))
            level = level_dbm0 + rng.uniform(-10, 8)
            part = part * ramp * (amplitude(level) / np.sqrt(2) / rms)
        parts.append(part)
        length += samples
    return np.concatenate(parts)[:total]


def harmonic_note(frequency: float, seconds: float, level_dbm0: float = -12.0) -> Signal:
    """A sawtooth-like instrument note: harmonics at 1/k up to 4 kHz, with a decay."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    out = np.zeros_like(t)
    for k in range(1, int(SAMPLE_RATE / 2 / frequency) + 1):
        out += np.sin(2 * np.pi * k * frequency * t) / k
    out *= np.exp(-t * 1.5)
    return out * amplitude(level_dbm0) / np.max(np.abs(out))


def music(seconds: float, seed: int = 0) -> Signal:
    """Chords of harmonic notes from the equal-tempered scale (A4 = 440 Hz)."""
    rng = np.random.default_rng(seed)
    total = round(seconds * SAMPLE_RATE)
    parts = []
    length = 0
    while length < total:
        duration = rng.uniform(0.15, 0.6)
        notes = 440 * 2 ** (rng.integers(-24, 20, size=rng.integers(1, 4)) / 12)
        chord = sum(harmonic_note(f, duration, rng.uniform(-20, -8)) for f in notes)
        parts.append(chord)
        length += len(chord)
    return np.concatenate(parts)[:total]


# Prompts, digits and numbers read out, and ordinary talk: what a detector hears on a line.
SPOKEN = [
    "Thank you for calling. Please enter your account number, then press pound.",
    "For sales, press one. For support, press two. To hear these options again, press star.",
    "Zero one two three four five six seven eight nine. Goodbye.",
    "Your call is important to us. Please stay on the line and the next available agent "
    "will be with you shortly.",
    "The quick brown fox jumps over the lazy dog while a choir sings in harmony.",
    "I would like to book a table for four people on Friday evening at half past seven, "
    "near the window if you have one.",
    "Hello, this is Maria from accounting. I am calling about the invoice we received "
    "last Tuesday, number four four nine one two.",
    "Well, yes, I see what you mean, but I think we should wait until the figures for "
    "the third quarter are in before we decide anything.",
    "Please say or enter your date of birth, for example, the twenty first of March "
    "nineteen eighty six.",
    "Mmm, hmm, right, okay. Oh really? No, no, that is fine. Wonderful, thank you so much!",
    "The weather tomorrow will be sunny in the morning with showers in the afternoon and "
    "temperatures around eighteen degrees.",
    "Press nine to speak to an operator, or hang up to end this call.",
]
# (voice, language) as a <Say> gives them: men and women, and other languages' sounds.
VOICES = [
    ("woman", "en-US"),
    ("man", "en-GB"),
    ("woman", "fr-FR"),
    ("man", "de-DE"),
    ("woman", "es-ES"),
    ("man", "it-IT"),
    ("woman", "nl-NL"),
]


def espeak_speech(texts: list[str], voices: list[tuple[str, str]] = VOICES[:1]) -> Signal | None:
    """Every text spoken in every voice by espeak-ng (the engine's own `synthesize`, so
    one process never starts espeak-ng twice), at 8 kHz; None without `espeakng_loader`."""
    if importlib.util.find_spec("espeakng_loader") is None:
        return None
    from media.audio.tts import synthesize

    spoken = [synthesize(text, voice, language) for voice, language in voices for text in texts]
    return np.concatenate(spoken).astype(np.float64)
