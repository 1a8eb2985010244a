"""The running phase's pure parts (bench/running.py): which events are live, the bursts'
peak rate, a run's summary and its report lines, on hand-made figures."""

from __future__ import annotations

import math

import pytest

from bench.running import RunningRun, Watch, lines, peak_rate, timeout_for


def test_the_first_event_establishes_the_stream_and_only_later_stamped_events_are_live() -> None:
    watch = Watch()
    assert not watch.live(occurred=10.0, received=12.0)  # CREATED, replayed
    assert watch.established_at == 12.0
    assert not watch.live(occurred=11.5, received=12.1)  # stamped before: in the replay
    assert not watch.live(occurred=12.0, received=12.2)  # not later than the moment
    assert watch.live(occurred=12.5, received=12.6)
    assert watch.established_at == 12.0  # later events do not move it


def test_peak_rate_is_the_fullest_bin_per_second() -> None:
    assert peak_rate([]) == 0.0
    times = [100.01, 100.02, 100.05, 100.15, 101.0]
    assert peak_rate(times) == pytest.approx(30.0)  # three in [100.0, 100.1)
    assert peak_rate(times, bin_s=1.0) == pytest.approx(4.0)


def test_the_timeout_leaves_room_for_the_steps_and_slow_creates() -> None:
    assert timeout_for(1000, 3000) > 3 * 3 + 1000 / 50


def run_of(latencies: list[float], succeeded: int = 3) -> RunningRun:
    run = RunningRun(jobs=3, sleep_ms=3000)
    kinds = ["JOB_EVENT_TYPE_STEP_STARTED", "JOB_EVENT_TYPE_PROGRESS"]
    for n, ms in enumerate(latencies):
        run.latency_ms.append(ms)
        run.event_types.append(kinds[n % 2])
        run.occurred_at.append(1000.0 + n * 0.5)
    run.after_publish_ms = [1.0, 2.0, 3.0]
    run.to_publish_ms = [4.0, 5.0, 6.0]
    run.statuses = {"SUCCEEDED": succeeded} if succeeded else {}
    run.cpu_s = {"notifier": 0.5, "harness": 1.0}
    run.notifier_rss_peak = 80 * 1024 * 1024
    return run


def test_a_run_s_summary() -> None:
    run = run_of([10.0, 20.0, 30.0, 40.0], succeeded=2)
    run.unpaired = 1
    data = run.as_json()
    assert data["live_events"] == 4
    assert data["p50_ms"] == pytest.approx(25.0)
    assert data["max_ms"] == 40.0
    assert data["after_publish_p50_ms"] == pytest.approx(2.0)
    assert data["after_publish_max_ms"] == 3.0
    assert data["not_succeeded"] == 1
    assert data["unpaired_live_events"] == 1
    run.all_created_at = 1000.6  # after the first two events' occurred_at
    assert run.after_creates() == [30.0, 40.0]
    assert run.as_json()["after_creates_p50_ms"] == pytest.approx(35.0)
    assert data["by_event_type"] == {
        "JOB_EVENT_TYPE_PROGRESS": {
            "events": 2,
            "p50_ms": 30.0,
            "p99_ms": pytest.approx(39.8),
            "max_ms": 40.0,
        },
        "JOB_EVENT_TYPE_STEP_STARTED": {
            "events": 2,
            "p50_ms": 20.0,
            "p99_ms": pytest.approx(29.8),
            "max_ms": 30.0,
        },
    }


def test_a_run_without_events_has_no_figures_rather_than_zeros() -> None:
    run = run_of([], succeeded=0)
    assert math.isnan(run.p(99))
    assert run.as_json()["p99_ms"] is None
    assert run.unsucceeded == 3


def test_the_report_lines() -> None:
    assert lines([]) == []
    text = "\n".join(lines([run_of([10.0, 20.0]), run_of([30.0, 40.0])]))
    assert "3 jobs running at once" in text
    assert "STEP_STARTED" in text
    assert "notifier 0.50" in text
