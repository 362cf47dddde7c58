"""Speech from espeak-ng: length, level, voices, odd text, threads and the cache."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

from media.audio import FRAME, RATE, tts
from media.audio.level import dbfs
from media.audio.tts import synthesize, voice_name

SENTENCE = "Hello, this is a test of the speech synthesizer."


def active_seconds(audio: np.ndarray) -> float:
    blocks = audio[: len(audio) // FRAME * FRAME].reshape(-1, FRAME)
    return sum(dbfs(block) > -40 for block in blocks) * FRAME / RATE


def pitch(audio: np.ndarray) -> float:
    """Median fundamental (Hz) of the voiced 40 ms blocks, by autocorrelation."""
    found = []
    for block in audio[: len(audio) // 320 * 320].astype(float).reshape(-1, 320):
        if dbfs(block) < -30:
            continue
        block = block - block.mean()
        correlation = np.correlate(block, block, "full")[319:]
        lag = 20 + int(np.argmax(correlation[20:100]))  # 80 to 400 Hz
        if correlation[lag] > 0.5 * correlation[0]:
            found.append(RATE / lag)
    return float(np.median(found))


def test_a_sentence_is_speech_of_speech_length() -> None:
    audio = synthesize(SENTENCE)
    assert audio.dtype == np.int16
    assert 1.5 <= len(audio) / RATE <= 3.5
    assert active_seconds(audio) >= 0.7 * len(audio) / RATE
    assert -26 < dbfs(audio) < -12
    assert np.abs(audio).max() < 32767


def test_results_are_cached_read_only_and_empty_text_is_empty() -> None:
    audio = synthesize(SENTENCE, "alice", "en-US")
    assert synthesize(SENTENCE, "Alice", "EN-us ") is audio
    assert not audio.flags.writeable
    assert synthesize(SENTENCE, "man") is not audio
    assert len(synthesize("")) == 0 and len(synthesize(" \n\t ")) == 0
    tts.clear_cache()
    again = synthesize(SENTENCE, "alice", "en-US")
    assert again is not audio and abs(len(again) - len(audio)) < 80


def test_the_cache_forgets_the_least_recently_used(monkeypatch: pytest.MonkeyPatch) -> None:
    tts.clear_cache()
    monkeypatch.setattr(tts, "CACHE_ENTRIES", 2)
    first, second = synthesize("one"), synthesize("two")
    assert synthesize("one") is first  # now the most recent
    synthesize("three")
    assert synthesize("one") is first
    assert synthesize("two") is not second


def test_men_speak_lower_than_women() -> None:
    assert pitch(synthesize(SENTENCE, "man")) < 0.75 * pitch(synthesize(SENTENCE, "woman"))


@pytest.mark.parametrize(
    ("voice", "language", "expected"),
    [
        ("woman", "en-US", "en-us+f3"),
        ("man", "en-GB", "en+m3"),
        ("alice", "fr-FR", "fr+f3"),
        ("man", "de-AT", "de+m3"),  # by its first subtag
        ("Polly.Joanna", "en-US", "en-us+f3"),
        ("Polly.Matthew-Neural", "en-US", "en-us+m3"),
        ("Polly.Hans", "en-US", "de+m3"),  # a Polly voice speaks its own language
        ("Polly.Nobody", "es-ES", "es+f3"),
        ("Google.en-GB-Standard-A", "en-US", "en+f3"),
        ("Google.pt-BR-Wavenet-B", "en-US", "pt-br+f3"),
    ],
)
def test_twilio_voices_map_to_espeak_voices(voice: str, language: str, expected: str) -> None:
    assert voice_name(voice, language) == expected


def test_an_unknown_language_speaks_english_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="media.audio.tts"):
        assert voice_name("man", "xx-XX") == "en-us+m3"
        audio = synthesize("Still spoken.", "man", "xx-XX")
    assert "no speech for language 'xx-XX'" in caplog.text
    assert len(audio) > RATE // 2


def test_every_mapped_language_speaks(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="media.audio.tts"):
        for language in tts._VOICES:
            assert active_seconds(synthesize("1 2 3", "woman", language)) > 0.3, language
    assert caplog.text == ""


def test_one_voice_does_not_change_the_next() -> None:
    tts.clear_cache()
    before = len(synthesize(SENTENCE))
    synthesize("Добрий день", "woman", "uk-UA")  # espeak's Ukrainian is slower
    tts.clear_cache()
    assert abs(len(synthesize(SENTENCE)) - before) < 80


@pytest.mark.parametrize(
    "text",
    [
        "\x00\x07\x1b[31m bell \x7f",
        "<speak>Hello <break time='1s'/> <prosody rate='slow'>there</prosody></speak>",
        "1 < 2 and 3 > 2 & done",
        "\ud800 lone surrogate",
        "[[h@l'oU]] {curly} %s %n",
    ],
)
def test_odd_text_is_spoken_not_crashed_on(text: str) -> None:
    assert active_seconds(synthesize(text)) > 0.2


def test_markup_is_not_read_out() -> None:
    plain = synthesize("Hello there")
    marked = synthesize("<speak>Hello <emphasis level='strong'>there</emphasis></speak>")
    assert abs(len(marked) - len(plain)) < 0.2 * len(plain)


def test_long_text_is_spoken_and_cut_at_twilios_limit(caplog: pytest.LogCaptureFixture) -> None:
    words = "The quick brown fox jumps over the lazy dog. "
    audio = synthesize(words * 70)  # 3150 characters
    assert len(audio) / RATE > 120
    with caplog.at_level(logging.WARNING, logger="media.audio.tts"):
        longest = synthesize(words * 100)  # 4500 characters
    assert "cut to 4096" in caplog.text
    assert 1.2 * len(audio) < len(longest) < 1.4 * len(audio)


def test_threads_speak_at_once_without_mixing_their_speech() -> None:
    texts = [f"Thread number {n} is speaking, and nobody else." for n in ("one", "two", "three")]
    texts.append("A much longer sentence, spoken by the fourth thread while the others wait.")
    tts.clear_cache()
    alone = [len(synthesize(text)) for text in texts]
    tts.clear_cache()
    results: dict[int, np.ndarray] = {}
    start = threading.Barrier(len(texts))

    def speak(n: int) -> None:
        start.wait()
        results[n] = synthesize(texts[n])

    threads = [threading.Thread(target=speak, args=(n,)) for n in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [abs(len(results[n]) - alone[n]) < 80 for n in range(len(texts))] == [True] * 4
