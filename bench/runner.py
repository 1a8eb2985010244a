"""The benchmark's phases, in order, on one stack: floors, throughput, a coarse throughput
sweep over calls in flight, idle latency, latency at half load, event latency with 1 and
with many watchers, the browser gateway (event latency it adds, its memory, CreateJob over
REST against gRPC), and optionally a profiled throughput run. The stack is brought back to
idle between runs. Then, with the stack stopped, the phases with stacks of their own: event
latency with many jobs running at once (``bench.running``), one job's path
(``bench.waterfall``), artifacts, bulk work, and fairness (``bench.fair``: a light user's
time to first step beside a heavy user's flood, the fair dispatcher against FIFO); then the
peers (``bench.peers``): the same throughput, sweep and idle-latency runs on other job
systems, one after the other, each on servers of its own."""

from __future__ import annotations

import asyncio
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import TypeVar

from devstack import Stack
from devstack.servers import free_port

from . import floors, peers
from .artifacts import ArtifactRun, run_artifacts
from .bulk import BulkRun, run_bulk
from .events import EventRun, run_events
from .fair import MEASUREMENTS as FAIR_MEASUREMENTS
from .fair import MODES as FAIR_MODES
from .fair import FairMode, phase_name, run_interleaved
from .fair import problems as fair_problems
from .gateway import (
    VIAS,
    CreateRun,
    GatewayEventRun,
    pipeline,
    run_creates,
    run_gateway_events,
)
from .harness import BENCH_ENV, Harness, raise_fd_limit
from .latency import LatencyRun, run_probes, run_probes_under_load
from .peers import PeerResults, PeerUnavailable
from .procs import CpuMeter, RssSampler, Watched, calibrate
from .profile import Profile, StatementCost, py_spy, record, statement_costs
from .running import RunningRun, run_running, running_stack, warm_up
from .throughput import SweepPoint, ThroughputRun, run_throughput
from .waterfall import WaterfallRun, run_waterfall

T = TypeVar("T")

PG_CONNECTIONS = 8
JS_IN_FLIGHT = 256
#: The transport floors' calls in flight: the throughput phase's CreateJobs, and the
#: worker's slots (each waits on its result's answer).
GRPC_IN_FLIGHT = 64
NATS_IN_FLIGHT = 32


@dataclass(frozen=True, slots=True)
class Config:
    jobs: int
    runs: int
    concurrency: int
    api_channels: int
    notifier_channels: int
    latency_probes: int
    watchers: int
    event_sleep_ms: int
    event_window_s: float
    floor_s: float
    warmup_jobs: int
    out: Path
    quick: bool
    #: The whole sequence this many times, its runs pooled (``run``).
    rounds: int = 1
    dir: Path | None = None
    profile: Path | None = None
    #: A run starts once others use at most this % of the machine (or after the timeout).
    max_foreign_pct: float = 10.0
    quiet_timeout_s: float = 120.0
    #: Orchestrator and ai_worker processes each (job_api and notifier stay at one).
    replicas: int = 1
    #: The phases to run (``PHASES``); all of them by default.
    only: frozenset[str] = frozenset()
    #: The peers to compare with (``bench.peers.PEERS``), their workers and each one's
    #: concurrency.
    peers: tuple[str, ...] = ()
    peer_workers: int = 2
    peer_concurrency: int = 16
    #: Jobs running at once in the ``running`` phase, each watched by its own stream.
    running_jobs: int = 1000
    #: Rows exported and imported by the bulk phase.
    bulk_rows: int = 100_000

    @property
    def worker_slots(self) -> int:
        """Steps our workers run at once, all replicas together: a peer's whole
        concurrency (its workers times each one's), so both run as many at a time."""
        return self.peer_workers * self.peer_concurrency

    @property
    def stack_env(self) -> dict[str, str]:
        """The main stack's settings: the bench's, and the worker slots per replica."""
        slots = max(1, self.worker_slots // self.replicas)
        return {**BENCH_ENV, "WORKER_CONCURRENCY": str(slots)}

    @property
    def sweep_jobs(self) -> int:
        return SWEEP_JOBS_QUICK if self.quick else SWEEP_JOBS

    def runs_phase(self, name: str) -> bool:
        return not self.only or name in self.only

    @property
    def _peer_phase(self) -> bool:
        return bool(self.peers) and "peer" in self.only

    @property
    def measures_throughput(self) -> bool:
        """Ours: for itself, for the half-load phase (half of it) or for ``--only peer``."""
        return self.runs_phase("throughput") or self.runs_phase("loaded") or self._peer_phase

    @property
    def measures_idle(self) -> bool:
        return self.runs_phase("idle") or self._peer_phase

    @property
    def measures_sweep(self) -> bool:
        return self.runs_phase("sweep")

    def peer_figures(self) -> tuple[bool, bool]:
        """Whether the peers run throughput, idle latency: what ours runs, to compare."""
        if not self.peers:
            return False, False
        return self.measures_throughput, self.measures_idle


#: Phase names for ``--only``; ``loaded`` needs ``throughput`` (it runs at half of it);
#: ``peer`` runs our throughput and idle latency and the peers' (``--peer``); ``waterfall``
#: traces single jobs on a stack of its own (``bench.waterfall``); ``sweep`` is a coarse
#: throughput sweep over jobs in flight (``SWEEP``), ours and the peers'; ``running`` is
#: event latency with ``--running-jobs`` jobs running at once, each watched, on a stack of
#: its own (``bench.running``); ``fair`` is the fair dispatcher against FIFO, a stack of its
#: own for each (``bench.fair``).
PHASES = (
    "floors",
    "throughput",
    "sweep",
    "idle",
    "loaded",
    "events",
    "gateway",
    "running",
    "peer",
    "waterfall",
    "artifacts",
    "bulk",
    "fair",
)

#: Phases on stacks of their own: with only these, the main stack is not started.
OWN_STACKS = frozenset({"running", "waterfall", "artifacts", "bulk", "fair"})

#: The coarse sweep: CreateJob (or a peer's submit) calls in flight, one run of
#: ``SWEEP_JOBS`` jobs each (``--quick``: ``SWEEP_JOBS_QUICK``). A peer runs the points up
#: to its client's size (``--concurrency``), which bounds what it can have in flight.
SWEEP = (1, 4, 16, 48, 128)
SWEEP_JOBS = 300
SWEEP_JOBS_QUICK = 100


@dataclass(frozen=True, slots=True)
class Interference:
    """How much others used the machine during one measured run."""

    phase: str
    run: int
    wall_s: float
    #: Other processes' busy CPU, as a % of the whole machine over the run.
    foreign_pct: float
    #: CPU seconds the hypervisor gave to other guests.
    steal_s: float
    #: How long we waited for the machine to be quiet before starting.
    waited_s: float
    #: ``procs.calibrate()`` just before the run: ms for a fixed loop (lower is faster).
    calibration_ms: float


@dataclass
class Results:
    config: Config
    meta: dict[str, object] = field(default_factory=dict)
    pg_floor: list[floors.FloorRun] = field(default_factory=list)
    pg_one: list[floors.FloorRun] = field(default_factory=list)
    js_floor: list[floors.FloorRun] = field(default_factory=list)
    js_one: list[floors.FloorRun] = field(default_factory=list)
    grpc_floor: list[floors.FloorRun] = field(default_factory=list)
    grpc_one: list[floors.FloorRun] = field(default_factory=list)
    nats_floor: list[floors.FloorRun] = field(default_factory=list)
    nats_one: list[floors.FloorRun] = field(default_factory=list)
    throughput: list[ThroughputRun] = field(default_factory=list)
    sweep: list[SweepPoint] = field(default_factory=list)
    idle: list[LatencyRun] = field(default_factory=list)
    loaded: list[LatencyRun] = field(default_factory=list)
    events_one: list[EventRun] = field(default_factory=list)
    events_many: list[EventRun] = field(default_factory=list)
    gateway_one: list[GatewayEventRun] = field(default_factory=list)
    gateway_many: list[GatewayEventRun] = field(default_factory=list)
    create_grpc: list[CreateRun] = field(default_factory=list)
    create_rest: list[CreateRun] = field(default_factory=list)
    rss_peaks: dict[str, int] = field(default_factory=dict)
    profiles: list[Profile] = field(default_factory=list)
    #: Postgres's costliest statements during the profiled run, and that run's jobs.
    statements: list[StatementCost] = field(default_factory=list)
    statements_jobs: int = 0
    phase_seconds: dict[str, float] = field(default_factory=dict)
    interference: list[Interference] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    peers: list[PeerResults] = field(default_factory=list)
    waterfall: WaterfallRun | None = None
    artifacts: ArtifactRun | None = None
    bulk: BulkRun | None = None
    running: list[RunningRun] = field(default_factory=list)
    #: The fairness phase: each mode's stack (``bench.fair``), pooled over rounds.
    fair: list[FairMode] = field(default_factory=list)


class Progress:
    """Progress lines on stdout with the time since the start."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, text: str) -> None:
        sys.stdout.write(f"[{time.monotonic() - self.started:6.1f}s] {text}\n")
        sys.stdout.flush()


async def run(config: Config, say: Progress) -> Results:
    """Every phase asked for, ``config.rounds`` times over: each round starts its stacks
    afresh and runs ours, then the peers'. The rounds' runs are pooled, so a figure's
    median and a ratio's range pair runs measured minutes apart rather than ours first,
    theirs a quarter of an hour later, on a machine whose speed drifts."""
    pooled = await _run_round(config, say, 1)
    for n in range(2, config.rounds + 1):
        say(f"round {n} of {config.rounds}")
        _pool(pooled, await _run_round(config, say, n))
    return pooled


def _pool(into: Results, more: Results) -> None:
    """Add a round's runs to ``into``: lists extended, peers matched by name, seconds
    added, peaks kept; the one-off phases (waterfall, artifacts, bulk) keep their last."""
    for spec in fields(Results):
        name = spec.name
        mine, theirs = getattr(into, name), getattr(more, name)
        if name == "peers":
            by_name = {p.name: p for p in mine}
            for peer in theirs:
                if peer.name not in by_name:
                    mine.append(peer)
                    continue
                kept = by_name[peer.name]
                kept.throughput += peer.throughput
                kept.idle += peer.idle
                kept.sweep += peer.sweep
                kept.seconds += peer.seconds
                for process, peak in peer.rss_peaks.items():
                    kept.rss_peaks[process] = max(kept.rss_peaks.get(process, 0), peak)
        elif name == "rss_peaks":
            for process, peak in theirs.items():
                mine[process] = max(mine.get(process, 0), peak)
        elif name == "phase_seconds":
            for phase, seconds in theirs.items():
                mine[phase] = mine.get(phase, 0.0) + seconds
        elif isinstance(mine, list):
            mine.extend(theirs)
        elif name in ("waterfall", "artifacts", "bulk") and theirs is not None:
            setattr(into, name, theirs)


async def _run_round(config: Config, say: Progress, round_no: int) -> Results:
    results = Results(config)
    nofile = raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="jobs-bench-") as tmp:
        root = (config.dir or Path(tmp)).resolve()
        root.mkdir(parents=True, exist_ok=True)
        if config.only and config.only <= OWN_STACKS:  # only their own stacks are needed
            if config.runs_phase("running"):
                await _running(config, root, nofile, results, say)
            if config.runs_phase("waterfall"):
                await _waterfall(config, root, nofile, results, say)
            if config.runs_phase("artifacts"):
                await _artifacts(config, root, results, say)
            if config.runs_phase("bulk"):
                await _bulk(config, root, results, say)
            if config.runs_phase("fair"):
                await _fair(config, root, nofile, results, say, round_no)
            return results
        stack = Stack(
            root,
            extra_env=config.stack_env,
            workers=config.replicas,
            orchestrators=config.replicas,
            # Its statements are profiled with the services (the profile phase).
            statement_stats=config.profile is not None,
        )
        say(f"starting Postgres, NATS and the four services in {root}")
        started = time.monotonic()
        await asyncio.to_thread(stack.start)
        say(f"stack ready in {time.monotonic() - started:.1f}s")
        try:
            harness = await Harness.open(
                stack,
                api_channels=config.api_channels,
                notifier_channels=config.notifier_channels,
            )
            try:
                results.meta = await _meta(harness, root, nofile, config.stack_env)
                await _phases(config, harness, results, say)
            finally:
                await harness.close()
        finally:
            say("stopping the stack")
            await asyncio.to_thread(stack.stop)
        if config.runs_phase("running"):
            await _running(config, root, nofile, results, say)
        if config.runs_phase("waterfall"):
            await _waterfall(config, root, nofile, results, say)
        if config.runs_phase("artifacts"):
            await _artifacts(config, root, results, say)
        if config.runs_phase("bulk"):
            await _bulk(config, root, results, say)
        if config.runs_phase("fair"):
            await _fair(config, root, nofile, results, say, round_no)
        for name in config.peers:
            await _peer(config, name, root, results, say)
    return results


async def _artifacts(config: Config, root: Path, results: Results, say: Progress) -> None:
    """Artifact write and read throughput on a stack of its own (``bench.artifacts``)."""
    began = time.monotonic()
    results.artifacts = await run_artifacts(config, root, say)
    results.warnings += [f"artifacts: {e}" for e in results.artifacts.errors]
    results.phase_seconds["artifacts"] = time.monotonic() - began


async def _bulk(config: Config, root: Path, results: Results, say: Progress) -> None:
    """An export and an import of ``bulk_rows`` rows on a stack of their own
    (``bench.bulk``)."""
    began = time.monotonic()
    results.bulk = await run_bulk(config, root, say)
    results.warnings += [f"bulk: {e}" for e in results.bulk.errors]
    results.phase_seconds["bulk"] = time.monotonic() - began


async def _fair(
    config: Config, root: Path, nofile: int, results: Results, say: Progress, round_no: int
) -> None:
    """The fairness phase (``bench.fair``): a stack with the fair dispatcher and one
    without (FIFO), each measured the same way, the fair one first in odd rounds and second
    in even ones (``--rounds 2`` evens out what comes of going first); a failure is a
    warning. With only own-stack phases, the first stack gives the run's facts."""

    async def guard(cpu: CpuMeter, name: str, body: Callable[[], Awaitable[T]]) -> T:
        return await _guarded(config, results, cpu, say, name, 1, body)

    async def facts(harness: Harness) -> None:
        if not results.meta:
            results.meta = await _meta(harness, root, nofile, config.stack_env)

    def failed(mode: str, error: BaseException) -> None:
        results.warnings.append(
            f"fairness, {mode}: failed: {error!r}; see the logs under {root / f'fair-{mode}'}"
        )
        say(f"fairness, {mode}: failed: {error!r}")

    began = time.monotonic()
    recorded = len(results.interference)
    modes = FAIR_MODES if round_no % 2 else FAIR_MODES[::-1]
    for measured in await run_interleaved(
        config, root, modes, say, guard, on_open=facts, on_failure=failed
    ):
        # Each measurement's machine speed and others' use, beside its figures.
        for what in FAIR_MEASUREMENTS:
            for taken in results.interference[recorded:]:
                if taken.phase == phase_name(measured.mode, what):
                    measured.calibration_ms[what] = taken.calibration_ms
                    measured.others_pct[what] = taken.foreign_pct
        results.fair.append(measured)
        results.warnings += fair_problems(measured)
    results.phase_seconds["fair"] = time.monotonic() - began


async def _waterfall(
    config: Config, root: Path, nofile: int, results: Results, say: Progress
) -> None:
    """Single traced jobs on a stack of their own (``bench.waterfall``), so tracing costs
    the other phases nothing; a failure is a warning. With ``--only waterfall`` its stack
    is the only one, and gives the run's facts."""

    async def facts(harness: Harness) -> None:
        if not results.meta:
            results.meta = await _meta(harness, root, nofile, config.stack_env)

    began = time.monotonic()
    try:
        results.waterfall = await run_waterfall(config, root, say, on_open=facts)
        results.warnings += results.waterfall.warnings
    except Exception as error:
        results.warnings.append(f"waterfall failed: {error!r}; see the logs under {root}")
        say(f"waterfall failed: {error!r}")
    results.phase_seconds["waterfall"] = time.monotonic() - began


async def _running(
    config: Config, root: Path, nofile: int, results: Results, say: Progress
) -> None:
    """Event latency with ``config.running_jobs`` jobs running at once, each watched by its
    own stream (``bench.running``), on a stack of its own with a worker slot per job: a
    warm-up, then ``config.runs`` runs, each once the machine is quiet and on an idle
    stack. A failure is a warning; with only own-stack phases, its stack gives the facts."""
    name = f"running, {config.running_jobs} jobs"
    began = time.monotonic()
    try:
        async with running_stack(config, root, say) as harness:
            if not results.meta:
                results.meta = await _meta(harness, root, nofile, config.stack_env)
            watched = harness.watched()
            cpu = CpuMeter(watched)
            rss = RssSampler(watched)
            sampler = asyncio.create_task(rss.run())
            try:
                warmup = await warm_up(harness)
                say(f"running warm-up: {warmup.created} short jobs, each watched")
                for r in range(1, config.runs + 1):
                    result = await _guarded(
                        config,
                        results,
                        cpu,
                        say,
                        name,
                        r,
                        partial(run_running, harness, config.running_jobs, cpu=cpu, rss=rss),
                    )
                    results.running.append(result)
                    _check_alive(harness.stack)
                    waited = await harness.quiesce()
                    if result.unsucceeded or result.errors or result.timed_out:
                        results.warnings.append(
                            f"{name}, run {r}: {result.unsucceeded} of {result.jobs} jobs did "
                            f"not succeed ({result.statuses}), errors {result.errors}"
                            + (", timed out" if result.timed_out else "")
                        )
                    say(
                        f"{name} {r}/{config.runs}: {len(result.latency_ms)} live events "
                        f"(peak {result.peak_events_per_s:,.0f}/s), occurred_at->client p50 "
                        f"{result.p(50):.2f} ms, p99 {result.p(99):.2f}, max "
                        f"{result.max_ms:.1f}; NATS->client p50 "
                        f"{result.p_after_publish(50):.2f}, p99 "
                        f"{result.p_after_publish(99):.2f}, max "
                        f"{result.max_after_publish_ms:.1f}; not succeeded "
                        f"{result.unsucceeded}; notifier RSS "
                        f"{result.notifier_rss_peak / 2**20:.0f} MiB; created in "
                        f"{result.create_s:.1f}s, all terminal after {result.seconds:.1f}s "
                        f"(idle again after {waited:.1f}s)"
                    )
            finally:
                sampler.cancel()
    except Exception as error:
        results.warnings.append(f"{name} failed: {error!r}; see the logs under {root / 'running'}")
        say(f"{name} failed: {error!r}")
    results.phase_seconds[name] = time.monotonic() - began


async def _phases(config: Config, harness: Harness, results: Results, say: Progress) -> None:
    stack = harness.stack
    assert stack.postgres is not None
    assert stack.nats is not None
    watched = harness.watched()
    cpu = CpuMeter(watched)
    rss = RssSampler(watched)
    sampler = asyncio.create_task(rss.run())
    runs = range(1, config.runs + 1)
    cpus = os.cpu_count() or 1

    async def phase(name: str, body: Callable[[], Awaitable[None]]) -> None:
        began = time.monotonic()
        await body()
        results.phase_seconds[name] = time.monotonic() - began
        _check_alive(stack)

    async def guarded(name: str, run: int, body: Callable[[], Awaitable[T]]) -> T:
        return await _guarded(config, results, cpu, say, name, run, body)

    async def transport_floors(
        run: int,
        kind: str,
        where: str,
        measures: Sequence[Callable[[list[Watched]], Awaitable[floors.FloorRun]]],
        also: Sequence[Watched] = (),
    ) -> list[floors.FloorRun]:
        """Transport floors, one after another, against one floor server of their own,
        which is watched like the stack's processes while they run (its CPU is the
        floors', not another's): each counts it and ``also`` (nats-server) in the CPU an
        operation."""
        async with floors.floor_server(kind, where) as server:
            cpu.watched.append(server)
            try:
                return [
                    await guarded("floor transports", run, partial(measure, [server, *also]))
                    for measure in measures
                ]
            finally:
                cpu.watched.remove(server)

    async def measure_floors() -> None:
        assert stack.postgres is not None
        assert stack.nats is not None
        pg_url, nats_url = stack.postgres.url, stack.nats.url
        servers = {w.name: w for w in harness.watched()}
        postgres, nats_server = [servers["postgres"]], [servers["nats-server"]]
        await floors.prepare_postgres(pg_url, PG_CONNECTIONS)
        await floors.prepare_jetstream(nats_url)
        try:
            for r in runs:
                many = await guarded(
                    "floor postgres",
                    r,
                    lambda: floors.postgres_commits(
                        pg_url, PG_CONNECTIONS, config.floor_s, postgres
                    ),
                )
                one = await guarded(
                    "floor postgres",
                    r,
                    lambda: floors.postgres_commits(pg_url, 1, config.floor_s / 2, postgres),
                )
                results.pg_floor.append(many)
                results.pg_one.append(one)
                say(
                    f"floor {r}/{config.runs}: Postgres UPDATE+INSERT+COMMIT "
                    f"{many.per_s:,.0f}/s with {PG_CONNECTIONS} connections "
                    f"(harness {many.harness_cpu_pct:.0f}% CPU); one connection: "
                    f"{one.p50_ms:.2f} ms p50"
                )
                many = await guarded(
                    "floor jetstream",
                    r,
                    partial(
                        floors.jetstream_publishes,
                        nats_url,
                        JS_IN_FLIGHT,
                        config.floor_s,
                        r,
                        nats_server,
                    ),
                )
                one = await guarded(
                    "floor jetstream",
                    r,
                    partial(
                        floors.jetstream_publishes, nats_url, 1, config.floor_s / 2, r, nats_server
                    ),
                )
                results.js_floor.append(many)
                results.js_one.append(one)
                say(
                    f"floor {r}/{config.runs}: JetStream acked publishes {many.per_s:,.0f}/s "
                    f"with {JS_IN_FLIGHT} in flight (harness {many.harness_cpu_pct:.0f}% CPU);"
                    f" one at a time: {one.p50_ms:.2f} ms p50"
                )
                port = free_port()
                call, one_call = await transport_floors(
                    r,
                    "grpc",
                    str(port),
                    [
                        partial(floors.grpc_calls, port, GRPC_IN_FLIGHT, config.floor_s),
                        partial(floors.grpc_calls, port, 1, config.floor_s / 2),
                    ],
                )
                request, one_request = await transport_floors(
                    r,
                    "nats",
                    nats_url,
                    [
                        partial(floors.nats_requests, nats_url, NATS_IN_FLIGHT, config.floor_s),
                        partial(floors.nats_requests, nats_url, 1, config.floor_s / 2),
                    ],
                    nats_server,
                )
                results.grpc_floor.append(call)
                results.grpc_one.append(one_call)
                results.nats_floor.append(request)
                results.nats_one.append(one_request)
                say(
                    f"floor {r}/{config.runs}: gRPC unary calls {call.per_s:,.0f}/s with "
                    f"{GRPC_IN_FLIGHT} in flight, {call.cpu_ms:.3f} CPU-ms a call, one at a "
                    f"time {one_call.p50_ms:.2f} ms p50; NATS requests {request.per_s:,.0f}/s "
                    f"with {NATS_IN_FLIGHT} in flight, {request.cpu_ms:.3f} CPU-ms a request, "
                    f"one at a time {one_request.p50_ms:.2f} ms p50"
                )
        finally:
            await floors.drop_postgres(pg_url)
            await floors.drop_jetstream(nats_url)

    async def measure_throughput() -> None:
        warmup = await run_throughput(harness, config.warmup_jobs, config.concurrency)
        await harness.quiesce()
        say(f"throughput warm-up: {warmup.accepted} jobs, {warmup.jobs_per_s:,.0f} jobs/s")
        for r in runs:
            result = await guarded(
                "throughput",
                r,
                lambda: run_throughput(harness, config.jobs, config.concurrency, cpu),
            )
            results.throughput.append(result)
            waited = await harness.quiesce()
            if not result.ok:
                results.warnings.append(
                    f"throughput run {r}: {result.accepted}/{result.jobs} accepted, "
                    f"{result.succeeded} succeeded, errors {result.errors}"
                )
            say(
                f"throughput {r}/{config.runs}: {result.accepted} jobs in "
                f"{result.seconds:.2f}s = {result.jobs_per_s:,.0f} jobs/s "
                f"(accepted at {result.accept_per_s:,.0f}/s; all SUCCEEDED: "
                f"{'yes' if result.ok else 'NO'}; others' CPU "
                f"{100 * result.foreign_cpu_s / (result.seconds * cpus):.0f}%; "
                f"idle again after {waited:.1f}s)"
            )

    async def measure_sweep() -> None:
        if not results.throughput:
            warmup = await run_throughput(harness, config.warmup_jobs, config.concurrency)
            await harness.quiesce()
            say(f"sweep warm-up: {warmup.accepted} jobs, {warmup.jobs_per_s:,.0f} jobs/s")
        jobs = config.sweep_jobs
        for n in SWEEP:
            result = await guarded(
                f"sweep {n} in flight", 1, partial(run_throughput, harness, jobs, n, cpu)
            )
            results.sweep.append(SweepPoint(n, result))
            await harness.quiesce()
            if not result.ok:
                results.warnings.append(
                    f"sweep, {n} in flight: {result.accepted}/{result.jobs} accepted, "
                    f"{result.succeeded} succeeded, errors {result.errors}"
                )
            say(
                f"sweep (coarse: one run of {jobs} jobs) {n} in flight: "
                f"{result.jobs_per_s:,.0f} jobs/s (accepted at {result.accept_per_s:,.0f}/s)"
            )

    async def measure_idle() -> None:
        for r in runs:
            result = await guarded(
                "idle latency", r, lambda: run_probes(harness, config.latency_probes)
            )
            results.idle.append(result)
            await harness.quiesce()
            _check_probes(results, "idle", r, result)
            say(
                f"idle latency {r}/{config.runs}: {len(result.probes)} jobs one at a time, "
                f"p50 {result.p(50):.1f} ms, p99 {result.p(99):.1f} ms"
            )

    async def measure_loaded() -> None:
        saturation = statistics.median(t.jobs_per_s for t in results.throughput)
        rate = saturation / 2
        for r in runs:
            result = await guarded(
                "half-load latency",
                r,
                lambda: run_probes_under_load(harness, config.latency_probes, rate),
            )
            results.loaded.append(result)
            await harness.quiesce()
            statuses = await harness.statuses(result.background_ids)
            result.background_unsucceeded = len(result.background_ids) - statuses.get(
                "SUCCEEDED", 0
            )
            _check_probes(results, "half load", r, result)
            say(
                f"latency at half load {r}/{config.runs}: background {result.achieved_rate:,.0f}"
                f" jobs/s (asked {rate:,.0f}), p50 {result.p(50):.1f} ms, "
                f"p99 {result.p(99):.1f} ms"
            )

    async def measure_events(name: str, watchers: int, into: list[EventRun]) -> None:
        for r in runs:
            result = await guarded(
                name,
                r,
                lambda: run_events(
                    harness,
                    watchers,
                    sleep_ms=config.event_sleep_ms,
                    window_s=config.event_window_s,
                    settle_s=0.0 if watchers == 1 else 1.0,
                    cpu=cpu,
                    rss=rss,
                ),
            )
            into.append(result)
            waited = await harness.quiesce()
            if result.stream_errors:
                results.warnings.append(
                    f"event latency, {watchers} watchers, run {r}: errors {result.stream_errors}"
                )
            between = " (a slot between jobs)" if watchers == 1 else ""
            say(
                f"event latency, {watchers} watcher(s) {r}/{config.runs}: "
                f"{len(result.samples_ms)} live events ({result.steps_in_window} steps run) "
                f"in {result.window_s:.0f}s, p50 {result.p(50):.2f} ms, "
                f"p99 {result.p(99):.2f} ms; open streams >= {result.open_min}{between}; "
                f"notifier RSS {result.notifier_rss_peak / 2**20:.0f} MiB "
                f"(idle again after {waited:.1f}s)"
            )

    async def measure_gateway_events(name: str, streams: int, into: list[GatewayEventRun]) -> None:
        for r in runs:
            result = await guarded(
                name,
                r,
                partial(
                    run_gateway_events,
                    harness,
                    streams,
                    sleep_ms=config.event_sleep_ms,
                    window_s=config.event_window_s,
                    settle_s=0.0 if streams == 1 else 1.0,
                    cpu=cpu,
                    rss=rss,
                ),
            )
            into.append(result)
            waited = await harness.quiesce()
            if result.stream_errors or result.unpaired:
                results.warnings.append(
                    f"{name}, run {r}: errors {result.stream_errors}, "
                    f"{result.unpaired} live events never reached the SSE stream"
                )
            say(
                f"{name} {r}/{config.runs}: {len(result.added_ms)} live events on both "
                f"paths in {result.window_s:.0f}s; added by the gateway p50 "
                f"{result.p(50):.2f} ms, p99 {result.p(99):.2f} ms (publish->SSE p99 "
                f"{result.p_sse(99):.2f} vs ->gRPC {result.p_grpc(99):.2f}); SSE streams open "
                f">= {result.open_min}; gateway RSS {result.gateway_rss_peak / 2**20:.0f} MiB, "
                f"CPU {result.cpu_pct('gateway'):.0f}%, full GCs {result.gateway_full_gcs:.0f}; "
                f"harness CPU {result.cpu_pct('harness'):.0f}%, loop lag max "
                f"{max(result.harness_lag_ms, default=math.nan):.1f} ms "
                f"(idle again after {waited:.1f}s)"
            )

    async def measure_creates() -> None:
        stopped = pipeline(harness)
        for path in VIAS:
            await run_creates(harness, path, config.warmup_jobs, config.concurrency)
        await harness.quiesce()
        say(f"CreateJob warm-up: {config.warmup_jobs} jobs over gRPC and over REST")
        for r in runs:
            for path in VIAS:
                into = results.create_grpc if path == "grpc" else results.create_rest
                _check_alive(stack)
                result = await guarded(
                    f"gateway CreateJob {path}",
                    r,
                    partial(
                        run_creates,
                        harness,
                        path,
                        config.jobs,
                        config.concurrency,
                        cpu,
                        pause=stopped,
                    ),
                )
                into.append(result)
                waited = await harness.quiesce()
                if result.errors:
                    results.warnings.append(
                        f"CreateJob over {path}, run {r}: errors {result.errors}"
                    )
                say(
                    f"CreateJob over {path} {r}/{config.runs}: {result.accepted} in "
                    f"{result.seconds:.2f}s = {result.per_s:,.0f}/s, {config.concurrency} in "
                    f"flight, p50 {result.p(50):.1f} ms; CPU ms per call: job_api "
                    f"{result.cpu_ms_per_call('job_api'):.2f}, gateway "
                    f"{result.cpu_ms_per_call('gateway'):.2f}, harness "
                    f"{result.cpu_ms_per_call('harness'):.2f} (idle again after {waited:.1f}s)"
                )

    async def profile() -> None:
        assert config.profile is not None
        binary = py_spy()
        if binary is None:
            results.warnings.append("--profile: py-spy not found; skipped")
            return
        rate = statistics.median(t.jobs_per_s for t in results.throughput) or 1.0
        seconds = max(2, math.ceil(config.jobs / rate))
        targets = {name: svc.pid for name, svc in stack.services.items()}
        await cpu.wait_quiet(config.max_foreign_pct, config.quiet_timeout_s, cpus)
        say(f"profiling {', '.join(targets)} with py-spy during one more throughput run")
        recorders = [
            asyncio.create_task(record(binary, name, pid, seconds, config.profile))
            for name, pid in targets.items()
        ]
        # py-spy needs a moment to attach before the run it should see.
        await asyncio.sleep(0.5)
        async with statement_costs(harness.pg) as results.statements:
            profiled = await run_throughput(harness, config.jobs, config.concurrency)
        results.statements_jobs = profiled.accepted
        results.profiles = list(await asyncio.gather(*recorders))
        await harness.quiesce()
        say(
            f"profiled run (not counted): {profiled.jobs_per_s:,.0f} jobs/s; "
            f"collapsed stacks in {config.profile}"
        )

    try:
        if config.runs_phase("floors"):
            await phase("floors", measure_floors)
        if config.measures_throughput:
            await phase("throughput", measure_throughput)
        if config.measures_sweep:
            await phase("sweep", measure_sweep)
        if config.measures_idle:
            await phase("idle latency", measure_idle)
        if config.runs_phase("loaded"):
            await phase("half-load latency", measure_loaded)
        if config.runs_phase("events"):
            await phase(
                "events, 1 watcher",
                lambda: measure_events("events, 1 watcher", 1, results.events_one),
            )
            many = f"events, {config.watchers} watchers"
            await phase(many, lambda: measure_events(many, config.watchers, results.events_many))
        if config.runs_phase("gateway"):
            sse_one = "gateway events, 1 stream"
            await phase(sse_one, lambda: measure_gateway_events(sse_one, 1, results.gateway_one))
            sse_many = f"gateway events, {config.watchers} streams"
            await phase(
                sse_many,
                lambda: measure_gateway_events(sse_many, config.watchers, results.gateway_many),
            )
            await phase("gateway CreateJob", measure_creates)
        if config.profile is not None and results.throughput:
            await phase("profile", profile)
    finally:
        sampler.cancel()
        results.rss_peaks = rss.peaks()


async def _guarded(
    config: Config,
    results: Results,
    cpu: CpuMeter,
    say: Progress,
    name: str,
    run: int,
    body: Callable[[], Awaitable[T]],
) -> T:
    """Run one measurement once the machine is quiet, and record how much CPU others
    used meanwhile: this machine may be shared (a test suite running beside us), and a
    figure taken while someone else used a core says little about the system."""
    cpus = os.cpu_count() or 1
    began = time.monotonic()
    quiet, pct = await cpu.wait_quiet(config.max_foreign_pct, config.quiet_timeout_s, cpus)
    waited = time.monotonic() - began
    speed = calibrate()
    if not quiet:
        say(f"  (the machine is still busy: others use {pct:.0f}% of it; measuring anyway)")
    before = cpu.snapshot()
    result = await body()
    use = CpuMeter.delta(before, cpu.snapshot())
    record = Interference(name, run, use.wall_s, use.foreign_pct(cpus), use.steal, waited, speed)
    results.interference.append(record)
    if record.foreign_pct > config.max_foreign_pct:
        results.warnings.append(
            f"{name} run {run}: other processes used {record.foreign_pct:.0f}% of the "
            "machine during it; its figures are pessimistic"
        )
    return result


async def _peer(config: Config, name: str, root: Path, results: Results, say: Progress) -> None:
    """One peer: its servers and workers, a warm-up, then the same throughput and idle
    latency runs as ours, each once the machine is quiet; then it is stopped. A peer that
    is not installed or fails is reported in the warnings; ours stay."""
    into = PeerResults(name)
    results.peers.append(into)
    throughput, idle = config.peer_figures()
    sweep = bool(config.peers) and config.measures_sweep
    began = time.monotonic()
    try:
        peer = peers.create(name)
    except PeerUnavailable as error:
        into.skipped = str(error)
        results.warnings.append(f"peer {name} not run: {error}")
        say(f"peer {name} not run: {error}")
        return
    say(f"peer {name}: starting its server and {config.peer_workers} workers")
    try:
        await peer.start(root, config.peer_workers, config.peer_concurrency, config.concurrency)
        into.label = peer.label
        into.meta = peer.describe()
        say(f"peer ready in {time.monotonic() - began:.1f}s: {into.label}")
        watched = peer.watched()
        cpu = CpuMeter(watched)
        rss = RssSampler(watched)
        sampler = asyncio.create_task(rss.run())
        try:
            await _peer_runs(config, peer, into, cpu, throughput, idle, sweep, results, say)
        finally:
            sampler.cancel()
            into.rss_peaks = rss.peaks()
    except Exception as error:
        results.warnings.append(f"peer {name} failed: {error!r}; see its logs under {root}")
        say(f"peer {name} failed: {error!r}")
    finally:
        await peer.stop()
        into.seconds = time.monotonic() - began
        results.phase_seconds[f"peer {name}"] = into.seconds


async def _peer_runs(
    config: Config,
    peer: peers.Peer,
    into: PeerResults,
    cpu: CpuMeter,
    throughput: bool,
    idle: bool,
    sweep: bool,
    results: Results,
    say: Progress,
) -> None:
    runs = range(1, config.runs + 1)
    name = peer.name
    cpus = os.cpu_count() or 1
    if throughput:
        warmup = await peers.run_throughput(peer, config.warmup_jobs, config.concurrency)
        await peer.quiesce()
        say(f"{name} throughput warm-up: {warmup.accepted} jobs, {warmup.jobs_per_s:,.0f} jobs/s")
        for r in runs:
            result = await _guarded(
                config,
                results,
                cpu,
                say,
                f"peer {name} throughput",
                r,
                partial(peers.run_throughput, peer, config.jobs, config.concurrency, cpu),
            )
            into.throughput.append(result)
            waited = await peer.quiesce()
            if not result.ok:
                results.warnings.append(
                    f"{name} throughput run {r}: {result.accepted}/{result.jobs} accepted, "
                    f"{result.succeeded} succeeded, errors {result.errors}"
                )
            total = sum(result.cpu_s.values())
            say(
                f"{name} throughput {r}/{config.runs}: {result.accepted} jobs in "
                f"{result.seconds:.2f}s = {result.jobs_per_s:,.0f} jobs/s (submitted at "
                f"{result.accept_per_s:,.0f}/s; all succeeded: {'yes' if result.ok else 'NO'};"
                f" {1000 * total / max(result.accepted, 1):.2f} CPU-ms per job; others' CPU "
                f"{100 * result.foreign_cpu_s / (result.seconds * cpus):.0f}%; "
                f"idle again after {waited:.1f}s)"
            )
    if sweep:
        if not throughput:
            warmup = await peers.run_throughput(peer, config.warmup_jobs, config.concurrency)
            await peer.quiesce()
            say(f"{name} sweep warm-up: {warmup.accepted} jobs, {warmup.jobs_per_s:,.0f} jobs/s")
        for n in (n for n in SWEEP if n <= config.concurrency):
            point = await _guarded(
                config,
                results,
                cpu,
                say,
                f"peer {name} sweep {n} in flight",
                1,
                partial(peers.run_throughput, peer, config.sweep_jobs, n, cpu),
            )
            into.sweep.append(SweepPoint(n, point))
            await peer.quiesce()
            if not point.ok:
                results.warnings.append(
                    f"{name} sweep, {n} in flight: {point.accepted}/{point.jobs} accepted, "
                    f"{point.succeeded} succeeded, errors {point.errors}"
                )
            say(
                f"{name} sweep (coarse: one run of {config.sweep_jobs} jobs) {n} in flight: "
                f"{point.jobs_per_s:,.0f} jobs/s"
            )
    if idle:
        for r in runs:
            latency = await _guarded(
                config,
                results,
                cpu,
                say,
                f"peer {name} idle latency",
                r,
                partial(peers.run_probes, peer, config.latency_probes),
            )
            into.idle.append(latency)
            await peer.quiesce()
            _check_probes(results, f"{name} idle", r, latency)
            say(
                f"{name} idle latency {r}/{config.runs}: {len(latency.probes)} jobs one at a "
                f"time, p50 {latency.p(50):.1f} ms, p99 {latency.p(99):.1f} ms"
            )


def _check_alive(stack: Stack) -> None:
    for service in stack.services.values():
        if not service.alive():
            raise RuntimeError(f"{service.name} died during the benchmark; see {service.log_path}")


def _check_probes(results: Results, what: str, run: int, result: LatencyRun) -> None:
    if result.failures or result.background_unsucceeded:
        results.warnings.append(
            f"{what} run {run}: {result.failures} probes and "
            f"{result.background_unsucceeded} background jobs did not succeed"
        )


def _host_facts() -> dict[str, str]:
    """The commit under test and the CPU model (blocking: run in a thread)."""
    try:
        git = subprocess.run(
            ["git", "describe", "--always", "--dirty"],  # noqa: S607 - git from PATH
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent.parent,
        ).stdout.strip()
    except OSError:
        git = ""
    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(
                (
                    line.split(":", 1)[1].strip()
                    for line in cpuinfo
                    if line.startswith("model name")
                ),
                "",
            )
    except OSError:
        pass
    return {"git": git, "cpu_model": model}


async def _meta(
    harness: Harness, root: Path, nofile: int, stack_env: dict[str, str]
) -> dict[str, object]:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "?"

    facts = await asyncio.to_thread(_host_facts)
    return {
        "started_at": datetime.now(UTC).isoformat(),
        "argv": sys.argv,
        "git": facts["git"],
        "cpus": os.cpu_count(),
        "cpu_model": facts["cpu_model"],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgres": await harness.pg.fetchval("SHOW server_version"),
        "postgres_synchronous_commit": await harness.pg.fetchval("SHOW synchronous_commit"),
        "postgres_fsync": await harness.pg.fetchval("SHOW fsync"),
        "nats_server": str(harness.nc.connected_server_version),
        "nats_sync_interval": "always",
        "packages": {
            p: version(p) for p in ("grpcio", "nats-py", "asyncpg", "protobuf", "uvloop", "psutil")
        },
        "data_dir": str(root),
        "nofile_soft_limit": nofile,
        "stack_env": stack_env,
    }
