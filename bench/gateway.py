"""The browser gateway's cost: the event latency it adds over WatchJob with 1 and with many
concurrent SSE streams, its memory with those streams open, and CreateJob through
``POST /v1/jobs`` against the same calls made over gRPC.

**Added event latency, paired per event.** Each watcher slot runs the closed loop of
``bench.events`` (create a ``noop`` job with ``sleep_ms`` per step, watch it to its terminal
event, create the next), but watches every job twice from this one process: a WatchJob
stream straight to the notifier (the reference: what a gRPC client gets) and
``GET /v1/jobs/{id}/events`` through the gateway (Server-Sent Events on an HTTP/1.1
connection of its own, read by the small client in ``bench.http1``). Both are watchers of
the same job on the same notifier, which hands an event to all of a job's watchers at the
same moment (their streams then send it in no fixed order). So for each live event seen on
both, *SSE arrival - gRPC arrival* is what the gateway added: its read of the upstream
stream, JSON and SSE encoding, one more loopback hop, and HTTP parsing on this side instead
of gRPC's (this client's parsing is lighter than grpc's, so that share, tens of
microseconds, favours the gateway). Both arrivals are ``time.time()`` in
this process, taken when the task reading that stream gets the event (an application's
view, on both sides alike). The figures are percentiles of these per-event differences; a
few can be negative, since the two readers are separate tasks and either may run first.

As a cross-check, both paths are also timed from the event's arrival on NATS
(``jobs.events.<job>``, which the orchestrator publishes right after its commit and the
notifier subscribes to; the harness listens on it too): publish -> gRPC client and publish
-> SSE client. Their p99s and the difference of the p99s are reported beside the paired
figure.

Live events only, as in ``bench.events``: an event counts when its ``occurred_at`` is later
than the first message on *both* of its job's streams (so neither stream got it from the
replay) and its gRPC arrival falls inside the window. Slots keep running for ``DRAIN_S``
after the window, so an event that reached one side just before the end can reach the
other; a live event seen on gRPC and never on SSE is counted as ``unpaired`` (it should
not happen).

With N slots the notifier serves 2N streams (N of the harness's, N of the gateway's); the
gateway holds N SSE responses and N upstream WatchJob calls on its one channel. Its RSS is
the peak sampled inside the window.

The load generator must not be what is measured. Its CPU in the window is reported, and so
is its event loop's lag (a 5 ms timer's overshoot), which bounds how late it can have taken
any timestamp. With thousands of streams it holds hundreds of thousands of objects, and a
full garbage collection of those would stall it for a large fraction of a second, so it
moves everything it holds at the window's start out of the collector's sight
(``gc.freeze()``) and back after. The gateway is left as it is; how many full collections
it ran inside the window is read from its ``/metrics`` (``python_gc_collections_total``).

**CreateJob.** ``jobs`` noop jobs created over gRPC (the harness's job_api channels, as in
the throughput phase) and the same number through ``POST /v1/jobs`` (one keep-alive
HTTP/1.1 connection per caller; the gateway's own channel to job_api behind them), with
the same number of calls in flight, timed from the first call to the last answer. The
orchestrators are paused (SIGSTOP) while the calls are timed and resumed (SIGCONT) after,
so both paths meet the same idle downstream: otherwise the jobs accepted so far run on the
same two cores and take from whichever path is being measured, by however far the pipeline
has got. The jobs then run to completion before the next run. Runs alternate, gRPC then
REST, so a drift in the machine's speed touches both; the ratio is taken per pair.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import grpc
from nats.aio.msg import Msg

from devstack import ServiceProcess
from jobkit import bus
from jobkit.gen.jobs.v1 import notifier_service_pb2

from .events import CREATE_CONCURRENCY, Streams, count, create_retrying, steps_succeeded
from .harness import TERMINAL_EVENTS, Harness, event_time, noop_request, published_events
from .http1 import Connection, ProtocolError, SseParser
from .procs import CpuMeter, RssSampler
from .stats import percentile

#: After the window: time for an event that reached one stream to reach the other.
DRAIN_S = 1.0
#: The harness's event-loop lag probe: a timer this long, its overshoot recorded.
LAG_TICK_S = 0.005
_GEN2 = re.compile(rb'^python_gc_collections_total\{generation="2"\} ([0-9.e+]+)$', re.MULTILINE)
#: ``POST /v1/jobs``'s body: the JSON twin of ``noop_request()``.
REST_BODY = json.dumps({"type": "noop", "input": {}}).encode()

#: How a CreateJob travels: gRPC straight to job_api, or ``POST /v1/jobs`` to the gateway.
Via = Literal["grpc", "rest"]
VIAS: tuple[Via, ...] = ("grpc", "rest")


@dataclass
class GatewayEventRun:
    streams: int
    sleep_ms: int
    window_s: float = 0.0
    #: Per live event: SSE arrival - gRPC arrival (ms).
    added_ms: list[float] = field(default_factory=list)
    #: The same events from their arrival on NATS to each client (ms).
    grpc_after_publish_ms: list[float] = field(default_factory=list)
    sse_after_publish_ms: list[float] = field(default_factory=list)
    #: Live events seen on gRPC inside the window and never on SSE.
    unpaired: int = 0
    jobs_created: int = 0
    streams_opened: int = 0
    stream_errors: dict[str, int] = field(default_factory=dict)
    #: SSE streams open (first message received, not yet ended), sampled every 100 ms.
    open_min: int = 0
    open_mean: float = 0.0
    ramp_s: float = 0.0
    steps_in_window: int = 0
    gateway_rss_before: int = 0
    gateway_rss_peak: int = 0
    notifier_rss_peak: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)
    foreign_cpu_s: float = 0.0
    #: The harness's event loop: how late a 5 ms timer fired, every tick of the window (ms).
    harness_lag_ms: list[float] = field(default_factory=list)
    #: Full (generation 2) collections the gateway ran inside the window (NaN: unknown).
    gateway_full_gcs: float = math.nan

    def p(self, q: float) -> float:
        return percentile(self.added_ms, q)

    def p_grpc(self, q: float) -> float:
        return percentile(self.grpc_after_publish_ms, q)

    def p_sse(self, q: float) -> float:
        return percentile(self.sse_after_publish_ms, q)

    @property
    def p99_difference(self) -> float:
        """p99(publish -> SSE) - p99(publish -> gRPC): the distributions' way."""
        return self.p_sse(99) - self.p_grpc(99)

    @property
    def events_per_s(self) -> float:
        return len(self.added_ms) / self.window_s if self.window_s else 0.0

    def cpu_pct(self, name: str) -> float:
        """``name``'s CPU in the window, in % of one core."""
        return 100 * self.cpu_s.get(name, math.nan) / self.window_s if self.window_s else math.nan

    def as_json(self) -> dict[str, object]:
        return {
            "streams": self.streams,
            "sleep_ms_per_step": self.sleep_ms,
            "window_s": self.window_s,
            "paired_events": len(self.added_ms),
            "paired_events_per_s": self.events_per_s,
            "unpaired_events": self.unpaired,
            "added_p50_ms": self.p(50),
            "added_p90_ms": self.p(90),
            "added_p99_ms": self.p(99),
            "added_min_ms": min(self.added_ms, default=None),
            "added_max_ms": max(self.added_ms, default=None),
            "after_publish_samples": len(self.sse_after_publish_ms),
            "grpc_after_publish_p50_ms": self.p_grpc(50),
            "grpc_after_publish_p99_ms": self.p_grpc(99),
            "sse_after_publish_p50_ms": self.p_sse(50),
            "sse_after_publish_p99_ms": self.p_sse(99),
            "after_publish_p99_difference_ms": self.p99_difference,
            "steps_in_window": self.steps_in_window,
            "open_sse_streams_min": self.open_min,
            "open_sse_streams_mean": self.open_mean,
            "ramp_s": self.ramp_s,
            "jobs_created": self.jobs_created,
            "streams_opened": self.streams_opened,
            "stream_errors": self.stream_errors,
            "gateway_rss_before_bytes": self.gateway_rss_before,
            "gateway_rss_peak_bytes": self.gateway_rss_peak,
            "notifier_rss_peak_bytes": self.notifier_rss_peak,
            "cpu_s_in_window": self.cpu_s,
            "foreign_cpu_s_in_window": self.foreign_cpu_s,
            "harness_loop_lag_p99_ms": percentile(self.harness_lag_ms, 99),
            "harness_loop_lag_max_ms": max(self.harness_lag_ms, default=None),
            "gateway_full_gcs_in_window": self.gateway_full_gcs,
        }


@dataclass
class _Watch:
    """One job watched both ways: arrival times by sequence, and each stream's first."""

    job_id: str
    grpc_at: dict[int, float] = field(default_factory=dict)
    sse_at: dict[int, float] = field(default_factory=dict)
    occurred: dict[int, float] = field(default_factory=dict)
    grpc_first: float = math.inf
    sse_first: float = math.inf


@dataclass
class _State(Streams):
    window_start: float = math.inf
    window_end: float = math.inf
    #: Arrival on NATS by (job, sequence), from the window's start to the drain's end.
    published: dict[tuple[str, int], float] = field(default_factory=dict)
    listening: bool = False


async def run_gateway_events(
    harness: Harness,
    streams: int,
    *,
    sleep_ms: int,
    window_s: float,
    settle_s: float,
    cpu: CpuMeter,
    rss: RssSampler,
    ramp_timeout_s: float = 180.0,
) -> GatewayEventRun:
    run = GatewayEventRun(streams, sleep_ms)
    state = _State()
    request = noop_request(sleep_ms=sleep_ms)
    creating = asyncio.Semaphore(CREATE_CONCURRENCY)
    base_url = harness.stack.gateway_url
    sse_headers = {
        "Authorization": dict(harness.metadata)["authorization"],
        "Accept": "text/event-stream",
        "Connection": "close",
    }

    async def on_published(msg: Msg) -> None:
        if state.listening:
            now = time.time()
            for key in published_events(msg.data):
                state.published[key] = now

    async def watch_grpc(k: int, watch: _Watch) -> None:
        notifier = harness.notifier[k % len(harness.notifier)]
        call = notifier.WatchJob(
            notifier_service_pb2.WatchJobRequest(job_id=watch.job_id), metadata=harness.metadata
        )
        try:
            async for event in call:
                received = time.time()
                if watch.grpc_first == math.inf:
                    watch.grpc_first = received
                watch.grpc_at[event.sequence] = received
                watch.occurred[event.sequence] = event_time(event)
                if event.type in TERMINAL_EVENTS:
                    break
        except grpc.aio.AioRpcError as error:
            count(run.stream_errors, f"watch:{error.code().name}")
        finally:
            call.cancel()

    async def watch_sse(k: int, watch: _Watch) -> None:
        connection: Connection | None = None
        opened = False
        try:
            connection = await Connection.open(base_url)
            await connection.send("GET", f"/v1/jobs/{watch.job_id}/events", sse_headers)
            head = await connection.head()
            if head.status != 200:
                count(run.stream_errors, f"sse:http {head.status}")
                return
            parser = SseParser()
            async for chunk, received in connection.chunks():
                for message in parser.feed(chunk, received):
                    if message.event == "end":
                        return
                    if message.id is None:
                        continue
                    if not opened:
                        opened = True
                        watch.sse_first = received
                        state.open += 1
                        state.established.add(k)
                    watch.sse_at[int(message.id)] = received
        except (OSError, ProtocolError, asyncio.IncompleteReadError, ValueError) as error:
            count(run.stream_errors, f"sse:{type(error).__name__}")
        finally:
            if opened:
                state.open -= 1
            if connection is not None:
                connection.close()

    def tally(watch: _Watch) -> None:
        live_after = max(watch.grpc_first, watch.sse_first)
        for sequence, at_grpc in watch.grpc_at.items():
            if not state.window_start <= at_grpc <= state.window_end:
                continue
            if watch.occurred[sequence] <= live_after:
                continue  # replayed on at least one of the two streams
            at_sse = watch.sse_at.get(sequence)
            if at_sse is None:
                run.unpaired += 1
                continue
            run.added_ms.append((at_sse - at_grpc) * 1000)
            seen = state.published.get((watch.job_id, sequence))
            if seen is not None:
                run.grpc_after_publish_ms.append((at_grpc - seen) * 1000)
                run.sse_after_publish_ms.append((at_sse - seen) * 1000)

    async def slot(k: int) -> None:
        while True:
            job = await create_retrying(harness, request, k, creating, run.stream_errors)
            run.jobs_created += 1
            run.streams_opened += 1
            watch = _Watch(job.job_id)
            try:
                await asyncio.gather(watch_grpc(k, watch), watch_sse(k, watch))
            finally:
                tally(watch)

    rss_before = rss.peak("gateway", since=time.monotonic() - 1.0)
    tap = await harness.nc.subscribe(f"{bus.EVENTS_PREFIX}>", cb=on_published)
    started = time.perf_counter()
    slots = [asyncio.create_task(slot(k)) for k in range(streams)]
    try:
        run.ramp_s = await state.ramp(streams, started, ramp_timeout_s, "SSE streams")
        await asyncio.sleep(settle_s)
        steps_before = await steps_succeeded(harness)
        gcs_before = await _gateway_full_gcs(base_url)
        gc.freeze()
        before = cpu.snapshot()
        window_started = time.monotonic()
        state.listening = True
        state.window_start = time.time()
        deadline = time.perf_counter() + window_s
        probe = asyncio.create_task(loop_lag(run.harness_lag_ms, deadline))
        run.open_min, run.open_mean = await state.sample_open(deadline)
        state.window_end = time.time()
        run.window_s = time.monotonic() - window_started
        await probe
        run.gateway_full_gcs = await _gateway_full_gcs(base_url) - gcs_before
        use = CpuMeter.delta(before, cpu.snapshot())
        run.cpu_s = use.procs
        run.foreign_cpu_s = use.foreign
        run.steps_in_window = await steps_succeeded(harness) - steps_before
        run.gateway_rss_before = rss_before
        run.gateway_rss_peak = rss.peak("gateway", since=window_started)
        run.notifier_rss_peak = rss.peak("notifier", since=window_started)
        await asyncio.sleep(DRAIN_S)
    finally:
        gc.unfreeze()
        state.listening = False
        await tap.unsubscribe()
        for task in slots:
            task.cancel()
        await asyncio.gather(*slots, return_exceptions=True)
    return run


@dataclass
class CreateRun:
    """``jobs`` CreateJob calls over one path with ``concurrency`` in flight."""

    path: Via
    jobs: int
    concurrency: int
    accepted: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    #: First call sent -> last answer received.
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)
    foreign_cpu_s: float = 0.0

    @property
    def per_s(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    def cpu_ms_per_call(self, name: str) -> float:
        return 1000 * self.cpu_s.get(name, math.nan) / self.accepted if self.accepted else math.nan

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "jobs": self.jobs,
            "concurrency": self.concurrency,
            "accepted": self.accepted,
            "errors": self.errors,
            "seconds": self.seconds,
            "per_s": self.per_s,
            "latency_p50_ms": self.p(50),
            "latency_p99_ms": self.p(99),
            "cpu_s": self.cpu_s,
            "cpu_ms_per_call": {n: self.cpu_ms_per_call(n) for n in self.cpu_s},
            "foreign_cpu_s": self.foreign_cpu_s,
        }


@contextmanager
def paused(services: list[ServiceProcess]) -> Iterator[None]:
    """SIGSTOP ``services`` for the block, SIGCONT after (also on errors)."""
    for service in services:
        service.signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for service in services:
            service.signal(signal.SIGCONT)


def pipeline(harness: Harness) -> list[ServiceProcess]:
    """The processes that pick up accepted jobs: the orchestrators."""
    return [s for n, s in harness.stack.services.items() if n.split("#")[0] == "orchestrator"]


async def run_creates(
    harness: Harness,
    path: Via,
    jobs: int,
    concurrency: int,
    cpu: CpuMeter | None = None,
    pause: list[ServiceProcess] | None = None,
) -> CreateRun:
    """``jobs`` noop CreateJob calls over ``path`` from ``concurrency`` callers, with the
    ``pause`` processes stopped while they run."""
    run = CreateRun(path, jobs, concurrency)
    request = noop_request()
    headers = {
        "Authorization": dict(harness.metadata)["authorization"],
        "Content-Type": "application/json",
    }
    base_url = harness.stack.gateway_url
    connections: list[Connection | None] = [None] * concurrency
    if path == "rest":
        # Opened before the clock starts, as a browser's connections would be.
        opened = await asyncio.gather(*(Connection.open(base_url) for _ in range(concurrency)))
        connections = list(opened)
    issued = 0
    last_answer = 0.0

    async def over_grpc(k: int) -> str | None:
        try:
            await harness.create(request, channel=k)
        except grpc.aio.AioRpcError as error:
            return error.code().name
        return None

    async def over_rest(k: int) -> str | None:
        connection = connections[k]
        try:
            if connection is None:
                connection = connections[k] = await Connection.open(base_url)
            head, _ = await connection.request("POST", "/v1/jobs", headers, REST_BODY)
        except (OSError, ProtocolError, asyncio.IncompleteReadError) as error:
            if connection is not None:
                connection.close()
            connections[k] = None
            return type(error).__name__
        if head.headers.get("connection", "").lower() == "close":
            connection.close()
            connections[k] = None
        return None if head.status == 200 else f"http {head.status}"

    call = over_grpc if path == "grpc" else over_rest

    async def caller(k: int) -> None:
        nonlocal issued, last_answer
        while issued < jobs:
            issued += 1
            sent = time.perf_counter()
            error = await call(k)
            if error is not None:
                count(run.errors, error)
                continue
            last_answer = time.perf_counter()
            run.latencies_ms.append((last_answer - sent) * 1000)
            run.accepted += 1

    with paused(pause or []):
        before = cpu.snapshot() if cpu else None
        start = time.perf_counter()
        try:
            await asyncio.gather(*(caller(k) for k in range(concurrency)))
        finally:
            for connection in connections:
                if connection is not None:
                    connection.close()
        run.seconds = last_answer - start if last_answer else 0.0
        if cpu and before:
            use = CpuMeter.delta(before, cpu.snapshot())
            run.cpu_s = use.procs
            run.foreign_cpu_s = use.foreign
    return run


async def loop_lag(into: list[float], until: float) -> None:
    """Until ``perf_counter()`` reaches ``until``: how late each ``LAG_TICK_S`` sleep woke."""
    while (started := time.perf_counter()) < until:
        await asyncio.sleep(LAG_TICK_S)
        into.append((time.perf_counter() - started - LAG_TICK_S) * 1000)


async def _gateway_full_gcs(base_url: str) -> float:
    """The gateway's count of generation-2 collections, from its ``/metrics``."""
    try:
        connection = await Connection.open(base_url)
    except OSError:
        return math.nan
    try:
        head, body = await connection.request("GET", "/metrics", {"Connection": "close"})
    except (OSError, ProtocolError, asyncio.IncompleteReadError):
        return math.nan
    finally:
        connection.close()
    found = _GEN2.search(body) if head.status == 200 else None
    return float(found.group(1)) if found else math.nan
