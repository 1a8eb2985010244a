"""Submit-to-done latency of one job at a time, on an idle system or under background load.

Each probe: the clock starts just before CreateJob; as soon as it returns, a WatchJob
stream is opened on the job; the clock stops when the terminal event arrives. The events'
``occurred_at`` (stamped by job_api and the orchestrator on the same machine's wall clock)
split the total into: CreateJob's round trip, CREATED -> SUCCEEDED inside the system, and
SUCCEEDED -> received by the client.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from dataclasses import dataclass, field

import grpc

from jobkit.gen.jobs.v1 import jobs_pb2, notifier_service_pb2

from .harness import TERMINAL_EVENTS, Harness, event_time, noop_request
from .stats import percentile


@dataclass(frozen=True, slots=True)
class Probe:
    total_ms: float
    create_ms: float
    #: CREATED's occurred_at -> SUCCEEDED's occurred_at (orchestrator + worker + NATS).
    pipeline_ms: float
    #: SUCCEEDED's occurred_at -> the client has it (commit, publish, notifier, gRPC).
    notify_ms: float
    succeeded: bool
    #: CREATED -> the first STEP_STARTED: job_api's commit and publish, the orchestrator's
    #: pick-up and decision.
    handoff_ms: float = float("nan")
    #: A step's STEP_STARTED -> its STEP_SUCCEEDED, averaged over the job's steps: the
    #: dispatching transaction, the dispatch's publish, the worker's fetch, run and report,
    #: and the orchestrator's pick-up of the report.
    step_ms: float = float("nan")


@dataclass
class LatencyRun:
    probes: list[Probe] = field(default_factory=list)
    #: Background load, when there was some: the rate asked for and the one achieved.
    target_rate: float = 0.0
    achieved_rate: float = 0.0
    background_errors: int = 0
    background_skipped: int = 0
    #: The background jobs: checked once the stack is idle again (``background_unsucceeded``).
    background_ids: list[uuid.UUID] = field(default_factory=list)
    background_unsucceeded: int = 0

    def p(self, q: float, attribute: str = "total_ms") -> float:
        return percentile([getattr(x, attribute) for x in self.probes], q)

    @property
    def failures(self) -> int:
        return sum(1 for x in self.probes if not x.succeeded)

    def as_json(self) -> dict[str, object]:
        parts = ("total_ms", "create_ms", "pipeline_ms", "notify_ms", "handoff_ms", "step_ms")
        return {
            "probes": len(self.probes),
            "failures": self.failures,
            **{f"{a}_p50": self.p(50, a) for a in parts},
            **{f"{a}_p99": self.p(99, a) for a in parts},
            "max_ms": max((x.total_ms for x in self.probes), default=None),
            # Every probe's submit -> terminal seen, in order: the charts' distributions.
            "samples_ms": [round(x.total_ms, 3) for x in self.probes],
            "target_rate": self.target_rate,
            "achieved_rate": self.achieved_rate,
            "background_errors": self.background_errors,
            "background_skipped": self.background_skipped,
            "background_jobs": len(self.background_ids),
            "background_not_succeeded": self.background_unsucceeded,
        }


async def probe_once(harness: Harness, channel: int = 0) -> Probe:
    request = noop_request()
    started_wall = time.time()
    started = time.perf_counter()
    job = await harness.create(request, channel=channel)
    created = time.perf_counter()
    call = harness.notifier[channel % len(harness.notifier)].WatchJob(
        notifier_service_pb2.WatchJobRequest(job_id=job.job_id),
        metadata=harness.metadata,
        timeout=60,
    )
    created_at = started_wall
    first_started = float("nan")
    started_at: dict[str, float] = {}
    cycles: list[float] = []
    final: jobs_pb2.JobEvent | None = None
    received_wall = 0.0
    try:
        async for event in call:
            if event.type == jobs_pb2.JOB_EVENT_TYPE_CREATED:
                created_at = event_time(event)
            elif event.type == jobs_pb2.JOB_EVENT_TYPE_STEP_STARTED:
                started_at[event.step] = event_time(event)
                if math.isnan(first_started):  # the first step
                    first_started = event_time(event)
            elif event.type == jobs_pb2.JOB_EVENT_TYPE_STEP_SUCCEEDED and event.step in started_at:
                cycles.append(event_time(event) - started_at[event.step])
            if event.type in TERMINAL_EVENTS:
                received_wall = time.time()
                final = event
                break
    finally:
        call.cancel()
    finished = time.perf_counter()
    if final is None:
        raise RuntimeError(f"the stream of job {job.job_id} ended without a terminal event")
    done_at = event_time(final)
    return Probe(
        total_ms=(finished - started) * 1000,
        create_ms=(created - started) * 1000,
        pipeline_ms=(done_at - created_at) * 1000,
        notify_ms=(received_wall - done_at) * 1000,
        succeeded=final.type == jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED,
        handoff_ms=(first_started - created_at) * 1000,
        step_ms=1000 * sum(cycles) / len(cycles) if cycles else float("nan"),
    )


async def run_probes(harness: Harness, count: int) -> LatencyRun:
    """``count`` probes back to back: one job in the system at a time (plus any load)."""
    run = LatencyRun()
    for _ in range(count):
        run.probes.append(await probe_once(harness, channel=0))
    return run


@dataclass
class Background:
    """Open-loop load: CreateJob at ``rate`` per second whatever the answers' latency
    (a closed loop would slow down with the system and hide its queueing), on the
    harness's job_api connections other than the probe's. A submission that would exceed
    ``max_in_flight`` is skipped and counted, so an overloaded system shows up as a
    shortfall in the achieved rate, not as unbounded client-side queueing."""

    harness: Harness
    rate: float
    max_in_flight: int = 256
    accepted: list[uuid.UUID] = field(default_factory=list)
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        request = noop_request()
        channels = max(1, len(self.harness.api) - 1)
        in_flight: set[asyncio.Task[None]] = set()
        issued = 0

        async def submit(n: int) -> None:
            try:
                job = await self.harness.create(request, channel=1 + n % channels)
            except grpc.aio.AioRpcError:
                self.errors += 1
                return
            self.accepted.append(uuid.UUID(job.job_id))

        started = time.perf_counter()
        while not stop.is_set():
            due = int((time.perf_counter() - started) * self.rate) - issued
            for _ in range(due):
                issued += 1
                if len(in_flight) >= self.max_in_flight:
                    self.skipped += 1
                    continue
                task = asyncio.create_task(submit(issued))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            # A 10 ms tick: fine-grained enough for a smooth rate, cheap for the harness.
            await asyncio.sleep(0.01)
        self.seconds = time.perf_counter() - started
        await asyncio.gather(*in_flight)

    @property
    def achieved_rate(self) -> float:
        return len(self.accepted) / self.seconds if self.seconds else 0.0


async def run_probes_under_load(
    harness: Harness, count: int, rate: float, warmup_s: float = 1.0
) -> LatencyRun:
    """``count`` probes while ``Background`` submits ``rate`` jobs/s; the load starts
    ``warmup_s`` early so the probes meet a steady state, not an empty pipeline."""
    stop = asyncio.Event()
    load = Background(harness, rate)
    task = asyncio.create_task(load.run(stop))
    try:
        await asyncio.sleep(warmup_s)
        run = await run_probes(harness, count)
    finally:
        stop.set()
        await task
    run.target_rate = rate
    run.achieved_rate = load.achieved_rate
    run.background_errors = load.errors
    run.background_skipped = load.skipped
    run.background_ids = load.accepted
    return run
