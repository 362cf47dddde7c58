"""The clocks transactions run on, and the RFC 3261 / RFC 6026 timer values."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from media.sip.clock import LoopClock, ManualClock, TimerSettings


def test_manual_clock_runs_due_callbacks_in_time_order() -> None:
    clock = ManualClock()
    fired: list[tuple[str, float]] = []
    clock.call_later(2.0, lambda: fired.append(("b", clock.now())))
    clock.call_later(1.0, lambda: fired.append(("a", clock.now())))
    clock.call_later(2.0, lambda: fired.append(("c", clock.now())))
    clock.call_later(5.0, lambda: fired.append(("late", clock.now())))
    assert clock.advance(2.0) == 3
    assert fired == [("a", 1.0), ("b", 2.0), ("c", 2.0)]
    assert clock.now() == 2.0
    assert clock.pending() == [3.0]


def test_manual_clock_runs_callbacks_armed_during_the_advance() -> None:
    clock = ManualClock()
    fired: list[float] = []

    def tick() -> None:
        fired.append(clock.now())
        if len(fired) < 10:
            clock.call_later(0.5, tick)

    clock.call_later(0.5, tick)
    clock.advance(2.2)
    assert fired == [0.5, 1.0, 1.5, 2.0]
    assert clock.now() == pytest.approx(2.2)
    clock.call_later(0.0, lambda: fired.append(-1.0))
    clock.advance(0)
    assert fired[-1] == -1.0


def test_manual_timer_cancel_and_cancel_after_firing() -> None:
    clock = ManualClock(start=100.0)
    fired: list[str] = []
    cancelled = clock.call_later(1.0, lambda: fired.append("cancelled"))
    kept = clock.call_later(1.0, lambda: fired.append("kept"))
    cancelled.cancel()
    assert clock.pending() == [1.0]
    assert clock.advance(1.0) == 1
    kept.cancel()  # harmless once fired
    assert fired == ["kept"]
    assert clock.pending() == []
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1)


def test_manual_clock_lets_callback_exceptions_reach_the_test() -> None:
    clock = ManualClock()

    def boom() -> None:
        raise RuntimeError("boom")

    clock.call_later(1.0, boom)
    with pytest.raises(RuntimeError, match="boom"):
        clock.advance(1.0)


def test_loop_clock_uses_the_event_loop() -> None:
    async def scenario() -> tuple[list[str], float, float]:
        loop = asyncio.get_running_loop()
        clock = LoopClock(loop)
        fired: list[str] = []
        done = loop.create_future()
        clock.call_later(0.01, lambda: fired.append("cancelled")).cancel()
        clock.call_later(0.02, lambda: done.set_result(None))
        start = clock.now()
        await done
        return fired, start, clock.now()

    fired, start, end = asyncio.run(scenario())
    assert fired == []
    assert end - start >= 0.015


def test_default_timer_values_match_rfc_3261_table_4() -> None:
    timers = TimerSettings()
    assert (timers.t1, timers.t2, timers.t4) == (0.5, 4.0, 5.0)
    assert timers.timer_a == timers.timer_e == timers.timer_g == 0.5
    assert timers.timer_b == timers.timer_f == timers.timer_h == 32.0
    assert timers.timer_l == timers.timer_m == 32.0
    assert timers.timer_d(reliable=False) == 32.0
    assert timers.timer_j(reliable=False) == 32.0
    assert timers.timer_i(reliable=False) == timers.timer_k(reliable=False) == 5.0
    for reliable_only_zero in (timers.timer_d, timers.timer_i, timers.timer_j, timers.timer_k):
        assert reliable_only_zero(True) == 0.0


def test_configured_t1_t2_t4_change_the_derived_timers() -> None:
    timers = TimerSettings(t1=0.1, t2=0.8, t4=2.0)
    assert timers.timer_b == timers.timer_f == timers.timer_h == pytest.approx(6.4)
    assert timers.timer_j(reliable=False) == pytest.approx(6.4)
    assert timers.timer_k(reliable=False) == timers.timer_i(reliable=False) == 2.0
    assert timers.timer_d(reliable=False) == 32.0  # never below 32 s
    assert TimerSettings(t1=1.0).timer_d(reliable=False) == 64.0  # outlasts Timer H


def test_timer_settings_are_frozen_and_checked() -> None:
    timers = TimerSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        timers.t1 = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="T1 must be positive"):
        TimerSettings(t1=0)
    with pytest.raises(ValueError, match=r"T2 .* must not be shorter than T1"):
        TimerSettings(t1=2.0, t2=1.0)
