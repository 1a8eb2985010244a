"""Chaos on the clustered stack: three NATS nodes with R3 streams, a Postgres primary with
a synchronous standby, and clients under load while a node dies.

    python -m tests.chaos.cluster [--clients 8] [--scenario NAME ...]   (make chaos CLUSTER=1)

Each scenario runs clients that each submit a ``noop`` job, watch it live to its end and
submit the next, for as long as the scenario lasts; the fault lands while they run. The
books are those of ``tests.chaos.harness`` (every accepted job SUCCEEDED, no step
committed twice, every replayed stream contiguous with one ``STEP_SUCCEEDED`` per step,
no live watch with a gap, no lease overdue), plus what the clients felt: for each, the
longest time it saw no progress (no job accepted, no event), and its median and maximum
over the clients (``stall p50``, ``stall max``). With 300 ms steps a calm client makes
progress every ~0.3 s.

Leaders are found the way an operator would, from ``$JS.API.STREAM.INFO`` (the stream's
``cluster.leader``).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import nats

from devstack import Stack
from devstack.servers import NatsServer
from jobctl.client import JobsClient
from jobkit import bus
from jobkit.gen.jobs.v1 import jobs_pb2
from tests.chaos.harness import CHAOS_ENV, Outcome, count_bad_streams, count_books

Fault = Callable[[Stack], Awaitable[None]]

#: Longer than a JetStream election (a node missing its heartbeats for 4-9 s loses its
#: leadership), short enough for the suite.
PAUSE_S = 10.0


async def stream_leader(stack: Stack, stream: str) -> NatsServer:
    """The node leading ``stream`` now, asked of the cluster (``$JS.API.STREAM.INFO``)."""
    assert stack.nats_cluster is not None
    nc = await nats.connect(servers=stack.nats_cluster.url.split(","), connect_timeout=2)
    try:
        js = nc.jetstream()
        for _ in range(100):  # none while an election is under way
            info = await bus.retry_transient(lambda: js.stream_info(stream), f"info {stream}")
            if info.cluster is not None and info.cluster.leader:
                return stack.nats_cluster.node(info.cluster.leader)
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{stream} has no leader")
    finally:
        await nc.close()


async def _kill_and_restart(node: NatsServer, down_s: float = 2.0) -> None:
    node.kill()
    await asyncio.sleep(down_s)
    await asyncio.to_thread(node.start)


def kill_leader_of(stream: str) -> Fault:
    async def fault(stack: Stack) -> None:
        await _kill_and_restart(await stream_leader(stack, stream))

    return fault


async def kill_non_leader(stack: Stack) -> None:
    """A node that leads neither busy stream (or, if each leads one, not the steps')."""
    assert stack.nats_cluster is not None
    leaders = {
        (await stream_leader(stack, s)).server_name for s in (bus.STEPS_STREAM, bus.UPDATES_STREAM)
    }
    steps = (await stream_leader(stack, bus.STEPS_STREAM)).server_name
    nodes = stack.nats_cluster.nodes
    spare = [n for n in nodes if n.server_name not in leaders] or [
        n for n in nodes if n.server_name != steps
    ]
    await _kill_and_restart(spare[0])


async def pause_steps_leader(stack: Stack) -> None:
    """SIGSTOP the steps' leader past an election, then SIGCONT: it comes back a
    follower to a cluster that went on without it."""
    node = await stream_leader(stack, bus.STEPS_STREAM)
    node.signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(PAUSE_S)
    finally:
        node.signal(signal.SIGCONT)


async def postgres_failover(stack: Stack) -> None:
    """kill -9 the primary, promote the standby; the dead node is rebuilt as the new
    primary's synchronous standby while the load goes on."""
    pair = stack.postgres_pair
    assert pair is not None
    await asyncio.to_thread(pair.fail_over)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(pair.rebuild_standby)


SCENARIOS: dict[str, Fault | None] = {
    "baseline": None,
    f"kill -9 {bus.STEPS_STREAM} leader": kill_leader_of(bus.STEPS_STREAM),
    f"kill -9 {bus.UPDATES_STREAM} leader": kill_leader_of(bus.UPDATES_STREAM),
    f"kill -9 {bus.WEBHOOKS_STREAM} leader": kill_leader_of(bus.WEBHOOKS_STREAM),
    "kill -9 a NATS non-leader": kill_non_leader,
    "postgres primary failover": postgres_failover,
    "SIGSTOP steps leader 10 s": pause_steps_leader,
}

#: The short form in ``make test``: one NATS leader killed, one Postgres failover.
SHORT = [f"kill -9 {bus.STEPS_STREAM} leader", "postgres primary failover"]


@dataclass
class ClusterOutcome(Outcome):
    """The harness's books, and each client's longest wait for progress."""

    stalls: list[float] = field(default_factory=list)

    @property
    def stall_p50(self) -> float:
        return statistics.median(self.stalls) if self.stalls else 0.0

    @property
    def stall_max(self) -> float:
        return max(self.stalls, default=0.0)


@dataclass
class _Client:
    """One client's progress: when it last saw any, and its longest wait."""

    last: float = field(default_factory=time.monotonic)
    longest: float = 0.0
    watched: int = 0
    gaps: int = 0

    def progress(self) -> None:
        now = time.monotonic()
        self.longest = max(self.longest, now - self.last)
        self.last = now


_TRANSIENT = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)


async def _create(
    client: JobsClient, outcome: Outcome, sleep_ms: int, deadline: float
) -> str | None:
    """One job, retried through outages under one idempotency key."""
    key = uuid.uuid4().hex
    outcome.attempted += 1
    while time.monotonic() < deadline:
        try:
            job = await client.create_job("noop", {"sleep_ms": sleep_ms}, idempotency_key=key)
        except grpc.aio.AioRpcError as error:
            if error.code() not in _TRANSIENT:
                raise
            await asyncio.sleep(0.2)
            continue
        outcome.accepted.append(job.job_id)
        return job.job_id
    return None


async def _run_client(
    client: JobsClient,
    outcome: Outcome,
    seen: _Client,
    stop: asyncio.Event,
    *,
    sleep_ms: int,
    deadline: float,
) -> None:
    """Submit, watch to the end, and again, until ``stop``."""
    seen.last = time.monotonic()
    while not stop.is_set():
        job_id = await _create(client, outcome, sleep_ms, deadline)
        if job_id is None:
            return
        seen.progress()
        sequences: list[int] = []
        last_type = 0
        try:
            async for event in client.watch(job_id, max_reconnects=500):
                sequences.append(event.sequence)
                last_type = event.type
                seen.progress()
        except grpc.aio.AioRpcError:
            pass
        seen.watched += 1
        if (
            sequences != list(range(1, len(sequences) + 1))
            or last_type != jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED
        ):
            seen.gaps += 1


async def run_scenario(
    stack: Stack,
    name: str,
    fault: Fault | None,
    *,
    clients: int,
    sleep_ms: int,
    lead_s: float = 2.0,
    tail_s: float = 3.0,
    settle_s: float = 180.0,
) -> ClusterOutcome:
    outcome = ClusterOutcome(name)
    started = time.monotonic()
    deadline = started + settle_s
    stop = asyncio.Event()
    seen = [_Client() for _ in range(clients)]
    async with JobsClient(
        stack.job_api_addr, stack.notifier_addr, stack.token("chaos"), timeout_s=5, retries=0
    ) as client:
        runners = [
            asyncio.create_task(
                _run_client(client, outcome, s, stop, sleep_ms=sleep_ms, deadline=deadline)
            )
            for s in seen
        ]
        await asyncio.sleep(lead_s)
        if fault is not None:
            await fault(stack)
        await asyncio.sleep(tail_s)
        stop.set()
        await asyncio.gather(*runners)
        outcome.stalls = [s.longest for s in seen]
        outcome.live_watch_gaps = sum(s.gaps for s in seen)
        await count_books(stack, outcome, deadline)
        outcome.bad_streams = await count_bad_streams(client, outcome.accepted)
    outcome.seconds = time.monotonic() - started
    return outcome


def render(outcomes: list[ClusterOutcome]) -> str:
    header = (
        f"{'scenario':<28} {'accepted':>8} {'succeeded':>9} {'lost':>5} {'dup':>4} "
        f"{'bad streams':>11} {'live gaps':>9} {'overdue':>7} {'stall p50':>9} "
        f"{'stall max':>9} {'secs':>6}  result"
    )
    lines = [header, "-" * len(header)]
    for o in outcomes:
        lines.append(
            f"{o.scenario:<28} {len(o.accepted):>8} {o.succeeded:>9} {o.lost:>5} "
            f"{o.duplicated:>4} {o.bad_streams:>11} {o.live_watch_gaps:>9} "
            f"{o.leases_overdue:>7} {o.stall_p50:>8.1f}s {o.stall_max:>8.1f}s "
            f"{o.seconds:>6.1f}  {'ok' if o.ok else 'FAILED'}"
        )
    return "\n".join(lines)


async def run_all(
    root: Path, names: list[str], *, clients: int = 8, sleep_ms: int = 300
) -> list[ClusterOutcome]:
    stack = Stack(root, cluster=True, extra_env=CHAOS_ENV)
    await asyncio.to_thread(stack.start, 120)
    outcomes: list[ClusterOutcome] = []
    try:
        for name in names:
            outcome = await run_scenario(
                stack, name, SCENARIOS[name], clients=clients, sleep_ms=sleep_ms
            )
            outcomes.append(outcome)
            print(render([outcome]).splitlines()[-1], flush=True)
            await asyncio.to_thread(stack.wait_ready, 60)
    finally:
        await asyncio.to_thread(stack.stop)
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description="Kill cluster nodes under load; count.")
    parser.add_argument("--clients", type=int, default=8, help="clients submitting at once")
    parser.add_argument("--sleep-ms", type=int, default=300, help="per step")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    parser.add_argument("--short", action="store_true", help="the make-test subset")
    parser.add_argument("--dir", help="keep data and logs here")
    args = parser.parse_args()
    names = args.scenario or (SHORT if args.short else list(SCENARIOS))
    with tempfile.TemporaryDirectory(prefix="jobs-chaos-cluster-") as tmp:
        root = Path(args.dir or tmp)
        outcomes = asyncio.run(run_all(root, names, clients=args.clients, sleep_ms=args.sleep_ms))
    print("\n" + render(outcomes))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
