"""Loopback ports for the peers tests start, without collisions between parallel runs.

A port is ours while we hold an exclusive `flock` on `LOCK_DIR/<port>`. The kernel drops
the lock when its holder dies, so a crashed run never leaks a port, and parallel pytest
processes (or sessions of other checkouts) never get the same one. Before a port is
handed out it is also bound, UDP and TCP on 0.0.0.0 (baresip's RTP binds the wildcard),
to skip ports some unrelated program is using. Ports come from outside the kernel's
ephemeral range, so outgoing connections cannot take them between our check and the
peer's bind.

Ports come in blocks of consecutive numbers because peers use neighbours implicitly:
baresip listens on its SIP port and SIP port + 1, SIPp binds its media port and media
port + 2. Every block starts on an even port (RTP's half of a pair).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

LOCK_DIR = Path(tempfile.gettempdir()) / "voice-interop-ports"
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
PROC_NET = Path("/proc/net")
TCP_LISTEN = "0A"
LOWEST_PORT = 10000
HIGHEST_PORT = 65535


@dataclass
class PortBlock:
    """`count` consecutive ports from `first`, reserved until `release()`."""

    first: int
    count: int
    _lock_fds: list[int] = field(default_factory=list, repr=False)

    @property
    def ports(self) -> range:
        return range(self.first, self.first + self.count)

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    def __getitem__(self, index: int) -> int:
        return self.ports[index]

    def __contains__(self, port: object) -> bool:
        return port in self.ports

    def release(self) -> None:
        """Give the ports back; calling it again does nothing."""
        while self._lock_fds:
            os.close(self._lock_fds.pop())


class PortAllocator:
    """Hands out blocks of free loopback ports and takes them all back on `release()`."""

    def __init__(self, lock_dir: Path = LOCK_DIR, span: range | None = None) -> None:
        self.lock_dir = lock_dir
        self.span = span if span is not None else non_ephemeral_span()
        self._blocks: list[PortBlock] = []

    def block(self, count: int = 1) -> PortBlock:
        """Reserve `count` consecutive ports, free for UDP and TCP."""
        if not 1 <= count <= len(self.span):
            raise ValueError(f"cannot reserve {count} consecutive ports from {self.span}")
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        # Blocks start on an even port: RTP takes the even port of a pair (RFC 3550), and
        # baresip moves an odd start of its RTP range down, out of its block.
        starts = range(self.span.start + self.span.start % 2, self.span.stop - count + 1, 2)
        if not starts:
            raise RuntimeError(f"no {count} consecutive free ports in {self.span}")
        # Start somewhere random so that parallel runs rarely probe the same ports.
        offset = random.randrange(len(starts))
        first = starts[offset]
        checked = 0
        while checked < len(starts):
            reserved = self._try_reserve(first, count)
            if reserved is not None:
                self._blocks.append(reserved)
                return reserved
            checked += 1
            first = starts[(offset + checked) % len(starts)]
        raise RuntimeError(f"no {count} consecutive free ports in {self.span}")

    def port(self) -> int:
        """Reserve one port."""
        return self.block(1).first

    def release(self) -> None:
        """Give back every block this allocator handed out."""
        while self._blocks:
            self._blocks.pop().release()

    def __enter__(self) -> PortAllocator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def _try_reserve(self, first: int, count: int) -> PortBlock | None:
        block = PortBlock(first, count)
        for port in block.ports:
            fd = self._lock(port)
            if fd is None or not is_free(port):
                if fd is not None:
                    os.close(fd)
                block.release()
                return None
            block._lock_fds.append(fd)
        return block

    def _lock(self, port: int) -> int | None:
        fd = os.open(self.lock_dir / str(port), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd


def is_free(port: int) -> bool:
    """Whether nothing is bound to `port`, for UDP or TCP, on any local address."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                return False
    return True


def non_ephemeral_span() -> range:
    """The larger stretch of ports above 10000 that the kernel never picks on its own."""
    low, high = 32768, 60999
    with contextlib.suppress(OSError, ValueError):
        low, high = (int(part) for part in EPHEMERAL_RANGE_FILE.read_text().split())
    below = range(LOWEST_PORT, max(LOWEST_PORT, low))
    above = range(min(high + 1, HIGHEST_PORT + 1), HIGHEST_PORT + 1)
    return below if len(below) >= len(above) else above


def is_bound(port: int, kind: str = "udp") -> bool:
    """Whether some process has a `kind` ("udp", or "tcp" listening) socket on `port`."""
    if kind not in ("udp", "tcp"):
        raise ValueError(f"kind must be 'udp' or 'tcp', not {kind!r}")
    for table in (kind, kind + "6"):
        with contextlib.suppress(FileNotFoundError):
            for line in (PROC_NET / table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and (kind == "udp" or fields[3] == TCP_LISTEN):
                    return True
    return False


def wait_bound(port: int, kind: str = "udp", timeout: float = 5.0) -> bool:
    """Wait until `is_bound(port, kind)`; False if that did not happen within `timeout`."""
    deadline = time.monotonic() + timeout
    while not is_bound(port, kind):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True
