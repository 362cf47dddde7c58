"""The media plane's wake-ups: a timerfd watched by the event loop (or the loop's timer).

Each behaviour is checked on a real asyncio loop, once on a timerfd and once on the
fallback a system without one uses. Nothing here asserts how close to its time a wake-up
comes (the machine decides that; `bench/rtp_streams.py` measures it), only that it comes
once, never before its time, and not at all once cancelled.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from media import metronome as metronome_module
from media.metronome import Metronome
from media.plane import LATENESS_WINDOW, SPIN_LEAST, SPIN_MOST, TICK, MediaPlane
from media.sip.clock import LoopClock, ManualClock


@pytest.fixture(params=["timerfd", "loop timer"])
def kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "loop timer":
        monkeypatch.setattr(metronome_module, "_LIBC", None)
    yield request.param


Body = Callable[[asyncio.AbstractEventLoop, Metronome, list[float]], Awaitable[None]]


def with_metronome(body: Body) -> None:
    """Run ``body`` on a fresh loop with a metronome noting the loop time of each call."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        fired: list[float] = []
        metronome = Metronome(loop, lambda: fired.append(loop.time()))
        try:
            await body(loop, metronome, fired)
        finally:
            metronome.close()

    asyncio.run(main())


def test_fires_once_and_never_early(kind: str) -> None:
    async def body(
        loop: asyncio.AbstractEventLoop, metronome: Metronome, fired: list[float]
    ) -> None:
        assert metronome.precise is (kind == "timerfd")
        when = loop.time() + 0.03
        metronome.arm(when)
        assert metronome.armed
        await asyncio.sleep(0.1)
        assert len(fired) == 1
        assert fired[0] >= when
        assert not metronome.armed

    with_metronome(body)


def test_arming_again_replaces_the_earlier_time(kind: str) -> None:
    async def body(
        loop: asyncio.AbstractEventLoop, metronome: Metronome, fired: list[float]
    ) -> None:
        metronome.arm(loop.time() + 0.02)
        later = loop.time() + 0.06
        metronome.arm(later)
        await asyncio.sleep(0.12)
        assert len(fired) == 1
        assert fired[0] >= later

    with_metronome(body)


def test_cancelled_does_not_fire_even_after_expiring_unread(kind: str) -> None:
    async def body(
        loop: asyncio.AbstractEventLoop, metronome: Metronome, fired: list[float]
    ) -> None:
        metronome.arm(loop.time() + 0.02)
        await asyncio.sleep(0.04)
        assert len(fired) == 1
        # Expires while the loop is busy (no chance to read the timerfd), then cancelled.
        metronome.arm(loop.time() + 0.005)
        deadline = loop.time() + 0.02
        while loop.time() < deadline:
            pass
        metronome.cancel()
        await asyncio.sleep(0.05)
        assert len(fired) == 1

    with_metronome(body)


def test_a_time_already_past_fires_at_the_next_turn_of_the_loop(kind: str) -> None:
    async def body(
        loop: asyncio.AbstractEventLoop, metronome: Metronome, fired: list[float]
    ) -> None:
        metronome.arm(loop.time() - 1.0)
        assert fired == []  # never from inside arm()
        await asyncio.sleep(0.02)
        assert len(fired) == 1

    with_metronome(body)


def test_close_gives_the_descriptor_back() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        metronome = Metronome(loop, lambda: None)
        assert metronome.precise
        fd = metronome._fd
        metronome.arm(loop.time() + 10)
        metronome.close()
        with pytest.raises(OSError):
            os.fstat(fd)
        assert not metronome.armed

    asyncio.run(body())


# ------------------------------------------------------------------- the plane's tick


def plane_on(loop: asyncio.AbstractEventLoop) -> MediaPlane:
    return MediaPlane(LoopClock(loop), lambda *_: None, recordings=Path("/tmp"), precise=True)


def test_ticks_on_the_metronome_never_start_before_their_time() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        plane = plane_on(loop)
        starts: list[tuple[float, float]] = []
        tick = plane.tick

        def timed_tick(now: float) -> None:
            starts.append((now, plane._start + plane._ticks * TICK))
            tick(now)

        plane.tick = timed_tick  # type: ignore[method-assign]
        plane.channel("leg")
        assert isinstance(plane._tick_timer, Metronome)
        await asyncio.sleep(12 * TICK)
        plane.detach("leg")
        assert plane._metronome is None  # closed with the last leg
        assert len(starts) >= 5
        for now, due in starts:
            assert now >= due

    asyncio.run(body())


def test_spin_follows_the_99th_percentile_of_recent_lateness() -> None:
    async def body() -> None:
        plane = plane_on(asyncio.get_running_loop())
        assert plane.spin == SPIN_LEAST
        for _ in range(LATENESS_WINDOW):
            plane._follow_lateness(0.0001)
        assert plane.spin == SPIN_LEAST
        # Two long stalls in a window (under 1 %): not worth spinning for.
        plane._follow_lateness(0.050)
        plane._follow_lateness(0.050)
        assert plane.spin == SPIN_LEAST
        # A few percent of wake-ups 1.2 ms late: spin covers them, with a margin.
        for _ in range(5):
            plane._follow_lateness(0.0012)
        assert plane.spin == pytest.approx(1.25 * 0.0012)
        # Later ones past the most it spins: capped.
        for _ in range(5):
            plane._follow_lateness(0.010)
        assert plane.spin == SPIN_MOST
        # Once they leave the window, back to the least.
        for _ in range(LATENESS_WINDOW):
            plane._follow_lateness(0.0001)
        assert plane.spin == SPIN_LEAST

    asyncio.run(body())


def test_a_manual_clock_never_spins() -> None:
    plane = MediaPlane(ManualClock(), lambda *_: None, recordings=Path("/tmp"), precise=True)
    assert not plane.precise
    assert plane.spin == 0.0
    plane.channel("leg")
    plane.clock.advance(5 * TICK)  # type: ignore[attr-defined]
    assert plane._ticks == 5
    assert np.all(plane._lateness == 0)


# Each in a process of its own (a changed policy would outlive the test in pytest's).
REALTIME_PROBE = """
import json, os, sys, threading
from media.metronome import prefer_realtime

if sys.argv[2] == "nobody":
    os.setresuid(65534, 65534, 65534)
took = prefer_realtime(int(sys.argv[1]))
policy = {}
thread = threading.Thread(target=lambda: policy.update(thread=os.sched_getscheduler(0)))
thread.start()
thread.join()
child = os.fork()
if child == 0:
    os._exit(os.sched_getscheduler(0))
_, status = os.waitpid(child, 0)
print(json.dumps({
    "took": took,
    "policy": os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK,
    "priority": os.sched_getparam(0).sched_priority,
    "thread": policy["thread"],
    "child": os.waitstatus_to_exitcode(status),
}))
"""


def realtime_probe(priority: int, user: str = "same") -> dict:
    done = subprocess.run(
        [sys.executable, "-c", REALTIME_PROBE, str(priority), user],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
        check=True,
    )
    return json.loads(done.stdout)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CAP_SYS_NICE)")


@needs_root
def test_realtime_is_for_the_calling_thread_alone() -> None:
    found = realtime_probe(10)
    assert found["took"] is True
    assert (found["policy"], found["priority"]) == (os.SCHED_FIFO, 10)
    # threads and processes started afterwards are ordinary again
    assert found["thread"] == os.SCHED_OTHER
    assert found["child"] == os.SCHED_OTHER


@needs_root
def test_realtime_refused_leaves_the_thread_ordinary() -> None:
    found = realtime_probe(10, user="nobody")  # no CAP_SYS_NICE, no rtprio limit
    assert found["took"] is False
    assert (found["policy"], found["priority"]) == (os.SCHED_OTHER, 0)


def test_realtime_priority_zero_asks_for_nothing() -> None:
    found = realtime_probe(0)
    assert found["took"] is False
    assert found["policy"] == os.SCHED_OTHER


@pytest.mark.parametrize("priority", [-1, 100])
def test_a_realtime_priority_out_of_range_is_refused(priority: int) -> None:
    with pytest.raises(ValueError, match="not within 0-99"):
        metronome_module.prefer_realtime(priority)
