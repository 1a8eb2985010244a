"""The dispatcher's window: JetStream holds enough undelivered attempts to keep the workers
fed until the next round, and no more than the time bound asks when rounds come often."""

from __future__ import annotations

import math

import pytest

from services.orchestrator.config import DispatchSettings
from services.orchestrator.dispatcher import _Gap, window_for

SETTINGS = DispatchSettings(window=4, window_s=0.03)


@pytest.mark.parametrize("taken_per_s", [50.0, 200.0, 1_000.0, 5_000.0])
@pytest.mark.parametrize("round_gap_s", [0.002, 0.01, 0.04, 0.12])
def test_the_window_outlasts_the_gap_to_the_next_round(
    taken_per_s: float, round_gap_s: float
) -> None:
    window = window_for(taken_per_s, round_gap_s, SETTINGS)
    # What the workers take before the next round comes, and what a round that comes
    # half a gap late finds them still taking (for any gap short of a stall, below).
    assert window >= math.ceil(taken_per_s * round_gap_s * 1.5)


def test_frequent_rounds_keep_the_window_to_its_time_bound() -> None:
    # Rounds every 5 ms: 30 ms of what the workers take, not more.
    assert window_for(200.0, 0.005, SETTINGS) == math.ceil(200 * 0.03)


def test_slow_rounds_widen_the_window_to_two_gaps() -> None:
    # Rounds every 40 ms, as on a busy 2-core box: 30 ms of work would run dry.
    assert window_for(200.0, 0.04, SETTINGS) == 16


def test_the_window_never_shrinks_below_its_floor() -> None:
    assert window_for(0.0, 0.04, SETTINGS) == SETTINGS.window
    assert window_for(10.0, 0.001, SETTINGS) == SETTINGS.window


def test_the_gap_follows_the_rounds_cadence() -> None:
    gap = _Gap(time_constant_s=1.0)
    now = 0.0
    for _ in range(200):  # 8 s of rounds every 40 ms
        gap.note(now)
        now += 0.04
    assert gap.mean_s == pytest.approx(0.04, rel=0.01)
    for _ in range(300):  # then 3 s (three time constants) of rounds every 10 ms
        gap.note(now)
        now += 0.01
    assert gap.mean_s == pytest.approx(0.01 + 0.03 * math.exp(-3), rel=0.05)


def test_the_first_round_has_no_gap() -> None:
    gap = _Gap(time_constant_s=1.0)
    gap.note(5.0)
    assert gap.mean_s == 0.0


def test_a_stall_does_not_open_the_window_to_the_backlog() -> None:
    # Rounds 5 s apart (an event loop blocked): a quarter of a second of work, no more.
    assert window_for(200.0, 5.0, SETTINGS) == math.ceil(200 * 0.25)
    # Unless the operator asked for a longer window.
    assert window_for(200.0, 5.0, DispatchSettings(window=4, window_s=1.0)) == 200
