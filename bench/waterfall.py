"""One job's path, hop by hop: the services' spans of single idle jobs, as a table and as
``waterfall.png``.

A stack of its own, started after the measured phases' (so tracing's cost never touches
their figures), with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at an OTLP/gRPC receiver in
this process (``Receiver``). Each job is one trace: the client's span, from just before
CreateJob to the terminal event arriving on its WatchJob stream, is the root (CreateJob
and WatchJob carry its ``traceparent``); the services add theirs as children (the RPCs,
the relay's publishes, the orchestrator's handling of each input and its events' publish,
the dispatch's wait for a worker, the step, the report's publish, the notifier's fan-out;
see ``jobkit.tracing``). The job with the median client total is shown: every span by
start time, with the gap before it in which no span of the job was open, i.e. time in
transit or in a queue that no hop accounts for.

The jobs run back to back, as in the idle-latency phase: with a pause between them each
job takes about half as long again (every process wakes from idle). Tracing costs time:
recording the spans made the median job about 13 % slower on the 2-core box (28.5 ->
32.1 ms), and exporting them every 50 ms (``OTEL_BSP_SCHEDULE_DELAY=50``) as much again
(35.2 ms), the background thread's protobuf and gRPC work landing inside the jobs. So the
services keep their spans until they stop (a long schedule delay, a queue big enough for
the run), and export them on their way out, when the stack is stopped: the picture is of
where the time goes, the idle-latency phase's figures are the latency.

Then, on the same stack, the fairness phase's flood (``bench.fair``): a heavy user's jobs,
untraced (the services sample only traces a client started, ``parentbased_always_off``),
and once they are all submitted, the light user's jobs, each traced to its first
``STEP_STARTED`` on its stream: the same table for the time to first step under
saturation, hop by hop, beside the idle one.
"""

from __future__ import annotations

import asyncio
import math
import os
import secrets
import statistics
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from opentelemetry.proto.collector.trace.v1 import (
    trace_service_pb2,
    trace_service_pb2_grpc,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from devstack import Stack
from jobkit.gen.jobs.v1 import jobs_pb2, notifier_service_pb2

from . import fair
from .harness import TERMINAL_EVENTS, Harness, noop_request
from .procs import CpuMeter
from .stats import finite, percentile
from .tables import table
from .throughput import run_throughput

if TYPE_CHECKING:
    from .runner import Config

#: The client's own span: the root of each job's trace.
CLIENT = "client"
ROOT_NAME = "submit -> terminal event seen"
FIRST_STEP_ROOT_NAME = "submit -> first STEP_STARTED seen"
#: Spans open for about the whole job, not hops of it: left out of the gaps.
CONTAINERS = frozenset({"WatchJob"})
#: The services' span processors: no export before the stack stops (see above), and
#: room for every span until then.
EXPORT_ENV = {
    "OTEL_BSP_SCHEDULE_DELAY": str(3_600_000),
    "OTEL_BSP_MAX_QUEUE_SIZE": str(1_000_000),
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": str(5_000),
}
#: Jobs run before the measured ones, their traces dropped.
WARMUP_JOBS = 20


@dataclass(frozen=True, slots=True)
class SpanRecord:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    service: str
    kind: str
    start_ns: int
    end_ns: int
    attributes: Mapping[str, object] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


@dataclass(frozen=True, slots=True)
class Hop:
    """One row of a waterfall: a span, placed against the client's start."""

    name: str
    service: str
    start_ms: float
    duration_ms: float
    #: Before it, how long no span of the job (bar the root and containers) was open;
    #: 0 where it started inside another. NaN for the root and containers.
    gap_ms: float
    #: Which of the job's spans of this service and name it is (0, 1, 2 for three steps):
    #: with them, what makes it the same hop in another job.
    occurrence: int = 0
    #: The same hop's median duration and gap over every job traced, to tell a typical
    #: hop from this job's.
    p50_ms: float = math.nan
    gap_p50_ms: float = math.nan

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.service, self.name, self.occurrence)

    def as_json(self) -> dict[str, object]:
        return {
            "hop": self.name,
            "service": self.service,
            "start_ms": self.start_ms,
            "duration_ms": self.duration_ms,
            "gap_before_ms": finite(self.gap_ms),
            "duration_p50_all_jobs_ms": finite(self.p50_ms),
            "gap_before_p50_all_jobs_ms": finite(self.gap_p50_ms),
        }


@dataclass
class WaterfallRun:
    #: Jobs traced (measured), and how many of them had spans from every service.
    jobs: int = 0
    complete: int = 0
    totals_ms: list[float] = field(default_factory=list)
    #: The median job's rows, the root first, then by start.
    hops: list[Hop] = field(default_factory=list)
    spans_per_job: float = 0.0
    png: Path | None = None
    warnings: list[str] = field(default_factory=list)
    #: A light user's jobs traced to their first step while a heavy user floods
    #: (``FLOOD_JOBS``): where the time to first step goes under saturation.
    flood: WaterfallRun | None = None

    @property
    def total_ms(self) -> float:
        return self.hops[0].duration_ms if self.hops else math.nan

    @property
    def uncovered_ms(self) -> float:
        """The median job's time in which no span was open: the sum of its gaps."""
        return sum(h.gap_ms for h in self.hops if not math.isnan(h.gap_ms))

    def as_json(self) -> dict[str, object]:
        return {
            "jobs": self.jobs,
            "complete": self.complete,
            "total_p50_ms": percentile(self.totals_ms, 50),
            "total_p99_ms": percentile(self.totals_ms, 99),
            "median_job_total_ms": self.total_ms,
            "median_job_uncovered_ms": self.uncovered_ms,
            "spans_per_job": self.spans_per_job,
            "png": str(self.png) if self.png else None,
            "median_job": [h.as_json() for h in self.hops],
            "warnings": self.warnings,
            "flood": self.flood.as_json() if self.flood is not None else None,
        }


# --- the OTLP receiver --------------------------------------------------------------------


_SCALARS = frozenset({"string_value", "int_value", "double_value", "bool_value"})


def _value(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in _SCALARS else None


def _attributes(pairs: Sequence[KeyValue]) -> dict[str, object]:
    return {kv.key: _value(kv.value) for kv in pairs}


_KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace endpoint that keeps every span it is sent, in memory."""

    def __init__(self) -> None:
        self.spans: list[SpanRecord] = []
        self._server: grpc.aio.Server | None = None

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: object
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            service = str(resource.get("service.name", "?"))
            for scope in resource_spans.scope_spans:
                self.spans.extend(
                    SpanRecord(
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_id=s.parent_span_id.hex(),
                        name=s.name,
                        service=service,
                        kind=_KINDS.get(s.kind, "?"),
                        start_ns=s.start_time_unix_nano,
                        end_ns=s.end_time_unix_nano,
                        attributes=_attributes(s.attributes),
                    )
                    for s in scope.spans
                )
        return trace_service_pb2.ExportTraceServiceResponse()

    async def start(self) -> str:
        """Serve on a free loopback port; returns the endpoint for the exporters."""
        self._server = grpc.aio.server(
            options=[("grpc.max_receive_message_length", 256 * 1024 * 1024)]
        )
        # The generated module has no type information.
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)  # type: ignore[no-untyped-call]
        port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(None)

    async def settle(self, quiet_s: float = 0.5, timeout_s: float = 15.0) -> None:
        """Until no span has arrived for ``quiet_s`` (the exporters have sent theirs)."""
        deadline = time.monotonic() + timeout_s
        count, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            if len(self.spans) != count:
                count, since = len(self.spans), time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
            await asyncio.sleep(0.1)


# --- one traced job -----------------------------------------------------------------------


async def traced_job(
    harness: Harness,
    metadata: tuple[tuple[str, str], ...] | None = None,
    *,
    to_first_step: bool = False,
    channel: int = 0,
) -> SpanRecord:
    """One noop job in a trace of the client's: returns the client's (root) span, which
    ends when the terminal event arrives or, ``to_first_step``, the first
    ``STEP_STARTED`` (the stream is still read to the end). ``metadata``: the caller's
    (the harness's user by default)."""
    trace_id, span_id = secrets.randbits(128) or 1, secrets.randbits(64) or 1
    caller = harness.metadata if metadata is None else metadata
    metadata = (*caller, ("traceparent", f"00-{trace_id:032x}-{span_id:016x}-01"))
    started = time.time_ns()
    api = harness.api[channel % len(harness.api)]
    job = await api.CreateJob(noop_request(), metadata=metadata, timeout=30)
    call = harness.notifier[channel % len(harness.notifier)].WatchJob(
        notifier_service_pb2.WatchJobRequest(job_id=job.job_id), metadata=metadata, timeout=60
    )
    final: jobs_pb2.JobEvent | None = None
    first_step_at: int | None = None
    try:
        async for event in call:
            if event.type == jobs_pb2.JOB_EVENT_TYPE_STEP_STARTED and first_step_at is None:
                first_step_at = time.time_ns()
            if event.type in TERMINAL_EVENTS:
                final = event
                break
    finally:
        call.cancel()
    ended = time.time_ns()
    if final is None or (to_first_step and first_step_at is None):
        raise RuntimeError(f"the stream of job {job.job_id} ended without a terminal event")
    return SpanRecord(
        trace_id=f"{trace_id:032x}",
        span_id=f"{span_id:016x}",
        parent_id="",
        name=FIRST_STEP_ROOT_NAME if to_first_step else ROOT_NAME,
        service=CLIENT,
        kind="CLIENT",
        start_ns=started,
        end_ns=first_step_at if to_first_step and first_step_at is not None else ended,
        attributes={"job.id": job.job_id, "job.status": jobs_pb2.JobEventType.Name(final.type)},
    )


# --- the waterfall ------------------------------------------------------------------------


def ordered(root: SpanRecord, spans: Sequence[SpanRecord]) -> list[SpanRecord]:
    """The root, then the job's spans by start (the longer first on a tie)."""
    return [root, *sorted(spans, key=lambda s: (s.start_ns, -s.end_ns))]


def waterfall(root: SpanRecord, spans: Sequence[SpanRecord]) -> list[Hop]:
    """Rows for one job: each span against the root's start, with the gap before it in
    which no span of the job was open, and a last row for the client's receipt."""
    rows: list[Hop] = []
    seen: dict[tuple[str, str], int] = defaultdict(int)
    hops = [s for s in spans if s.name not in CONTAINERS]
    for span in ordered(root, spans):
        if span is root or span.name in CONTAINERS:
            gap = math.nan
        else:
            gap = _gap_before(span.start_ns, root, [h for h in hops if h is not span])
        rows.append(
            Hop(
                name=span.name,
                service=span.service,
                start_ms=(span.start_ns - root.start_ns) / 1e6,
                duration_ms=span.duration_ms,
                gap_ms=gap,
                occurrence=seen[(span.service, span.name)],
            )
        )
        seen[(span.service, span.name)] += 1
    rows.append(
        Hop(
            name=(
                "first STEP_STARTED at the client"
                if root.name == FIRST_STEP_ROOT_NAME
                else "terminal event at the client"
            ),
            service=CLIENT,
            start_ms=root.duration_ms,
            duration_ms=0.0,
            gap_ms=_gap_before(root.end_ns, root, hops),
        )
    )
    return rows


def _gap_before(at_ns: int, root: SpanRecord, others: Sequence[SpanRecord]) -> float:
    if any(o.start_ns <= at_ns < o.end_ns for o in others):
        return 0.0
    ended = [o.end_ns for o in others if o.end_ns <= at_ns]
    return (at_ns - max(ended, default=root.start_ns)) / 1e6


def with_medians(rows: Sequence[Hop], every_job: Sequence[Sequence[Hop]]) -> list[Hop]:
    """``rows`` with each hop's median duration and gap over ``every_job``."""
    durations: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    gaps: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for job in every_job:
        for hop in job:
            durations[hop.key].append(hop.duration_ms)
            gaps[hop.key].append(hop.gap_ms)
    return [
        replace(
            hop,
            p50_ms=statistics.median(durations[hop.key]),
            gap_p50_ms=percentile([g for g in gaps[hop.key] if not math.isnan(g)], 50),
        )
        for hop in rows
    ]


def analyse(
    roots: Sequence[SpanRecord], spans: Sequence[SpanRecord], services: Sequence[str]
) -> WaterfallRun:
    """The jobs' traces, from the client's roots and every span received."""
    by_trace: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    run = WaterfallRun(jobs=len(roots), totals_ms=[r.duration_ms for r in roots])
    # What a job's trace holds once its root has ended (the steps after the first, for a
    # root that ends at the first step) is no part of what the root measured.
    within = {
        root.trace_id: [s for s in by_trace[root.trace_id] if s.start_ns < root.end_ns]
        for root in roots
    }
    complete = [
        (root, within[root.trace_id])
        for root in roots
        if set(services) <= {s.service for s in within[root.trace_id]}
    ]
    run.complete = len(complete)
    if len(complete) < len(roots):
        run.warnings.append(
            f"waterfall: {len(roots) - len(complete)} of {len(roots)} jobs lack the spans of "
            f"some service ({', '.join(services)}); left out"
        )
    if not complete:
        return run
    complete.sort(key=lambda t: t[0].duration_ms)
    every_job = [waterfall(root, job_spans) for root, job_spans in complete]
    run.hops = with_medians(every_job[(len(complete) - 1) // 2], every_job)
    run.spans_per_job = statistics.mean(len(s) for _, s in complete)
    return run


# --- the phase ----------------------------------------------------------------------------


async def run_waterfall(
    config: Config,
    root: Path,
    say: Callable[[str], None],
    *,
    on_open: Callable[[Harness], Awaitable[None]] | None = None,
) -> WaterfallRun:
    """Its own traced stack: a warm-up, then ``config.latency_probes`` single jobs one at a
    time; once the stack has stopped (and sent its spans), they are analysed and drawn to
    ``waterfall.png`` beside the JSON."""
    receiver = Receiver()
    endpoint = await receiver.start()
    env = {
        **config.stack_env,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        # Only the client's traces (a sampled traceparent): the flood's jobs are not
        # recorded, so it costs what it costs untraced.
        "OTEL_TRACES_SAMPLER": "parentbased_always_off",
        **EXPORT_ENV,
    }
    stack = Stack(root / "waterfall", extra_env=env)
    try:
        say(f"waterfall: starting a traced stack (spans over OTLP to {endpoint})")
        await asyncio.to_thread(stack.start)
        try:
            harness = await Harness.open(stack, api_channels=1, notifier_channels=1)
            try:
                if on_open is not None:
                    await on_open(harness)
                roots = await _jobs(config, harness, say)
                light = await _under_flood(config, harness, say)
            finally:
                await harness.close()
        finally:
            # The services export their spans as they exit.
            await asyncio.to_thread(stack.stop)
        await receiver.settle()
        services = ("job_api", "orchestrator", "ai_worker", "notifier")
        run = analyse(roots, receiver.spans, services)
        run.flood = analyse(light, receiver.spans, services)
    finally:
        await receiver.stop()
    if run.hops:
        run.png = config.out.parent / "waterfall.png"
        run.png.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(draw, run, run.png)
    say(
        f"waterfall: {run.complete} traced jobs, p50 {percentile(run.totals_ms, 50):.1f} ms; "
        f"the median job {run.total_ms:.1f} ms, {run.uncovered_ms:.1f} ms of it between "
        f"spans; {run.png or 'no picture'}; under the flood, to the first step p50 "
        f"{percentile(run.flood.totals_ms, 50):.1f} ms"
    )
    return run


async def _jobs(config: Config, harness: Harness, say: Callable[[str], None]) -> list[SpanRecord]:
    """The warm-up, then the measured jobs back to back once the machine is quiet."""
    for _ in range(WARMUP_JOBS):
        await traced_job(harness)
    await harness.quiesce()
    cpu = CpuMeter(harness.watched())
    quiet, pct = await cpu.wait_quiet(
        config.max_foreign_pct, config.quiet_timeout_s, os.cpu_count() or 1
    )
    if not quiet:
        say(f"  (the machine is still busy: others use {pct:.0f}% of it; measuring anyway)")
    return [await traced_job(harness) for _ in range(config.latency_probes)]


async def _under_flood(
    config: Config, harness: Harness, say: Callable[[str], None]
) -> list[SpanRecord]:
    """The fairness phase's flood (``bench.fair``: the heavy user's jobs, 50 ms a step),
    untraced, and once its every CreateJob is answered, the light user's jobs, one every
    ``LIGHT_SPACING_S``, each traced to its first step."""
    heavy_jobs, light_jobs = fair.sizes(config)
    submitted = asyncio.Event()
    heavy = asyncio.create_task(
        run_throughput(
            harness,
            heavy_jobs,
            fair.IN_FLIGHT,
            request=noop_request(sleep_ms=fair.HEAVY_SLEEP_MS),
            submitted=submitted,
        )
    )
    await submitted.wait()
    metadata = harness.metadata_of(fair.LIGHT)
    probes: list[asyncio.Task[SpanRecord]] = []
    start = time.monotonic()
    for n in range(light_jobs):
        await asyncio.sleep(max(0.0, start + n * fair.LIGHT_SPACING_S - time.monotonic()))
        probes.append(
            asyncio.create_task(traced_job(harness, metadata, to_first_step=True, channel=n))
        )
    roots = await asyncio.gather(*probes)
    flood = await heavy
    say(
        f"waterfall: the light user's {len(roots)} jobs traced under a flood of "
        f"{flood.accepted} jobs at {flood.jobs_per_s:,.0f} jobs/s"
    )
    await harness.quiesce()
    return list(roots)


# --- the report -----------------------------------------------------------------------------


def lines(run: WaterfallRun | None) -> list[str]:
    """The median job's waterfall, for the report, and the light user's under the flood."""
    if run is None:
        return []
    out = [
        "",
        f"one job's path (waterfall phase: its own stack, spans exported over OTLP, so "
        f"slower than the idle-latency phase): the median of {run.complete} traced noop "
        f"jobs, {run.total_ms:.1f} ms (p50 of all {percentile(run.totals_ms, 50):.1f}, p99 "
        f"{percentile(run.totals_ms, 99):.1f}); gap = time before a hop in which no span "
        f"of the job was open (transport, queues); p50s: the same hop's medians over all jobs:",
        *_hop_table(run),
    ]
    if run.png:
        out.append(f"picture: {run.png}")
    if run.flood is not None:
        flood = run.flood
        out += [
            "",
            f"the same stack, a light user's first step while a heavy user floods (the "
            f"fairness phase's flood, untraced): the median of {flood.complete} light jobs, "
            f"submit -> first STEP_STARTED seen, {flood.total_ms:.1f} ms (p50 of all "
            f"{percentile(flood.totals_ms, 50):.1f}, p99 {percentile(flood.totals_ms, 99):.1f}):",
            *_hop_table(flood),
        ]
    return out


def _hop_table(run: WaterfallRun) -> list[str]:
    if not run.hops:
        return ["  no complete trace"]
    body = [
        [
            h.name,
            h.service,
            f"{h.start_ms:.2f}",
            f"{h.duration_ms:.2f}",
            _ms(h.gap_ms),
            _ms(h.p50_ms),
            _ms(h.gap_p50_ms),
        ]
        for h in run.hops
    ]
    out = table(
        ["hop", "service", "start ms", "ms", "gap ms", "ms p50", "gap p50"], body, "<<>>>>>"
    )
    largest = sorted(
        (h for h in run.hops[1:] if h.name not in CONTAINERS and h.duration_ms > 0),
        key=lambda h: -h.duration_ms,
    )[:5]
    out.append(
        f"between spans {run.uncovered_ms:.2f} ms of {run.total_ms:.2f}; longest hops: "
        + ", ".join(f"{h.name} ({h.service}) {h.duration_ms:.2f}" for h in largest)
    )
    return out


def _ms(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.2f}"


# --- the picture ----------------------------------------------------------------------------

COLOURS = {
    CLIENT: "#7f7f7f",
    "job_api": "#1f77b4",
    "orchestrator": "#ff7f0e",
    "ai_worker": "#2ca02c",
    "notifier": "#9467bd",
    "gateway": "#8c564b",
}
GAP_COLOUR = "#d62728"


def draw(run: WaterfallRun, path: Path) -> None:
    """One horizontal bar per span, coloured by service, the client's total on top; the
    gaps (no span open) in red on the last row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from PIL import Image

    hops = run.hops[:-1]  # the client's receipt is the root's end
    total = run.total_ms
    height = 0.26 * (len(hops) + 1) + 2.0
    fig, ax = plt.subplots(figsize=(11, height), dpi=100)
    labels = []
    for y, hop in enumerate(hops):
        colour = COLOURS.get(hop.service, "#17becf")
        ax.barh(
            y,
            max(hop.duration_ms, total / 600),
            left=hop.start_ms,
            height=0.7,
            color=colour,
            alpha=0.45 if hop.name in CONTAINERS else 1.0,
        )
        ax.text(
            hop.start_ms + hop.duration_ms + total / 200,
            y,
            f"{hop.duration_ms:.2f}",
            va="center",
            fontsize=7,
        )
        labels.append(hop.name)
    for hop in run.hops[1:]:
        if not math.isnan(hop.gap_ms) and hop.gap_ms > 0:
            ax.barh(
                len(hops), hop.gap_ms, left=hop.start_ms - hop.gap_ms, height=0.7, color=GAP_COLOUR
            )
    labels.append(f"no span open: {run.uncovered_ms:.1f} ms")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, total * 1.08)
    ax.set_xlabel("ms since the client called CreateJob")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(
        f"One noop job (3 steps), the median of {run.complete} traced: {total:.1f} ms "
        "submit -> terminal event\n(traced stack: spans recorded and exported, "
        "so slower than the untraced idle-latency figures)",
        fontsize=10,
    )
    services = [s for s in COLOURS if any(h.service == s for h in hops)]
    handles = [Patch(color=COLOURS[s], label=s) for s in services]
    handles.append(Patch(color=GAP_COLOUR, label="between spans"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.5 / height, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    # A palette of a few dozen colours: a third of the bytes, the same picture.
    Image.open(path).convert("RGB").quantize(48, Image.Quantize.MEDIANCUT).save(path, optimize=True)
