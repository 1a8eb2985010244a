"""Webhook deliveries against real Postgres and a real nats-server -js: enqueued by the
statement that commits the event (and only then), through the outbox to JOB_WEBHOOKS, and
the notifier's consumer trying them with a scripted sender, recording each try, handing
failures back with their delay, and dropping a deleted job's."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
import pytest
from nats.aio.client import Client as NatsClient

from jobkit import bus, control, store
from jobkit.gen.jobs.internal.v1 import events_pb2
from jobkit.lifecycle import EventType, JobStatus
from jobkit.model import JobChange, NewEvent, OutboxMessage
from jobkit.outbox import OutboxRelay
from jobkit.sql import queries
from services.job_api.repository import webhook_deliveries
from services.notifier.deliveries import Deliveries
from services.notifier.webhooks import RetryPolicy, TryResult
from tests.integration.helpers import create_job

URL = "https://hooks.example.com/in?sig=s3cr3t"


async def _cancel(pool: asyncpg.Pool, job_id: uuid.UUID) -> list[tuple[int, OutboxMessage]]:
    """CancelJob's commit: the outbox rows it wrote."""
    async with pool.acquire() as conn, conn.transaction():
        job = await store.fetch_job(conn, job_id, lock=True)
        assert job is not None
        now = datetime.now(UTC)
        change = control.cancel(job, now)
        assert change is not None
        _, written = await store.apply_changes(conn, [(job, change)], now)
    return written


def _webhook_messages(written: list[tuple[int, OutboxMessage]]) -> list[OutboxMessage]:
    return [m for _, m in written if m.subject.startswith(bus.WEBHOOKS_SUBJECT_PREFIX)]


async def test_a_terminal_event_enqueues_its_delivery_in_the_same_commit(
    pool: asyncpg.Pool,
) -> None:
    job, _, _ = await create_job(pool, webhook_url=URL)
    async with pool.acquire() as conn:
        fetched = await store.fetch_job(conn, job.id)
    assert fetched is not None
    assert fetched.webhook_url == URL
    (message,) = _webhook_messages(await _cancel(pool, job.id))
    assert message.subject == f"jobs.webhooks.{job.id}"
    assert message.msg_id == f"webhook:{job.id}:2"
    due = events_pb2.WebhookDue.FromString(message.payload)
    assert (due.webhook_id, due.job_id, due.sequence) == (f"{job.id}:2", str(job.id), 2)
    async with pool.acquire() as conn:
        (delivery,) = await webhook_deliveries(conn, job.id, 10)
        event_type = await conn.fetchval(
            "SELECT type FROM job_events WHERE job_id = $1 AND sequence = 2", job.id
        )
    assert event_type == EventType.CANCELLED.value
    assert (delivery.webhook_id, delivery.sequence, delivery.type) == (
        f"{job.id}:2",
        2,
        "job.cancelled",
    )
    assert (delivery.state.value, delivery.attempts, delivery.last_status) == ("pending", 0, None)


async def test_no_webhook_or_no_terminal_event_enqueues_nothing(pool: asyncpg.Pool) -> None:
    plain, _, _ = await create_job(pool)
    assert not _webhook_messages(await _cancel(pool, plain.id))
    hooked, _, _ = await create_job(pool, webhook_url=URL)
    async with pool.acquire() as conn, conn.transaction():
        before = await store.fetch_job(conn, hooked.id, lock=True)
        assert before is not None
        progress = NewEvent(EventType.PROGRESS, JobStatus.QUEUED, 5)
        _, written = await store.apply_changes(
            conn, [(before, JobChange(job=before, events=(progress,)))], datetime.now(UTC)
        )
    assert not _webhook_messages(written)
    assert await pool.fetchval("SELECT count(*) FROM webhook_deliveries") == 0


async def test_a_stale_decision_enqueues_no_delivery(pool: asyncpg.Pool) -> None:
    job, _, _ = await create_job(pool, webhook_url=URL)
    async with pool.acquire() as conn:
        stale = await store.fetch_job(conn, job.id)
        assert stale is not None
        await _cancel(pool, job.id)  # another writer ended it first
        failed = JobChange(job=stale, events=(NewEvent(EventType.FAILED, JobStatus.FAILED, 0),))
        with pytest.raises(store.StaleRead):
            await store.apply_changes(conn, [(stale, failed)], datetime.now(UTC))
    rows = await pool.fetch("SELECT sequence, type FROM webhook_deliveries")
    assert [(r["sequence"], r["type"]) for r in rows] == [(2, "job.cancelled")]


class ScriptedSender:
    """Answers each try with the next result of its script (the last one repeats)."""

    def __init__(self, *script: TryResult) -> None:
        self.script = list(script)
        self.tries: list[tuple[str, str, bytes, float]] = []

    async def send(self, url: str, webhook_id: str, body: bytes) -> TryResult:
        self.tries.append((url, webhook_id, body, time.monotonic()))
        return self.script[min(len(self.tries), len(self.script)) - 1]


@contextlib.asynccontextmanager
async def consuming(
    pool: asyncpg.Pool, nc: NatsClient, sender: ScriptedSender, attempts: int
) -> AsyncIterator[None]:
    """The notifier's consumer running, with ``attempts`` tries 0.2-0.3 s apart."""
    consumer = Deliveries(
        nc,
        pool,
        sender,
        RetryPolicy(max_attempts=attempts, backoff_s=0.2, backoff_max_s=0.3),
        concurrency=4,
        ack_wait_s=10.0,
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        yield
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 10)
        await consumer.close()


async def until(predicate: Callable[[], Awaitable[bool]], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def state_is(pool: asyncpg.Pool, state: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bool(await pool.fetchval("SELECT state FROM webhook_deliveries") == state)

    return check


def stream_drained(nc: NatsClient) -> Callable[[], Awaitable[bool]]:
    """Nothing left for the consumer: every message acked (none waiting, none handed back)."""

    async def check() -> bool:
        info = await nc.jetstream().consumer_info(bus.WEBHOOKS_STREAM, bus.WEBHOOK_CONSUMER)
        return (info.num_pending or 0) + (info.num_ack_pending or 0) == 0

    return check


async def publish(
    pool: asyncpg.Pool, nc: NatsClient, rows: list[tuple[int, OutboxMessage]]
) -> None:
    await OutboxRelay(pool, nc.jetstream()).publish_committed(rows)


async def test_failed_tries_come_back_after_their_back_off_until_one_succeeds(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    sender = ScriptedSender(
        TryResult(status=500), TryResult(error="timeout"), TryResult(status=200)
    )
    job, _, _ = await create_job(pool, webhook_url=URL)
    await publish(pool, nc, await _cancel(pool, job.id))
    async with consuming(pool, nc, sender, attempts=5):
        await until(state_is(pool, "delivered"))
        await until(stream_drained(nc))
    row = await pool.fetchrow("SELECT * FROM webhook_deliveries")
    assert row is not None
    assert (row["attempts"], row["last_status"], row["last_error"]) == (3, 200, None)
    assert row["finished_at"] is not None
    assert row["next_attempt_at"] is None
    assert [t[0] for t in sender.tries] == [URL] * 3
    assert [t[1] for t in sender.tries] == [f"{job.id}:2"] * 3
    assert len({t[2] for t in sender.tries}) == 1
    gaps = [b[3] - a[3] for a, b in zip(sender.tries, sender.tries[1:], strict=False)]
    assert all(gap >= 0.15 for gap in gaps), gaps  # each after its back-off (0.2 s, less 10 %)


async def test_the_last_failed_try_makes_a_dead_letter(pool: asyncpg.Pool, nc: NatsClient) -> None:
    sender = ScriptedSender(TryResult(error="connect"), TryResult(status=410))
    job, _, _ = await create_job(pool, webhook_url=URL)
    await publish(pool, nc, await _cancel(pool, job.id))
    async with consuming(pool, nc, sender, attempts=3):
        await until(state_is(pool, "dead"))
        await until(stream_drained(nc))
        await asyncio.sleep(0.6)  # twice the longest back-off: nothing comes back
    assert len(sender.tries) == 3
    row = await pool.fetchrow("SELECT * FROM webhook_deliveries")
    assert row is not None
    assert (row["attempts"], row["last_status"], row["last_error"]) == (3, 410, None)
    assert row["next_attempt_at"] is None


async def test_a_deleted_job_s_delivery_is_dropped(pool: asyncpg.Pool, nc: NatsClient) -> None:
    sender = ScriptedSender(TryResult(status=200))
    job, _, _ = await create_job(pool, webhook_url=URL)
    rows = await _cancel(pool, job.id)
    await pool.execute("DELETE FROM jobs WHERE id = $1", job.id)
    assert await pool.fetchval("SELECT count(*) FROM webhook_deliveries") == 0  # with the job
    await publish(pool, nc, rows)
    async with consuming(pool, nc, sender, attempts=3):
        await until(stream_drained(nc))
    assert sender.tries == []
    assert await pool.fetchrow(queries.webhook_delivery_due, f"{job.id}:2") is None
