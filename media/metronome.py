"""Wake-ups at absolute instants for the media plane's 20 ms tick.

asyncio waits for its timers in ``epoll_wait`` with a timeout in whole milliseconds,
rounded up, and reads the clock again afterwards: a timer fires from a fraction of a
millisecond to several milliseconds late, unevenly (measured on a 2-vCPU VM: 0.3 ms at
the median, 1.5 ms at the 99th percentile, 6 ms at the 99.9th). A Linux timerfd armed
at an absolute CLOCK_MONOTONIC time (TFD_TIMER_ABSTIME) expires at its nanosecond, wakes
the same ``epoll_wait`` as a readable descriptor, and does not drift with the time a
tick took (0.2 / 0.7 / 3 ms on the same machine: what remains is the machine waking a
halted CPU). Where there is no timerfd the loop's own timer does the work.

    metronome = Metronome(loop, on_tick)
    metronome.arm(loop.time() + 0.020)   # absolute, in the loop's clock
    metronome.cancel()
    metronome.close()

Waking on time is half of it; running at once is the other. A shared machine's kernel
threads (seen here: DAMON's ``kdamond``, several milliseconds two or three times a
second) take the CPU from an ordinary process, whatever its niceness; they do not
preempt a SCHED_FIFO one. `prefer_realtime` puts the tick's thread there, as
FreeSWITCH's ``-rp`` and Asterisk's ``-p`` do.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import time
from collections.abc import Callable

__all__ = ["Metronome", "prefer_realtime"]

_CLOCK_MONOTONIC = 1
_TFD_TIMER_ABSTIME = 1


def prefer_realtime(priority: int) -> bool:
    """Schedule the calling thread SCHED_FIFO at ``priority`` (1-99; 0 asks for nothing):
    it then runs as soon as it wakes, ahead of every ordinary process on its core, and
    the kernel still keeps 5 % of each second for them (``sched_rt_runtime_us``).
    Threads and processes it starts afterwards are ordinary (SCHED_RESET_ON_FORK), so
    only the tick gets the privilege. False where that is not allowed (no root,
    CAP_SYS_NICE or ``RLIMIT_RTPRIO``) or not available."""
    if not 0 <= priority <= 99:
        raise ValueError(f"realtime priority {priority} is not within 0-99")
    if priority == 0 or not hasattr(os, "SCHED_FIFO"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
    except PermissionError:
        return False
    return True


class _Timespec(ctypes.Structure):
    _fields_ = [("seconds", ctypes.c_long), ("nanoseconds", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("interval", _Timespec), ("value", _Timespec)]


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(_Itimerspec),
            ctypes.POINTER(_Itimerspec),
        ]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


class Metronome:
    """Calls ``callback`` once at the instant given to each ``arm`` (loop time)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> None:
        self.loop = loop
        self.callback = callback
        self._handle: asyncio.TimerHandle | None = None  # without a timerfd
        self._armed = False
        self._fd = -1
        if _LIBC is not None:
            fd = _LIBC.timerfd_create(_CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
            if fd >= 0:
                try:
                    loop.add_reader(fd, self._expired)
                except (NotImplementedError, RuntimeError):  # a loop without add_reader
                    os.close(fd)
                else:
                    self._fd = fd

    @property
    def precise(self) -> bool:
        """Whether wake-ups come from a timerfd (else from the loop's timers)."""
        return self._fd >= 0

    @property
    def armed(self) -> bool:
        return self._armed

    def arm(self, when: float) -> None:
        """Call back at ``when`` (the loop's clock), replacing any earlier arming."""
        self._armed = True
        if self._fd < 0:
            if self._handle is not None:
                self._handle.cancel()
            self._handle = self.loop.call_at(when, self._fire)
            return
        # The loop's clock is CLOCK_MONOTONIC on Linux; the offset keeps this right for
        # a loop whose time() starts elsewhere. A time already past expires at once.
        at = max(when - self.loop.time() + time.monotonic(), 1e-9)
        seconds = int(at)
        spec = _Itimerspec(_Timespec(0, 0), _Timespec(seconds, int((at - seconds) * 1_000_000_000)))
        if _LIBC.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, spec, None) != 0:  # type: ignore[union-attr]
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))

    def cancel(self) -> None:
        self._armed = False
        if self._fd >= 0:
            _LIBC.timerfd_settime(self._fd, 0, _Itimerspec(), None)  # type: ignore[union-attr]
        elif self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def close(self) -> None:
        self.cancel()
        if self._fd >= 0:
            self.loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1

    def _expired(self) -> None:
        try:
            os.read(self._fd, 8)  # the count of expirations; reading it rearms the fd
        except BlockingIOError:  # disarmed or re-armed after it expired: not due now
            return
        self._fire()

    def _fire(self) -> None:
        self._handle = None
        if not self._armed:
            return
        self._armed = False
        self.callback()
