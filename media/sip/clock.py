"""Time for the SIP transaction layer: a clock that is passed in, and the RFC 3261 timer
values (section 17, Table 4 in Appendix A; Timers L and M from RFC 6026 section 8.4).

Transactions read the time and arm timers only through a ``Clock``. In the engine that is
a ``LoopClock`` over the asyncio loop; in tests a ``ManualClock`` whose ``advance()``
fires due timers in order, so every retransmission schedule is checked without sleeping.

T1, T2 and T4 come from configuration; every other value is derived from them here::

    timers = TimerSettings(t1=0.5, t2=4.0, t4=5.0)
    timers.timer_b                  # 32.0 (64*T1)
    timers.timer_k(reliable=True)   # 0.0: a reliable transport needs no wait
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Clock", "LoopClock", "ManualClock", "ManualTimer", "TimerHandle", "TimerSettings"]


class TimerHandle(Protocol):
    """What ``Clock.call_later`` returns: a scheduled callback that can be cancelled."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic time in seconds and one-shot timers."""

    def now(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle: ...


class LoopClock:
    """The asyncio event loop's clock (``loop.time()`` and ``loop.call_later``)."""

    __slots__ = ("loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def now(self) -> float:
        return self.loop.time()

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle:
        return self.loop.call_later(delay, callback)


class ManualTimer:
    """A timer of a ``ManualClock``."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __repr__(self) -> str:
        state = " cancelled" if self.cancelled else ""
        return f"<ManualTimer at {self.when:g}{state}>"


class ManualClock:
    """A clock that moves only when told to, for tests.

    ``advance(seconds)`` runs every timer that falls due within the interval in time order
    (timers due at the same instant in the order they were armed), with ``now()`` reading
    each timer's due time while it runs. Timers armed by those callbacks run in the same
    call when they fall due within it. Unlike the event loop, an exception raised by a
    callback propagates out of ``advance()``, so that a test sees it.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._heap: list[tuple[float, int, ManualTimer]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], object]) -> ManualTimer:
        timer = ManualTimer(self._now + max(delay, 0.0), callback)
        heapq.heappush(self._heap, (timer.when, next(self._order), timer))
        return timer

    def advance(self, seconds: float) -> int:
        """Move time forward by ``seconds``; return how many callbacks ran."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        target = self._now + seconds
        ran = 0
        heap = self._heap
        while heap and heap[0][0] <= target:
            when, _, timer = heapq.heappop(heap)
            if timer.cancelled:
                continue
            self._now = when
            timer.cancelled = True  # fired: cancelling it later must be harmless
            timer.callback()
            ran += 1
        self._now = target
        return ran

    def pending(self) -> list[float]:
        """Delays from now of the timers still armed, soonest first."""
        return sorted(when - self._now for when, _, timer in self._heap if not timer.cancelled)


@dataclass(frozen=True, slots=True)
class TimerSettings:
    """T1 (RTT estimate), T2 (longest retransmission interval for non-INVITE requests and
    INVITE responses) and T4 (longest time a message stays in the network), in seconds,
    and the timers RFC 3261 17 and RFC 6026 derive from them.

    Timer D is "at least 32 s" for unreliable transports; it is ``max(32, 64*T1)`` here so
    that it still outlasts the server's Timer G retransmissions (Timer H, 64*T1) when T1 is
    configured above its default.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    def __post_init__(self) -> None:
        for name in ("t1", "t2", "t4"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"SIP timer {name.upper()} must be positive, not {value!r}")
        if self.t2 < self.t1:
            raise ValueError(
                f"SIP timer T2 ({self.t2} s) must not be shorter than T1 ({self.t1} s)"
            )

    @property
    def timer_a(self) -> float:
        """First INVITE retransmission interval (doubling each time), UDP only."""
        return self.t1

    @property
    def timer_b(self) -> float:
        """INVITE transaction timeout (Calling state)."""
        return 64 * self.t1

    def timer_d(self, reliable: bool) -> float:
        """Wait for retransmitted final responses after an INVITE failed."""
        return 0.0 if reliable else max(32.0, 64 * self.t1)

    @property
    def timer_e(self) -> float:
        """First non-INVITE retransmission interval (doubling up to T2), UDP only."""
        return self.t1

    @property
    def timer_f(self) -> float:
        """Non-INVITE transaction timeout."""
        return 64 * self.t1

    @property
    def timer_g(self) -> float:
        """First retransmission interval of a non-2xx final INVITE response, UDP only."""
        return self.t1

    @property
    def timer_h(self) -> float:
        """Wait for the ACK of a non-2xx final INVITE response."""
        return 64 * self.t1

    def timer_i(self, reliable: bool) -> float:
        """Wait for retransmitted ACKs once one arrived."""
        return 0.0 if reliable else self.t4

    def timer_j(self, reliable: bool) -> float:
        """Wait for retransmitted non-INVITE requests after the final response."""
        return 0.0 if reliable else 64 * self.t1

    def timer_k(self, reliable: bool) -> float:
        """Wait for retransmitted non-INVITE final responses."""
        return 0.0 if reliable else self.t4

    @property
    def timer_l(self) -> float:
        """RFC 6026: how long a server INVITE transaction absorbs INVITE retransmissions
        after a 2xx (Accepted state)."""
        return 64 * self.t1

    @property
    def timer_m(self) -> float:
        """RFC 6026: how long a client INVITE transaction passes 2xx retransmissions to
        the TU (Accepted state)."""
        return 64 * self.t1
