"""``--rounds``: the runs of every round pooled into one set of results."""

from __future__ import annotations

from pathlib import Path

from bench.peers import PeerResults
from bench.runner import Config, Results, _pool
from bench.throughput import ThroughputRun


def config() -> Config:
    return Config(
        jobs=10,
        runs=1,
        concurrency=4,
        api_channels=1,
        notifier_channels=1,
        latency_probes=5,
        watchers=1,
        event_sleep_ms=1,
        event_window_s=1.0,
        floor_s=1.0,
        warmup_jobs=1,
        out=Path("unused.json"),
        quick=True,
        rounds=2,
    )


def a_round(jobs: int) -> Results:
    results = Results(config())
    results.throughput.append(ThroughputRun(jobs))
    results.peers.append(PeerResults("procrastinate", throughput=[ThroughputRun(jobs + 1)]))
    results.rss_peaks["job_api"] = jobs * 100
    results.phase_seconds["throughput"] = 2.0
    return results


def test_rounds_pool_ours_and_each_peer_s_runs_side_by_side() -> None:
    pooled = a_round(1)
    _pool(pooled, a_round(2))
    assert [r.jobs for r in pooled.throughput] == [1, 2]
    (peer,) = pooled.peers
    assert [r.jobs for r in peer.throughput] == [2, 3]
    assert pooled.rss_peaks == {"job_api": 200}
    assert pooled.phase_seconds == {"throughput": 4.0}
