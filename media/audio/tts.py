"""Speech for <Say>: espeak-ng at 8 kHz, loaded from the `espeakng_loader` package (no
system package needed) through ctypes.

espeak-ng keeps global state and is not re-entrant: it is started once per process and
one lock serialises synthesis. Results are cached (prompts repeat), least recently used
first out, under a separate lock so that a cached prompt never waits for a long one
being spoken. Twilio's voices map to espeak voices: the language picks the voice, "man"
and Polly's male voices get a male variant, everything else a female one. A Polly or
Google voice speaks its own language, whatever `language` says, as on Twilio.
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from media.audio import RATE
from media.audio.resample import resample
from media.audio.wav import to_int16

log = logging.getLogger(__name__)

MAX_CHARACTERS = 4096
"""Twilio's limit for the text of one <Say>; longer text is cut at a word."""

CACHE_ENTRIES = 256
CACHE_SECONDS = 1800.0
"""Most audio the cache holds, in seconds (29 MB)."""

MALE, FEMALE = "+m3", "+f3"

# Language (lower case) -> espeak-ng voice. A language not listed is looked up by its
# first subtag ("de-LI" speaks "de"), then falls back to American English.
_VOICES = {
    "en-us": "en-us", "en-ca": "en-us", "en-gb": "en", "en-au": "en", "en-nz": "en",
    "en-ie": "en", "en-in": "en", "en-za": "en", "en": "en-us",
    "de-de": "de", "fr-fr": "fr", "fr-ca": "fr", "fr-be": "fr-be", "fr-ch": "fr-ch",
    "es-es": "es", "es-mx": "es-419", "es-us": "es-419", "ca-es": "ca", "it-it": "it",
    "nl-nl": "nl", "pt-pt": "pt", "pt-br": "pt-br", "pl-pl": "pl", "sv-se": "sv",
    "da-dk": "da", "nb-no": "nb", "no": "nb", "fi-fi": "fi", "is-is": "is", "ru-ru": "ru",
    "uk-ua": "uk", "cs-cz": "cs", "sk-sk": "sk", "hu-hu": "hu", "ro-ro": "ro",
    "el-gr": "el", "tr-tr": "tr", "ar": "ar", "he-il": "he", "hi-in": "hi", "ja-jp": "ja",
    "ko-kr": "ko", "zh-cn": "cmn", "cmn-cn": "cmn", "zh-tw": "cmn", "zh-hk": "yue",
    "yue-cn": "yue", "id-id": "id", "ms-my": "ms", "vi-vn": "vi", "th-th": "th",
    "cy-gb": "cy",
}  # fmt: skip
_PRIMARY = {language.split("-")[0]: voice for language, voice in reversed(_VOICES.items())}

# Amazon Polly voices by language: (female names, male names).
_POLLY = {
    "en-US": ("Joanna Kendra Kimberly Salli Ivy Ruth Danielle", "Matthew Joey Justin Kevin "
              "Stephen Gregory Patrick"),
    "en-GB": ("Amy Emma", "Brian Arthur Geraint"), "en-AU": ("Nicole Olivia", "Russell"),
    "en-IN": ("Aditi Raveena Kajal", ""), "en-NZ": ("Aria", ""), "en-ZA": ("Ayanda", ""),
    "en-IE": ("Niamh", ""), "cy-GB": ("Gwyneth", ""), "de-DE": ("Marlene Vicki", "Hans Daniel"),
    "fr-FR": ("Celine Céline Lea Léa", "Mathieu Remi Rémi"), "fr-CA": ("Chantal Gabrielle",
    "Liam"), "es-ES": ("Conchita Lucia", "Enrique Sergio"), "es-MX": ("Mia", "Andres Andrés"),
    "es-US": ("Lupe Penelope Penélope", "Miguel Pedro"), "it-IT": ("Carla Bianca",
    "Giorgio Adriano"), "nl-NL": ("Lotte Laura", "Ruben"), "pl-PL": ("Ewa Maja Ola",
    "Jacek Jan"), "pt-PT": ("Ines Inês", "Cristiano"), "pt-BR": ("Vitoria Vitória Camila",
    "Ricardo Thiago"), "ru-RU": ("Tatyana", "Maxim"), "ja-JP": ("Mizuki Kazuha Tomoko",
    "Takumi"), "da-DK": ("Naja Sofie", "Mads"), "nb-NO": ("Liv Ida", ""), "sv-SE": ("Astrid Elin",
    ""), "is-IS": ("Dora Dóra", "Karl"), "ro-RO": ("Carmen", ""), "tr-TR": ("Filiz Burcu", ""),
    "ko-KR": ("Seoyeon Jihye", ""), "zh-CN": ("Zhiyu", ""), "ar": ("Zeina Hala", "Zayd"),
    "fi-FI": ("Suvi", ""), "ca-ES": ("Arlet", ""), "zh-HK": ("Hiujin", ""),
}  # fmt: skip
_POLLY_VOICES = {
    name.casefold(): (language, gender)
    for language, (female, male) in _POLLY.items()
    for names, gender in ((female, FEMALE), (male, MALE))
    for name in names.split()
}

_TAG = re.compile(r"</?[A-Za-z][\w.:-]*(?:\s[^<>]*)?/?>")  # SSML or stray markup

# espeak-ng's API (speak_lib.h).
_SYNCHRONOUS = 2
_DONT_EXIT = 0x8000  # return errors instead of calling exit()
_POSITION_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _RATE_NORMAL = 1, 175  # words per minute
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

_synth_lock = threading.Lock()
_cache_lock = threading.Lock()
_cache: OrderedDict[tuple[str, str, str], NDArray[np.int16]] = OrderedDict()
_cached_samples = 0
_engine: tuple[ctypes.CDLL, int] | None = None  # the library and its sample rate
_chunks: list[NDArray[np.int16]] = []  # filled by the callback, under _synth_lock
_EMPTY = np.zeros(0, dtype=np.int16)
_EMPTY.flags.writeable = False


@_CALLBACK
def _collect(wav, count, _events):  # type: ignore[no-untyped-def]
    if wav and count > 0:
        _chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
    return 0


def synthesize(text: str, voice: str = "woman", language: str = "en-US") -> NDArray[np.int16]:
    """`text` spoken at 8 kHz as read-only int16 samples; empty for empty text.

    Markup (SSML tags) and control characters are not spoken. The same arguments give
    the same array object while it stays in the cache.
    """
    text = _speakable(text)
    if not text.strip():
        return _EMPTY
    key = (text, voice.strip().casefold(), language.strip().casefold())
    cached = _lookup(key)
    if cached is not None:
        return cached
    name = voice_name(voice, language)
    with _synth_lock:
        cached = _lookup(key)  # spoken by another thread while this one waited
        if cached is not None:
            return cached
        speech, rate = _speak(text, name)
    audio = to_int16(resample(speech, rate, RATE) / 32768)
    audio.flags.writeable = False
    _store(key, audio)
    return audio


def voice_name(voice: str, language: str) -> str:
    """The espeak-ng voice for a Twilio `voice` and `language`, e.g. "en-us+f3"."""
    voice = voice.strip()
    variant = MALE if voice.casefold() in ("man", "male") else FEMALE
    kind, _, name = voice.partition(".")
    if kind.casefold() == "polly" and name:
        polly = _POLLY_VOICES.get(name.split("-")[0].casefold())
        if polly is not None:
            language, variant = polly
    elif kind.casefold() == "google" and name.count("-") >= 2:
        language = "-".join(name.split("-")[:2])  # Google.en-GB-Standard-A
    code = language.strip().casefold()
    espeak = _VOICES.get(code) or _PRIMARY.get(code.split("-")[0])
    if espeak is None:
        log.warning("no speech for language %r; speaking American English", language)
        espeak = "en-us"
    return espeak + variant


def clear_cache() -> None:
    """Forget every cached result."""
    global _cached_samples
    with _cache_lock:
        _cache.clear()
        _cached_samples = 0


def _speakable(text: str) -> str:
    """`text` without markup or control characters, cut to `MAX_CHARACTERS` at a word."""
    text = _TAG.sub(" ", text)
    text = "".join(c if c.isprintable() else " " for c in text)
    if len(text) > MAX_CHARACTERS:
        log.warning("text of %d characters cut to %d for speech", len(text), MAX_CHARACTERS)
        cut = text.rfind(" ", 0, MAX_CHARACTERS + 1)
        text = text[: cut if cut > MAX_CHARACTERS // 2 else MAX_CHARACTERS]
    return text


def _lookup(key: tuple[str, str, str]) -> NDArray[np.int16] | None:
    with _cache_lock:
        audio = _cache.get(key)
        if audio is not None:
            _cache.move_to_end(key)
        return audio


def _store(key: tuple[str, str, str], audio: NDArray[np.int16]) -> None:
    global _cached_samples
    with _cache_lock:
        if key in _cache or len(audio) > CACHE_SECONDS * RATE:
            return
        _cache[key] = audio
        _cached_samples += len(audio)
        while len(_cache) > CACHE_ENTRIES or _cached_samples > CACHE_SECONDS * RATE:
            _cached_samples -= len(_cache.popitem(last=False)[1])


def _speak(text: str, name: str) -> tuple[NDArray[np.float64], int]:
    """espeak-ng's samples for `text` in voice `name`, and their rate. Hold _synth_lock."""
    library, rate = _start()
    if library.espeak_SetVoiceByName(name.encode()) != 0:
        log.warning("espeak-ng has no voice %r; speaking American English", name)
        library.espeak_SetVoiceByName(b"en-us" + name[name.find("+") :].encode())
    # A new voice keeps the speed of the one before (Ukrainian's "speed 80" slows every
    # later voice) until the rate is set again.
    library.espeak_SetParameter(_RATE, _RATE_NORMAL, 0)
    encoded = text.encode("utf-8", errors="ignore") + b"\0"
    _chunks.clear()
    try:
        error = library.espeak_Synth(
            encoded, len(encoded), 0, _POSITION_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        if error != 0:
            raise RuntimeError(f"espeak-ng could not speak (error {error})")
        library.espeak_Synchronize()
        speech = np.concatenate(_chunks) if _chunks else _EMPTY
    finally:
        _chunks.clear()
    return speech.astype(np.float64), rate


def _start() -> tuple[ctypes.CDLL, int]:
    """Load and start espeak-ng once per process. Hold _synth_lock."""
    global _engine
    if _engine is None:
        import espeakng_loader

        library = ctypes.CDLL(espeakng_loader.get_library_path())
        library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                              ctypes.c_int]  # fmt: skip
        library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        library.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]  # fmt: skip
        library.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        library.espeak_SetSynthCallback.restype = None
        data = str(Path(espeakng_loader.get_data_path()).parent).encode()
        rate = library.espeak_Initialize(_SYNCHRONOUS, 0, data, _DONT_EXIT)
        if rate <= 0:
            raise RuntimeError(f"espeak-ng did not start (error {rate}) with data in {data!r}")
        library.espeak_SetSynthCallback(_collect)
        _engine = library, rate
    return _engine
