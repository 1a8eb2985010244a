"""A new job's first step offered to a free worker (jobkit.offers) before JetStream,
against real Postgres and a real nats-server -js. The worker here is a NATS subscriber
answering as ai_worker does (its own side is in tests/e2e/test_job_path.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from jobkit import bus, planning, store
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.model import OutboxMessage
from jobkit.offers import StepOffers, offer_expired, offered_express
from jobkit.outbox import OutboxRelay
from jobtypes import CATALOG
from tests.integration.test_outbox import stream_count

Answer = Callable[[Msg], Awaitable[None]]


async def create_dispatched_job(
    pool: asyncpg.Pool, *, express: bool = False
) -> list[tuple[int, OutboxMessage]]:
    """A noop job as CreateJob commits it: its first step's attempt in the outbox (in the
    express lane: a newcomer's, while the dispatcher holds the rest)."""
    valid = planning.validate(
        planning.CreateRequest("noop", b"", {}, None), CATALOG, max_input_bytes=1024
    )
    now = datetime.now(UTC)
    planned = planning.plan(valid, owner="alice", job_id=uuid.uuid4(), now=now, trace_context="")
    if express:
        planned = planning.expressed(planned)
    async with pool.acquire() as conn:
        _, rows = await store.create_jobs(conn, [planned], now)
    return rows


async def record_attempt(pool: asyncpg.Pool, message: OutboxMessage) -> None:
    """The step's record at the message's attempt, RUNNING: as a worker's first report on
    it writes it, and as the orchestrator writes it when it dispatches the attempt."""
    job_id, step, attempt = message.msg_id.split(":")  # bus.step_msg_id
    await pool.execute(
        "UPDATE job_steps SET status = 'RUNNING', attempt = $3 WHERE job_id = $1 AND name = $2",
        uuid.UUID(job_id),
        step,
        int(attempt),
    )


@asynccontextmanager
async def worker(nc: NatsClient, answer: Answer) -> AsyncIterator[list[Msg]]:
    """A worker of the offers' queue group, answering each offer with ``answer``."""
    offered: list[Msg] = []

    async def on_offer(msg: Msg) -> None:
        offered.append(msg)
        await answer(msg)

    sub = await nc.subscribe(bus.OFFER_SUBJECT, queue=bus.OFFER_QUEUE, cb=on_offer)
    try:
        yield offered
    finally:
        await sub.unsubscribe()


async def take(msg: Msg) -> None:
    await msg.respond(bus.OFFER_TAKEN)


async def refuse(msg: Msg) -> None:
    await msg.respond(bus.OFFER_REFUSED)


def relay_offering(pool: asyncpg.Pool, nc: NatsClient, **kwargs: float) -> OutboxRelay:
    return OutboxRelay(pool, nc.jetstream(), offers=StepOffers(nc, lease_s=20.0, **kwargs))


async def test_a_taken_step_is_never_queued_unless_its_worker_goes_silent(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    rows = await create_dispatched_job(pool)
    relay = relay_offering(pool, nc)
    async with worker(nc, take) as offered:
        await relay.publish_committed(rows)
    assert len(offered) == 1
    task = worker_pb2.StepTask.FromString(offered[0].data)
    assert (task.step, task.attempt) == ("prepare", 1)
    # The whole attempt, as JetStream would carry it, with its id and a deadline.
    assert offered[0].headers is not None
    assert offered[0].headers["Nats-Msg-Id"] == rows[0][1].msg_id
    assert not offer_expired(offered[0].headers)
    assert await stream_count(nc, bus.STEPS_STREAM) == 0
    # Its row waits, for a lease's length, for a word from the worker.
    wait = await pool.fetchval("SELECT not_before - now() FROM outbox")
    assert 19 < wait.total_seconds() <= 20
    sweeper = OutboxRelay(pool, nc.jetstream(), stale_after_s=0.0)
    assert await sweeper.sweep_once() == 0
    # It never came: the lease's time has passed, and the attempt goes to another worker.
    await pool.execute("UPDATE outbox SET not_before = now() - interval '1 second'")
    assert await sweeper.sweep_once() == 1
    assert await stream_count(nc, bus.STEPS_STREAM) == 1
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_taken_step_reported_on_is_not_sent_again(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    rows = await create_dispatched_job(pool)
    relay = relay_offering(pool, nc)
    async with worker(nc, take):
        await relay.publish_committed(rows)
    # The worker's first report started the job: the step's record is at the attempt.
    await record_attempt(pool, rows[0][1])
    await pool.execute("UPDATE outbox SET not_before = now() - interval '1 second'")
    assert await OutboxRelay(pool, nc.jetstream(), stale_after_s=0.0).sweep_once() == 1
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert await stream_count(nc, bus.STEPS_STREAM) == 0


async def test_a_step_nobody_took_is_published_by_the_sweeper_whatever_its_record_says(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    """The orchestrator records a step's attempt as it dispatches it. If that dispatch's
    publish fails (NATS down), its row is all that is left of it: the sweeper publishes
    it, though the step's record is at its attempt, since no worker ever took it."""
    rows = await create_dispatched_job(pool)
    await record_attempt(pool, rows[0][1])
    await pool.execute("UPDATE outbox SET not_before = now() - interval '1 second'")
    assert await OutboxRelay(pool, nc.jetstream(), stale_after_s=0.0).sweep_once() == 1
    assert await stream_count(nc, bus.STEPS_STREAM) == 1
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_refused_or_unheard_offer_goes_through_jetstream(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    # Nobody listening: the server says so at once, and the attempt is published.
    relay = relay_offering(pool, nc, quiet_s=0.0)
    rows = await create_dispatched_job(pool)
    started = time.monotonic()
    await relay.publish_committed(rows)
    assert time.monotonic() - started < 0.2
    assert await stream_count(nc, bus.STEPS_STREAM) == 1
    # A worker without a free slot refuses it.
    async with worker(nc, refuse) as offered:
        await relay.publish_committed(await create_dispatched_job(pool))
    assert len(offered) == 1
    assert await stream_count(nc, bus.STEPS_STREAM) == 2
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_an_answer_too_late_is_refused_by_its_deadline(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    """The offerer gave up and published the attempt; a worker that reads the offer only
    then must not run it too: the deadline it carries has passed."""

    async def slow(msg: Msg) -> None:
        await asyncio.sleep(0.3)
        late.append(offer_expired(msg.headers))
        await msg.respond(bus.OFFER_TAKEN)

    late: list[bool] = []
    relay = relay_offering(pool, nc, timeout_s=0.1)
    rows = await create_dispatched_job(pool)
    async with worker(nc, slow):
        await relay.publish_committed(rows)
        await asyncio.sleep(0.4)
    assert late == [True]
    assert await stream_count(nc, bus.STEPS_STREAM) == 1


async def test_after_a_refusal_offers_pause(pool: asyncpg.Pool, nc: NatsClient) -> None:
    """A saturated pool costs no round trip per job: for a moment after a refusal, steps
    go straight to JetStream."""
    relay = relay_offering(pool, nc, quiet_s=30.0)
    async with worker(nc, refuse) as offered:
        for _ in range(3):
            await relay.publish_committed(await create_dispatched_job(pool))
    assert len(offered) == 1
    assert await stream_count(nc, bus.STEPS_STREAM) == 3


async def test_an_express_step_is_offered_with_its_lane_even_after_refusals(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    """A newcomer's first step while the workers are saturated: offered to an express
    slot every time (main-lane refusals do not pause it), and marked as the lane's."""
    relay = relay_offering(pool, nc, quiet_s=30.0)
    async with worker(nc, refuse):
        await relay.publish_committed(await create_dispatched_job(pool))
    async with worker(nc, take) as offered:
        await relay.publish_committed(await create_dispatched_job(pool, express=True))
    assert len(offered) == 1
    assert offered_express(offered[0].headers)
    assert await stream_count(nc, bus.EXPRESS_STREAM) == 0
