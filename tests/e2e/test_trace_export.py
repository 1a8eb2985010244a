"""With an OTLP endpoint, one job is one trace of spans from every service: a stack whose
services export to the benchmark's in-process receiver (``bench.waterfall.Receiver``)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from bench.harness import BENCH_ENV, Harness
from bench.waterfall import EXPORT_ENV, Receiver, traced_job
from devstack import Stack

pytestmark = pytest.mark.e2e


async def test_a_traced_job_has_a_span_per_hop_in_one_trace(tmp_root: Path) -> None:
    receiver = Receiver()
    endpoint = await receiver.start()
    stack = Stack(
        tmp_root / "traced-stack",
        extra_env={**BENCH_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **EXPORT_ENV},
    )
    try:
        await asyncio.to_thread(stack.start)
        try:
            harness = await Harness.open(stack, api_channels=1, notifier_channels=1)
            try:
                root = await traced_job(harness)
            finally:
                await harness.close()
        finally:
            # The services send their spans as they exit: the receiver, on this event
            # loop, must be free to take them.
            await asyncio.to_thread(stack.stop)
        await receiver.settle()
    finally:
        await receiver.stop()
    spans = [s for s in receiver.spans if s.trace_id == root.trace_id]
    hops = Counter((s.service, s.name) for s in spans)
    # job_api offers the first step to the workers itself; each next step goes back to
    # the worker that finished the one before, in the answer to its result.
    assert hops == {
        ("job_api", "CreateJob"): 1,
        ("job_api", "commit job"): 1,
        # Offered to the idle worker, which took it: never through JetStream.
        ("job_api", "offer jobs.steps.noop.prepare"): 1,
        ("orchestrator", "orchestrate step_succeeded"): 3,
        ("orchestrator", "publish events"): 3,
        ("ai_worker", "step noop.prepare"): 1,
        ("ai_worker", "step noop.work"): 1,
        ("ai_worker", "step noop.finish"): 1,
        ("ai_worker", "send result"): 3,
        ("notifier", "WatchJob"): 1,
        ("notifier", "fan out event"): hops[("notifier", "fan out event")],
    }
    # The live events after the watch opened; the earlier ones came from Postgres.
    assert hops[("notifier", "fan out event")] >= 1
    ids = {s.span_id for s in spans} | {root.span_id}
    assert all(s.parent_id in ids for s in spans), "every span's parent is in the trace"
    assert all(root.start_ns <= s.start_ns and s.end_ns >= s.start_ns for s in spans)
