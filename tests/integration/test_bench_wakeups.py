"""The bench's wake-up probe (bench/wakeups.py): a process of its own that notes how late
each 1 ms sleep ends, so a stall of the machine (here: the probe stopped) shows."""

from __future__ import annotations

import asyncio
import math
import os
import signal

import pytest

from bench.wakeups import SLEEP_S, Wakeups, probe


async def test_an_undisturbed_probe_wakes_about_on_time() -> None:
    async with probe() as wakeups:
        await asyncio.sleep(0.5)
    # Each sample is one sleep: half a second holds hundreds of them (a slept 1 ms plus
    # the loop's own time), none negative.
    assert len(wakeups.late_ms) > 0.5 / SLEEP_S / 4
    assert min(wakeups.late_ms) >= 0
    assert wakeups.p(50) < 5


async def test_a_stalled_probe_reports_the_stall() -> None:
    async with probe() as wakeups:
        await asyncio.sleep(0.1)
        os.kill(wakeups.pid, signal.SIGSTOP)
        await asyncio.sleep(0.08)
        os.kill(wakeups.pid, signal.SIGCONT)
        await asyncio.sleep(0.1)
    assert wakeups.worst_ms >= 60
    assert wakeups.over(5) >= 1
    assert wakeups.as_json()["late_over_5ms"] == wakeups.over(5)
    # The span is the probe's own, about the block's 0.28 s, the stall included.
    assert 0.2 < wakeups.seconds < 0.6
    assert wakeups.over_per_s(5) == wakeups.over(5) / wakeups.seconds


def test_figures_of_given_samples() -> None:
    wakeups = Wakeups([0.1, 0.2, 7.0, 0.3])
    assert wakeups.worst_ms == 7.0
    assert wakeups.over(5) == 1
    assert wakeups.p(50) == 0.25
    assert Wakeups().as_json()["late_ms_max"] is None
    assert wakeups.seconds == pytest.approx(4 * SLEEP_S + 7.6 / 1000)
    assert wakeups.over_per_s(5) == pytest.approx(1 / wakeups.seconds)
    assert math.isnan(Wakeups().over_per_s(5))
