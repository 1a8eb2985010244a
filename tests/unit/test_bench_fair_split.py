"""The fairness phase's light jobs, split by where their first step's time went
(``bench.fair.FirstStep``): a figure a job lacks (its event went out before the harness
listened on NATS) is left out of the percentiles, not counted as NaN."""

from __future__ import annotations

import math

import pytest

from bench.fair import FirstStep, FloodRun, _first_step_json
from bench.throughput import ThroughputRun


def light(seen_ms: float, published_ms: float = math.nan) -> FirstStep:
    return FirstStep(
        create_ms=1.0,
        started_ms=seen_ms / 2,
        seen_ms=seen_ms,
        succeeded=True,
        established_ms=2.0,
        returned_at=0.0,
        started_at=0.0,
        published_ms=published_ms,
    )


def test_a_light_job_without_its_arrival_on_nats_is_left_out_of_that_figure_only() -> None:
    run = FloodRun(10, 3, ThroughputRun(10))
    run.light = [light(10.0, 8.0), light(20.0), light(30.0, 12.0)]
    assert run.p(50) == 20.0
    assert run.p(50, "published_ms") == 10.0  # of 8 and 12; the NaN left out
    assert run.p(99, "published_ms") == pytest.approx(8.0 + 0.99 * 4.0)


def test_the_json_names_each_figure_and_keeps_a_missing_sample_as_null() -> None:
    figures = _first_step_json([light(10.0, 8.0), light(20.0)])
    assert figures["published_ms_p50"] == 8.0
    assert figures["published_ms_samples"] == [8.0, None]
    assert figures["seen_ms_p50"] == 15.0


def test_no_arrival_seen_at_all_is_a_missing_figure_not_zero() -> None:
    run = FloodRun(10, 1, ThroughputRun(10))
    run.light = [light(10.0)]
    assert math.isnan(run.p(99, "published_ms"))
    assert _first_step_json(run.light)["published_ms_p99"] is None
