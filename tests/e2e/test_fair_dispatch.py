"""Fair dispatch with saturated workers, on the real stack: a heavy user's backlog does not
hold back a light user's jobs, priority 9 overtakes a queue, and a concurrency cap holds
across two orchestrators racing, all read back from the event log; and a full queue
(``MAX_BACKLOG``) refuses new jobs, saying when to come back.

The stack is narrow on purpose: one worker with 4 slots, a JetStream window of 4 (held
from 8 queued), and steps that take 20 ms, so a few hundred jobs saturate it for seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import grpc
import nats
import pytest

from devstack import Stack
from jobctl.client import JobsClient
from jobctl.transport import Scheduling
from jobkit import bus
from jobkit.gen.jobs.v1 import jobs_pb2
from tests.e2e.test_abuse import retry_delay_s
from tests.e2e.test_observability import sample, scrape

pytestmark = pytest.mark.e2e

E = jobs_pb2
STEP_MS = 20


@pytest.fixture(scope="module")
def saturated_stack(tmp_root: Path) -> Iterator[Stack]:
    env = {
        "WORKER_CONCURRENCY": "4",
        "DISPATCH_WINDOW": "4",
        "DISPATCH_HOLD_AT": "8",
        "RATE_LIMIT_PER_MINUTE": "0",
        "MAX_RUNNING_JOBS_PER_USER": "0",
        "MAX_WATCHES_PER_USER": "0",
    }
    running = Stack(tmp_root / "fair-stack", orchestrators=2, extra_env=env).start()
    yield running
    running.stop()


@pytest.fixture
async def db(saturated_stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    assert saturated_stack.postgres is not None
    conn = await asyncpg.connect(saturated_stack.postgres.url)
    yield conn
    await conn.close()


@dataclass(frozen=True)
class Run:
    """One job's life, from the event log: its first step's start and its end."""

    job_id: str
    started: datetime
    finished: datetime
    status: str


async def runs(db: asyncpg.Connection, job_ids: Sequence[str]) -> dict[str, Run]:
    rows = await db.fetch(
        """SELECT job_id::text,
                  min(occurred_at) FILTER (WHERE type = 'STEP_STARTED') AS started,
                  max(occurred_at) FILTER (WHERE type IN ('SUCCEEDED', 'FAILED', 'CANCELLED'))
                      AS finished,
                  (array_agg(status ORDER BY sequence DESC))[1] AS status
           FROM job_events WHERE job_id = ANY($1::uuid[]) GROUP BY job_id""",
        list(job_ids),
    )
    return {r["job_id"]: Run(r["job_id"], r["started"], r["finished"], r["status"]) for r in rows}


async def until_finished(
    db: asyncpg.Connection, job_ids: Sequence[str], timeout_s: float = 60.0
) -> dict[str, Run]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        done = await runs(db, job_ids)
        if len(done) == len(job_ids) and all(r.finished for r in done.values()):
            return done
        assert loop.time() < deadline, "jobs did not finish"
        await asyncio.sleep(0.25)


def still_waiting(moments: Iterable[datetime], came: datetime, what: str) -> list[datetime]:
    """Of a backlog's ``moments`` (its jobs' starts or ends), those after ``came``, in
    order: what the job that came then was up against. A slow machine runs part of a
    backlog while it is still being submitted; at least half must be left, or there was
    nothing to be fair about."""
    moments = list(moments)
    left = sorted(m for m in moments if m > came)
    assert len(left) >= len(moments) // 2, f"only {len(left)} of the {what} were left"
    return left


def started_ahead(
    done: dict[str, Run], backlog: Sequence[str], job: str, came: datetime, what: str
) -> tuple[int, int]:
    """Of ``backlog``'s jobs still waiting when ``job`` came, how many started before it,
    and how many there were."""
    waiting = still_waiting((done[j].started for j in backlog), came, what)
    return sum(started < done[job].started for started in waiting), len(waiting)


async def submit(
    client: JobsClient, count: int, scheduling: Scheduling | None = None, *, parallel: int = 32
) -> list[str]:
    gate = asyncio.Semaphore(parallel)

    async def one() -> str:
        async with gate:
            job = await client.create_job("noop", {"sleep_ms": STEP_MS}, scheduling=scheduling)
            return job.job_id

    return list(await asyncio.gather(*(one() for _ in range(count))))


def client_for(stack: Stack, user: str) -> JobsClient:
    return JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token(user))


async def test_a_light_user_is_not_held_back_by_a_heavy_users_backlog(
    saturated_stack: Stack, db: asyncpg.Connection
) -> None:
    async with (
        client_for(saturated_stack, "heavy-a") as heavy,
        client_for(saturated_stack, "light-b") as light,
    ):
        flood = await submit(heavy, 500)
        came = datetime.now(UTC)
        mine = await submit(light, 3)
        done = await until_finished(db, [*flood, *mine])
    assert {r.status for r in done.values()} == {"SUCCEEDED"}
    # Of A's jobs still unfinished when B came (all but those a slow machine ran while
    # the flood was being submitted), all of B's are over before a quarter are.
    behind = still_waiting((done[j].finished for j in flood), came, "flood")
    light_last = max(done[j].finished for j in mine)
    assert light_last < behind[len(behind) // 4], (
        sum(f < light_last for f in behind),
        len(behind),
    )
    # A's backlog was deep enough to be read by its owners in turn, not counted whole.
    samples = scrape(saturated_stack.services["orchestrator"].metrics_url)
    assert sample(samples, "jobs_dispatch_queue_reads_total", read="in_turn") > 0


async def express_dispatches(stack: Stack) -> int:
    """How many step attempts ever went into the express lane: taken by a worker's
    express slot when offered (job_api's count), or through JOB_EXPRESS (its last
    sequence: a work queue keeps no message once acked, but counts them all)."""
    samples = scrape(stack.services["job_api"].metrics_url)
    taken = sample(samples, "jobs_step_offers_total", lane=bus.EXPRESS_LANE, outcome="taken")
    nc = await nats.connect(stack.nats_url)
    try:
        info = await nc.jetstream().stream_info(bus.EXPRESS_STREAM)
        return int(info.state.last_seq) + int(taken)
    finally:
        await nc.close()


async def test_a_newcomer_starts_in_the_express_lane_while_a_flood_waits(
    saturated_stack: Stack, db: asyncpg.Connection
) -> None:
    async with (
        client_for(saturated_stack, "flooding-c") as heavy,
        client_for(saturated_stack, "newcomer-d") as newcomer,
    ):
        flood = await submit(heavy, 300)
        before = await express_dispatches(saturated_stack)
        came = datetime.now(UTC)
        first = (await submit(newcomer, 1))[0]
        # With one job unfinished, a user is still a newcomer: nothing of theirs waits.
        second = (await submit(newcomer, 1))[0]
        # With two, the third takes its turn like anyone's.
        third = (await submit(newcomer, 1))[0]
        after = await express_dispatches(saturated_stack)
        done = await until_finished(db, [*flood, first, second, third])
    # The flood's own steps never went there: it had jobs waiting.
    assert after - before == 2
    assert {r.status for r in done.values()} == {"SUCCEEDED"}
    assert done[second].started < done[third].started
    # The newcomer's first job started before the jobs of the flood still waiting when
    # it came: at most a window and the slots' worth of them started in between.
    earlier, waiting = started_ahead(done, flood, first, came, "flood")
    assert earlier <= 24, (earlier, waiting)


async def test_many_newcomers_at_once_take_turns_rather_than_queue_in_the_express_lane(
    saturated_stack: Stack, db: asyncpg.Connection
) -> None:
    """Sixty users' first jobs, one every 10 ms, while a flood waits: the worker's two
    express slots take a newcomer's job at a time each (three 200 ms steps: well over a
    second for two jobs, whatever the machine's speed), so the lane fills within a few
    arrivals; from the dispatcher's next word on, the rest wait their turn in the ready
    queue, at every slot, instead of first in, first out behind two."""
    newcomers = [client_for(saturated_stack, f"crowd-{i:02d}") for i in range(60)]
    async with client_for(saturated_stack, "flooding-e") as heavy:
        try:
            flood = await submit(heavy, 300)
            before = await express_dispatches(saturated_stack)
            theirs: list[str] = []
            for client in newcomers:
                job = await client.create_job("noop", {"sleep_ms": 10 * STEP_MS})
                theirs.append(job.job_id)
                await asyncio.sleep(0.01)
            after = await express_dispatches(saturated_stack)
            done = await until_finished(db, [*flood, *theirs])
        finally:
            for client in newcomers:
                await client.close()
    assert {r.status for r in done.values()} == {"SUCCEEDED"}
    # The first went by the lane; without the bound, all sixty did.
    assert 2 <= after - before <= 40, after - before
    # And job_api says so: CreateJobs that found the lane full (the flood's among them).
    samples = scrape(saturated_stack.services["job_api"].metrics_url)
    assert sample(samples, "jobs_express_decisions_total", decision="lane_full") > 0
    assert sample(samples, "jobs_express_decisions_total", decision="express") >= 2


async def test_priority_9_overtakes_a_queue_of_200(
    saturated_stack: Stack, db: asyncpg.Connection
) -> None:
    async with client_for(saturated_stack, "queue-owner") as owner:
        queue = await submit(owner, 200)
        came = datetime.now(UTC)
        urgent = (await submit(owner, 1, Scheduling(priority=9)))[0]
        done = await until_finished(db, [*queue, urgent])
    # It waits for the slots and the window in front of it, not for the queue: of the
    # jobs not started when it came, only those already in JetStream's window start
    # before it (a quarter second of the workers' take at most: 38 seen, of 188), where
    # FIFO would start it last.
    earlier, waiting = started_ahead(done, queue, urgent, came, "queue")
    assert earlier <= 60, (earlier, waiting)


async def test_a_concurrency_cap_holds_with_two_orchestrators_racing(
    saturated_stack: Stack, db: asyncpg.Connection
) -> None:
    cap = Scheduling(concurrency_key="tenant-9", concurrency_limit=2)
    async with (
        client_for(saturated_stack, "capped") as capped,
        client_for(saturated_stack, "free-running") as other,
    ):
        # 200 submissions at once, and another user's work beside them, uncapped.
        ours, theirs = await asyncio.gather(
            submit(capped, 200, cap, parallel=200), submit(other, 40)
        )
        shown = await capped.get_job(ours[0])
        assert (shown.concurrency_key, shown.concurrency_limit) == ("tenant-9", 2)
        done = await until_finished(db, [*ours, *theirs])
    assert {r.status for r in done.values()} == {"SUCCEEDED"}
    assert most_at_once([done[j] for j in ours]) == 2
    # The cap is the key's, not the workers': the other user used the slots it left.
    assert most_at_once([done[j] for j in theirs]) >= 2


def most_at_once(lives: Sequence[Run]) -> int:
    """The most jobs running at one instant (a start counts before an end at the same
    instant: the conservative reading)."""
    edges = sorted(
        itertools.chain(((r.started, 0, +1) for r in lives), ((r.finished, 1, -1) for r in lives))
    )
    running = peak = 0
    for _, _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


@pytest.fixture(scope="module")
def bounded_stack(tmp_root: Path) -> Iterator[Stack]:
    env = {
        "WORKER_CONCURRENCY": "4",
        "DISPATCH_WINDOW": "4",
        "DISPATCH_HOLD_AT": "8",
        "MAX_BACKLOG": "100",
        "RATE_LIMIT_PER_MINUTE": "0",
        "MAX_RUNNING_JOBS_PER_USER": "0",
        "MAX_WATCHES_PER_USER": "0",
    }
    running = Stack(tmp_root / "bounded-stack", extra_env=env).start()
    yield running
    running.stop()


async def test_a_full_queue_refuses_new_jobs_saying_when_to_come_back(
    bounded_stack: Stack,
) -> None:
    assert bounded_stack.postgres is not None
    db = await asyncpg.connect(bounded_stack.postgres.url)
    try:
        async with client_for(bounded_stack, "filler") as filler:

            async def create() -> str | grpc.aio.AioRpcError:
                try:
                    job = await filler.create_job("noop", {"sleep_ms": STEP_MS})
                except grpc.aio.AioRpcError as error:
                    return error
                return job.job_id

            # The worker frozen, nothing drains: the queue fills at the pace of CreateJob,
            # and job_api hears how deep it is every 100 ms: create until it refuses.
            worker = bounded_stack.services["ai_worker"]
            worker.signal(signal.SIGSTOP)
            outcomes: list[str | grpc.aio.AioRpcError] = []
            try:
                while len(outcomes) < 1000 and all(isinstance(o, str) for o in outcomes):
                    outcomes += await asyncio.gather(*(create() for _ in range(8)))
            finally:
                worker.signal(signal.SIGCONT)
            accepted = [o for o in outcomes if isinstance(o, str)]
            refused = [o for o in outcomes if not isinstance(o, str)]
            assert refused, "the queue was never full"
            # Not before the bound: at least 100 waited (JetStream's 8, then the queue's).
            assert len(accepted) >= 100
            assert {e.code() for e in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
            assert all("the queue is full" in (e.details() or "") for e in refused)
            assert all(1.0 <= retry_delay_s(e) <= 60.0 for e in refused)
            # A refused call created nothing; everything accepted runs to the end.
            done = await until_finished(db, accepted)
            assert {r.status for r in done.values()} == {"SUCCEEDED"}
            listed = await db.fetchval("SELECT count(*) FROM jobs WHERE owner = 'filler'")
            assert listed == len(accepted)
            # Drained, the queue takes jobs again.
            await filler.create_job("noop", {})
    finally:
        await db.close()
