"""job_api's group commit of new jobs, against real Postgres and a real nats-server -js."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from jobkit import bus, planning, snapshots
from jobkit.model import NewJob
from jobkit.outbox import OutboxRelay
from jobtypes import CATALOG
from services.job_api.group_commit import GroupCommit


def planned(owner: str = "alice") -> NewJob:
    valid = planning.validate(
        planning.CreateRequest("noop", b"", {}, None), CATALOG, max_input_bytes=1 << 20
    )
    return planning.plan(
        valid, owner=owner, job_id=uuid.uuid4(), now=datetime.now(UTC), trace_context=""
    )


def group_commit(pool: asyncpg.Pool, nc: NatsClient, flushes: int) -> GroupCommit:
    relay = OutboxRelay(pool, nc.jetstream())
    return GroupCommit(pool, nc, relay, lambda: datetime.now(UTC), flushes=flushes)


async def test_jobs_that_come_while_a_commit_is_in_flight_go_in_the_next_together(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    creations = group_commit(pool, nc, flushes=1)
    jobs = [planned() for _ in range(20)]
    created = await asyncio.gather(
        *(creations.create(j, hold_steps=False, traced=False) for j in jobs)
    )
    # The first commits alone, at once; the other 19 came while it was in flight, and
    # went in one statement, stamped with one time.
    assert created[0].now < created[1].now
    assert len({c.now for c in created[1:]}) == 1
    rows = await pool.fetch(
        "SELECT id, updated_at, last_sequence FROM jobs WHERE id = ANY($1::uuid[])",
        [j.job.id for j in jobs],
    )
    written = {r["id"]: r for r in rows}
    for job, one in zip(jobs, created, strict=True):
        assert written[job.job.id]["updated_at"] == one.now
        assert [(e.job_id, e.sequence) for e in one.events] == [(job.job.id, 1)]
        assert written[job.job.id]["last_sequence"] == 1
    # Each job's first step went to the relay.
    steps = await nc.jetstream().stream_info(bus.STEPS_STREAM)
    for _ in range(50):
        if steps.state.messages == 20:
            break
        await asyncio.sleep(0.05)
        steps = await nc.jetstream().stream_info(bus.STEPS_STREAM)
    assert steps.state.messages == 20


async def test_a_job_alone_is_announced_and_its_events_stamped_with_its_commit(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    creations = group_commit(pool, nc, flushes=2)
    announced: list[bytes] = []

    async def take(msg: Msg) -> None:
        announced.append(msg.data)

    sub = await nc.subscribe(bus.SNAPSHOT_SUBJECT, cb=take)
    job = planned()
    one = await creations.create(job, hold_steps=False, traced=False)
    await nc.flush()
    for _ in range(50):
        if announced:
            break
        await asyncio.sleep(0.02)
    await sub.unsubscribe()
    assert [snapshots.decode(a).id for a in announced] == [job.job.id]
    assert one.events[0].occurred_at == one.now
    updated_at = await pool.fetchval("SELECT updated_at FROM jobs WHERE id = $1", job.job.id)
    assert updated_at == one.now


async def test_a_job_that_cannot_be_written_fails_alone(pool: asyncpg.Pool, nc: NatsClient) -> None:
    creations = group_commit(pool, nc, flushes=1)
    taken = planned()
    await creations.create(taken, hold_steps=False, traced=False)
    jobs = [planned() for _ in range(6)]
    # The first is in flight alone; the rest wait together, with a job already written
    # among them (its id is taken): their batch fails, and is tried a job at a time.
    results = await asyncio.gather(
        *(creations.create(j, hold_steps=False, traced=False) for j in [*jobs[:3], taken]),
        *(creations.create(j, hold_steps=False, traced=False) for j in jobs[3:]),
        return_exceptions=True,
    )
    assert [type(r) for r in results].count(asyncpg.UniqueViolationError) == 1
    assert isinstance(results[3], asyncpg.UniqueViolationError)
    count = await pool.fetchval(
        "SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[])", [j.job.id for j in jobs]
    )
    assert count == 6


@pytest.mark.parametrize("hold_steps", [False, True])
async def test_held_and_unheld_jobs_are_written_as_asked(
    pool: asyncpg.Pool, nc: NatsClient, hold_steps: bool
) -> None:
    creations = group_commit(pool, nc, flushes=1)
    jobs = [planned() for _ in range(5)]
    holds = [hold_steps, not hold_steps, hold_steps, not hold_steps, hold_steps]
    await asyncio.gather(
        *(creations.create(j, hold_steps=h, traced=False) for j, h in zip(jobs, holds, strict=True))
    )
    ready = {
        r["job_id"]
        for r in await pool.fetch(
            "SELECT job_id FROM ready_steps WHERE job_id = ANY($1::uuid[])",
            [j.job.id for j in jobs],
        )
    }
    assert ready == {j.job.id for j, h in zip(jobs, holds, strict=True) if h}
