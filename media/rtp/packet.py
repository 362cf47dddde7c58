"""RTP data packets (RFC 3550 section 5.1): parse bytes into `RtpPacket` and back.

Parsing checks what a receiver must not trust: the length of the fixed header, the
version, the CSRC list, the header extension length and the padding count. Anything
wrong raises `RtpParseError` (a `ValueError`) naming the field and what would be valid.
The header extension is kept as opaque bytes (profile and data), so a packet that is
forwarded re-serialises to the bytes it came from.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
FIXED_HEADER_SIZE = 12

_HEADER = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")


class RtpParseError(ValueError):
    """Malformed RTP or RTCP bytes; the message names the field that is wrong."""


@dataclass(frozen=True, slots=True)
class HeaderExtension:
    """An RTP header extension (RFC 3550 5.3.1): 16 profile-defined bits and the data.

    ``data`` is the extension body without its 4-byte header; its length is a multiple
    of four bytes.
    """

    profile: int
    data: bytes = b""


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet. ``padding_size`` counts the padding octets including the last one."""

    payload_type: int = 0
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    marker: bool = False
    payload: bytes = b""
    csrc: tuple[int, ...] = ()
    extension: HeaderExtension | None = None
    padding_size: int = 0

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> RtpPacket:
        """Parse one RTP packet; raises `RtpParseError` on malformed input."""
        size = len(data)
        if size < FIXED_HEADER_SIZE:
            raise RtpParseError(
                f"RTP packet is {size} bytes; the fixed header alone needs {FIXED_HEADER_SIZE}"
            )
        first, second, sequence_number, timestamp, ssrc = _HEADER.unpack_from(data)
        version = first >> 6
        if version != RTP_VERSION:
            raise RtpParseError(f"RTP version field is {version}; only {RTP_VERSION} is valid")
        offset = FIXED_HEADER_SIZE
        csrc_count = first & 0x0F
        if csrc_count:
            end = offset + 4 * csrc_count
            if end > size:
                raise RtpParseError(
                    f"RTP CSRC count is {csrc_count} ({4 * csrc_count} bytes) but only "
                    f"{size - offset} bytes follow the fixed header"
                )
            csrc = struct.unpack_from(f"!{csrc_count}I", data, offset)
            offset = end
        else:
            csrc = ()
        extension = None
        if first & 0x10:
            if offset + 4 > size:
                raise RtpParseError(
                    "RTP extension bit is set but the packet ends before the 4-byte "
                    "extension header"
                )
            profile, words = _EXTENSION_HEADER.unpack_from(data, offset)
            offset += 4
            end = offset + 4 * words
            if end > size:
                raise RtpParseError(
                    f"RTP extension length is {words} words ({4 * words} bytes) but only "
                    f"{size - offset} bytes remain"
                )
            extension = HeaderExtension(profile, bytes(data[offset:end]))
            offset = end
        padding_size = 0
        end = size
        if first & 0x20:
            padding_size = data[-1]
            if padding_size == 0 or padding_size > size - offset:
                raise RtpParseError(
                    f"RTP padding count is {padding_size}; valid is 1 to {size - offset} "
                    "(the bytes after the header, the count octet included)"
                )
            end = size - padding_size
        return cls(
            payload_type=second & 0x7F,
            sequence_number=sequence_number,
            timestamp=timestamp,
            ssrc=ssrc,
            marker=bool(second & 0x80),
            payload=bytes(data[offset:end]),
            csrc=csrc,
            extension=extension,
            padding_size=padding_size,
        )

    def serialize(self) -> bytes:
        """The packet's wire form. Padding octets are zero except the final count."""
        csrc = self.csrc
        extension = self.extension
        padding_size = self.padding_size
        if len(csrc) > 15:
            raise ValueError(f"an RTP packet carries at most 15 CSRCs, not {len(csrc)}")
        if not 0 <= padding_size <= 255:
            raise ValueError(f"RTP padding_size must be 0 to 255, not {padding_size}")
        first = (
            (RTP_VERSION << 6)
            | (0x20 if padding_size else 0)
            | (0x10 if extension is not None else 0)
            | len(csrc)
        )
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        header = _HEADER.pack(first, second, self.sequence_number, self.timestamp, self.ssrc)
        parts = [header]
        if csrc:
            parts.append(struct.pack(f"!{len(csrc)}I", *csrc))
        if extension is not None:
            if len(extension.data) % 4:
                raise ValueError(
                    f"RTP header extension data is {len(extension.data)} bytes; "
                    "it must be a multiple of 4"
                )
            parts.append(_EXTENSION_HEADER.pack(extension.profile, len(extension.data) // 4))
            parts.append(extension.data)
        parts.append(self.payload)
        if padding_size:
            parts.append(bytes(padding_size - 1) + bytes((padding_size,)))
        return b"".join(parts)
