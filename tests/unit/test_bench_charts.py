"""The benchmark's charts (bench/charts.py) from hand-made results: the data they are drawn
from (CDFs from 0 to 1, pooled samples, sweep medians, peers that did not run left out),
and two small PNGs, drawn again by the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.charts import (
    CDF_FILE,
    FAIR_FILE,
    SWEEP_FILE,
    LatencySeries,
    cdf,
    cdf_x_range,
    common_case_ratio,
    draw_all,
    fair_series,
    latency_series,
    main,
    subtitle,
    sweep_series,
)

PNG = b"\x89PNG\r\n\x1a\n"


def sweep(points: dict[int, float], jobs: int = 300) -> list[dict[str, object]]:
    return [{"in_flight": n, "jobs": jobs, "jobs_per_s": v} for n, v in points.items()]


def fair_round(
    mode: str, alone: list[float], flood: list[float], jobs_per_s: float
) -> dict[str, Any]:
    """One stack's round of the fairness phase, as ``bench.fair`` writes it (the parts the
    chart reads)."""
    return {
        "mode": mode,
        "worker_slots": 32,
        "throughput": {"jobs_per_s": jobs_per_s},
        "idle_first_step": {"seen_ms_samples": alone},
        "flood": {"heavy_jobs": 3000, "light_jobs": len(flood), "seen_ms_samples": flood},
    }


def results() -> dict[str, Any]:
    ours = [20.0 + (i % 17) * 0.9 for i in range(200)]
    theirs = [12.0 + (i % 23) * 0.7 for i in range(150)]
    return {
        "meta": {
            "started_at": "2026-12-02T00:40:00+00:00",
            "cpus": 2,
            "cpu_model": "Test CPU",
            "postgres_synchronous_commit": "on",
            "postgres_fsync": "on",
            "nats_sync_interval": "always",
        },
        "runs": {
            "idle_latency": [{"samples_ms": ours[:100]}, {"samples_ms": ours[100:]}],
            "sweep": sweep({1: 90.0, 4: 150.0, 16: 170.0, 48: 175.0, 128: 172.0}),
        },
        "peers": {
            "procrastinate": {
                "label": "procrastinate 3.x, 2 workers x 16",
                "skipped": None,
                "idle_latency": [{"samples_ms": theirs}],
                "sweep": sweep({1: 60.0, 4: 110.0, 16: 130.0, 48: 133.0}),
            },
            "celery": {"label": "", "skipped": "celery: not installed", "idle_latency": []},
        },
        "fair": [
            fair_round("fair", [3.0, 4.0, 5.0], [6.0, 7.0, 12.0], 560.0),
            fair_round("fifo", [3.5, 4.5, 5.5], [9000.0, 12000.0, 15000.0], 500.0),
            fair_round("fifo", [3.0, 4.0], [10000.0, 14000.0], 520.0),
            fair_round("fair", [4.0, 6.0], [5.0, 8.0], 540.0),
        ],
    }


def test_cdf_goes_from_0_to_1_over_the_sorted_samples() -> None:
    xs, ys = cdf([30.0, 10.0, 20.0, 20.0])
    assert xs == [10.0, 10.0, 20.0, 20.0, 30.0]
    assert ys == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert ys == sorted(ys)
    assert cdf([]) == ([], [])


def test_latency_series_pool_every_run_and_skip_peers_that_did_not_run() -> None:
    series = latency_series(results())
    assert [s.name for s in series] == ["ours", "procrastinate"]
    assert len(series[0].samples_ms) == 200
    assert len(series[1].samples_ms) == 150
    for s in series:
        xs, ys = cdf(s.samples_ms)
        assert ys[0] == 0.0
        assert ys[-1] == 1.0
        assert xs[0] <= s.p50 <= s.p99 <= xs[-1]


def test_one_stalled_job_does_not_set_the_cdfs_range() -> None:
    ours = LatencySeries("ours", tuple(10.0 + i / 100 for i in range(100)))
    theirs = LatencySeries("peer", (*(12.0 + i / 100 for i in range(199)), 5000.0))
    low, high = cdf_x_range([ours, theirs])
    assert low == pytest.approx(9.0)
    # Twice the slower p99 (the peer's, about 14), nowhere near its one stall.
    assert 2 * theirs.p99 == pytest.approx(high)
    assert 25 < high < 40


def test_sweep_series_take_the_median_per_point_in_order() -> None:
    data = results()
    data["runs"]["sweep"] += sweep({4: 160.0}) + sweep({4: 140.0})  # two more runs at 4
    ours, theirs = sweep_series(data)
    assert [n for n, _ in ours.points] == [1, 4, 16, 48, 128]
    assert dict(ours.points)[4] == 150.0  # the median of 150, 160 and 140
    assert [n for n, _ in theirs.points] == [1, 4, 16, 48]


def test_subtitle_has_the_date_the_machine_and_the_durable_settings() -> None:
    text = subtitle(results())
    assert "2026-12-02" in text
    assert "2 CPUs" in text
    assert "synchronous_commit=on" in text
    assert "fsync=on" in text
    assert "sync always" in text


def test_fair_series_pool_each_situation_over_the_rounds() -> None:
    alone, fair, fifo = fair_series(results())
    assert alone.samples_ms == (3.0, 4.0, 5.0, 4.0, 6.0)  # the fair stack's rounds only
    assert fair.samples_ms == (6.0, 7.0, 12.0, 5.0, 8.0)
    assert fifo.samples_ms == (9000.0, 12000.0, 15000.0, 10000.0, 14000.0)
    assert fair.p99 < fifo.p50
    assert alone.dashed
    assert not fair.dashed


def test_fair_series_leave_out_a_situation_without_samples() -> None:
    data = results()
    for r in data["fair"]:
        if r["mode"] == "fifo":
            r["flood"]["seen_ms_samples"] = []
    assert [s.label for s in fair_series(data)] == [
        "alone (fair dispatcher)",
        "while the heavy user's backlog waits: fair dispatcher",
    ]
    assert fair_series({"fair": []}) == []


def test_common_case_ratio_is_of_the_medians_and_needs_both_stacks() -> None:
    assert common_case_ratio(results()) == pytest.approx(550.0 / 510.0)
    data = results()
    data["fair"] = [r for r in data["fair"] if r["mode"] == "fair"]
    assert common_case_ratio(data) is None


def test_draw_all_writes_small_pngs(tmp_path: Path) -> None:
    drawn = draw_all(results(), tmp_path)
    assert [p.name for p in drawn] == [CDF_FILE, SWEEP_FILE, FAIR_FILE]
    for path in drawn:
        assert path.read_bytes()[:8] == PNG
        assert path.stat().st_size < 100_000


def test_a_chart_whose_phase_did_not_run_is_not_drawn(tmp_path: Path) -> None:
    data = results()
    data["runs"]["sweep"] = []
    for peer in data["peers"].values():
        peer["sweep"] = []
    del data["fair"]
    assert [p.name for p in draw_all(data, tmp_path)] == [CDF_FILE]
    assert not (tmp_path / SWEEP_FILE).exists()
    assert not (tmp_path / FAIR_FILE).exists()


def test_the_cli_redraws_from_the_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "bench.json"
    source.write_text(json.dumps(results()))
    assert main([str(source)]) == 0
    assert (tmp_path / CDF_FILE).read_bytes()[:8] == PNG
    assert (tmp_path / SWEEP_FILE).read_bytes()[:8] == PNG
    assert (tmp_path / FAIR_FILE).read_bytes()[:8] == PNG
    assert FAIR_FILE in capsys.readouterr().out
