"""The chaos harness: the whole system as processes we own, jobs in flight, and something
killed, paused or restarted in the middle. Then the books are checked.

    python -m tests.chaos [--jobs 200] [--scenario NAME ...]      (make chaos)

For every scenario it prints jobs accepted / terminal / succeeded / lost / duplicated and
whether every replayed WatchJob stream was contiguous with one STEP_SUCCEEDED per step.

The load mixes three shapes: noop's straight line, cv_tailoring's parallel branches (the
CV and the cover letter), and cv_tailoring waiting for a review, which a reviewer answers
through the fault as a person would (``_review``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import grpc

from devstack import Stack
from jobctl.client import JobsClient
from jobkit.gen.jobs.v1 import jobs_pb2
from jobtypes import CATALOG

#: Fast failure detection, so a scenario takes seconds: the relations matter, not the
#: values (heartbeat well inside the lease; JetStream's ack_wait above the heartbeat).
CHAOS_ENV = {
    "STEP_LEASE_S": "3",
    "LEASE_SCAN_S": "0.5",
    "WORKER_HEARTBEAT_S": "0.5",
    "WORKER_ACK_WAIT_S": "4",
    "ORCHESTRATOR_ACK_WAIT_S": "5",
    "SHUTDOWN_GRACE_S": "5",
    "LOG_LEVEL": "INFO",
    # One user submits every job here: per-user limits would only get in the way.
    "RATE_LIMIT_PER_MINUTE": "0",
    "MAX_RUNNING_JOBS_PER_USER": "0",
    "MAX_WATCHES_PER_USER": "0",
}

Fault = Callable[[Stack], Awaitable[None]]


async def _restart(stack: Stack, name: str, sig: int = signal.SIGKILL, down_s: float = 1.0) -> None:
    stack.services[name].signal(sig)
    stack.services[name].stop(timeout_s=10)
    await asyncio.sleep(down_s)
    stack.start_service(name)


async def kill_orchestrator(stack: Stack) -> None:
    await _restart(stack, "orchestrator")


async def kill_worker(stack: Stack) -> None:
    await _restart(stack, "ai_worker")


async def kill_job_api(stack: Stack) -> None:
    await _restart(stack, "job_api")


async def kill_notifier(stack: Stack) -> None:
    await _restart(stack, "notifier")


async def kill_nats(stack: Stack) -> None:
    assert stack.nats is not None
    stack.nats.kill()
    await asyncio.sleep(1.0)
    stack.nats.start()


async def crash_postgres(stack: Stack) -> None:
    assert stack.postgres is not None
    stack.postgres.stop("immediate")
    await asyncio.sleep(1.0)
    stack.postgres.start()


async def pause_worker_past_its_lease(stack: Stack) -> None:
    worker = stack.services["ai_worker"]
    worker.signal(signal.SIGSTOP)
    await asyncio.sleep(float(CHAOS_ENV["STEP_LEASE_S"]) * 2.5)
    worker.signal(signal.SIGCONT)


async def graceful_worker_restart(stack: Stack) -> None:
    await _restart(stack, "ai_worker", signal.SIGTERM, down_s=0.2)


SCENARIOS: dict[str, Fault | None] = {
    "baseline": None,
    "kill -9 orchestrator": kill_orchestrator,
    "kill -9 ai_worker": kill_worker,
    "kill -9 job_api": kill_job_api,
    "kill -9 notifier": kill_notifier,
    "kill -9 nats-server": kill_nats,
    "postgres stop -m immediate": crash_postgres,
    "SIGSTOP worker past lease": pause_worker_past_its_lease,
    "SIGTERM worker (hand-back)": graceful_worker_restart,
}


_CV_EXAMPLE = json.loads(
    (Path(__file__).parents[2] / "jobtypes" / "cv_tailoring" / "example.json").read_text()
)["input"]


@dataclass(frozen=True)
class Shape:
    """A kind of job in the load: its type, its input, how many steps it commits."""

    job_type: str
    input: Mapping[str, object]
    steps: int
    #: It waits for a review (its ``tailor_cv`` asks) that ``_review`` answers.
    review: bool = False


def noop(sleep_ms: int) -> Shape:
    return Shape("noop", {"sleep_ms": sleep_ms}, 3)


_CV_STEPS = len(CATALOG["cv_tailoring"].steps)
PARALLEL = Shape("cv_tailoring", _CV_EXAMPLE, _CV_STEPS)
REVIEWED = Shape("cv_tailoring", {**_CV_EXAMPLE, "review": True}, _CV_STEPS, review=True)


def mixed(sleep_ms: int) -> tuple[Shape, ...]:
    """The scenarios' load, in turn: one job in five runs parallel steps, one waits for a
    review, the other three are straight lines."""
    return (PARALLEL, REVIEWED, noop(sleep_ms), noop(sleep_ms), noop(sleep_ms))


@dataclass
class Outcome:
    scenario: str
    attempted: int = 0
    accepted: list[str] = field(default_factory=list)
    #: The steps each accepted job commits, when not a noop's three.
    steps: dict[str, int] = field(default_factory=dict)
    #: The accepted jobs that wait for a review.
    reviews: list[str] = field(default_factory=list)
    terminal: int = 0
    succeeded: int = 0
    duplicated: int = 0
    bad_streams: int = 0
    leases_overdue: int = 0
    live_watch_gaps: int = 0
    seconds: float = 0.0

    @property
    def lost(self) -> int:
        return len(self.accepted) - self.terminal

    @property
    def parallel(self) -> int:
        """Accepted jobs with parallel steps (reviewed ones included)."""
        return sum(1 for n in self.steps.values() if n == PARALLEL.steps)

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.bad_streams == 0
            and self.leases_overdue == 0
            and self.live_watch_gaps == 0
            and self.succeeded == len(self.accepted)
            and len(self.accepted) > 0
        )


async def _submit(
    client: JobsClient,
    outcome: Outcome,
    sleep_ms: int,
    deadline: float,
    shapes: Sequence[Shape] = (),
) -> None:
    """Create one job, retrying through outages with one idempotency key; its shape the
    next of ``shapes`` in turn (none: a noop sleeping ``sleep_ms`` a step)."""
    key = uuid.uuid4().hex
    shape = shapes[outcome.attempted % len(shapes)] if shapes else noop(sleep_ms)
    outcome.attempted += 1
    while time.monotonic() < deadline:
        try:
            job = await client.create_job(shape.job_type, shape.input, idempotency_key=key)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                await asyncio.sleep(1.0)  # job_api shed the call: its RetryInfo says 1 s
                continue
            if error.code() not in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.INTERNAL,
                grpc.StatusCode.UNKNOWN,
            ):
                raise
            await asyncio.sleep(0.3)
            continue
        outcome.accepted.append(job.job_id)
        outcome.steps[job.job_id] = shape.steps
        if shape.review:
            outcome.reviews.append(job.job_id)
        return


async def _review(
    client: JobsClient, outcome: Outcome, done: asyncio.Event, deadline: float
) -> None:
    """Approve every job waiting for review, as a person would, through the fault: an
    answer whose reply was lost is seen answered on the next look."""
    settled: set[str] = set()
    while time.monotonic() < deadline:
        pending = [j for j in outcome.reviews if j not in settled]
        if not pending and done.is_set():
            return
        for job_id in pending:
            try:
                job = await client.get_job(job_id)
                if job.status == jobs_pb2.JOB_STATUS_WAITING_INPUT:
                    await client.submit_input(job_id, "tailor_cv", {"approved": True})
                    settled.add(job_id)
                elif job.status in _ENDED:
                    settled.add(job_id)
            except grpc.aio.AioRpcError:
                pass  # down, or answered already: looked at again next round
        await asyncio.sleep(0.2)


_ENDED = (jobs_pb2.JOB_STATUS_SUCCEEDED, jobs_pb2.JOB_STATUS_FAILED, jobs_pb2.JOB_STATUS_CANCELLED)


async def _live_watch(client: JobsClient, job_id: str) -> bool:
    """Watch one job live through the fault; True if the stream was gap-free and complete."""
    try:
        events = [e async for e in client.watch(job_id, max_reconnects=200)]
    except grpc.aio.AioRpcError:
        return False
    sequences = [e.sequence for e in events]
    return (
        sequences == list(range(1, len(events) + 1))
        and bool(events)
        and (events[-1].type == jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED)
    )


async def _replay_ok(client: JobsClient, job_id: str, steps: int) -> bool:
    """Gap-free, one STEP_SUCCEEDED for each of the job's ``steps``, ending in success."""
    events = [e async for e in client.watch(job_id, 0)]
    succeeded = [e.step for e in events if e.type == jobs_pb2.JOB_EVENT_TYPE_STEP_SUCCEEDED]
    return (
        [e.sequence for e in events] == list(range(1, len(events) + 1))
        and len(succeeded) == steps == len(set(succeeded))
        and events[-1].type == jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED
    )


async def count_bad_streams(
    client: JobsClient, job_ids: list[str], steps: Mapping[str, int] | None = None
) -> int:
    """Jobs whose replayed event stream is not gap-free with one STEP_SUCCEEDED a step
    (``steps``: how many each job has, if not 3)."""
    limiter = asyncio.Semaphore(16)

    async def replay(job_id: str) -> bool:
        async with limiter:
            return await _replay_ok(client, job_id, steps=(steps or {}).get(job_id, 3))

    return sum(1 for ok in await asyncio.gather(*(replay(j) for j in job_ids)) if not ok)


async def run_scenario(
    stack: Stack,
    name: str,
    fault: Fault | None,
    *,
    jobs: int,
    sleep_ms: int,
    settle_s: float = 120.0,
) -> Outcome:
    outcome = Outcome(name)
    started = time.monotonic()
    async with JobsClient(
        stack.job_api_addr, stack.notifier_addr, stack.token("chaos"), timeout_s=5, retries=0
    ) as client:
        deadline = time.monotonic() + settle_s
        shapes = mixed(sleep_ms)
        submitted = asyncio.Event()
        reviewer = asyncio.create_task(_review(client, outcome, submitted, deadline))
        first = [
            asyncio.create_task(_submit(client, outcome, sleep_ms, deadline, shapes))
            for _ in range(jobs // 2)
        ]
        await asyncio.gather(*first)
        watchers = [
            asyncio.create_task(_live_watch(client, j))
            for j in outcome.accepted
            if outcome.steps[j] == 3
        ][:5]
        # The fault lands while the first half runs; the second half is submitted through it.
        rest = [
            asyncio.create_task(_submit(client, outcome, sleep_ms, deadline, shapes))
            for _ in range(jobs - jobs // 2)
        ]
        if fault is not None:
            await asyncio.sleep(0.5)
            await fault(stack)
        await asyncio.gather(*rest)
        submitted.set()
        await count_books(stack, outcome, deadline)
        reviewer.cancel()
        live = await asyncio.gather(*watchers)
        outcome.live_watch_gaps = sum(1 for ok in live if not ok)
        outcome.bad_streams = await count_bad_streams(client, outcome.accepted, outcome.steps)
    outcome.seconds = time.monotonic() - started
    return outcome


#: Steps of the given jobs that committed STEP_SUCCEEDED more than once.
DUPLICATED_STEPS = """SELECT count(*) FROM (
    SELECT job_id, step FROM job_events
    WHERE job_id = ANY($1::uuid[]) AND type = 'STEP_SUCCEEDED'
    GROUP BY job_id, step HAVING count(*) > 1) AS d"""


async def count_books(stack: Stack, outcome: Outcome, deadline: float) -> None:
    """Once every accepted job is over (or the deadline passes): how many ended, how many
    succeeded, steps committed twice, and leases left overdue."""
    pg = await _connect_retrying(stack.database_url)
    ids = [uuid.UUID(j) for j in outcome.accepted]
    terminal = "('SUCCEEDED', 'FAILED', 'CANCELLED')"
    try:
        while time.monotonic() < deadline:
            done = await pg.fetchval(
                f"SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[]) AND status IN {terminal}",
                ids,
            )
            if done == len(ids):
                break
            await asyncio.sleep(0.5)
        outcome.terminal = await pg.fetchval(
            f"SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[]) AND status IN {terminal}", ids
        )
        outcome.succeeded = await pg.fetchval(
            "SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[]) AND status = 'SUCCEEDED'", ids
        )
        outcome.duplicated = await pg.fetchval(DUPLICATED_STEPS, ids)
        outcome.leases_overdue = await pg.fetchval(
            "SELECT count(*) FROM job_steps WHERE job_id = ANY($1::uuid[]) "
            "AND status = 'RUNNING' AND lease_expires_at < now() - interval '5 seconds'",
            ids,
        )
    finally:
        await pg.close()


async def _connect_retrying(url: str) -> asyncpg.Connection:
    for _ in range(100):
        try:
            return await asyncpg.connect(url)
        except (OSError, asyncpg.PostgresError):
            await asyncio.sleep(0.2)
    return await asyncpg.connect(url)


def render(outcomes: list[Outcome]) -> str:
    header = (
        f"{'scenario':<28} {'accepted':>8} {'parallel':>8} {'reviewed':>8} {'terminal':>8} "
        f"{'succeeded':>9} {'lost':>5} "
        f"{'dup':>4} {'bad streams':>11} {'live gaps':>9} {'overdue':>7} {'secs':>6}  result"
    )
    lines = [header, "-" * len(header)]
    for o in outcomes:
        lines.append(
            f"{o.scenario:<28} {len(o.accepted):>8} {o.parallel:>8} {len(o.reviews):>8} "
            f"{o.terminal:>8} {o.succeeded:>9} "
            f"{o.lost:>5} {o.duplicated:>4} {o.bad_streams:>11} {o.live_watch_gaps:>9} "
            f"{o.leases_overdue:>7} {o.seconds:>6.1f}  {'ok' if o.ok else 'FAILED'}"
        )
    return "\n".join(lines)


async def run_all(root: Path, names: list[str], jobs: int, sleep_ms: int) -> list[Outcome]:
    stack = Stack(root, extra_env=CHAOS_ENV)
    await asyncio.to_thread(stack.start)
    outcomes = []
    try:
        for name in names:
            outcome = await run_scenario(stack, name, SCENARIOS[name], jobs=jobs, sleep_ms=sleep_ms)
            outcomes.append(outcome)
            print(render([outcome]).splitlines()[-1], flush=True)
            await asyncio.to_thread(stack.wait_ready, 60)
    finally:
        await asyncio.to_thread(stack.stop)
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description="Kill things while jobs run; count the damage.")
    parser.add_argument("--jobs", type=int, default=200, help="jobs per scenario")
    parser.add_argument("--sleep-ms", type=int, default=400, help="per step")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    parser.add_argument("--dir", help="keep data and logs here")
    args = parser.parse_args()
    names = args.scenario or list(SCENARIOS)
    with tempfile.TemporaryDirectory(prefix="jobs-chaos-") as tmp:
        root = Path(args.dir or tmp)
        outcomes = asyncio.run(run_all(root, names, args.jobs, args.sleep_ms))
    print("\n" + render(outcomes))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
