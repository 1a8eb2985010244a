"""notifier's webhook deliveries: the NATS adapter that pulls them from JetStream's
``JOB_WEBHOOKS``, makes each try (``sender.Sender``), records it in Postgres, and hands
the message back to JetStream with the wait before the next try (``nak(delay)``).

Postgres holds each delivery's record (``webhook_deliveries``): its tries, its last status
or class of error, its state. A message is acked only once its delivery is over and that
is recorded: delivered (a 2xx), dead (its last try failed), or gone with its deleted job.
So delivery is at least once: a notifier that dies mid-try leaves the message to come back
after the ack wait; a try whose record cannot be written is handed back for another soon,
uncounted. Every try of a delivery carries the same ``webhook-id``, for receivers to drop
repeats. A message that comes back before its record's next try is due (its hand-back was
lost) waits again for the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

import asyncpg
from google.protobuf.message import DecodeError
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from opentelemetry.trace import SpanKind

from jobkit import bus, tracing
from jobkit.convert import webhook_body
from jobkit.db import wrap_db_errors
from jobkit.gen.jobs.internal.v1 import events_pb2
from jobkit.logging import get_logger
from jobkit.metrics import (
    WEBHOOK_ATTEMPT_DURATION,
    WEBHOOK_ATTEMPTS,
    WEBHOOK_DELIVERIES,
    WEBHOOK_DELIVERY_LATENCY,
)
from jobkit.model import EventRecord
from jobkit.pull import PullFeed
from jobkit.sql import queries
from jobkit.webhooks import DeliveryState
from services.notifier.webhooks import RetryPolicy, TryResult

log = get_logger(__name__)

#: A try whose record could not be written (Postgres down) comes back after this long.
RECORD_RETRY_S = 5.0
#: A message back this much before its record's next try is due waits for the rest.
_EARLY_S = 1.0


class Send(Protocol):
    """One try (``sender.Sender``): POST ``body`` to ``url``, signed as ``webhook_id``."""

    async def send(self, url: str, webhook_id: str, body: bytes) -> TryResult: ...


class Deliveries:
    def __init__(
        self,
        nc: NatsClient,
        pool: asyncpg.Pool,
        sender: Send,
        retry: RetryPolicy,
        *,
        concurrency: int,
        ack_wait_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._nc = nc
        self._pool = pool
        self._sender = sender
        self._retry = retry
        self._concurrency = concurrency
        self._ack_wait_s = ack_wait_s
        self._clock = clock
        self._feed: PullFeed | None = None

    async def start(self) -> None:
        await bus.ensure_consumer(
            self._nc.jetstream(),
            bus.WEBHOOKS_STREAM,
            bus.webhook_consumer_config(self._ack_wait_s),
        )
        self._feed = PullFeed(
            self._nc, bus.WEBHOOKS_STREAM, bus.WEBHOOK_CONSUMER, capacity=self._concurrency
        )
        await self._feed.start()

    async def run(self) -> None:
        """Make tries as deliveries come, ``concurrency`` at a time, until ``stop``;
        returns once the tries in hand are over."""
        feed = self._started()
        async with asyncio.TaskGroup() as tries:
            while (msg := await feed.next()) is not None:
                tries.create_task(self._handle(msg))

    def stop(self) -> None:
        """Take no new deliveries; the tries in hand finish (each is bounded in time)."""
        self._started().stop()

    async def close(self) -> None:
        """After ``run`` has returned: give back what arrived meanwhile, unsubscribe."""
        await self._started().close()

    def _started(self) -> PullFeed:
        if self._feed is None:
            raise RuntimeError("Deliveries.start() first")
        return self._feed

    async def _handle(self, msg: Msg) -> None:
        try:
            await self._deliver(msg)
        except Exception as exc:
            log.warning("webhook_try_unrecorded", error=type(exc).__name__)
            with contextlib.suppress(Exception):
                await msg.nak(RECORD_RETRY_S)
        finally:
            self._started().release()

    async def _deliver(self, msg: Msg) -> None:
        try:
            due = events_pb2.WebhookDue.FromString(msg.data)
        except DecodeError:
            log.error("poison_message", subject=msg.subject)
            await msg.term()
            return
        async with wrap_db_errors(), self._pool.acquire() as conn:
            row = await conn.fetchrow(queries.webhook_delivery_due, due.webhook_id)
        if row is None:
            # Its job was deleted, and its deliveries with it: nothing left to send.
            WEBHOOK_DELIVERIES.labels("dropped").inc()
            log.info("webhook_dropped", job_id=due.job_id, webhook_id=due.webhook_id)
            await msg.ack()
            return
        if row["state"] != DeliveryState.PENDING:
            await msg.ack()  # a repeat of a delivery that is over
            return
        now = self._clock()
        due_at: datetime | None = row["next_attempt_at"]
        if due_at is not None and (wait := (due_at - now).total_seconds()) > _EARLY_S:
            await msg.nak(wait)
            return
        await self._try(msg, due, row)

    async def _try(self, msg: Msg, due: events_pb2.WebhookDue, row: asyncpg.Record) -> None:
        record = EventRecord.from_row(row)
        url: str = row["webhook_url"]
        loop = asyncio.get_running_loop()
        with tracing.job_span("deliver webhook", row["trace_context"], kind=SpanKind.CLIENT):
            started = loop.time()
            result = await self._sender.send(url, due.webhook_id, webhook_body(record))
            elapsed = loop.time() - started
        attempts = row["attempts"] + 1
        state, delay = self._retry.after(attempts, result, due.webhook_id)
        now = self._clock()
        async with wrap_db_errors(), self._pool.acquire() as conn:
            await conn.execute(
                queries.record_webhook_attempt,
                due.webhook_id,
                state.value,
                attempts,
                result.status,
                result.error,
                now,
                now + timedelta(seconds=delay) if delay is not None else None,
                None if state is DeliveryState.PENDING else now,
            )
        WEBHOOK_ATTEMPTS.labels(result.outcome).inc()
        WEBHOOK_ATTEMPT_DURATION.labels(result.outcome).observe(elapsed)
        said = {
            "job_id": due.job_id,
            "webhook_id": due.webhook_id,
            # Only the host: the URL's path and query may hold a secret.
            "host": host_of(url),
            "attempt": attempts,
            "outcome": result.outcome,
            "status": result.status,
        }
        if state is DeliveryState.PENDING:
            log.info("webhook_try_failed", retry_in_s=round(delay or 0.0, 3), **said)
            await msg.nak(delay)
            return
        if state is DeliveryState.DELIVERED:
            WEBHOOK_DELIVERY_LATENCY.observe(max(0.0, (now - record.occurred_at).total_seconds()))
            log.info("webhook_delivered", **said)
        else:
            log.warning("webhook_dead", **said)
        WEBHOOK_DELIVERIES.labels(state.value).inc()
        await msg.ack()


def host_of(url: str) -> str:
    """A URL's host, for logs (never its path or query)."""
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"
