"""Write RTP streams as pcap files that SIPp's `play_pcap_audio` replays.

SIPp sends each captured UDP payload as it is (RTP header included) at the capture's
pace, to the media address of the call, so a file written here lets a SIPp caller send
any audio we can compute: for instance DTMF tones inside the audio, for the in-band
detector, from a peer that offers no telephone-event.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from media.rtp.g711 import encode_pcmu

FRAME = 160
_ETHERNET = bytes(6) + bytes(6) + b"\x08\x00"


def _ip_udp(payload: bytes, source_port: int, destination_port: int) -> bytes:
    udp = struct.pack("!HHHH", source_port, destination_port, 8 + len(payload), 0) + payload
    total = 20 + len(udp)
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45, 0, total, 0, 0, 64, 17, 0,
        bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]),
    )  # fmt: skip
    checksum = sum(struct.unpack("!10H", header))
    while checksum > 0xFFFF:
        checksum = (checksum & 0xFFFF) + (checksum >> 16)
    header = header[:10] + struct.pack("!H", ~checksum & 0xFFFF) + header[12:]
    return header + udp


def write_pcmu_pcap(path: Path, samples: np.ndarray, *, ssrc: int = 0x1234ABCD) -> None:
    """`samples` (8 kHz int16) as PCMU RTP packets of 20 ms in a pcap file."""
    frames = len(samples) // FRAME
    chunks = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for index in range(frames):
        payload = encode_pcmu(samples[index * FRAME : (index + 1) * FRAME].astype(np.int16))
        rtp = struct.pack(
            "!BBHII", 0x80, 0x80 if index == 0 else 0, index & 0xFFFF, index * FRAME, ssrc
        )
        packet = _ETHERNET + _ip_udp(rtp + payload, 6000, 6000)
        micros = index * 20_000
        chunks.append(
            struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(packet), len(packet))
        )
        chunks.append(packet)
    path.write_bytes(b"".join(chunks))


DTMF_FREQUENCIES = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477),
}  # fmt: skip


def inband_digits(
    digits: str,
    *,
    on_ms: int = 100,
    off_ms: int = 150,
    lead_ms: int = 500,
    dbm0: float = -10.0,
    noise_dbfs: float | None = -45.0,
    seed: int = 7,
) -> np.ndarray:
    """8 kHz audio with `digits` as DTMF tone pairs (each tone at `dbm0`), over noise."""
    rate = 8000
    amplitude = 32768 * 10 ** ((dbm0 - 3.14) / 20) * np.sqrt(2)
    parts = [np.zeros(rate * lead_ms // 1000)]
    for digit in digits:
        low, high = DTMF_FREQUENCIES[digit]
        t = np.arange(rate * on_ms // 1000) / rate
        parts.append(amplitude * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t)))
        parts.append(np.zeros(rate * off_ms // 1000))
    parts.append(np.zeros(rate * lead_ms // 1000))
    signal = np.concatenate(parts)
    if noise_dbfs is not None:
        rng = np.random.default_rng(seed)
        signal = signal + rng.normal(0, 32768 * 10 ** (noise_dbfs / 20), len(signal))
    return np.clip(signal, -32768, 32767).astype(np.int16)
