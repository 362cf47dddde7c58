"""Audio for the media engine: players, recorder, levels, bridges and the conference mixer.

Everything here is 8 kHz mono linear PCM in int16 numpy arrays, moved in 20 ms frames of
160 samples, the unit the RTP side decodes and encodes. Sources produce frames (`sources`,
from audio that `wav` loads and `tts` speaks, converted to 8 kHz by `resample`),
`recorder` writes them, `level` measures them and `mixer` mixes every conference of a
media node in one numpy pass per tick. No module reads a clock or touches a socket: the
engine drives them tick by tick.

Imports: the standard library, numpy and other modules of `media`; nothing from the rest
of the repository.
"""

RATE = 8000
"""Samples per second of all audio in the engine."""

FRAME = 160
"""Samples per 20 ms frame, the unit of the media clock."""
