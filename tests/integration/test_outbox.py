"""The outbox relay against real Postgres and a real nats-server -js."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
from nats.aio.client import Client as NatsClient

from jobkit import bus
from jobkit.model import OutboxMessage
from jobkit.outbox import OutboxRelay
from tests.integration.helpers import create_job


async def stream_count(nc: NatsClient, stream: str) -> int:
    info = await nc.jetstream().stream_info(stream)
    return int(info.state.messages)


async def test_committed_rows_are_published_once_and_deleted(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    relay = OutboxRelay(pool, nc.jetstream())
    _, _, rows = await create_job(pool)
    await relay.publish_committed(rows)
    assert await stream_count(nc, bus.UPDATES_STREAM) == 1
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    # A crash between publish and delete makes the relay publish again: de-duplicated.
    await relay.publish_committed(rows)
    assert await stream_count(nc, bus.UPDATES_STREAM) == 1


async def test_rows_left_by_a_crashed_writer_are_swept(pool: asyncpg.Pool, nc: NatsClient) -> None:
    relay = OutboxRelay(pool, nc.jetstream(), stale_after_s=0.0)
    for _ in range(3):
        await create_job(pool)  # committed, but nobody published them
    assert await stream_count(nc, bus.UPDATES_STREAM) == 0
    assert await relay.sweep_once() == 3
    assert await stream_count(nc, bus.UPDATES_STREAM) == 3
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert await relay.sweep_once() == 0


async def test_sweeper_waits_for_fresh_rows_and_scheduled_ones(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    relay = OutboxRelay(pool, nc.jetstream(), stale_after_s=30.0)
    await create_job(pool)
    assert await relay.sweep_once() == 0  # its writer is presumably publishing it
    later = datetime.now(UTC) + timedelta(seconds=0.3)
    await pool.execute(
        "INSERT INTO outbox (subject, msg_id, payload, not_before) VALUES ($1, $2, $3, $4)",
        "jobs.steps.noop.prepare",
        "scheduled-1",
        b"x",
        later,
    )
    fast = OutboxRelay(pool, nc.jetstream(), stale_after_s=0.0)
    assert await fast.sweep_once() == 1  # only the job's row: the scheduled one is not due
    await asyncio.sleep(0.35)
    assert await fast.sweep_once() == 1
    assert await stream_count(nc, bus.STEPS_STREAM) == 1


async def test_scheduled_rows_are_published_when_due(pool: asyncpg.Pool, nc: NatsClient) -> None:
    relay = OutboxRelay(pool, nc.jetstream())
    when = datetime.now(UTC) + timedelta(seconds=0.2)
    row_id = await pool.fetchval(
        "INSERT INTO outbox (subject, msg_id, payload, not_before) VALUES ($1, $2, $3, $4) "
        "RETURNING id",
        "jobs.steps.noop.work",
        "due-1",
        b"x",
        when,
    )
    await relay.publish_committed(
        [(row_id, OutboxMessage("jobs.steps.noop.work", "due-1", b"x", when))]
    )
    assert await stream_count(nc, bus.STEPS_STREAM) == 0
    await asyncio.sleep(0.4)
    assert await stream_count(nc, bus.STEPS_STREAM) == 1
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    relay.close()
