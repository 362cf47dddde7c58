"""Speech for <Say>: espeak-ng, loaded from the `espeakng-loader` package (no system
package needed), at 8 kHz.

espeak-ng is not re-entrant: one lock serialises synthesis in the process, and results
are cached (prompts repeat). Twilio's voice names map to espeak voices.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from media.audio import RATE
from media.audio.wav import resample

log = logging.getLogger(__name__)

MAX_CHARACTERS = 4096
CACHE_SIZE = 256
_LANGUAGES = {
    "en-us": "en-us", "en-gb": "en-gb", "en-au": "en", "en-in": "en", "en": "en-us",
    "de-de": "de", "fr-fr": "fr-fr", "fr-ca": "fr-fr", "es-es": "es", "es-mx": "es-419",
    "it-it": "it", "nl-nl": "nl", "pt-br": "pt-br", "pt-pt": "pt", "pl-pl": "pl",
    "sv-se": "sv", "da-dk": "da", "nb-no": "nb", "fi-fi": "fi", "ru-ru": "ru",
    "ja-jp": "ja", "zh-cn": "cmn", "ko-kr": "ko", "tr-tr": "tr", "cs-cz": "cs",
}  # fmt: skip

_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_rate = 22050
_chunks: list[NDArray[np.int16]] = []
_cache: OrderedDict[tuple[str, str, str], NDArray[np.int16]] = OrderedDict()
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


@_CALLBACK
def _collect(wav, count, _events):  # type: ignore[no-untyped-def]
    if wav and count > 0:
        _chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
    return 0


def _load() -> ctypes.CDLL:
    global _library, _rate
    if _library is None:
        import espeakng_loader

        library = ctypes.CDLL(espeakng_loader.get_library_path())
        data = str(Path(espeakng_loader.get_data_path()).parent).encode()
        rate = library.espeak_Initialize(2, 0, data, 0)  # synchronous output
        if rate <= 0:
            raise RuntimeError(f"espeak-ng failed to start ({rate})")
        library.espeak_SetSynthCallback(_collect)
        _library, _rate = library, rate
    return _library


def voice_name(voice: str, language: str) -> str:
    """The espeak voice for a Twilio voice and language ("man" gets a male variant)."""
    code = _LANGUAGES.get(language.strip().lower())
    if code is None:
        log.warning("no speech for language %r; speaking English", language)
        code = "en-us"
    variant = "+m3" if voice.lower() in ("man", "male") else "+f3"
    return code + variant


def synthesize(text: str, voice: str = "woman", language: str = "en-US") -> NDArray[np.int16]:
    """`text` spoken at 8 kHz, int16 (empty for empty text)."""
    text = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in text)[:MAX_CHARACTERS]
    key = (text, voice, language)
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
        if not text.strip():
            return np.zeros(0, dtype=np.int16)
        library = _load()
        name = voice_name(voice, language).encode()
        if library.espeak_SetVoiceByName(name) != 0:
            library.espeak_SetVoiceByName(b"en-us")
        _chunks.clear()
        encoded = text.encode("utf-8") + b"\0"
        library.espeak_Synth(encoded, len(encoded), 0, 1, 0, 0, None, None)  # chars, no SSML
        library.espeak_Synchronize()
        speech = np.concatenate(_chunks) if _chunks else np.zeros(0, dtype=np.int16)
        _chunks.clear()
        audio = resample(speech.astype(np.float64), _rate, RATE)
        result = np.clip(np.round(audio), -32768, 32767).astype(np.int16)
        _cache[key] = result
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
        return result
