"""Fairness: how long a light user's job waits for its first step while a heavy user's
backlog saturates the workers, with the fair dispatcher and without it; and what the
dispatcher costs when nobody floods.

Two stacks of their own, up at once, each with the bench's settings and worker slots
(``Config.stack_env``: 32 slots): *fair* (the defaults: a window of what the workers take
in ``DISPATCH_WINDOW_S``, 30 ms, at least ``DISPATCH_WINDOW``, 4) and *FIFO*
(``DISPATCH_WINDOW`` 1,000,000: the gate never holds, every step attempt goes straight to
JetStream, first in first out: the single queue). Each measurement is taken on one stack,
then at once on the other, while the other stands idle (``run_interleaved``): the two
figures compared are seconds apart, not a minute, on a machine whose speed drifts by a
third from one minute to the next. The measurements, in order:

1. *the common case*: ``run_throughput`` (``bench.throughput``) of ``Config.jobs`` plain
   ``noop`` jobs with ``IN_FLIGHT`` CreateJob calls in flight; then the same run with its
   jobs from ``MANY_USERS`` users in turn: the common case of a shared system, where each
   user's first two jobs are newcomers' while the gate holds. The dispatchers' word
   (``jobs.dispatch.mode``) is followed meanwhile, to show how long the gate held (step
   attempts into the ready queue).
2. *idle*: ``run_probes`` (``bench.latency``): ``Config.latency_probes`` jobs one at a
   time, submit -> terminal event seen; then the light user alone, ``LIGHT_JOBS`` jobs one
   after another (each to its end before the next), timed to their first step.
3. *the flood*: the heavy user (the harness's own user) submits ``HEAVY_JOBS`` noop jobs of
   ``HEAVY_SLEEP_MS`` a step, ``IN_FLIGHT`` calls in flight, through ``run_throughput``,
   which times its jobs/s. Once its every CreateJob is answered (its backlog waiting), the
   light user submits ``LIGHT_JOBS`` jobs, one every ``LIGHT_SPACING_S`` (open loop: a job
   does not wait for the one before), each watched from its CreateJob's answer. A job holds
   a worker slot for all three steps (the second and third are handed to the same slot),
   so the 32 slots take a new first step only as fast as jobs finish.

*Time to first step* is from CreateJob's return to the job's first ``STEP_STARTED`` on the
client's own WatchJob stream (``seen``): what the user sees. The event's ``occurred_at``
(the orchestrator's clock, the same value as in ``job_events``) is kept beside it
(``started``): ``seen - started`` is the notifier's delivery, or the stream's opening
when the step started first (the stream's first event, CREATED, is kept too:
``established``). A first step's
``STEP_STARTED`` is written when the orchestrator handles the worker's first report on it:
the light user's jobs sleep 0 ms, so that report is the step's result, a few ms after the
worker took it (the heavy user's is its half-way progress report).

Read back afterwards from ``jobs`` and ``job_events``: how many of the heavy user's first
steps started between a light job's CreateJob and its own (their ``STEP_STARTED`` is stamped
as the orchestrator handles their reports, which it does in batches, so this moves in
jumps); the heavy user's jobs
created and not yet started at the light user's first CreateJob, its last and its last
job's first step (saturation held through the measurement); and the heavy user's jobs
finished a second meanwhile. With the fair dispatcher a released attempt still queues in
JetStream behind up to a window of others, which drain only as fast as jobs finish, so
``DISPATCH_WINDOW`` over that rate is shown beside the light jobs' mean wait in the ready
queue (the orchestrators' ``jobs_ready_wait_seconds``, the light user's bucket).

While the light user's jobs run, alone and under the flood, a process of its own sleeps
1 ms at a time and notes how late each sleep ends (``bench.wakeups``): the machine's own
delay in waking a process, which every hop of a job meets, shown beside the figures.

One run of each measurement a round, whatever ``--runs`` (the phase takes about two
minutes on the 2-core box); ``--rounds 2`` runs it twice, the FIFO stack first in each
pair the second time, and the table shows medians and ranges. Each measurement's CPU
calibration is shown beside it.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import math
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

import asyncpg
import grpc
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from prometheus_client.parser import text_string_to_metric_families

from devstack import Stack
from jobkit import bus
from jobkit.gen.jobs.v1 import jobs_pb2, notifier_service_pb2
from jobtypes.noop.spec import PREPARE
from services.orchestrator.dispatcher import user_bucket

from .harness import TERMINAL_EVENTS, Harness, event_time, noop_request, published_events
from .latency import LatencyRun, run_probes
from .procs import CpuMeter
from .stats import Spread, finite, percentile
from .tables import table
from .throughput import ThroughputRun, run_throughput
from .wakeups import Wakeups, probe

if TYPE_CHECKING:
    from .runner import Config

T = TypeVar("T")

FAIR = "fair"
FIFO = "fifo"
MODES = (FAIR, FIFO)
#: The measurements on each stack, each once the machine is quiet: the phase names under
#: which ``runner._guarded`` records them are ``phase_name(mode, measurement)``.
MEASUREMENTS = ("throughput", "many", "idle", "flood")
#: ``DISPATCH_WINDOW`` with the fair dispatcher off: the gate never holds.
OFF_WINDOW = 1_000_000
#: The defaults the fair stack runs with (not set: the orchestrator's own): the window
#: covers what the workers take in ``DEFAULT_WINDOW_S``, and at least ``DEFAULT_WINDOW``.
DEFAULT_WINDOW = 4
DEFAULT_WINDOW_S = 0.03
#: CreateJob calls in flight for the throughput run and the heavy user's flood.
IN_FLIGHT = 64
#: The common case from many users: the throughput run's jobs, from this many users in
#: turn (each user's first two are newcomers', while the gate holds).
MANY_USERS = 200
#: (full, quick): the heavy user's jobs, the light user's jobs (each measurement).
HEAVY_JOBS = (3000, 600)
LIGHT_JOBS = (100, 10)
#: The heavy user's wait per step: 3 x 50 ms of a slot a job.
HEAVY_SLEEP_MS = 50
#: Between the light user's CreateJob calls under the flood.
LIGHT_SPACING_S = 0.1
#: The heavy user is the harness's own user; the light one gets a token of its own.
HEAVY = "bench"
LIGHT = "bench-light"


class Guard(Protocol):
    """``runner._guarded`` for one stack: run ``body`` once the machine is quiet and record
    how busy others kept it, under the phase name ``name``."""

    def __call__(
        self, cpu: CpuMeter, name: str, body: Callable[[], Awaitable[T]]
    ) -> Awaitable[T]: ...


@dataclass(frozen=True, slots=True)
class FirstStep:
    """One light job: CreateJob's round trip, then from its return to the first step."""

    create_ms: float
    #: CreateJob's return -> STEP_STARTED's occurred_at (the orchestrator's clock).
    started_ms: float
    #: CreateJob's return -> STEP_STARTED received on the client's WatchJob stream.
    seen_ms: float
    succeeded: bool
    #: CreateJob's return -> the stream's first event (CREATED, always replayed): how long
    #: opening the stream took, which ``seen_ms`` includes when the step started first.
    established_ms: float
    #: Wall clock: CreateJob's return and STEP_STARTED's occurred_at (to read job_events).
    returned_at: float
    started_at: float
    #: The heavy user's first steps started in between (``job_events``): waited behind.
    ahead: int = 0
    #: CreateJob's return -> STEP_STARTED's arrival on NATS (``jobs.events.<job>``, where
    #: the notifier hears it, just after the orchestrator's commit): between ``started_ms``
    #: and ``seen_ms``, it splits the commit from the event's way to the client. NaN if the
    #: event was published before the harness listened.
    published_ms: float = math.nan


@dataclass
class FloodRun:
    heavy_jobs: int
    light_jobs: int
    heavy: ThroughputRun
    #: The flood's start -> the heavy user's last CreateJob answered: the light user's cue.
    submitted_s: float = math.nan
    light: list[FirstStep] = field(default_factory=list)
    light_errors: list[str] = field(default_factory=list)
    #: The heavy user's jobs created and not yet started: when the light user began (its
    #: first CreateJob answered), at its last CreateJob's answer, at its last first step.
    backlog_at_first: int = 0
    backlog_at_last_submit: int = 0
    backlog_at_last_start: int = 0
    #: The heavy user's jobs finished a second from the light user's first CreateJob's
    #: answer to its last first step: how fast a queue in front of it drained.
    heavy_rate_meanwhile: float = math.nan
    #: The light jobs' wait in the ready queue (the orchestrators' histogram): their count
    #: and mean; nothing waits there without the fair dispatcher.
    ready_waits: int = 0
    ready_wait_ms: float = math.nan
    #: Seconds the dispatch gate held (step attempts into the ready queue) over the flood.
    held_s: float = 0.0
    #: How late the machine woke a sleeping process while the light user's jobs ran.
    wakeups: Wakeups = field(default_factory=Wakeups)

    def p(self, q: float, attribute: str = "seen_ms") -> float:
        return percentile(_figures(self.light, attribute), q)

    @property
    def unsucceeded(self) -> int:
        return sum(1 for x in self.light if not x.succeeded) + len(self.light_errors)

    def window_wait_ms(self, window: int) -> float:
        """What the window ahead takes to drain at the rate the heavy user's jobs finished
        meanwhile (a job takes a slot's next first step only once it is done): the window
        is what the workers take in ``DEFAULT_WINDOW_S`` at that rate, at least
        ``window``."""
        rate = self.heavy_rate_meanwhile
        if rate <= 0:
            return math.nan
        return 1000 * max(window, math.ceil(rate * DEFAULT_WINDOW_S)) / rate

    def as_json(self) -> dict[str, object]:
        return {
            "heavy_jobs": self.heavy_jobs,
            "heavy_sleep_ms": HEAVY_SLEEP_MS,
            "light_jobs": self.light_jobs,
            "light_spacing_s": LIGHT_SPACING_S,
            "heavy": self.heavy.as_json(),
            "heavy_jobs_per_s": self.heavy.jobs_per_s,
            "heavy_submitted_s": finite(self.submitted_s),
            **_first_step_json(self.light),
            "light_ahead_p50": finite(self.p(50, "ahead")),
            "light_ahead_max": max((x.ahead for x in self.light), default=None),
            "light_errors": self.light_errors,
            "light_unsucceeded": self.unsucceeded,
            "backlog_at_first_light": self.backlog_at_first,
            "backlog_at_last_light_submit": self.backlog_at_last_submit,
            "backlog_at_last_light_start": self.backlog_at_last_start,
            "heavy_jobs_per_s_meanwhile": finite(self.heavy_rate_meanwhile),
            "light_ready_waits": self.ready_waits,
            "light_ready_wait_mean_ms": finite(self.ready_wait_ms),
            "gate_held_s": self.held_s,
            "wakeups": self.wakeups.as_json(),
        }


@dataclass
class FairMode:
    """One stack's figures: ``mode`` is ``FAIR`` or ``FIFO``."""

    mode: str
    window: int
    #: Worker slots, all workers together.
    slots: int
    throughput: ThroughputRun
    throughput_held_s: float
    idle: LatencyRun
    idle_first: list[FirstStep]
    flood: FloodRun
    #: Seconds the gate held during the idle runs (none expected: nothing saturates).
    idle_held_s: float = 0.0
    #: How late the machine woke a sleeping process while the light user ran alone.
    idle_wakeups: Wakeups = field(default_factory=Wakeups)
    seconds: float = 0.0
    #: The throughput run again, its jobs from ``MANY_USERS`` users in turn.
    many: ThroughputRun | None = None
    many_held_s: float = 0.0
    #: By measurement (``MEASUREMENTS``): ``procs.calibrate()`` just before it (ms for a
    #: fixed loop: the machine's speed then, lower is faster), and how much of the machine
    #: other processes used during it, in %. Filled in by the runner (``runner._fair``).
    calibration_ms: dict[str, float] = field(default_factory=dict)
    others_pct: dict[str, float] = field(default_factory=dict)

    @property
    def cpu_ms_per_job(self) -> float:
        """The throughput run's CPU per job, all measured processes (harness included)."""
        return _cpu_ms_per_job(self.throughput)

    def idle_p(self, q: float, attribute: str = "seen_ms") -> float:
        return percentile(_figures(self.idle_first, attribute), q)

    def as_json(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "dispatch_window": self.window,
            "worker_slots": self.slots,
            "throughput": self.throughput.as_json(),
            "throughput_in_flight": IN_FLIGHT,
            "throughput_gate_held_s": self.throughput_held_s,
            "throughput_cpu_ms_per_job": finite(self.cpu_ms_per_job),
            "many_users": MANY_USERS,
            "many": self.many.as_json() if self.many else None,
            "many_cpu_ms_per_job": finite(_cpu_ms_per_job(self.many)),
            "many_gate_held_s": self.many_held_s,
            "idle_gate_held_s": self.idle_held_s,
            "idle_latency": self.idle.as_json(),
            "idle_first_step": _first_step_json(self.idle_first),
            "idle_wakeups": self.idle_wakeups.as_json(),
            "flood": self.flood.as_json(),
            "seconds": self.seconds,
            "calibration_ms": self.calibration_ms,
            "others_cpu_pct_of_machine": self.others_pct,
        }


def _figures(steps: Sequence[FirstStep], attribute: str) -> list[float]:
    """One figure of each light job that has it (``published_ms`` is NaN where the event
    went out before the harness listened)."""
    return [v for x in steps if math.isfinite(v := getattr(x, attribute))]


def _first_step_json(steps: list[FirstStep]) -> dict[str, object]:
    def p(q: float, attribute: str) -> float | None:
        return finite(percentile(_figures(steps, attribute), q))

    return {
        "jobs": len(steps),
        "seen_ms_p50": p(50, "seen_ms"),
        "seen_ms_p99": p(99, "seen_ms"),
        "started_ms_p50": p(50, "started_ms"),
        "started_ms_p99": p(99, "started_ms"),
        "create_ms_p50": p(50, "create_ms"),
        "established_ms_p50": p(50, "established_ms"),
        "established_ms_p99": p(99, "established_ms"),
        "published_ms_p50": p(50, "published_ms"),
        "published_ms_p99": p(99, "published_ms"),
        "seen_ms_samples": [round(x.seen_ms, 3) for x in steps],
        "started_ms_samples": [round(x.started_ms, 3) for x in steps],
        "established_ms_samples": [round(x.established_ms, 3) for x in steps],
        "published_ms_samples": [finite(round(x.published_ms, 3)) for x in steps],
        "ahead_samples": [x.ahead for x in steps],
    }


class GateWatch:
    """The dispatchers' word on ``jobs.dispatch.mode``: when the gate held and opened."""

    def __init__(self) -> None:
        self.changes: list[tuple[float, bool]] = []
        self._sub: Subscription | None = None

    async def start(self, harness: Harness) -> None:
        self._sub = await harness.nc.subscribe(bus.DISPATCH_MODE_SUBJECT, cb=self._on_mode)

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()

    async def _on_mode(self, msg: Msg) -> None:
        held = _held(msg.data)
        if held is not None and (not self.changes or self.changes[-1][1] != held):
            self.changes.append((time.monotonic(), held))

    def held_s(self, start: float, end: float) -> float:
        """Seconds held within [start, end] (monotonic): open until the first word."""
        total = 0.0
        held_since: float | None = None
        for at, held in [*self.changes, (end, False)]:
            at = min(max(at, start), end)
            if held and held_since is None:
                held_since = at
            elif not held and held_since is not None:
                total += at - held_since
                held_since = None
        return total


def _held(data: bytes) -> bool | None:
    """Whether a word on ``jobs.dispatch.mode`` says held: ``held``/``open``, or a JSON
    object with ``held``; ``None`` for a word not understood."""
    if data in (b"held", b"open"):
        return data == b"held"
    with contextlib.suppress(ValueError, TypeError, KeyError):
        return bool(json.loads(data)["held"])
    return None


async def first_step(
    harness: Harness, metadata: tuple[tuple[str, str], ...], channel: int = 0
) -> FirstStep:
    """One light job: CreateJob, then its WatchJob stream from the answer to the end."""
    request = noop_request()
    sent = time.perf_counter()
    job = await harness.api[channel % len(harness.api)].CreateJob(
        request, metadata=metadata, timeout=30
    )
    returned = time.perf_counter()
    returned_at = time.time()
    published: dict[int, float] = {}

    async def on_published(msg: Msg) -> None:
        now = time.perf_counter()
        for _, sequence in published_events(msg.data):
            published.setdefault(sequence, now)

    # Listening where the notifier listens: the event arrives at both at once.
    tap = await harness.nc.subscribe(bus.events_subject(job.job_id), cb=on_published)
    call = harness.notifier[channel % len(harness.notifier)].WatchJob(
        notifier_service_pb2.WatchJobRequest(job_id=job.job_id), metadata=metadata, timeout=300
    )
    seen = started_at = established = math.nan
    started_sequence: int | None = None
    final: jobs_pb2.JobEvent | None = None
    try:
        async for event in call:
            if math.isnan(established):
                established = time.perf_counter()
            if event.type == jobs_pb2.JOB_EVENT_TYPE_STEP_STARTED and math.isnan(seen):
                seen = time.perf_counter()
                started_at = event_time(event)
                started_sequence = event.sequence
            if event.type in TERMINAL_EVENTS:
                final = event
                break
    finally:
        call.cancel()
        await tap.unsubscribe()
    if final is None:
        raise RuntimeError(f"the stream of job {job.job_id} ended without a terminal event")
    arrived = math.nan if started_sequence is None else published.get(started_sequence, math.nan)
    return FirstStep(
        create_ms=(returned - sent) * 1000,
        started_ms=(started_at - returned_at) * 1000,
        seen_ms=(seen - returned) * 1000,
        succeeded=final.type == jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED,
        established_ms=(established - returned) * 1000,
        returned_at=returned_at,
        started_at=started_at,
        published_ms=(arrived - returned) * 1000,
    )


async def light_alone(harness: Harness, jobs: int) -> tuple[list[FirstStep], Wakeups]:
    """The light user alone: ``jobs`` jobs one after another, each to its end; and the
    machine's wake-ups meanwhile."""
    metadata = harness.metadata_of(LIGHT)
    async with probe() as wakeups:
        steps = [await first_step(harness, metadata) for _ in range(jobs)]
    return steps, wakeups


def scrape_metrics(urls: list[str]) -> str:
    """The orchestrators' metrics pages, joined (blocking: run in a thread)."""
    pages = []
    for url in urls:
        with urllib.request.urlopen(url, timeout=5) as reply:  # noqa: S310 - our loopback
            pages.append(reply.read().decode())
    return "\n".join(pages)


async def ready_waits(stack: Stack, owner: str) -> tuple[float, float]:
    """(count, sum in s) of ``owner``'s bucket in ``jobs_ready_wait_seconds``, every
    orchestrator and priority together."""
    urls = [s.metrics_url for name, s in stack.services.items() if name.startswith("orchestrator")]
    text = await asyncio.to_thread(scrape_metrics, urls)
    bucket = user_bucket(owner)
    count = total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "jobs_ready_wait_seconds":
            continue
        for sample in family.samples:
            if sample.labels.get("user_bucket") != bucket:
                continue
            if sample.name.endswith("_count"):
                count += sample.value
            elif sample.name.endswith("_sum"):
                total += sample.value
    return count, total


async def run_flood(
    harness: Harness,
    mode: str,
    heavy_jobs: int,
    light_jobs: int,
    gate: GateWatch,
    say: Callable[[str], None],
) -> FloodRun:
    """The heavy user's flood and, once its every CreateJob is answered (its backlog
    waiting), the light user's jobs, one every ``LIGHT_SPACING_S``."""
    stack = harness.stack
    assert stack.postgres is not None
    # The harness's own connection is the throughput run's (one query at a time).
    pg = await asyncpg.connect(stack.postgres.url)
    try:
        began_at = datetime.now(UTC)
        began = time.monotonic()
        waits_before = await ready_waits(stack, LIGHT)
        submitted = asyncio.Event()
        heavy_task = asyncio.create_task(
            run_throughput(
                harness,
                heavy_jobs,
                IN_FLIGHT,
                request=noop_request(sleep_ms=HEAVY_SLEEP_MS),
                submitted=submitted,
            )
        )
        await submitted.wait()
        submitted_s = time.monotonic() - began
        say(
            f"fairness, {mode}: the heavy user's {heavy_jobs} CreateJobs answered in "
            f"{submitted_s:.1f}s; the light user submits {light_jobs} jobs, one every "
            f"{LIGHT_SPACING_S * 1000:.0f} ms"
        )
        metadata = harness.metadata_of(LIGHT)
        probes: list[asyncio.Task[FirstStep]] = []
        async with probe() as wakeups:
            start = time.monotonic()
            for n in range(light_jobs):
                await asyncio.sleep(max(0.0, start + n * LIGHT_SPACING_S - time.monotonic()))
                probes.append(asyncio.create_task(first_step(harness, metadata, channel=n)))
            answers = await asyncio.gather(*probes, return_exceptions=True)
        heavy = await heavy_task
        run = FloodRun(heavy_jobs, light_jobs, heavy, submitted_s, wakeups=wakeups)
        run.held_s = gate.held_s(began, time.monotonic())
        for answer in answers:
            if isinstance(answer, FirstStep):
                run.light.append(answer)
            elif isinstance(answer, grpc.aio.AioRpcError):
                run.light_errors.append(f"{answer.code().name}: {answer.details()}")
            else:
                run.light_errors.append(repr(answer))
        count, total = await ready_waits(stack, LIGHT)
        run.ready_waits = round(count - waits_before[0])
        # Owners are counted in hashed buckets: the light user's must be its own.
        if run.ready_waits and user_bucket(LIGHT) != user_bucket(HEAVY):
            run.ready_wait_ms = 1000 * (total - waits_before[1]) / run.ready_waits
        await _read_back(pg, run, began_at)
        return run
    finally:
        await pg.close()


async def _read_back(pg: asyncpg.Connection, run: FloodRun, began_at: datetime) -> None:
    """From ``jobs`` and ``job_events``: the heavy user's first steps each light job waited
    behind, its backlog at the light user's marks, and its jobs finished meanwhile."""
    rows = await pg.fetch(
        """SELECT extract(epoch FROM j.created_at)::float8 AS created,
                  extract(epoch FROM j.finished_at)::float8 AS finished,
                  (SELECT extract(epoch FROM min(e.occurred_at))::float8 FROM job_events AS e
                   WHERE e.job_id = j.id AND e.type = 'STEP_STARTED' AND e.step = $3)
                      AS started
           FROM jobs AS j
           WHERE j.owner = $1 AND j.created_at >= $2""",
        HEAVY,
        began_at,
        PREPARE,
    )
    starts = sorted(r["started"] for r in rows if r["started"] is not None)

    def ahead(x: FirstStep) -> int:
        if math.isnan(x.started_at):
            return 0
        return bisect.bisect_right(starts, x.started_at) - bisect.bisect_right(
            starts, x.returned_at
        )

    def backlog(at: float) -> int:
        return sum(
            1 for r in rows if r["created"] <= at and (r["started"] is None or r["started"] > at)
        )

    run.light = [replace(x, ahead=ahead(x)) for x in run.light]
    if not run.light:
        return
    first = min(x.returned_at for x in run.light)
    last = max((x.started_at for x in run.light if math.isfinite(x.started_at)), default=first)
    run.backlog_at_first = backlog(first)
    run.backlog_at_last_submit = backlog(max(x.returned_at for x in run.light))
    run.backlog_at_last_start = backlog(last)
    if last > first:
        finished = sum(
            1 for r in rows if r["finished"] is not None and first < r["finished"] <= last
        )
        run.heavy_rate_meanwhile = finished / (last - first)


@asynccontextmanager
async def fair_stack(
    config: Config, root: Path, mode: str, say: Callable[[str], None]
) -> AsyncIterator[Harness]:
    """The mode's own stack (the bench's settings; FIFO: the gate never holds)."""
    env = dict(config.stack_env)
    if mode == FIFO:
        env["DISPATCH_WINDOW"] = str(OFF_WINDOW)
    stack = Stack(
        root / f"fair-{mode}",
        extra_env=env,
        workers=config.replicas,
        orchestrators=config.replicas,
    )
    say(
        f"fairness: starting a stack of its own, {mode_label(mode)}, WORKER_CONCURRENCY="
        f"{env['WORKER_CONCURRENCY']}"
    )
    try:
        started = time.monotonic()
        await asyncio.to_thread(stack.start)
        say(f"fairness: stack ready in {time.monotonic() - started:.1f}s")
        harness = await Harness.open(
            stack, api_channels=config.api_channels, notifier_channels=config.notifier_channels
        )
        try:
            yield harness
        finally:
            await harness.close()
    finally:
        await asyncio.to_thread(stack.stop)


def phase_name(mode: str, measurement: str) -> str:
    return f"fairness, {mode}: {measurement}"


def mode_label(mode: str) -> str:
    if mode == FAIR:
        return (
            f"fair dispatcher (the defaults: DISPATCH_WINDOW {DEFAULT_WINDOW}, "
            f"DISPATCH_WINDOW_S {DEFAULT_WINDOW_S})"
        )
    return f"FIFO, the single queue (DISPATCH_WINDOW {OFF_WINDOW:,})"


def sizes(config: Config) -> tuple[int, int]:
    """(heavy user's jobs, light user's jobs) for this run."""
    pick = 1 if config.quick else 0
    return HEAVY_JOBS[pick], LIGHT_JOBS[pick]


@dataclass
class _Taken:
    """What one stack's measurements gave so far (``ModeRun``)."""

    tp: ThroughputRun | None = None
    held: float = 0.0
    many: ThroughputRun | None = None
    many_held: float = 0.0
    idle: LatencyRun | None = None
    alone: list[FirstStep] = field(default_factory=list)
    alone_wakeups: Wakeups = field(default_factory=Wakeups)
    idle_held: float = 0.0
    flood: FloodRun | None = None


class ModeRun:
    """One mode's stack, measured one measurement at a time (``measure``), so that the two
    stacks' measurements of the same thing can follow each other (``run_interleaved``)."""

    def __init__(
        self,
        config: Config,
        mode: str,
        harness: Harness,
        say: Callable[[str], None],
        guard: Guard,
    ) -> None:
        self.mode = mode
        self._config = config
        self._harness = harness
        self._say = say
        self._guard = guard
        self._cpu = CpuMeter(harness.watched())
        self._gate = GateWatch()
        self._taken = _Taken()
        #: The time spent on this stack's own warm-up and measurements.
        self._busy_s = 0.0

    async def start(self) -> None:
        """Follow the dispatchers' word, and warm the stack up."""
        with self._busy():
            await self._warm_up()

    async def _warm_up(self) -> None:
        harness = self._harness
        await self._gate.start(harness)
        warmup = await run_throughput(harness, self._config.warmup_jobs, IN_FLIGHT)
        await harness.quiesce()
        self._say(
            f"fairness, {self.mode}: warm-up {warmup.accepted} jobs, "
            f"{warmup.jobs_per_s:,.0f} jobs/s"
        )

    async def stop(self) -> None:
        await self._gate.stop()

    @contextlib.contextmanager
    def _busy(self) -> Iterator[None]:
        """Count the block's time as this stack's own."""
        began = time.monotonic()
        try:
            yield
        finally:
            self._busy_s += time.monotonic() - began

    async def _measured(self, name: str, body: Callable[[], Awaitable[T]]) -> tuple[T, float]:
        """``body`` under the guard as this stack's measurement ``name``: what it returns
        and the seconds the gate held meanwhile; then the stack is let go idle."""
        start = time.monotonic()
        result = await self._guard(self._cpu, phase_name(self.mode, name), body)
        held = self._gate.held_s(start, time.monotonic())
        await self._harness.quiesce()
        return result, held

    async def measure(self, name: str) -> None:
        """Take measurement ``name`` (one of ``MEASUREMENTS``)."""
        with self._busy():
            await self._measure(name)

    async def _measure(self, name: str) -> None:
        config, harness, mode, say, taken = (
            self._config,
            self._harness,
            self.mode,
            self._say,
            self._taken,
        )
        heavy_jobs, light_jobs = sizes(config)
        if name == "throughput":
            tp, held = await self._measured(
                name, lambda: run_throughput(harness, config.jobs, IN_FLIGHT, self._cpu)
            )
            taken.tp, taken.held = tp, held
            say(
                f"fairness, {mode}: throughput {tp.accepted} jobs, {IN_FLIGHT} in flight, "
                f"{tp.jobs_per_s:,.0f} jobs/s (all SUCCEEDED: {'yes' if tp.ok else 'NO'}; gate "
                f"held {held:.1f}s of {tp.seconds:.1f}s)"
            )
        elif name == "many":
            many, held = await self._measured(
                name,
                lambda: run_throughput(
                    harness, config.jobs, IN_FLIGHT, self._cpu, users=MANY_USERS
                ),
            )
            taken.many, taken.many_held = many, held
            say(
                f"fairness, {mode}: throughput from {MANY_USERS} users, {many.accepted} jobs, "
                f"{many.jobs_per_s:,.0f} jobs/s (all SUCCEEDED: {'yes' if many.ok else 'NO'}; "
                f"gate held {held:.1f}s of {many.seconds:.1f}s)"
            )
        elif name == "idle":

            async def idle_both() -> tuple[LatencyRun, tuple[list[FirstStep], Wakeups]]:
                return await run_probes(harness, config.latency_probes), await light_alone(
                    harness, light_jobs
                )

            (idle, (alone, wakeups)), taken.idle_held = await self._measured(name, idle_both)
            taken.idle, taken.alone, taken.alone_wakeups = idle, alone, wakeups
            say(
                f"fairness, {mode}: idle latency {len(idle.probes)} jobs one at a time, p50 "
                f"{idle.p(50):.1f} ms, p99 {idle.p(99):.1f} ms; light user alone, time to "
                f"first step p50 "
                f"{percentile([x.seen_ms for x in alone], 50):.1f} ms, p99 "
                f"{percentile([x.seen_ms for x in alone], 99):.1f} ms"
            )
        elif name == "flood":
            flood, _ = await self._measured(
                name,
                lambda: run_flood(harness, mode, heavy_jobs, light_jobs, self._gate, say),
            )
            taken.flood = flood
            say(
                f"fairness, {mode}: flood of {flood.heavy.accepted} heavy jobs at "
                f"{flood.heavy.jobs_per_s:,.0f} jobs/s; light user's time to first step p50 "
                f"{flood.p(50):.0f} ms, p99 {flood.p(99):.0f} ms, behind a median "
                f"{flood.p(50, 'ahead'):.0f} heavy jobs; heavy backlog at its last start "
                f"{flood.backlog_at_last_start}; gate held {flood.held_s:.1f}s"
            )
        else:
            raise ValueError(f"no such measurement: {name}")

    def result(self) -> FairMode:
        taken = self._taken
        assert taken.tp is not None
        assert taken.idle is not None
        assert taken.flood is not None
        return FairMode(
            self.mode,
            DEFAULT_WINDOW if self.mode == FAIR else OFF_WINDOW,
            self._config.worker_slots,
            taken.tp,
            taken.held,
            taken.idle,
            taken.alone,
            taken.flood,
            idle_held_s=taken.idle_held,
            idle_wakeups=taken.alone_wakeups,
            seconds=self._busy_s,
            many=taken.many,
            many_held_s=taken.many_held,
        )


async def run_interleaved(
    config: Config,
    root: Path,
    modes: Sequence[str],
    say: Callable[[str], None],
    guard: Guard,
    *,
    on_open: Callable[[Harness], Awaitable[None]] | None = None,
    on_failure: Callable[[str, BaseException], None] | None = None,
) -> list[FairMode]:
    """Every mode's stack up at once; each measurement taken on one stack, then on the
    next (in ``modes``' order), before the next measurement: a pair of figures a few
    seconds apart, not a minute, on a machine whose speed drifts. The stack not measuring
    stays idle meanwhile (its idle use counts as others'). A mode that fails
    (``on_failure``; raised without it) is stopped at once, its stack with it, so that its
    work does not weigh on the others, which go on; a stack that fails to stop after its
    measurements is reported the same way and its figures kept. ``on_open`` is called with
    each harness once its stack is up."""

    def failed(mode: str, error: Exception) -> None:
        if on_failure is None:
            raise error
        on_failure(mode, error)

    async def close(mode: str, own: contextlib.AsyncExitStack) -> None:
        try:
            await own.aclose()
        except Exception as error:
            failed(mode, error)

    runs: list[tuple[ModeRun, contextlib.AsyncExitStack]] = []
    try:
        for mode in modes:
            own = contextlib.AsyncExitStack()
            try:
                harness = await own.enter_async_context(fair_stack(config, root, mode, say))
                if on_open is not None:
                    await on_open(harness)
                run = ModeRun(config, mode, harness, say, guard)
                own.push_async_callback(run.stop)
                await run.start()
            except Exception as error:
                await close(mode, own)
                failed(mode, error)
                continue
            runs.append((run, own))
        for name in MEASUREMENTS:
            for run, own in list(runs):
                try:
                    await run.measure(name)
                except Exception as error:
                    runs.remove((run, own))
                    await close(run.mode, own)
                    failed(run.mode, error)
        return [run.result() for run, _ in runs]
    finally:
        for run, own in runs:
            await close(run.mode, own)


def problems(mode: FairMode) -> list[str]:
    """What makes a mode's figures suspect: the warnings."""
    out = []
    name = mode_label(mode.mode)
    if not mode.throughput.ok:
        t = mode.throughput
        out.append(
            f"fairness, {name}: throughput {t.accepted}/{t.jobs} accepted, {t.succeeded} "
            f"succeeded, errors {t.errors}"
        )
    if mode.many is not None and not mode.many.ok:
        m = mode.many
        out.append(
            f"fairness, {name}: the throughput from {MANY_USERS} users {m.accepted}/{m.jobs} "
            f"accepted, {m.succeeded} succeeded, errors {m.errors}"
        )
    if not mode.flood.heavy.ok:
        h = mode.flood.heavy
        out.append(
            f"fairness, {name}: the flood's {h.accepted}/{h.jobs} accepted, {h.succeeded} "
            f"succeeded, errors {h.errors}"
        )
    failed = sum(1 for x in mode.idle_first if not x.succeeded) + mode.idle.failures
    if failed or mode.flood.unsucceeded:
        out.append(
            f"fairness, {name}: {failed} idle and {mode.flood.unsucceeded} flood light jobs did "
            f"not succeed {mode.flood.light_errors[:3]}"
        )
    flood = mode.flood
    # Without the fair dispatcher the light user's last job is behind the whole backlog,
    # so it was the last to start; with it, the backlog should outlast the light user.
    if flood.backlog_at_last_submit == 0 or (
        mode.mode == FAIR and flood.backlog_at_last_start == 0
    ):
        out.append(
            f"fairness, {name}: the heavy user's backlog was gone before the light user was "
            "done: the flood did not last the measurement"
        )
    return out


def _cpu_ms_per_job(run: ThroughputRun | None) -> float:
    """A throughput run's CPU per job, all measured processes (harness included)."""
    if run is None or not run.cpu_s or not run.accepted:
        return math.nan
    return 1000 * sum(run.cpu_s.values()) / run.accepted


# The report.


def _spread(modes: list[FairMode], value: Callable[[FairMode], float]) -> Spread:
    return Spread.of([value(m) for m in modes])


def _num(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}" if math.isfinite(value) else "-"


def _cell(s: Spread, digits: int) -> str:
    if not s.runs or not math.isfinite(s.median):
        return "-"
    if len(s.runs) == 1:
        return _num(s.median, digits)
    return f"{_num(s.median, digits)} [{_num(s.low, digits)}-{_num(s.high, digits)}]"


def lines(modes: list[FairMode]) -> list[str]:
    """The phase's table: fair and FIFO side by side, medians over the runs of each."""
    if not modes:
        return []
    fair = [m for m in modes if m.mode == FAIR]
    fifo = [m for m in modes if m.mode == FIFO]
    first = modes[0]
    flood = first.flood
    tp = first.throughput

    def row(
        figure: str,
        value: Callable[[FairMode], float],
        digits: int,
        ratio: bool = True,
        ratio_digits: int = 2,
    ) -> list[str]:
        a, b = _spread(fair, value), _spread(fifo, value)
        return [
            figure,
            _cell(a, digits),
            _cell(b, digits),
            _cell(Spread.ratio(a, b), ratio_digits) if ratio and a.runs and b.runs else "",
        ]

    def flood_over(q: float, idle_q: float) -> Callable[[FairMode], float]:
        return lambda m: m.flood.p(q) / m.idle_p(idle_q)

    def heading(text: str) -> list[str]:
        return [text, "", "", ""]

    def calibration(measurement: str) -> list[str]:
        return row(
            "  CPU calibration just before, ms (lower: a faster machine)",
            lambda m: m.calibration_ms.get(measurement, math.nan),
            1,
        )

    def fair_only(m: FairMode) -> float:
        return m.flood.window_wait_ms(m.window) if m.mode == FAIR else math.nan

    body = [
        heading(
            "light user's time to first step, ms: CreateJob's return -> STEP_STARTED on its "
            "WatchJob stream"
        ),
        row(
            f"  idle: alone, {len(first.idle_first)} jobs one after another, p50",
            lambda m: m.idle_p(50),
            1,
        ),
        row("  idle p99", lambda m: m.idle_p(99), 1),
        row(
            f"  flood: {flood.light_jobs} jobs, one every {LIGHT_SPACING_S * 1000:.0f} ms, p50",
            lambda m: m.flood.p(50),
            0,
        ),
        row("  flood p99", lambda m: m.flood.p(99), 0),
        row("  flood p99 / idle p50", flood_over(99, 50), 1, ratio=False),
        row("  flood p99 / idle p99", flood_over(99, 99), 1, ratio=False),
        row(
            "  flood p50 to STEP_STARTED's occurred_at (job_events) instead",
            lambda m: m.flood.p(50, "started_ms"),
            0,
        ),
        row("  flood p99 to occurred_at", lambda m: m.flood.p(99, "started_ms"), 0),
        row(
            "  flood p99 to its arrival on NATS, just after the commit",
            lambda m: m.flood.p(99, "published_ms"),
            0,
        ),
        row(
            "  flood p99 to its stream's first event (the WatchJob opened)",
            lambda m: m.flood.p(99, "established_ms"),
            0,
        ),
        heading(
            "the machine's own wake-up delay meanwhile (a process of its own sleeping 1 ms "
            "at a time), ms late"
        ),
        row("  idle: p50", lambda m: m.idle_wakeups.p(50), 2),
        row("  idle: p99", lambda m: m.idle_wakeups.p(99), 1),
        row("  idle: worst", lambda m: m.idle_wakeups.worst_ms, 0),
        row("  flood: p50", lambda m: m.flood.wakeups.p(50), 2),
        row("  flood: p99", lambda m: m.flood.wakeups.p(99), 1),
        row("  flood: worst", lambda m: m.flood.wakeups.worst_ms, 0),
        row(
            "  flood: wake-ups more than 5 ms late, a second",
            lambda m: m.flood.wakeups.over_per_s(5),
            1,
        ),
        heading("where a light job's wait under the flood went"),
        row(
            "  in the ready queue, mean ms (jobs_ready_wait_seconds)",
            lambda m: m.flood.ready_wait_ms,
            1,
            ratio=False,
        ),
        row(
            "  behind a full window, expected: the window / heavy jobs/s meanwhile, ms",
            fair_only,
            0,
            ratio=False,
        ),
        row(
            "  heavy jobs finished/s meanwhile",
            lambda m: m.flood.heavy_rate_meanwhile,
            0,
            ratio=False,
        ),
        row(
            "  heavy first steps started between its CreateJob and its own, median",
            lambda m: m.flood.p(50, "ahead"),
            0,
            ratio=False,
        ),
        row(
            "  ... max",
            lambda m: max((x.ahead for x in m.flood.light), default=0),
            0,
            ratio=False,
        ),
        heading("the flood: heavy jobs created and not yet started"),
        row("  at the light user's first CreateJob", lambda m: m.flood.backlog_at_first, 0, False),
        row("  at its last CreateJob", lambda m: m.flood.backlog_at_last_submit, 0, ratio=False),
        row(
            "  at its last job's first step",
            lambda m: m.flood.backlog_at_last_start,
            0,
            ratio=False,
        ),
        row("  dispatch gate held, s", lambda m: m.flood.held_s, 1, ratio=False),
        calibration("flood"),
        row(
            f"heavy user's throughput, the flood's {flood.heavy_jobs:,} jobs, jobs/s",
            lambda m: m.flood.heavy.jobs_per_s,
            0,
        ),
        row("  the flood's length, s", lambda m: m.flood.heavy.seconds, 1),
        row(
            "  its CreateJobs all answered after, s",
            lambda m: m.flood.submitted_s,
            1,
        ),
        heading(f"common case: throughput, {tp.jobs:,} plain noop jobs, {IN_FLIGHT} in flight"),
        row("  jobs/s", lambda m: m.throughput.jobs_per_s, 0),
        row("  CPU ms per job, all processes", lambda m: m.cpu_ms_per_job, 2),
        row("  dispatch gate held, s", lambda m: m.throughput_held_s, 1, ratio=False),
        row("  the run's length, s", lambda m: m.throughput.seconds, 1, ratio=False),
        calibration("throughput"),
        heading(f"common case from {MANY_USERS} users: the same jobs, theirs in turn"),
        row("  jobs/s", lambda m: m.many.jobs_per_s if m.many else math.nan, 0),
        row("  CPU ms per job, all processes", lambda m: _cpu_ms_per_job(m.many), 2),
        row("  dispatch gate held, s", lambda m: m.many_held_s, 1, ratio=False),
        calibration("many"),
        heading(
            f"common case: idle latency, {len(first.idle.probes)} jobs one at a time, "
            "submit -> terminal seen, ms"
        ),
        row("  p50", lambda m: m.idle.p(50), 1),
        row("  p99", lambda m: m.idle.p(99), 1),
        row(
            "  dispatch gate held during the idle runs, s",
            lambda m: m.idle_held_s,
            1,
            ratio=False,
        ),
        calibration("idle"),
    ]
    others = max(
        (pct for m in modes for pct in m.others_pct.values() if math.isfinite(pct)),
        default=math.nan,
    )
    runs = f"Median [min-max] of {len(fair)} runs each. " if len(fair) > 1 else ""
    out = [
        "",
        f"fairness: a stack of its own for each column, {first.slots} worker slots. The flood: "
        f"a heavy user submits {flood.heavy_jobs:,} 3-step noop jobs of {HEAVY_SLEEP_MS} ms a "
        f"step, {IN_FLIGHT} in flight; once they are all answered, a light user submits its "
        f"jobs (0 ms steps). {runs}Others' CPU at most {_num(others, 0)}% of the machine.",
    ]
    out += table(
        [
            "",
            f"fair (window {DEFAULT_WINDOW})",
            "FIFO (single queue)",
            "fair / FIFO",
        ],
        body,
        "<>>>",
    )
    return out
