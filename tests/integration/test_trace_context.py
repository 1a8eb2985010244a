"""A job's trace context is stored with it and reaches NATS as the ``traceparent`` header,
on the outbox's fast path and through the sweeper alike."""

from __future__ import annotations

import asyncpg
from nats.aio.client import Client as NatsClient

from jobkit import bus, store
from jobkit.model import OutboxMessage
from jobkit.outbox import OutboxRelay
from tests.integration.helpers import create_job

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def published_headers(nc: NatsClient, count: int) -> list[dict[str, str]]:
    js = nc.jetstream()
    sub = await js.pull_subscribe("jobs.steps.>", durable="trace-test", stream=bus.STEPS_STREAM)
    messages = await sub.fetch(count, timeout=5)
    return [dict(m.headers or {}) for m in messages]


async def test_the_job_row_keeps_its_trace_context(pool: asyncpg.Pool) -> None:
    job, _, _ = await create_job(pool)
    await pool.execute("UPDATE jobs SET trace_context = $2 WHERE id = $1", job.id, TRACEPARENT)
    async with pool.acquire() as conn:
        stored = await store.fetch_job(conn, job.id)
    assert stored is not None
    assert stored.trace_context == TRACEPARENT


async def test_fast_path_and_sweeper_publish_the_traceparent_header(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    relay = OutboxRelay(pool, nc.jetstream(), stale_after_s=0.0)
    fast = OutboxMessage("jobs.steps.noop.prepare", "fast-1", b"x", trace_context=TRACEPARENT)
    row_id = await pool.fetchval(
        "INSERT INTO outbox (subject, msg_id, payload) VALUES ($1, $2, $3) RETURNING id",
        fast.subject,
        fast.msg_id,
        fast.payload,
    )
    await relay.publish_committed([(row_id, fast)])
    await pool.execute(
        """INSERT INTO outbox (subject, msg_id, payload, trace_context)
           VALUES ('jobs.steps.noop.work', 'swept-1', 'x', $1),
                  ('jobs.steps.noop.finish', 'untraced-1', 'x', DEFAULT)""",
        TRACEPARENT,
    )
    assert await relay.sweep_once() == 2
    headers = {h["Nats-Msg-Id"]: h for h in await published_headers(nc, 3)}
    assert headers["fast-1"]["traceparent"] == TRACEPARENT
    assert headers["swept-1"]["traceparent"] == TRACEPARENT
    assert "traceparent" not in headers["untraced-1"]
