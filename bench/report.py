"""The results as a table (figure, median, min-max, target, pass/miss) and as JSON."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from . import floors
from .artifacts import lines as artifact_lines
from .bulk import lines as bulk_lines
from .fair import lines as fair_lines
from .floors import FloorRun
from .gateway import CreateRun, GatewayEventRun
from .latency import LatencyRun
from .peers import PeerResults
from .procs import MIB
from .runner import GRPC_IN_FLIGHT, JS_IN_FLIGHT, NATS_IN_FLIGHT, PG_CONNECTIONS, Results
from .running import lines as running_lines
from .stats import Spread, finite, percentile
from .tables import table
from .throughput import ThroughputRun
from .waterfall import lines as waterfall_lines

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Target:
    """A bound on a figure's median: ``at_least`` or at most ``limit``; optionally a
    ``goal``, a stricter bound the same way."""

    limit: float
    at_least: bool
    goal: float | None = None

    def _within(self, value: float, bound: float) -> bool | None:
        if not math.isfinite(value):
            return None
        return value >= bound if self.at_least else value <= bound

    def met(self, value: float) -> bool | None:
        return self._within(value, self.limit)

    def goal_met(self, value: float) -> bool | None:
        return None if self.goal is None else self._within(value, self.goal)

    def verdict(self, value: float) -> str:
        """pass or MISS; with a goal, whether the goal is met too."""
        met = self.met(value)
        if met is None:
            return ""
        if not met:
            return "MISS"
        goal = self.goal_met(value)
        return "pass" if goal is None else ("pass, goal met" if goal else "pass, goal MISS")

    def __str__(self) -> str:
        sign = ">=" if self.at_least else "<="
        goal = f" (goal {sign} {self.goal:g})" if self.goal is not None else ""
        return f"{sign} {self.limit:g}{goal}"


@dataclass(frozen=True, slots=True)
class Row:
    figure: str
    spread: Spread
    unit: str
    digits: int = 1
    target: Target | None = None
    #: The phase whose runs produced it: to show how busy others kept the machine.
    phase: str = ""

    @property
    def met(self) -> bool | None:
        return self.target.met(self.spread.median) if self.target else None

    @property
    def verdict(self) -> str:
        return self.target.verdict(self.spread.median) if self.target else ""

    def as_json(self) -> dict[str, object]:
        return {
            "figure": self.figure,
            "unit": self.unit,
            **self.spread.as_json(),
            "target": str(self.target) if self.target else None,
            "met": self.met,
            "goal_met": self.target.goal_met(self.spread.median) if self.target else None,
        }


def spread(runs: Sequence[T], value: Callable[[T], float]) -> Spread:
    return Spread.of([value(r) for r in runs])


def _fmt(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}" if math.isfinite(value) else "-"


def _median(values: Sequence[float]) -> float:
    valid = [v for v in values if math.isfinite(v)]
    return statistics.median(valid) if valid else math.nan


def rows(results: Results) -> list[Row]:
    """The headline figures, each a median over the runs with its range."""
    c = results.config
    jobs_per_s = spread(results.throughput, lambda t: t.jobs_per_s)
    pg = spread(results.pg_floor, lambda f: f.per_s)
    js = spread(results.js_floor, lambda f: f.per_s)
    many = c.watchers
    tp, idle, half = "throughput", "idle latency", "half-load latency"
    ev1, evn = "events, 1 watcher", f"events, {many} watchers"
    fpg, fjs = "floor postgres", "floor jetstream"
    gw1, gwn = "gateway events, 1 stream", f"gateway events, {many} streams"
    running = f"running, {c.running_jobs} jobs"
    grpc_rate = spread(results.create_grpc, lambda r: r.per_s)
    rest_rate = spread(results.create_rest, lambda r: r.per_s)
    return [
        Row(
            f"throughput, {c.jobs} 3-step noop jobs (jobs/s)",
            jobs_per_s,
            "jobs/s",
            0,
            Target(500, at_least=True),
            tp,
        ),
        Row("  steps/s", spread(results.throughput, lambda t: 3 * t.jobs_per_s), "steps/s", 0),
        Row(
            "  CreateJob acceptance alone (jobs/s)",
            spread(results.throughput, lambda t: t.accept_per_s),
            "jobs/s",
            0,
        ),
        Row(
            "idle latency p50 (ms)",
            spread(results.idle, lambda r: r.p(50)),
            "ms",
            1,
            Target(10, False),
            idle,
        ),
        Row(
            "idle latency p99 (ms)",
            spread(results.idle, lambda r: r.p(99)),
            "ms",
            1,
            Target(25, False),
            idle,
        ),
        Row(
            "half-load latency p50 (ms)",
            spread(results.loaded, lambda r: r.p(50)),
            "ms",
            1,
            None,
            half,
        ),
        Row(
            "half-load latency p99 (ms)",
            spread(results.loaded, lambda r: r.p(99)),
            "ms",
            1,
            None,
            half,
        ),
        Row(
            "  background load achieved (jobs/s)",
            spread(results.loaded, lambda r: r.achieved_rate),
            "jobs/s",
            0,
        ),
        Row(
            "event latency p50, 1 watcher (ms)",
            spread(results.events_one, lambda r: r.p(50)),
            "ms",
            2,
            None,
            ev1,
        ),
        Row(
            "event latency p99, 1 watcher (ms)",
            spread(results.events_one, lambda r: r.p(99)),
            "ms",
            2,
            Target(5, False),
            ev1,
        ),
        Row(
            f"event latency p50, {many} watchers (ms)",
            spread(results.events_many, lambda r: r.p(50)),
            "ms",
            2,
            None,
            evn,
        ),
        Row(
            f"event latency p99, {many} watchers (ms)",
            spread(results.events_many, lambda r: r.p(99)),
            "ms",
            2,
            Target(50, False),
            evn,
        ),
        Row(
            "  p99 from NATS publish (after commit), 1 watcher",
            spread(results.events_one, lambda r: r.p_after_publish(99)),
            "ms",
            2,
        ),
        Row(
            f"  p99 from NATS publish (after commit), {many} watchers",
            spread(results.events_many, lambda r: r.p_after_publish(99)),
            "ms",
            2,
        ),
        Row(
            f"notifier RSS with {many} streams (MiB)",
            spread(results.events_many, lambda r: r.notifier_rss_peak / MIB),
            "MiB",
            0,
            Target(150, False),
            evn,
        ),
        Row(
            f"event latency p50, {c.running_jobs} jobs running at once, each watched (ms)",
            spread(results.running, lambda r: r.p(50)),
            "ms",
            2,
            None,
            running,
        ),
        Row(
            f"event latency p99, {c.running_jobs} jobs running at once, each watched (ms)",
            spread(results.running, lambda r: r.p(99)),
            "ms",
            2,
            Target(50, False, goal=25),
            running,
        ),
        Row(
            f"  p99 from NATS publish (after commit), {c.running_jobs} jobs running",
            spread(results.running, lambda r: r.p_after_publish(99)),
            "ms",
            2,
        ),
        Row(
            f"notifier RSS with {c.running_jobs} jobs running, each watched (MiB)",
            spread(results.running, lambda r: r.notifier_rss_peak / MIB),
            "MiB",
            0,
            None,
            running,
        ),
        Row(
            "gateway: event latency added over WatchJob p50, 1 stream (ms)",
            spread(results.gateway_one, lambda r: r.p(50)),
            "ms",
            2,
            None,
            gw1,
        ),
        Row(
            "gateway: event latency added over WatchJob p99, 1 stream (ms)",
            spread(results.gateway_one, lambda r: r.p(99)),
            "ms",
            2,
            Target(2, False),
            gw1,
        ),
        Row(
            f"gateway: event latency added p50, {many} SSE streams (ms)",
            spread(results.gateway_many, lambda r: r.p(50)),
            "ms",
            2,
            None,
            gwn,
        ),
        Row(
            f"gateway: event latency added p99, {many} SSE streams (ms)",
            spread(results.gateway_many, lambda r: r.p(99)),
            "ms",
            2,
            Target(25, False),
            gwn,
        ),
        Row(
            "  p99(publish->SSE) - p99(publish->gRPC), 1 stream",
            spread(results.gateway_one, lambda r: r.p99_difference),
            "ms",
            2,
        ),
        Row(
            f"  p99(publish->SSE) - p99(publish->gRPC), {many} streams",
            spread(results.gateway_many, lambda r: r.p99_difference),
            "ms",
            2,
        ),
        Row(
            f"gateway RSS with {many} SSE streams (MiB)",
            spread(results.gateway_many, lambda r: r.gateway_rss_peak / MIB),
            "MiB",
            0,
            Target(150, False),
            gwn,
        ),
        Row(
            f"CreateJob over gRPC, {c.concurrency} in flight (jobs/s)",
            grpc_rate,
            "jobs/s",
            0,
            None,
            "gateway CreateJob grpc",
        ),
        Row(
            f"POST /v1/jobs via the gateway, {c.concurrency} in flight (jobs/s)",
            rest_rate,
            "jobs/s",
            0,
            None,
            "gateway CreateJob rest",
        ),
        # Per pair of runs (gRPC, then REST right after it).
        Row(
            "ratio: REST / gRPC CreateJob",
            Spread.of(
                [
                    rest.per_s / grpc.per_s if grpc.per_s else math.nan
                    for grpc, rest in zip(results.create_grpc, results.create_rest, strict=False)
                ]
            ),
            "",
            2,
            Target(0.8, True),
            "gateway CreateJob rest",
        ),
        Row(
            f"floor: Postgres UPDATE+INSERT+COMMIT/s ({PG_CONNECTIONS} conns)",
            pg,
            "commits/s",
            0,
            None,
            fpg,
        ),
        Row(
            "floor: Postgres one commit, 1 conn, p50 (ms)",
            spread(results.pg_one, lambda f: f.p50_ms),
            "ms",
            2,
            None,
            fpg,
        ),
        Row(
            f"floor: JetStream acked publishes/s ({JS_IN_FLIGHT} in flight)",
            js,
            "publishes/s",
            0,
            None,
            fjs,
        ),
        Row(
            "floor: JetStream one publish, 1 in flight, p50 (ms)",
            spread(results.js_one, lambda f: f.p50_ms),
            "ms",
            2,
            None,
            fjs,
        ),
        Row(
            f"floor: gRPC unary call, {GRPC_IN_FLIGHT} in flight, CPU ms (client + server)",
            spread(results.grpc_floor, lambda f: f.cpu_ms),
            "CPU ms",
            3,
            None,
            "floor transports",
        ),
        Row(
            f"floor: NATS request, {NATS_IN_FLIGHT} in flight, CPU ms (both ends + server)",
            spread(results.nats_floor, lambda f: f.cpu_ms),
            "CPU ms",
            3,
            None,
            "floor transports",
        ),
        Row(
            "floor: gRPC unary call, 1 in flight, p50 (ms)",
            spread(results.grpc_one, lambda f: f.p50_ms),
            "ms",
            2,
            None,
            "floor transports",
        ),
        Row(
            "floor: NATS request, 1 in flight, p50 (ms)",
            spread(results.nats_one, lambda f: f.p50_ms),
            "ms",
            2,
            None,
            "floor transports",
        ),
        # Each throughput run divided by the median floor: the spread is our runs' spread.
        Row(
            "ratio: jobs/s / Postgres commits/s",
            Spread.of([t.jobs_per_s / pg.median for t in results.throughput]),
            "",
            3,
        ),
        Row(
            "ratio: steps/s / JetStream publishes/s",
            Spread.of([3 * t.jobs_per_s / js.median for t in results.throughput]),
            "",
            3,
        ),
        *(row for peer in results.peers if not peer.skipped for row in peer_rows(results, peer)),
    ]


#: The issue's targets for ours against a peer: (limit, goal) of ours / theirs.
IDLE_P50_RATIO = Target(1.0, at_least=False, goal=0.5)
IDLE_P99_RATIO = Target(1.0, at_least=False, goal=0.6)
THROUGHPUT_RATIO = Target(3.0, at_least=True, goal=4.0)


def cpu_ms_per_job(runs: Sequence[ThroughputRun]) -> Spread:
    """CPU milliseconds per job, all measured processes (the harness included), per run."""
    return Spread.of([1000 * sum(t.cpu_s.values()) / max(t.accepted, 1) for t in runs])


def peer_rows(results: Results, peer: PeerResults) -> list[Row]:
    """A peer's figures, and ours divided by theirs with the issue's targets."""
    c = results.config
    name = peer.name
    tp, idle = f"peer {name} throughput", f"peer {name} idle latency"
    theirs = {
        "jobs/s": spread(peer.throughput, lambda t: t.jobs_per_s),
        "p50": spread(peer.idle, lambda r: r.p(50)),
        "p99": spread(peer.idle, lambda r: r.p(99)),
        "cpu": cpu_ms_per_job(peer.throughput),
    }
    ours = {
        "jobs/s": spread(results.throughput, lambda t: t.jobs_per_s),
        "p50": spread(results.idle, lambda r: r.p(50)),
        "p99": spread(results.idle, lambda r: r.p(99)),
        "cpu": cpu_ms_per_job(results.throughput),
    }
    return [
        Row(
            f"{name}: throughput, {c.jobs} 3-task chains (jobs/s)",
            theirs["jobs/s"],
            "jobs/s",
            0,
            None,
            tp,
        ),
        Row(f"{name}: idle latency p50 (ms)", theirs["p50"], "ms", 1, None, idle),
        Row(f"{name}: idle latency p99 (ms)", theirs["p99"], "ms", 1, None, idle),
        Row(f"{name}: CPU ms per job, all processes", theirs["cpu"], "ms", 2, None, tp),
        Row(
            f"ratio: idle p50, ours / {name}",
            Spread.ratio(ours["p50"], theirs["p50"]),
            "",
            2,
            IDLE_P50_RATIO,
            idle,
        ),
        Row(
            f"ratio: idle p99, ours / {name}",
            Spread.ratio(ours["p99"], theirs["p99"]),
            "",
            2,
            IDLE_P99_RATIO,
            idle,
        ),
        Row(
            f"ratio: throughput, ours / {name}",
            Spread.ratio(ours["jobs/s"], theirs["jobs/s"]),
            "",
            2,
            THROUGHPUT_RATIO,
            tp,
        ),
        Row(
            f"ratio: CPU ms per job, ours / {name}",
            Spread.ratio(ours["cpu"], theirs["cpu"]),
            "",
            2,
            None,
            tp,
        ),
    ]


def others_pct(results: Results, phase: str) -> float:
    """The most any other process used of the machine during one run of ``phase``."""
    return max((i.foreign_pct for i in results.interference if i.phase == phase), default=math.nan)


def _cpu_per_1000(results: Results) -> dict[str, Spread]:
    names: list[str] = []
    for t in results.throughput:
        names += [n for n in t.cpu_s if n not in names]
    return {
        n: Spread.of(
            [1000 * t.cpu_s.get(n, math.nan) / max(t.accepted, 1) for t in results.throughput]
        )
        for n in names
    }


def render(results: Results) -> str:
    c = results.config
    lines = [
        "",
        f"durable-jobs benchmark: {c.runs} run(s) each; {c.replicas} orchestrator(s) and "
        f"{c.replicas} worker(s) of {max(1, c.worker_slots // c.replicas)} slots (a peer's "
        f"workers x concurrency); {results.meta.get('cpus')} CPUs "
        f"({results.meta.get('cpu_model')}); Postgres synchronous_commit="
        f"{results.meta.get('postgres_synchronous_commit')}, NATS sync_interval: always",
        "",
    ]
    body = []
    for row in rows(results):
        s = row.spread
        body.append(
            [
                row.figure,
                _fmt(s.median, row.digits),
                f"{_fmt(s.low, row.digits)} - {_fmt(s.high, row.digits)}",
                str(row.target) if row.target else "",
                row.verdict,
                _fmt(others_pct(results, row.phase), 0) if row.phase else "",
            ]
        )
    lines += table(
        ["figure", "median", "min - max", "target", "result", "others' CPU % (max)"],
        body,
        "<>><<>",
    )
    lines.append(
        "others' CPU %: the most that processes other than the stack and the harness used of "
        "the machine during a run of that figure (a shared machine makes figures worse)."
    )
    if results.peers:
        lines.append(
            "ratio rows against a peer: the ratio of the two medians; the range pairs every "
            "run of ours with every run of theirs."
        )
    lines += _peer_tables(results)

    # Resources.
    cpu = _cpu_per_1000(results)
    total = Spread.of(
        [1000 * sum(t.cpu_s.values()) / max(t.accepted, 1) for t in results.throughput]
    )
    cpus = int(str(results.meta.get("cpus") or 1))
    busy = Spread.of(
        [
            100 * sum(v for k, v in t.cpu_s.items() if k != "harness") / (t.seconds * cpus)
            for t in results.throughput
        ]
    )
    body = [
        [
            name,
            _fmt(s.median, 2),
            f"{_fmt(s.low, 2)} - {_fmt(s.high, 2)}",
            _fmt(results.rss_peaks.get(name, 0) / MIB, 0),
        ]
        for name, s in cpu.items()
    ]
    body.append(
        [
            "all processes",
            _fmt(total.median, 2),
            f"{_fmt(total.low, 2)} - {_fmt(total.high, 2)}",
            "",
        ]
    )
    lines += ["", "resources (CPU during the throughput runs; peak RSS over the whole benchmark):"]
    lines += table(["process", "CPU s / 1000 jobs", "min - max", "peak RSS MiB"], body, "<>>>")
    lines.append(
        f"machine busy during throughput runs (services + servers, harness excluded): "
        f"{_fmt(busy.median, 0)} % of all CPUs (runs {_fmt(busy.low, 0)} - {_fmt(busy.high, 0)} %)"
    )
    lines.append(
        "postgres counts every backend; its RSS counts shared memory once. "
        "harness = this process (client side)."
    )

    # Latency breakdown.
    body = []
    for name, runs in (("idle", results.idle), ("half load", results.loaded)):
        if not runs:
            continue

        def p50(attribute: str, runs: list[LatencyRun] = runs) -> str:
            return _fmt(_median([r.p(50, attribute) for r in runs]), 1)

        body.append(
            [
                name,
                p50("create_ms"),
                p50("handoff_ms"),
                p50("step_ms"),
                p50("pipeline_ms"),
                p50("notify_ms"),
                p50("total_ms"),
                _fmt(_median([r.p(99) for r in runs]), 1),
                _fmt(_median([max(x.total_ms for x in r.probes) for r in runs if r.probes]), 1),
            ]
        )
    lines += [
        "",
        "submit -> SUCCEEDED received, split by the events' occurred_at (medians of per-run "
        "p50s, ms):",
    ]
    lines += table(
        [
            "load",
            "CreateJob",
            "CREATED->1st STEP_STARTED",
            "one step",
            "CREATED->SUCCEEDED",
            "SUCCEEDED->client",
            "total p50",
            "p99",
            "max",
        ],
        body,
        "<>>>>>>>>",
    )

    # Events.
    body = []
    for event_runs in (results.events_one, results.events_many):
        if not event_runs:
            continue
        pooled = [x for r in event_runs for x in r.samples_ms]
        body.append(
            [
                str(event_runs[0].watchers),
                _fmt(_median([r.steps_in_window / r.window_s for r in event_runs]), 0),
                _fmt(_median([r.events_per_s for r in event_runs]), 0),
                _fmt(percentile(pooled, 50), 2),
                _fmt(percentile(pooled, 99), 2),
                _fmt(percentile([x for r in event_runs for x in r.after_publish_ms], 50), 2),
                _fmt(percentile([x for r in event_runs for x in r.after_publish_ms], 99), 2),
                _fmt(max(pooled, default=math.nan), 1),
                str(min(r.open_min for r in event_runs)),
                _fmt(_median([r.notifier_rss_before / MIB for r in event_runs]), 0),
                _fmt(_median([r.notifier_rss_peak / MIB for r in event_runs]), 0),
                _fmt(
                    _median(
                        [100 * r.cpu_s.get("notifier", math.nan) / r.window_s for r in event_runs]
                    ),
                    0,
                ),
            ]
        )
    lines += [
        "",
        "event latency (occurred_at -> client; all runs pooled; occurred_at is stamped before "
        "the committing transaction, so this includes one commit; pub->client: from the "
        "event's arrival on NATS, just after the commit, to the client):",
    ]
    lines += table(
        [
            "watchers",
            "steps/s",
            "live events/s",
            "p50 ms",
            "p99 ms",
            "pub->client p50",
            "p99",
            "max ms",
            "open min",
            "notifier MiB idle",
            "in window",
            "notifier CPU %",
        ],
        body,
        "<>>>>>>>>>>>",
    )

    lines += running_lines(results.running)

    lines += _gateway_tables(results)

    # Floors.
    body = []
    for name, floor_runs in (
        (f"Postgres UPDATE+INSERT+COMMIT, {PG_CONNECTIONS} conns", results.pg_floor),
        ("Postgres UPDATE+INSERT+COMMIT, 1 conn", results.pg_one),
        (f"JetStream acked publish, {JS_IN_FLIGHT} in flight", results.js_floor),
        ("JetStream acked publish, 1 in flight", results.js_one),
        (f"gRPC unary call, {GRPC_IN_FLIGHT} in flight", results.grpc_floor),
        ("gRPC unary call, 1 in flight", results.grpc_one),
        (f"NATS core request, {NATS_IN_FLIGHT} in flight", results.nats_floor),
        ("NATS core request, 1 in flight", results.nats_one),
    ):
        if not floor_runs:
            continue
        body.append(
            [
                name,
                _fmt(_median([f.per_s for f in floor_runs]), 0),
                _fmt(_median([f.p50_ms for f in floor_runs]), 2),
                _fmt(_median([f.p99_ms for f in floor_runs]), 2),
                _fmt(_median([f.harness_cpu_pct for f in floor_runs]), 0),
                _fmt(_median([f.cpu_ms for f in floor_runs]), 3),
            ]
        )
    lines += [
        "",
        "floors (measured by the harness on the same servers; CPU ms an operation: the "
        "harness, the server, and for a NATS request nats-server too):",
    ]
    lines += table(
        ["floor", "per s", "p50 ms", "p99 ms", "harness CPU %", "CPU ms an op"], body, "<>>>>>"
    )
    lines += idle_path_lines(results)

    # Profiles.
    for prof in results.profiles:
        if prof.error:
            lines += ["", f"py-spy {prof.name}: {prof.error}"]
            continue
        lines += [
            "",
            f"py-spy {prof.name}: busy {prof.busy_pct:.0f}% of {prof.seconds:g}s; "
            "top frames by self time:",
        ]
        for frame, count in prof.self_frames[:8]:
            lines.append(f"  {100 * count / max(prof.samples, 1):5.1f}%  {frame}")

    if results.statements:
        jobs = max(results.statements_jobs, 1)
        lines += [
            "",
            "Postgres during the profiled run: its costliest statements, planning and "
            "executing (not the commits' wait for the WAL flush):",
        ]
        body = [
            [f"{s.calls / jobs:.2f}", f"{1000 * s.ms / jobs:.1f}", f"{s.rows / jobs:.1f}", s.query]
            for s in results.statements
        ]
        lines += table(["calls a job", "us a job", "rows a job", "statement"], body, ">>><")

    lines += waterfall_lines(results.waterfall)
    lines += artifact_lines(results.artifacts)
    lines += bulk_lines(results.bulk)
    lines += fair_lines(results.fair)

    speeds = Spread.of([i.calibration_ms for i in results.interference])
    if results.interference:
        lines += [
            "",
            "CPU calibration before each run (a fixed pure-Python loop, ms; lower is faster): "
            f"median {_fmt(speeds.median, 1)}, min {_fmt(speeds.low, 1)}, "
            f"max {_fmt(speeds.high, 1)}. On a shared host the same vCPU is sometimes slower "
            "without any steal time showing; figures from slow moments are pessimistic.",
        ]
    if results.warnings:
        lines += ["", "warnings:"] + [f"  - {w}" for w in results.warnings]
    phases = ", ".join(f"{k} {v:.0f}s" for k, v in results.phase_seconds.items())
    lines += ["", f"phase durations: {phases}"]
    return "\n".join(lines)


def idle_path(results: Results) -> floors.PathFloor | None:
    """One idle job's path at the floors measured one at a time (their medians)."""
    if not (results.grpc_one and results.pg_one and results.nats_one):
        return None
    return floors.idle_path_floor(
        _median([f.p50_ms for f in results.grpc_one]),
        _median([f.p50_ms for f in results.pg_one]),
        _median([f.p50_ms for f in results.nats_one]),
    )


def idle_path_lines(results: Results) -> list[str]:
    """The idle p50 against the least its path can take: what is left is the services'."""
    path = idle_path(results)
    if path is None:
        return []
    lines = [
        "",
        f"one idle job's path at its floors (one at a time, p50): "
        f"{floors.IDLE_PATH_GRPC_ROUND_TRIPS:g} gRPC round trip {path.grpc_ms:.2f} + "
        f"{floors.IDLE_PATH_COMMITS} Postgres commits {path.commits_ms:.2f} + "
        f"{floors.IDLE_PATH_NATS_ROUND_TRIPS:g} NATS round trips {path.nats_ms:.2f} = "
        f"{path.total_ms:.2f} ms",
    ]
    if results.idle:
        idle_p50 = spread(results.idle, lambda r: r.p(50)).median
        beyond = idle_p50 - path.total_ms
        hops = floors.IDLE_PATH_MESSAGES
        lines.append(
            f"  idle p50 {idle_p50:.1f} ms: {beyond:.1f} ms beyond the floors, "
            f"{beyond / hops:.2f} ms for each of the path's {hops} messages between "
            "processes (the services' own work on each, and the machine waking them)"
        )
    for peer in results.peers:
        if peer.idle and not peer.skipped:
            theirs = spread(peer.idle, lambda r: r.p(50)).median
            lines.append(
                f"  the floors alone are {path.total_ms / theirs:.2f} of {peer.name}'s "
                f"idle p50 ({theirs:.1f} ms)"
            )
    return lines


def _cell(s: Spread, digits: int) -> str:
    if not s.runs:
        return "-"
    return f"{_fmt(s.median, digits)} [{_fmt(s.low, digits)}-{_fmt(s.high, digits)}]"


def _peer_tables(results: Results) -> list[str]:
    """Ours and every peer side by side, each peer's set-up and CPU by process."""
    if not results.peers:
        return []
    c = results.config
    systems: list[tuple[str, Sequence[ThroughputRun], Sequence[LatencyRun]]] = [
        (
            f"ours ({c.replicas} orchestrator(s), {c.replicas} worker(s) x "
            f"{max(1, c.worker_slots // c.replicas)})",
            results.throughput,
            results.idle,
        )
    ]
    systems += [(p.label or p.name, p.throughput, p.idle) for p in results.peers if not p.skipped]
    body = [
        [
            label,
            _cell(spread(tp, lambda t: t.jobs_per_s), 0),
            _cell(spread(idle, lambda r: r.p(50)), 1),
            _cell(spread(idle, lambda r: r.p(99)), 1),
            _cell(cpu_ms_per_job(tp), 2),
        ]
        for label, tp, idle in systems
    ]
    lines = [
        "",
        f"side by side: 3-step chains, {c.jobs} a throughput run with {c.concurrency} "
        f"submissions in flight, {c.latency_probes} one at a time for idle latency; median "
        f"[min-max] of {c.runs} run(s):",
    ]
    lines += table(
        ["system", "jobs/s", "idle p50 ms", "idle p99 ms", "CPU ms/job, all processes"],
        body,
        "<>>>>",
    )
    for peer in results.peers:
        if peer.skipped:
            lines.append(f"{peer.name}: not run ({peer.skipped})")
            continue
        names: list[str] = []
        for t in peer.throughput:
            names += [n for n in t.cpu_s if n not in names]
        per_process = ", ".join(
            f"{n} {_fmt(cpu_ms_per_job_of(peer.throughput, n), 2)}" for n in names
        )
        rss = ", ".join(f"{n} {v / MIB:.0f}" for n, v in peer.rss_peaks.items())
        lines.append(f"{peer.label}:")
        for key in ("worker", "client", "done_observed"):
            if key in peer.meta:
                lines.append(f"  {key.replace('_', ' ')}: {peer.meta[key]}")
        if per_process:
            lines.append(f"  CPU ms per job (median): {per_process}")
        if rss:
            lines.append(f"  peak RSS MiB: {rss}")
    return lines


def cpu_ms_per_job_of(runs: Sequence[ThroughputRun], name: str) -> float:
    return _median([1000 * t.cpu_s.get(name, math.nan) / max(t.accepted, 1) for t in runs])


def _gateway_tables(results: Results) -> list[str]:
    lines: list[str] = []
    body = []
    event_runs: list[GatewayEventRun]
    for event_runs in (results.gateway_one, results.gateway_many):
        if not event_runs:
            continue
        added = [x for r in event_runs for x in r.added_ms]
        via_grpc = [x for r in event_runs for x in r.grpc_after_publish_ms]
        via_sse = [x for r in event_runs for x in r.sse_after_publish_ms]
        body.append(
            [
                str(event_runs[0].streams),
                _fmt(_median([r.events_per_s for r in event_runs]), 0),
                _fmt(percentile(added, 50), 2),
                _fmt(percentile(added, 99), 2),
                _fmt(max(added, default=math.nan), 1),
                _fmt(percentile(via_grpc, 50), 2),
                _fmt(percentile(via_grpc, 99), 2),
                _fmt(percentile(via_sse, 50), 2),
                _fmt(percentile(via_sse, 99), 2),
                str(sum(r.unpaired for r in event_runs)),
                str(min(r.open_min for r in event_runs)),
                _fmt(_median([r.gateway_rss_before / MIB for r in event_runs]), 0),
                _fmt(_median([r.gateway_rss_peak / MIB for r in event_runs]), 0),
                _fmt(_median([r.cpu_pct("gateway") for r in event_runs]), 0),
                _fmt(_median([r.cpu_pct("notifier") for r in event_runs]), 0),
                _fmt(_median([r.cpu_pct("harness") for r in event_runs]), 0),
                _fmt(percentile([x for r in event_runs for x in r.harness_lag_ms], 99), 1),
                _fmt(max((x for r in event_runs for x in r.harness_lag_ms), default=math.nan), 1),
                _fmt(sum(r.gateway_full_gcs for r in event_runs), 0),
            ]
        )
    if body:
        lines += [
            "",
            "gateway events (all runs pooled; added = SSE arrival - gRPC WatchJob arrival of "
            "the same event, both read in this process from streams on the same job; pub = "
            "the event's arrival on NATS, just after the commit; CPU in % of one core; harness "
            "lag: how late a 5 ms timer fired in this process; gateway full GCs: generation-2 "
            "collections the gateway ran inside the windows, from its /metrics):",
        ]
        lines += table(
            [
                "SSE streams",
                "paired events/s",
                "added p50",
                "p99",
                "max ms",
                "pub->gRPC p50",
                "p99",
                "pub->SSE p50",
                "p99",
                "unpaired",
                "open min",
                "gateway MiB idle",
                "in window",
                "gateway CPU %",
                "notifier CPU %",
                "harness CPU %",
                "harness lag p99 ms",
                "max",
                "gateway full GCs",
            ],
            body,
            "<>>>>>>>>>>>>>>>>>>",
        )
    body = []
    create_runs: list[CreateRun]
    for create_runs in (results.create_grpc, results.create_rest):
        if not create_runs:
            continue

        def per_call(name: str, runs: list[CreateRun] = create_runs) -> str:
            return _fmt(_median([r.cpu_ms_per_call(name) for r in runs]), 2)

        body.append(
            [
                "gRPC CreateJob" if create_runs[0].path == "grpc" else "POST /v1/jobs",
                _fmt(_median([r.per_s for r in create_runs]), 0),
                _fmt(_median([r.p(50) for r in create_runs]), 1),
                _fmt(_median([r.p(99) for r in create_runs]), 1),
                per_call("job_api"),
                per_call("gateway"),
                per_call("postgres"),
                per_call("nats-server"),
                per_call("harness"),
                str(sum(sum(r.errors.values()) for r in create_runs)),
            ]
        )
    if body:
        lines += [
            "",
            f"CreateJob, {results.config.concurrency} calls in flight, orchestrators paused "
            "while timed (medians over runs; CPU ms per accepted call):",
        ]
        lines += table(
            [
                "path",
                "jobs/s",
                "p50 ms",
                "p99 ms",
                "job_api",
                "gateway",
                "postgres",
                "nats-server",
                "harness",
                "errors",
            ],
            body,
            "<>>>>>>>>>",
        )
    return lines


def to_json(results: Results) -> dict[str, object]:
    c = results.config
    cpu = _cpu_per_1000(results)
    return {
        "meta": results.meta,
        "config": {
            "jobs": c.jobs,
            "runs": c.runs,
            "concurrency": c.concurrency,
            "api_channels": c.api_channels,
            "notifier_channels": c.notifier_channels,
            "latency_probes": c.latency_probes,
            "watchers": c.watchers,
            "replicas": c.replicas,
            "only": sorted(c.only),
            "event_sleep_ms": c.event_sleep_ms,
            "event_window_s": c.event_window_s,
            "floor_s": c.floor_s,
            "warmup_jobs": c.warmup_jobs,
            "quick": c.quick,
            "peers": list(c.peers),
            "peer_workers": c.peer_workers,
            "peer_concurrency": c.peer_concurrency,
            "running_jobs": c.running_jobs,
        },
        "summary": [r.as_json() for r in rows(results)],
        "targets_met": {r.figure: r.met for r in rows(results) if r.target is not None},
        "resources": {
            "cpu_s_per_1000_jobs": {n: s.as_json() for n, s in cpu.items()},
            "peak_rss_bytes": results.rss_peaks,
        },
        "runs": {
            "throughput": [t.as_json() for t in results.throughput],
            "sweep": [s.as_json() for s in results.sweep],
            "idle_latency": [r.as_json() for r in results.idle],
            "half_load_latency": [r.as_json() for r in results.loaded],
            "events_1_watcher": [r.as_json() for r in results.events_one],
            f"events_{c.watchers}_watchers": [r.as_json() for r in results.events_many],
            "gateway_events_1_stream": [r.as_json() for r in results.gateway_one],
            f"gateway_events_{c.watchers}_streams": [r.as_json() for r in results.gateway_many],
            "gateway_create_grpc": [r.as_json() for r in results.create_grpc],
            "gateway_create_rest": [r.as_json() for r in results.create_rest],
            "floor_postgres": [_floor(f) for f in results.pg_floor],
            "floor_postgres_one_conn": [_floor(f) for f in results.pg_one],
            "floor_jetstream": [_floor(f) for f in results.js_floor],
            "floor_jetstream_one": [_floor(f) for f in results.js_one],
            "floor_grpc_call": [_floor(f) for f in results.grpc_floor],
            "floor_nats_request": [_floor(f) for f in results.nats_floor],
            "floor_grpc_call_one": [_floor(f) for f in results.grpc_one],
            "floor_nats_request_one": [_floor(f) for f in results.nats_one],
        },
        "peers": {
            p.name: {
                "label": p.label,
                "skipped": p.skipped or None,
                "meta": p.meta,
                "seconds": p.seconds,
                "cpu_ms_per_job": cpu_ms_per_job(p.throughput).as_json(),
                "peak_rss_bytes": p.rss_peaks,
                "throughput": [t.as_json() for t in p.throughput],
                "idle_latency": [r.as_json() for r in p.idle],
                "sweep": [s.as_json() for s in p.sweep],
            }
            for p in results.peers
        },
        "profiles": {p.name: p.as_json() for p in results.profiles},
        "statements": {
            "jobs": results.statements_jobs,
            "costliest": [s.as_json() for s in results.statements],
        },
        "interference": [
            {
                "phase": i.phase,
                "run": i.run,
                "wall_s": i.wall_s,
                "others_cpu_pct_of_machine": i.foreign_pct,
                "steal_s": i.steal_s,
                "waited_for_quiet_s": i.waited_s,
                "calibration_ms": i.calibration_ms,
            }
            for i in results.interference
        ],
        "waterfall": results.waterfall.as_json() if results.waterfall else None,
        "artifacts": results.artifacts.as_json() if results.artifacts else None,
        "bulk": results.bulk.as_json() if results.bulk else None,
        "fair": [m.as_json() for m in results.fair],
        "running": {
            "jobs": c.running_jobs,
            "runs": [r.as_json() for r in results.running],
        },
        "phase_seconds": results.phase_seconds,
        "warnings": results.warnings,
    }


def _floor(f: FloorRun) -> dict[str, object]:
    return {
        "per_s": f.per_s,
        "p50_ms": finite(f.p50_ms),
        "p99_ms": finite(f.p99_ms),
        "harness_cpu_pct": f.harness_cpu_pct,
        "cpu_ms": finite(f.cpu_ms),
    }
