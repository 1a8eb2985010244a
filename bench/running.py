"""Event latency with many jobs running at once, each watched by its own client: the system
used the way a web app uses it, one page (one WatchJob stream) per job.

A stack of its own (``running_stack``, under ``<root>/running``), after the main stack's
phases, with ``WORKER_CONCURRENCY`` large enough for every job to run at once (``jobs +
EXTRA_WORKER_SLOTS``), so no job waits for a slot and every one of them is running. A run
creates ``jobs`` three-step ``noop`` jobs of ``SLEEP_MS`` per step, all together (CreateJob
with ``CREATE_CONCURRENCY`` calls in flight, as in ``bench.events``), and opens one
WatchJob stream per job right after its CreateJob returns, spread over the harness's
notifier channels. The jobs then move in step: a ``noop`` step reports PROGRESS half-way
and ends ``SLEEP_MS`` after it started, so every job's PROGRESS, then every job's
STEP_SUCCEEDED and next STEP_STARTED, come in bursts, spread only by how long the creates
took. Those bursts are what is measured. The run lasts until every job is terminal (or
``timeout_s``); then Postgres says how many SUCCEEDED.

Latency is taken as in ``bench.events``: the client's wall clock at receipt - the event's
``occurred_at`` (stamped before the committing transaction, so it includes one commit),
and, from the harness's own subscription to NATS ``jobs.events.>`` (where the orchestrator
publishes each event right after its commit, and the notifier listens), the event's
arrival there -> the client: the notifier's and gRPC's share. Only live events count
(``Watch``): a stream's first event (CREATED, always replayed) marks it established, and
an event counts if its ``occurred_at`` is later than that, so it cannot have come from the
replay. There is no window: every live event of the run counts, the first steps' included
(they start while later jobs are still being created: that is the load as it comes).

The harness is one Python process reading every stream, so it could be what is measured:
its event loop's lag (how late a 5 ms timer fires) is recorded through the run, and what
it holds is kept out of the garbage collector's sight meanwhile (``gc.freeze()``), as in
``bench.gateway``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from nats.aio.msg import Msg

from devstack import Stack
from jobkit import bus
from jobkit.gen.jobs.v1 import jobs_pb2, notifier_service_pb2

from .events import CREATE_CONCURRENCY, count, create_retrying
from .gateway import loop_lag
from .harness import (
    BENCH_ENV,
    TERMINAL_EVENTS,
    TERMINAL_STATUSES,
    Harness,
    event_time,
    noop_request,
    published_events,
)
from .procs import MIB, CpuMeter, RssSampler, machine_busy
from .stats import finite, percentile
from .tables import table

if TYPE_CHECKING:
    from .runner import Config

#: ``noop``'s wait per step: long enough for every job to be running at once.
SLEEP_MS = 3000
#: Worker slots beyond one per job (``WORKER_CONCURRENCY = jobs + EXTRA_WORKER_SLOTS``).
EXTRA_WORKER_SLOTS = 24
#: Jobs (of ``WARMUP_SLEEP_MS`` a step) run once on a new stack, not measured.
WARMUP_JOBS = 50
WARMUP_SLEEP_MS = 100
#: Bins for the events' peak rate (by ``occurred_at``), and for the machine's busy share.
BURST_BIN_S = 0.1


def timeout_for(jobs: int, sleep_ms: int) -> float:
    """How long a run may take: its three steps, the creates at a slow 20/s, a margin."""
    return 3 * sleep_ms / 1000 + jobs / 20 + 60


@dataclass
class Watch:
    """One client's stream: which of its events are live (the rule of ``bench.events``)."""

    #: The wall clock at which the stream's first event arrived: the stream established.
    established_at: float | None = None

    def live(self, occurred: float, received: float) -> bool:
        """Whether an event, stamped at ``occurred`` and received at ``received``, is live:
        the first event only establishes the stream (it is always replayed); after it, an
        event stamped later than that moment cannot have come from the replay."""
        if self.established_at is None:
            self.established_at = received
            return False
        return occurred > self.established_at


def peak_rate(times: Sequence[float], bin_s: float = BURST_BIN_S) -> float:
    """The most events in any ``bin_s`` bin of ``times`` (seconds), per second."""
    if not times:
        return 0.0
    bins = Counter(math.floor(t / bin_s) for t in times)
    return max(bins.values()) / bin_s


@dataclass
class RunningRun:
    """One run: ``jobs`` jobs running at once, each watched by a stream of its own."""

    jobs: int
    sleep_ms: int
    #: Per live event: received - occurred_at (ms), and its event type.
    latency_ms: list[float] = field(default_factory=list)
    event_types: list[str] = field(default_factory=list)
    #: The live events' ``occurred_at`` (Unix seconds): how bursty the load was.
    occurred_at: list[float] = field(default_factory=list)
    #: The live events seen on NATS too: arrival there -> client (ms), and occurred_at ->
    #: arrival there (the commit and the publish, ms).
    after_publish_ms: list[float] = field(default_factory=list)
    to_publish_ms: list[float] = field(default_factory=list)
    #: Live events that reached the client before the harness's own NATS subscription had
    #: handed them over (its callbacks run on the same busy loop): no pub->client figure.
    unpaired: int = 0
    created: int = 0
    #: Streams that ended with the job's terminal event.
    terminal_seen: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    #: The jobs' statuses in Postgres at the end, and whether the run ran out of time.
    statuses: dict[str, int] = field(default_factory=dict)
    timed_out: bool = False
    #: The first CreateJob call -> every job created; -> every job terminal.
    create_s: float = math.nan
    #: The wall clock (Unix seconds) when the last job had been created: after it, the
    #: load is the running jobs' events alone, without CreateJob calls and new streams.
    all_created_at: float = math.inf
    seconds: float = 0.0
    notifier_rss_before: int = 0
    notifier_rss_peak: int = 0
    #: CPU seconds per process over the run (the harness included), and others'.
    cpu_s: dict[str, float] = field(default_factory=dict)
    foreign_cpu_s: float = 0.0
    #: The harness's event loop: how late a 5 ms timer fired, every tick of the run (ms).
    harness_lag_ms: list[float] = field(default_factory=list)
    #: The whole machine's busy share of all CPUs, every ``BURST_BIN_S``: (the bin's
    #: start, Unix seconds; the share, 0-1), in time order.
    busy: list[tuple[float, float]] = field(default_factory=list)

    def p(self, q: float) -> float:
        return percentile(self.latency_ms, q)

    def p_after_publish(self, q: float) -> float:
        return percentile(self.after_publish_ms, q)

    @property
    def max_ms(self) -> float:
        return max(self.latency_ms, default=math.nan)

    @property
    def max_after_publish_ms(self) -> float:
        return max(self.after_publish_ms, default=math.nan)

    @property
    def unsucceeded(self) -> int:
        """Jobs asked for that did not succeed (not created, failed, or not finished)."""
        return self.jobs - self.statuses.get("SUCCEEDED", 0)

    @property
    def peak_events_per_s(self) -> float:
        return peak_rate(self.occurred_at)

    def after_creates(self) -> list[float]:
        """The latencies of the events stamped after the last job had been created."""
        return [
            ms
            for ms, occurred in zip(self.latency_ms, self.occurred_at, strict=True)
            if occurred > self.all_created_at
        ]

    def busy_share(self, during_creates: bool) -> float:
        """The machine's mean busy share while jobs were being created, or after."""
        shares = [
            share for start, share in self.busy if (start < self.all_created_at) == during_creates
        ]
        return sum(shares) / len(shares) if shares else math.nan

    def during_creates(self) -> list[float]:
        """The latencies of the events stamped while jobs were still being created."""
        return [
            ms
            for ms, occurred in zip(self.latency_ms, self.occurred_at, strict=True)
            if occurred <= self.all_created_at
        ]

    def timeline(self) -> list[dict[str, float]]:
        """Per ``BURST_BIN_S`` of the run, from its first sampled bin: the live events that
        occurred in it, their p99 latency, and how busy the machine was."""
        if not self.busy:
            return []
        first = self.busy[0][0]
        by_bin: dict[int, list[float]] = {}
        for ms, occurred in zip(self.latency_ms, self.occurred_at, strict=True):
            by_bin.setdefault(math.floor((occurred - first) / BURST_BIN_S), []).append(ms)
        return [
            {
                "at_s": round(start - first, 3),
                "busy": round(share, 3),
                "events": len(by_bin.get(n, [])),
                "p99_ms": round(percentile(by_bin.get(n, []), 99), 2) if by_bin.get(n) else 0.0,
            }
            for n, (start, share) in enumerate(self.busy)
        ]

    def by_type(self) -> dict[str, list[float]]:
        """The latencies by event type."""
        out: dict[str, list[float]] = {}
        for kind, ms in zip(self.event_types, self.latency_ms, strict=True):
            out.setdefault(kind, []).append(ms)
        return out

    def as_json(self) -> dict[str, object]:
        return {
            "jobs": self.jobs,
            "sleep_ms_per_step": self.sleep_ms,
            "created": self.created,
            "terminal_seen_by_clients": self.terminal_seen,
            "statuses": self.statuses,
            "not_succeeded": self.unsucceeded,
            "timed_out": self.timed_out,
            "errors": self.errors,
            "create_s": finite(self.create_s),
            "seconds": self.seconds,
            "live_events": len(self.latency_ms),
            "peak_live_events_per_s": self.peak_events_per_s,
            "p50_ms": finite(self.p(50)),
            "p90_ms": finite(self.p(90)),
            "p99_ms": finite(self.p(99)),
            "max_ms": finite(self.max_ms),
            "after_publish_samples": len(self.after_publish_ms),
            "unpaired_live_events": self.unpaired,
            "after_publish_p50_ms": finite(self.p_after_publish(50)),
            "after_publish_p99_ms": finite(self.p_after_publish(99)),
            "after_publish_max_ms": finite(self.max_after_publish_ms),
            "after_creates_live_events": len(self.after_creates()),
            "after_creates_p50_ms": finite(percentile(self.after_creates(), 50)),
            "after_creates_p99_ms": finite(percentile(self.after_creates(), 99)),
            "to_publish_p50_ms": finite(percentile(self.to_publish_ms, 50)),
            "to_publish_p99_ms": finite(percentile(self.to_publish_ms, 99)),
            "by_event_type": {
                kind: {
                    "events": len(values),
                    "p50_ms": finite(percentile(values, 50)),
                    "p99_ms": finite(percentile(values, 99)),
                    "max_ms": max(values),
                }
                for kind, values in sorted(self.by_type().items())
            },
            "notifier_rss_before_bytes": self.notifier_rss_before,
            "notifier_rss_peak_bytes": self.notifier_rss_peak,
            "cpu_s": self.cpu_s,
            "foreign_cpu_s": self.foreign_cpu_s,
            "harness_loop_lag_p99_ms": finite(percentile(self.harness_lag_ms, 99)),
            "harness_loop_lag_max_ms": max(self.harness_lag_ms, default=None),
            "during_creates_live_events": len(self.during_creates()),
            "during_creates_p99_ms": finite(percentile(self.during_creates(), 99)),
            "machine_busy_during_creates": finite(self.busy_share(during_creates=True)),
            "machine_busy_after_creates": finite(self.busy_share(during_creates=False)),
            "timeline": self.timeline(),
        }


# --- the stack and a run ------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_stack(
    config: Config, root: Path, say: Callable[[str], None]
) -> AsyncIterator[Harness]:
    """The phase's own stack, with a worker slot for every job, and a harness on it."""
    env = {**BENCH_ENV, "WORKER_CONCURRENCY": str(config.running_jobs + EXTRA_WORKER_SLOTS)}
    stack = Stack(
        root / "running",
        extra_env=env,
        workers=config.replicas,
        orchestrators=config.replicas,
    )
    say(f"running: starting a stack of its own with WORKER_CONCURRENCY={env['WORKER_CONCURRENCY']}")
    try:
        started = time.monotonic()
        await asyncio.to_thread(stack.start)
        say(f"running: stack ready in {time.monotonic() - started:.1f}s")
        harness = await Harness.open(
            stack, api_channels=config.api_channels, notifier_channels=config.notifier_channels
        )
        try:
            yield harness
        finally:
            await harness.close()
    finally:
        await asyncio.to_thread(stack.stop)


async def warm_up(harness: Harness) -> RunningRun:
    """``WARMUP_JOBS`` short jobs the same way, not measured, then an idle stack."""
    run = await run_running(harness, WARMUP_JOBS, sleep_ms=WARMUP_SLEEP_MS)
    await harness.quiesce()
    return run


async def run_running(
    harness: Harness,
    jobs: int,
    *,
    sleep_ms: int = SLEEP_MS,
    cpu: CpuMeter | None = None,
    rss: RssSampler | None = None,
    timeout_s: float | None = None,
) -> RunningRun:
    """``jobs`` jobs created together, each watched by a stream of its own from its
    CreateJob's answer to its terminal event; then their statuses from Postgres."""
    run = RunningRun(jobs, sleep_ms)
    request = noop_request(sleep_ms=sleep_ms)
    creating = asyncio.Semaphore(CREATE_CONCURRENCY)
    published: dict[tuple[str, int], float] = {}
    ids: list[str] = []

    async def on_published(msg: Msg) -> None:
        # The subject the notifier listens on: an event reaches both at the same moment.
        now = time.time()
        for key in published_events(msg.data):
            published[key] = now

    async def watched_job(k: int) -> None:
        job = await create_retrying(harness, request, k, creating, run.errors)
        ids.append(job.job_id)
        run.created += 1
        if run.created == jobs:
            run.create_s = time.monotonic() - began
            run.all_created_at = time.time()
        notifier = harness.notifier[k % len(harness.notifier)]
        call = notifier.WatchJob(
            notifier_service_pb2.WatchJobRequest(job_id=job.job_id), metadata=harness.metadata
        )
        watch = Watch()
        try:
            async for event in call:
                received = time.time()
                occurred = event_time(event)
                if watch.live(occurred, received):
                    run.latency_ms.append((received - occurred) * 1000)
                    run.event_types.append(jobs_pb2.JobEventType.Name(event.type))
                    run.occurred_at.append(occurred)
                    seen = published.pop((event.job_id, event.sequence), None)
                    if seen is None:
                        run.unpaired += 1
                    else:
                        run.after_publish_ms.append((received - seen) * 1000)
                        run.to_publish_ms.append((seen - occurred) * 1000)
                if event.type in TERMINAL_EVENTS:
                    run.terminal_seen += 1
                    break
        except grpc.aio.AioRpcError as error:
            count(run.errors, f"watch:{error.code().name}")
        finally:
            call.cancel()

    timeout_s = timeout_s if timeout_s is not None else timeout_for(jobs, sleep_ms)
    rss_before = rss.peak("notifier", since=time.monotonic() - 1.0) if rss else 0
    tap = await harness.nc.subscribe(f"{bus.EVENTS_PREFIX}>", cb=on_published)
    gc.collect()
    gc.freeze()
    tasks: list[asyncio.Task[None]] = []
    try:
        before = cpu.snapshot() if cpu else None
        began = time.monotonic()
        tasks.append(asyncio.create_task(loop_lag(run.harness_lag_ms, math.inf)))
        tasks.append(asyncio.create_task(machine_busy(run.busy, BURST_BIN_S)))
        watchers = [asyncio.create_task(watched_job(k)) for k in range(jobs)]
        tasks += watchers
        _, pending = await asyncio.wait(watchers, timeout=timeout_s)
        # A stream that failed leaves its job to Postgres: wait for it there too.
        run.timed_out = bool(pending) or not await _all_terminal(harness, ids, began + timeout_s)
        run.seconds = time.monotonic() - began
        if before is not None and cpu is not None:
            use = CpuMeter.delta(before, cpu.snapshot())
            run.cpu_s = use.procs
            run.foreign_cpu_s = use.foreign
        if rss is not None:
            run.notifier_rss_before = rss_before
            run.notifier_rss_peak = rss.peak("notifier", since=began)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        gc.unfreeze()
        await tap.unsubscribe()
    run.statuses = await harness.statuses([uuid.UUID(i) for i in ids])
    return run


async def _all_terminal(harness: Harness, ids: list[str], deadline: float) -> bool:
    """Whether every job of ``ids`` is terminal in Postgres by ``deadline`` (monotonic)."""
    wanted = [uuid.UUID(i) for i in ids]
    while True:
        finished: int = await harness.pg.fetchval(
            "SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[]) AND status = ANY($2::text[])",
            wanted,
            TERMINAL_STATUSES,
        )
        if finished == len(wanted):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.2)


# --- the report -----------------------------------------------------------------------------


def _ms(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}" if math.isfinite(value) else "-"


def _median(values: Sequence[float]) -> float:
    valid = sorted(v for v in values if math.isfinite(v))
    return percentile(valid, 50)


def lines(runs: Sequence[RunningRun]) -> list[str]:
    """One row per run, the event types' p99s and the CPU by process, for the report."""
    if not runs:
        return []
    first = runs[0]
    out = [
        "",
        f"event latency with {first.jobs} jobs running at once, each watched by its own "
        f"client (running phase: its own stack, a worker slot per job; 3 noop steps of "
        f"{first.sleep_ms} ms; every live event of the run; occurred_at -> client, and "
        "pub->client from the event's arrival on NATS just after the commit; p99 after "
        "creates: of the events stamped once every job had been created; not on tap yet: "
        "live events that reached the client before the harness's NATS callback ran):",
    ]
    body = [
        [
            str(n),
            str(len(r.latency_ms)),
            _ms(r.peak_events_per_s, 0),
            _ms(r.p(50)),
            _ms(r.p(99)),
            _ms(r.max_ms, 1),
            _ms(percentile(r.after_creates(), 99)),
            _ms(r.p_after_publish(50)),
            _ms(r.p_after_publish(99)),
            _ms(r.max_after_publish_ms, 1),
            _ms(percentile(r.to_publish_ms, 99)),
            str(r.unpaired),
            str(r.unsucceeded) + (" (timed out)" if r.timed_out else ""),
            str(sum(r.errors.values())),
            _ms(r.create_s, 1),
            _ms(r.seconds, 1),
            _ms(r.notifier_rss_peak / MIB, 0),
            _ms(percentile(r.harness_lag_ms, 99), 1),
            _ms(max(r.harness_lag_ms, default=math.nan), 1),
        ]
        for n, r in enumerate(runs, 1)
    ]
    out += table(
        [
            "run",
            "live events",
            "peak events/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "p99 after creates",
            "pub->client p50",
            "p99",
            "max",
            "occurred->pub p99",
            "not on tap yet",
            "not succeeded",
            "errors",
            "create s",
            "run s",
            "notifier MiB",
            "harness lag p99",
            "max",
        ],
        body,
        "<" + ">" * 18,
    )
    kinds: dict[str, list[float]] = {}
    for r in runs:
        for kind, values in r.by_type().items():
            kinds.setdefault(kind, []).extend(values)
    out.append(
        "by event type (runs pooled), p99 ms: "
        + ", ".join(
            f"{kind.removeprefix('JOB_EVENT_TYPE_')} {_ms(percentile(values, 99))} ({len(values)})"
            for kind, values in sorted(kinds.items())
        )
    )
    names: list[str] = []
    for r in runs:
        names += [n for n in r.cpu_s if n not in names]
    out.append(
        "CPU s during a run (median over runs): "
        + ", ".join(f"{n} {_ms(_median([r.cpu_s.get(n, math.nan) for r in runs]))}" for n in names)
        + f"; others {_ms(_median([r.foreign_cpu_s for r in runs]))}"
    )
    during = [ms for r in runs for ms in r.during_creates()]
    after = [ms for r in runs for ms in r.after_creates()]
    out.append(
        "the machine's busy share of its CPUs (mean of 100 ms bins, median over runs) and the "
        "events' p99 (runs pooled): while jobs were being created "
        f"{_ms(_median([r.busy_share(during_creates=True) * 100 for r in runs]), 0)} % busy, "
        f"p99 {_ms(percentile(during, 99))} ms ({len(during)} events); after "
        f"{_ms(_median([r.busy_share(during_creates=False) * 100 for r in runs]), 0)} % busy, "
        f"p99 {_ms(percentile(after, 99))} ms ({len(after)} events)"
    )
    return out
