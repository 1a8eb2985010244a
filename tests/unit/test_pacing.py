"""The pace of bulk operations on one replica (services/job_api/pacing.py)."""

from __future__ import annotations

import asyncio

import pytest

from services.job_api.pacing import Pacer


class _Time:
    """A clock that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_a_burst_of_one_second_then_the_rate() -> None:
    time = _Time()
    pacer = Pacer(10, clock=time.clock, sleep=time.sleep)
    assert await pacer.take(10) == 0.0  # one second's worth at once
    assert await pacer.take(5) == pytest.approx(0.5)
    assert await pacer.take(20) == pytest.approx(2.0)
    # 35 jobs took 2.5 s: never more than the rate after the first second's burst.
    assert time.now == pytest.approx(2.5)


async def test_idle_time_refills_no_more_than_one_second() -> None:
    time = _Time()
    pacer = Pacer(10, clock=time.clock, sleep=time.sleep)
    await pacer.take(10)
    time.now += 60
    assert await pacer.take(10) == 0.0
    assert await pacer.take(10) == pytest.approx(1.0)


async def test_concurrent_calls_share_the_pace() -> None:
    time = _Time()
    pacer = Pacer(100, clock=time.clock, sleep=time.sleep)
    await asyncio.gather(*(pacer.take(50) for _ in range(6)))
    assert time.now == pytest.approx(2.0)  # 300 jobs at 100/s after a burst of 100


def test_the_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(0)
