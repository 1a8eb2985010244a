"""What the servers underneath can do at best, measured by the harness on the same
Postgres and NATS the services use: the floors our throughput is compared with.

- Postgres: ``BEGIN; UPDATE; INSERT; COMMIT`` from 8 connections (the shape of a
  checkpoint: change a row, append a row, make it durable), and the same from one
  connection for the latency of one durable commit.
- JetStream: acknowledged publishes to a file-storage stream configured like the job
  streams (work-queue retention, de-duplication window, ``Nats-Msg-Id`` on every
  message), pipelined 256 deep, and one at a time for the latency of one.
- The transports a job's hops take, end to end between processes: a gRPC unary call (a
  CreateJob's) from the harness to a server that answers at once, 64 in flight; a core
  NATS request (a step result's) to a responder that answers at once, 32 in flight
  (``bench.floor_servers``); and each of them one at a time, for the latency of one
  round trip between two processes on this machine.

``idle_path_floor`` adds up the least one idle job's path can take from those one at a
time: the round trips and durable commits it cannot do without, each at its floor.

Each floor also says what it cost the machine an operation: the CPU of every process
involved (the harness, the server, and for NATS requests nats-server too), which is the
least a job's hops can cost, summed in the README against the CPU a job.

Each phase runs a short warm-up first; only completions inside the timed window count.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import asyncpg
import grpc
import nats
from nats.js.api import DiscardPolicy, PubAck, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from jobkit import bus

from . import floor_servers
from .procs import Watched, cpu_seconds, harness_cpu_seconds
from .stats import percentile

SCRATCH_COUNTERS = "bench_scratch_counters"
SCRATCH_LOG = "bench_scratch_log"
SCRATCH_STREAM = "BENCH_SCRATCH"
SCRATCH_SUBJECT = "bench.scratch"
ROWS_PER_CONNECTION = 128
WARMUP_S = 0.3


@dataclass(frozen=True, slots=True)
class FloorRun:
    """One timed window: completions per second, their latencies, the harness's CPU."""

    per_s: float
    p50_ms: float
    p99_ms: float
    harness_cpu_pct: float
    #: CPU ms an operation, every process involved together (the harness and ``involved``).
    cpu_ms: float = math.nan


async def prepare_postgres(url: str, connections: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            f"""DROP TABLE IF EXISTS {SCRATCH_LOG}, {SCRATCH_COUNTERS};
                CREATE TABLE {SCRATCH_COUNTERS} (id int PRIMARY KEY, n bigint NOT NULL);
                CREATE TABLE {SCRATCH_LOG} (id bigserial PRIMARY KEY, counter int NOT NULL,
                                            at timestamptz NOT NULL DEFAULT now(),
                                            payload bytea NOT NULL)"""
        )
        await conn.execute(
            f"INSERT INTO {SCRATCH_COUNTERS} SELECT g, 0 FROM generate_series(0, $1 - 1) g",  # noqa: S608 - a table name constant
            connections * ROWS_PER_CONNECTION,
        )
    finally:
        await conn.close()


async def drop_postgres(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {SCRATCH_LOG}, {SCRATCH_COUNTERS}")
    finally:
        await conn.close()


async def postgres_commits(
    url: str, connections: int, duration_s: float, involved: Sequence[Watched] = ()
) -> FloorRun:
    """``connections`` clients each committing UPDATE + INSERT transactions back to back;
    ``involved``: the server's processes, counted in its CPU an operation."""
    conns = [await asyncpg.connect(url) for _ in range(connections)]
    payload = os.urandom(200)
    window = _Window(duration_s, involved)

    async def client(k: int, conn: asyncpg.Connection) -> None:
        i = 0
        while not window.over():
            began = time.perf_counter()
            # Rows k, k + connections, ...: no two clients ever wait for each other's lock,
            # as no two orchestrator batches lock the same job.
            row = k + connections * (i % ROWS_PER_CONNECTION)
            async with conn.transaction():
                await conn.execute(
                    f"UPDATE {SCRATCH_COUNTERS} SET n = n + 1 WHERE id = $1",  # noqa: S608 - a constant
                    row,
                )
                await conn.execute(
                    f"INSERT INTO {SCRATCH_LOG} (counter, payload) VALUES ($1, $2)",  # noqa: S608 - a constant
                    row,
                    payload,
                )
            window.completed(began)
            i += 1

    try:
        await asyncio.gather(window.meter_cpu(), *(client(k, c) for k, c in enumerate(conns)))
    finally:
        for conn in conns:
            await conn.close()
    return window.result()


async def prepare_jetstream(url: str) -> None:
    nc = await nats.connect(url, name="bench-floor")
    try:
        js = nc.jetstream()
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(SCRATCH_STREAM)
        await js.add_stream(
            StreamConfig(
                name=SCRATCH_STREAM,
                subjects=[f"{SCRATCH_SUBJECT}.>"],
                retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE,
                discard=DiscardPolicy.NEW,
                duplicate_window=bus.DUPLICATE_WINDOW_S,
                num_replicas=1,
            )
        )
    finally:
        await nc.close()


async def drop_jetstream(url: str) -> None:
    nc = await nats.connect(url, name="bench-floor")
    try:
        await nc.jetstream().delete_stream(SCRATCH_STREAM)
    finally:
        await nc.close()


async def jetstream_publishes(
    url: str, in_flight: int, duration_s: float, run: int, involved: Sequence[Watched] = ()
) -> FloorRun:
    """Acknowledged publishes, ``in_flight`` outstanding at any moment.

    ``publish_async`` keeps one reply subscription for all of them, so the client's cost per
    message is small; with ``in_flight == 1`` this is a plain ``js.publish`` loop, which is
    how the services publish.
    """
    nc = await nats.connect(url, name="bench-floor")
    js = nc.jetstream(publish_async_max_pending=max(in_flight, 1))
    payload = os.urandom(256)
    window = _Window(duration_s, involved)

    async def publish() -> None:
        i = 0
        pending: list[asyncio.Future[PubAck]] = []
        while not window.over():
            msg_id = {"Nats-Msg-Id": f"r{run}:{in_flight}:{i}"}
            i += 1
            began = time.perf_counter()
            if in_flight <= 1:
                await js.publish(f"{SCRATCH_SUBJECT}.one", payload, headers=msg_id)
                window.completed(began)
                continue
            # Waits here while ``in_flight`` acknowledgements are outstanding.
            future = await js.publish_async(f"{SCRATCH_SUBJECT}.many", payload, headers=msg_id)
            began = time.perf_counter()
            future.add_done_callback(window.callback(began))
            pending.append(future)
            if len(pending) >= 4 * in_flight:
                pending = [f for f in pending if not f.done()]
        await asyncio.gather(*pending)

    try:
        await asyncio.gather(window.meter_cpu(), publish())
    finally:
        await nc.close()
    return window.result()


@contextlib.asynccontextmanager
async def floor_server(kind: str, where: str) -> AsyncIterator[Watched]:
    """A ``bench.floor_servers`` process (``grpc`` on a port, ``nats`` at a server's URL),
    serving until the block ends: started before a measurement, so the caller can count
    it among the processes it watches."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.floor_servers",
        kind,
        where,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        if await asyncio.wait_for(proc.stdout.readline(), 30) != b"ready\n":
            raise RuntimeError(f"the {kind} floor server did not start")
        yield Watched(f"{kind} floor server", proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


async def grpc_calls(
    port: int, in_flight: int, duration_s: float, involved: Sequence[Watched]
) -> FloorRun:
    """Unary calls with a CreateJob's sizes to the ``grpc`` floor server on ``port``,
    ``in_flight`` outstanding over 4 channels (the harness's CreateJob channels);
    ``involved``: the server, counted in the CPU a call."""
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for _ in range(4)]
    request = os.urandom(400)
    window = _Window(duration_s, involved)

    async def caller(k: int) -> None:
        call = channels[k % len(channels)].unary_unary(floor_servers.GRPC_METHOD, None, None)
        while not window.over():
            began = time.perf_counter()
            await call(request, timeout=10)
            window.completed(began)

    try:
        await asyncio.gather(window.meter_cpu(), *(caller(k) for k in range(in_flight)))
    finally:
        for channel in channels:
            await channel.close(None)
    return window.result()


async def nats_requests(
    url: str, in_flight: int, duration_s: float, involved: Sequence[Watched]
) -> FloorRun:
    """Core NATS requests with a result's sizes to the ``nats`` floor server (a responder)
    at ``url``, ``in_flight`` outstanding; ``involved``: the responder and nats-server,
    counted in the CPU a request."""
    nc = await nats.connect(url, name="bench-floor")
    payload = os.urandom(200)
    window = _Window(duration_s, involved)

    async def requester() -> None:
        while not window.over():
            began = time.perf_counter()
            await nc.request(floor_servers.NATS_SUBJECT, payload, timeout=10)
            window.completed(began)

    try:
        await asyncio.gather(window.meter_cpu(), *(requester() for _ in range(in_flight)))
    finally:
        await nc.close()
    return window.result()


#: One idle three-step job's path, submit -> terminal event at its client, as the round
#: trips and commits it is made of (``bench.report`` prints it against the idle p50). A
#: one-way message counts half a round trip.
#:
#: - gRPC: CreateJob's request in, and the terminal event out on the WatchJob stream.
#: - Postgres: the job's creation (durable before anything runs: no job is lost) and each
#:   step's checkpoint (a durable checkpoint per step), one commit each.
#: - core NATS: the first step offered to the idle worker, each step's result to the
#:   orchestrator, the answers that hand it steps 2 and 3, the terminal event to the
#:   notifier: seven one-way messages.
IDLE_PATH_GRPC_ROUND_TRIPS = 1.0
IDLE_PATH_COMMITS = 4
IDLE_PATH_NATS_ROUND_TRIPS = 3.5
#: Messages between processes on that path (a commit is within a hop): nine.
IDLE_PATH_MESSAGES = round(2 * (IDLE_PATH_GRPC_ROUND_TRIPS + IDLE_PATH_NATS_ROUND_TRIPS))


@dataclass(frozen=True, slots=True)
class PathFloor:
    """The least one idle job's path can take on this machine, and what it is made of."""

    grpc_ms: float
    commits_ms: float
    nats_ms: float

    @property
    def total_ms(self) -> float:
        return self.grpc_ms + self.commits_ms + self.nats_ms


def idle_path_floor(grpc_rtt_ms: float, commit_ms: float, nats_rtt_ms: float) -> PathFloor:
    """``IDLE_PATH_*`` at the floors measured one at a time (p50 of each)."""
    return PathFloor(
        grpc_ms=IDLE_PATH_GRPC_ROUND_TRIPS * grpc_rtt_ms,
        commits_ms=IDLE_PATH_COMMITS * commit_ms,
        nats_ms=IDLE_PATH_NATS_ROUND_TRIPS * nats_rtt_ms,
    )


class _Window:
    """A warm-up, then a timed window; counts what completes inside it, and the CPU the
    harness and ``involved`` used meanwhile."""

    def __init__(self, duration_s: float, involved: Sequence[Watched] = ()) -> None:
        self.duration_s = duration_s
        self.involved = list(involved)
        self.involved_cpu_s = 0.0
        self.start = time.perf_counter() + WARMUP_S
        self.end = self.start + duration_s
        self.latencies: list[float] = []
        self.count = 0
        self.errors = 0
        self.cpu_s = 0.0

    def over(self) -> bool:
        return time.perf_counter() >= self.end

    def completed(self, began: float, future: asyncio.Future[PubAck] | None = None) -> None:
        if future is not None and (future.cancelled() or future.exception() is not None):
            self.errors += 1
            return
        finished = time.perf_counter()
        if self.start <= finished <= self.end:
            self.count += 1
            self.latencies.append(finished - began)

    def callback(self, began: float) -> Callable[[asyncio.Future[PubAck]], None]:
        def done(future: asyncio.Future[PubAck]) -> None:
            self.completed(began, future)

        return done

    async def meter_cpu(self) -> None:
        await asyncio.sleep(max(0.0, self.start - time.perf_counter()))
        before = harness_cpu_seconds()
        others = sum(cpu_seconds(w) for w in self.involved)
        await asyncio.sleep(max(0.0, self.end - time.perf_counter()))
        self.cpu_s = harness_cpu_seconds() - before
        self.involved_cpu_s = sum(cpu_seconds(w) for w in self.involved) - others

    def result(self) -> FloorRun:
        if self.errors:
            raise RuntimeError(f"{self.errors} operations failed during the floor measurement")
        return FloorRun(
            per_s=self.count / self.duration_s,
            p50_ms=percentile(self.latencies, 50) * 1000,
            p99_ms=percentile(self.latencies, 99) * 1000,
            harness_cpu_pct=100 * self.cpu_s / self.duration_s,
            cpu_ms=1000 * (self.cpu_s + self.involved_cpu_s) / self.count
            if self.count
            else math.nan,
        )
