"""Event latency: from the orchestrator stamping an event to a WatchJob client holding it,
with 1 and with many concurrent watchers.

Latency = the client's wall clock at receipt - the event's ``occurred_at``. Both clocks
are this machine's. Note what ``occurred_at`` is: the orchestrator takes ``now`` when it
starts deciding a batch, *before* its transaction locks, writes and commits (job_api
likewise before its insert), so each figure includes the committing transaction: it is an
upper bound on commit -> client by one durable commit (see the Postgres floor's latency).
So the harness also listens on NATS ``jobs.events.>``, where the orchestrator publishes each
event right after the commit, and reports arrival there -> client as well.

Each watcher slot runs a closed loop: create a ``noop`` job with ``sleep_ms`` per step
(STEP_STARTED, PROGRESS 50 %, STEP_SUCCEEDED per step, then SUCCEEDED), watch it until
its terminal event, then create the next. So ``watchers`` streams stay open (less a few
being replaced) for as long as we like, although jobs finish. Jobs queue behind the
worker's slots (16 by default) and wait there with their stream open: idle streams, like
users watching queued work, while the running jobs' events flow.

Only live events count: per stream, the first event (CREATED, always replayed, since a
stream starts at sequence 0) marks the stream established, and only events whose
``occurred_at`` is later than that moment count. Such an event was stamped after the replay
had read Postgres, so it cannot have been in the replay: it came through NATS (or through
a gap repair, which is part of the live path's tail). Samples count only inside the window:
after every slot has had an established stream and a settle time, for ``window_s``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import grpc
from nats.aio.msg import Msg

from jobkit import bus
from jobkit.gen.jobs.v1 import job_service_pb2, jobs_pb2, notifier_service_pb2

from .harness import TERMINAL_EVENTS, Harness, event_time, noop_request, published_events
from .procs import CpuMeter, RssSampler
from .stats import percentile

#: CreateJob calls in flight while slots (re)start: 2000 at once would only measure a
#: thundering herd against job_api.
CREATE_CONCURRENCY = 64


@dataclass
class EventRun:
    watchers: int
    sleep_ms: int
    window_s: float = 0.0
    samples_ms: list[float] = field(default_factory=list)
    #: The same events, from their arrival on NATS (``jobs.events.<job>``, where the
    #: orchestrator publishes right after its commit) to the client: the notifier's and
    #: gRPC's share, without the committing transaction that ``occurred_at`` includes.
    after_publish_ms: list[float] = field(default_factory=list)
    jobs_created: int = 0
    streams_opened: int = 0
    stream_errors: dict[str, int] = field(default_factory=dict)
    open_min: int = 0
    open_mean: float = 0.0
    ramp_s: float = 0.0
    #: Steps the workers finished inside the window (from Postgres): the load's real size.
    steps_in_window: int = 0
    #: Every event received inside the window, live or replayed.
    received_in_window: int = 0
    notifier_rss_peak: int = 0
    notifier_rss_before: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)
    foreign_cpu_s: float = 0.0

    def p(self, q: float) -> float:
        return percentile(self.samples_ms, q)

    def p_after_publish(self, q: float) -> float:
        return percentile(self.after_publish_ms, q)

    @property
    def events_per_s(self) -> float:
        return len(self.samples_ms) / self.window_s if self.window_s else 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "watchers": self.watchers,
            "sleep_ms_per_step": self.sleep_ms,
            "window_s": self.window_s,
            "live_events": len(self.samples_ms),
            "live_events_per_s": self.events_per_s,
            "events_received_in_window": self.received_in_window,
            "steps_in_window": self.steps_in_window,
            "p50_ms": self.p(50),
            "p90_ms": self.p(90),
            "p99_ms": self.p(99),
            "max_ms": max(self.samples_ms, default=None),
            "after_publish_samples": len(self.after_publish_ms),
            "after_publish_p50_ms": self.p_after_publish(50),
            "after_publish_p99_ms": self.p_after_publish(99),
            "open_streams_min": self.open_min,
            "open_streams_mean": self.open_mean,
            "ramp_s": self.ramp_s,
            "jobs_created": self.jobs_created,
            "streams_opened": self.streams_opened,
            "stream_errors": self.stream_errors,
            "notifier_rss_before_bytes": self.notifier_rss_before,
            "notifier_rss_peak_bytes": self.notifier_rss_peak,
            "cpu_s_in_window": self.cpu_s,
            "foreign_cpu_s_in_window": self.foreign_cpu_s,
        }


@dataclass
class Streams:
    """The watcher slots' streams: how many are open now, and which slots have had one."""

    open: int = 0
    established: set[int] = field(default_factory=set)

    async def ramp(self, slots: int, started: float, timeout_s: float, what: str) -> float:
        """Wait until each of ``slots`` slots has had a stream (``what``) established;
        return the seconds since ``started`` (``perf_counter()``)."""
        while len(self.established) < slots:
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(
                    f"only {len(self.established)} of {slots} {what} established "
                    f"within {timeout_s:g}s"
                )
            await asyncio.sleep(0.05)
        return time.perf_counter() - started

    async def sample_open(self, deadline: float) -> tuple[int, float]:
        """``open`` every 100 ms until ``perf_counter()`` reaches ``deadline``: its minimum
        and mean."""
        open_counts: list[int] = []
        while time.perf_counter() < deadline:
            open_counts.append(self.open)
            await asyncio.sleep(min(0.1, max(0.0, deadline - time.perf_counter())))
        mean = sum(open_counts) / len(open_counts) if open_counts else 0.0
        return min(open_counts, default=0), mean


@dataclass
class _State(Streams):
    counting: bool = False


async def run_events(
    harness: Harness,
    watchers: int,
    *,
    sleep_ms: int,
    window_s: float,
    settle_s: float,
    cpu: CpuMeter,
    rss: RssSampler,
    ramp_timeout_s: float = 180.0,
) -> EventRun:
    run = EventRun(watchers, sleep_ms)
    state = _State()
    request = noop_request(sleep_ms=sleep_ms)
    creating = asyncio.Semaphore(CREATE_CONCURRENCY)
    published: dict[tuple[str, int], float] = {}

    async def on_published(msg: Msg) -> None:
        # The harness listens on the subject the notifier listens on: an event reaches
        # both at the same moment, just after the orchestrator's commit.
        if state.counting:
            now = time.time()
            for key in published_events(msg.data):
                published[key] = now

    async def slot(k: int) -> None:
        notifier = harness.notifier[k % len(harness.notifier)]
        while True:
            job = await create_retrying(harness, request, k, creating, run.stream_errors)
            run.jobs_created += 1
            call = notifier.WatchJob(
                notifier_service_pb2.WatchJobRequest(job_id=job.job_id), metadata=harness.metadata
            )
            run.streams_opened += 1
            established_at: float | None = None
            try:
                async for event in call:
                    received = time.time()
                    if state.counting:
                        run.received_in_window += 1
                    if established_at is None:
                        established_at = received
                        state.open += 1
                        state.established.add(k)
                        continue
                    occurred = event_time(event)
                    if state.counting and occurred > established_at:
                        run.samples_ms.append((received - occurred) * 1000)
                        seen = published.pop((event.job_id, event.sequence), None)
                        if seen is not None:
                            run.after_publish_ms.append((received - seen) * 1000)
                    if event.type in TERMINAL_EVENTS:
                        break
            except grpc.aio.AioRpcError as error:
                count(run.stream_errors, f"watch:{error.code().name}")
            finally:
                call.cancel()
                if established_at is not None:
                    state.open -= 1

    rss_before = rss.peak("notifier", since=time.monotonic() - 1.0)
    tap = await harness.nc.subscribe(f"{bus.EVENTS_PREFIX}>", cb=on_published)
    started = time.perf_counter()
    slots = [asyncio.create_task(slot(k)) for k in range(watchers)]
    try:
        run.ramp_s = await state.ramp(watchers, started, ramp_timeout_s, "streams")
        await asyncio.sleep(settle_s)
        steps_before = await steps_succeeded(harness)
        before = cpu.snapshot()
        window_started = time.monotonic()
        state.counting = True
        deadline = time.perf_counter() + window_s
        run.open_min, run.open_mean = await state.sample_open(deadline)
        state.counting = False
        run.window_s = time.monotonic() - window_started
        use = CpuMeter.delta(before, cpu.snapshot())
        run.cpu_s = use.procs
        run.foreign_cpu_s = use.foreign
        run.steps_in_window = await steps_succeeded(harness) - steps_before
        run.notifier_rss_before = rss_before
        run.notifier_rss_peak = rss.peak("notifier", since=window_started)
    finally:
        await tap.unsubscribe()
        for task in slots:
            task.cancel()
        await asyncio.gather(*slots, return_exceptions=True)
    return run


async def create_retrying(
    harness: Harness,
    request: job_service_pb2.CreateJobRequest,
    k: int,
    creating: asyncio.Semaphore,
    errors: dict[str, int],
) -> jobs_pb2.Job:
    """Slot ``k``'s next job, created within ``creating``'s limit; a failed call is counted
    in ``errors`` and tried again 100 ms later."""
    while True:
        try:
            async with creating:
                return await harness.create(request, channel=k)
        except grpc.aio.AioRpcError as error:
            count(errors, f"create:{error.code().name}")
            await asyncio.sleep(0.1)


async def steps_succeeded(harness: Harness) -> int:
    succeeded: int = await harness.pg.fetchval(
        "SELECT count(*) FROM job_steps WHERE status = 'SUCCEEDED'"
    )
    return succeeded


def count(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1
