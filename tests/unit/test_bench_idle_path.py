"""One idle job's path against its floors (``bench.floors.idle_path_floor``, and how
``bench.report`` prints it): the round trips and commits the path cannot do without, each
at the floor measured one at a time, and the idle p50 beyond them."""

from __future__ import annotations

import pytest

from bench.__main__ import parse
from bench.floors import IDLE_PATH_MESSAGES, FloorRun, idle_path_floor
from bench.latency import LatencyRun, Probe
from bench.peers import PeerResults
from bench.report import idle_path, idle_path_lines
from bench.runner import Results


def _floor(p50_ms: float) -> FloorRun:
    return FloorRun(per_s=1000 / p50_ms, p50_ms=p50_ms, p99_ms=2 * p50_ms, harness_cpu_pct=30)


def _idle(*totals_ms: float) -> LatencyRun:
    return LatencyRun(
        probes=[
            Probe(total_ms=t, create_ms=1, pipeline_ms=1, notify_ms=1, succeeded=True)
            for t in totals_ms
        ]
    )


def test_the_path_is_one_grpc_round_trip_four_commits_and_seven_nats_messages() -> None:
    path = idle_path_floor(grpc_rtt_ms=0.3, commit_ms=0.5, nats_rtt_ms=0.2)
    assert path.grpc_ms == pytest.approx(0.3)
    assert path.commits_ms == pytest.approx(2.0)
    assert path.nats_ms == pytest.approx(0.7)
    assert path.total_ms == pytest.approx(3.0)
    # CreateJob in, the event out on the stream, and seven NATS one-way messages.
    assert IDLE_PATH_MESSAGES == 9


def test_the_report_takes_the_median_of_each_floors_runs() -> None:
    results = Results(config=parse([]))
    results.grpc_one = [_floor(0.3), _floor(0.9), _floor(0.4)]
    results.pg_one = [_floor(0.5), _floor(0.4), _floor(3.0)]
    results.nats_one = [_floor(0.2)]
    path = idle_path(results)
    assert path is not None
    assert path.total_ms == pytest.approx(0.4 + 4 * 0.5 + 3.5 * 0.2)


def test_without_every_floor_there_is_no_path() -> None:
    results = Results(config=parse([]))
    results.grpc_one = [_floor(0.3)]
    results.pg_one = [_floor(0.5)]
    assert idle_path(results) is None
    assert idle_path_lines(results) == []


def test_the_report_sets_the_idle_p50_and_each_peers_against_the_floors() -> None:
    results = Results(config=parse([]))
    results.grpc_one = [_floor(0.5)]
    results.pg_one = [_floor(0.5)]
    results.nats_one = [_floor(0.2)]  # the path: 0.5 + 2.0 + 0.7 = 3.2 ms
    results.idle = [_idle(8.0, 9.2, 30.0)]
    results.peers = [
        PeerResults("procrastinate", idle=[_idle(12.0, 12.8, 13.0)]),
        PeerResults("celery", skipped="not installed"),
    ]
    text = "\n".join(idle_path_lines(results))
    assert "= 3.20 ms" in text
    assert "idle p50 9.2 ms: 6.0 ms beyond the floors, 0.67 ms for each of the path's 9" in text
    assert "the floors alone are 0.25 of procrastinate's idle p50 (12.8 ms)" in text
    assert "celery" not in text
