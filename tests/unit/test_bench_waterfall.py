"""The waterfall phase's analysis (bench/waterfall.py): gaps, the median job, the report
lines and the picture, on hand-made spans."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from bench.waterfall import (
    CLIENT,
    FIRST_STEP_ROOT_NAME,
    ROOT_NAME,
    SpanRecord,
    WaterfallRun,
    analyse,
    draw,
    lines,
    waterfall,
)

MS = 1_000_000


def span(
    trace: str, name: str, service: str, start_ms: float, end_ms: float, parent: str = "r"
) -> SpanRecord:
    return SpanRecord(
        trace_id=trace,
        span_id=f"{name}-{start_ms}",
        parent_id=parent,
        name=name,
        service=service,
        kind="INTERNAL",
        start_ns=int(start_ms * MS),
        end_ns=int(end_ms * MS),
    )


def job(trace: str, total_ms: float, step_ms: float = 2.0) -> tuple[SpanRecord, list[SpanRecord]]:
    root = span(trace, ROOT_NAME, CLIENT, 0, total_ms, parent="")
    spans = [
        span(trace, "CreateJob", "job_api", 1, 4),
        span(trace, "commit job", "job_api", 2, 3),
        span(trace, "WatchJob", "notifier", 5, total_ms),  # a container: no gap
        span(trace, "orchestrate submitted", "orchestrator", 6, 8),
        span(trace, "step noop.a", "ai_worker", 8, 8 + step_ms),
        span(trace, "fan out event", "notifier", 8 + step_ms + 1, 8 + step_ms + 1.5),
    ]
    return root, spans


def test_gaps_count_only_time_in_which_no_span_of_the_job_was_open() -> None:
    root, spans = job("t", 20)
    rows = {h.name: h for h in waterfall(root, spans)}
    assert rows[ROOT_NAME].start_ms == 0
    assert math.isnan(rows[ROOT_NAME].gap_ms)
    assert math.isnan(rows["WatchJob"].gap_ms)
    assert rows["CreateJob"].gap_ms == 1.0  # from the client's start
    assert rows["commit job"].gap_ms == 0.0  # inside CreateJob
    assert rows["orchestrate submitted"].gap_ms == 2.0  # CreateJob ended at 4
    assert rows["step noop.a"].gap_ms == 0.0  # starts as the orchestrator's ends
    assert rows["fan out event"].gap_ms == 1.0
    last = waterfall(root, spans)[-1]
    assert (last.service, last.start_ms, last.gap_ms) == (CLIENT, 20.0, 8.5)


def test_the_median_job_is_shown_with_every_hop_s_medians() -> None:
    traces = [job("a", 30, step_ms=1), job("b", 10, step_ms=2), job("c", 20, step_ms=4)]
    roots = [r for r, _ in traces]
    spans = [s for _, ss in traces for s in ss]
    spans.append(span("d", "CreateJob", "job_api", 0, 1))  # a trace nobody asked for
    run = analyse([*roots, span("e", ROOT_NAME, CLIENT, 0, 5, parent="")], spans, ["job_api"])
    assert (run.jobs, run.complete) == (4, 3)
    assert run.warnings  # the job without spans is said, and left out
    assert run.total_ms == 20  # job c
    step = next(h for h in run.hops if h.name == "step noop.a")
    assert (step.duration_ms, step.p50_ms) == (4.0, 2.0)
    assert run.uncovered_ms == 1 + 2 + 1 + (20 - 13.5)
    text = "\n".join(lines(run))
    assert "median of 3 traced" in text
    assert "step noop.a" in text


def test_the_picture_is_drawn(tmp_path: Path) -> None:
    root, spans = job("t", 20)
    run = WaterfallRun(jobs=1, complete=1, totals_ms=[20.0], hops=waterfall(root, spans))
    path = tmp_path / "waterfall.png"
    draw(run, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size < 100_000


def test_a_root_that_ends_at_the_first_step_leaves_out_what_came_after() -> None:
    root, spans = job("t", 12)
    # A root that ended when the first step was seen (11.2 ms): the second step and its
    # fan-out, later in the same trace, are no part of it.
    first = replace(root, name=FIRST_STEP_ROOT_NAME, end_ns=int(11.2 * MS))
    later = [
        span("t", "step noop.b", "ai_worker", 11.3, 13),
        span("t", "fan out event", "notifier", 13.5, 14),
    ]
    run = analyse([first], [*spans, *later], ["job_api", "ai_worker"])
    names = [h.name for h in run.hops]
    assert "step noop.b" not in names
    assert names.count("fan out event") == 1
    assert run.total_ms == 11.2
    under_flood = WaterfallRun(jobs=1, complete=1, totals_ms=[12.0], hops=run.hops, flood=run)
    text = "\n".join(lines(under_flood))
    assert "a light user's first step while a heavy user floods" in text
    assert run.hops[-1].name == "first STEP_STARTED at the client"
