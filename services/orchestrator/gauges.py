"""Backlog gauges, polled by the orchestrator: JetStream consumer lag and the outbox.

Every orchestrator replica polls and reports the same numbers (they describe shared
state); a dashboard takes their ``max``.
"""

from __future__ import annotations

import asyncio

import asyncpg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from jobkit import bus
from jobkit.logging import get_logger
from jobkit.metrics import (
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_DUE_AGE,
    QUEUE_ACK_PENDING,
    QUEUE_PENDING,
)
from jobkit.sql import queries

log = get_logger(__name__)

#: (stream, durable consumer): step work for the workers (and its express lane), updates
#: for the orchestrators,
#: webhook deliveries for the notifiers (ack-pending: those waiting for their next try).
CONSUMERS = (
    (bus.STEPS_STREAM, bus.WORKER_CONSUMER),
    (bus.EXPRESS_STREAM, bus.WORKER_EXPRESS_CONSUMER),
    (bus.UPDATES_STREAM, bus.ORCHESTRATOR_CONSUMER),
    (bus.WEBHOOKS_STREAM, bus.WEBHOOK_CONSUMER),
)


async def poll_once(pool: asyncpg.Pool, js: JetStreamContext) -> None:
    """Read the consumers' lag and the outbox's size into the gauges."""
    for stream, consumer in CONSUMERS:
        try:
            info = await js.consumer_info(stream, consumer)
        except NotFoundError:
            continue  # its first replica has not started yet
        QUEUE_PENDING.labels(consumer).set(info.num_pending or 0)
        QUEUE_ACK_PENDING.labels(consumer).set(info.num_ack_pending or 0)
    async with pool.acquire() as conn:
        row = await conn.fetchrow(queries.outbox_backlog)
    assert row is not None
    OUTBOX_BACKLOG.set(row["backlog"])
    OUTBOX_OLDEST_DUE_AGE.set(row["oldest_due_s"])


async def poll_forever(pool: asyncpg.Pool, js: JetStreamContext, interval_s: float) -> None:
    """Poll every ``interval_s``; a failed poll (NATS or Postgres down) keeps the old values."""
    while True:
        try:
            await poll_once(pool, js)
        except Exception as exc:
            log.warning("gauge_poll_failed", error=type(exc).__name__)
        await asyncio.sleep(interval_s)
