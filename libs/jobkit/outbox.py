"""The transactional outbox: messages committed with a state change reach JetStream
at least once, and exactly once in effect (``Nats-Msg-Id`` de-duplication).

The process that committed the rows hands them to its relay (``submit``), which publishes
them in the background straight away (the fast path, no polling delay) — or when their
``not_before`` comes, for scheduled retries — so the committer never waits on JetStream.
Published rows are deleted in bulk by a second background task, with an asynchronous
commit: a delete lost in a crash only means a re-publish that ``Nats-Msg-Id`` drops.

A sweeper in every relay picks up rows nobody published in time — their writer crashed or
NATS was down — claiming them with ``FOR UPDATE SKIP LOCKED`` so replicas never collide.

A relay given ``offers`` (job_api's) first offers a due step attempt to a free worker
(``jobkit.offers``). A taken one's row is left to the sweeper, due once the attempt's
lease would run out: by then its worker has reported on it, and the row is deleted;
if not, the sweeper publishes the attempt for another worker.

When spans are recorded, each message's publish is a PRODUCER span of its job's trace,
from its hand-over to the relay to JetStream's ack (``publish_span``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import asyncpg
from nats.js import JetStreamContext
from opentelemetry.trace import Span, SpanKind

from jobkit import tracing
from jobkit.logging import get_logger
from jobkit.model import OutboxMessage
from jobkit.offers import StepOffers
from jobkit.sql import queries
from jobkit.tracing import message_headers

log = get_logger(__name__)

#: The shortest delay a row is scheduled for; anything sooner is published now.
_TIMER_RESOLUTION_S = 0.001


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        js: JetStreamContext,
        *,
        sweep_interval_s: float = 1.0,
        stale_after_s: float = 2.0,
        batch_size: int = 500,
        offers: StepOffers | None = None,
    ) -> None:
        self._pool = pool
        self._js = js
        self._sweep_interval_s = sweep_interval_s
        self._stale_after_s = stale_after_s
        self._batch_size = batch_size
        self._timers: set[asyncio.TimerHandle] = set()
        #: Rows to publish, in commit order, each with its publish span (the no-op span
        #: unless recorded), and published rows whose delete is pending.
        self._queued: list[tuple[int, OutboxMessage, Span]] = []
        self._published: list[int] = []
        self._offers = offers
        #: Offers in flight, and rows whose attempt a worker took, to put off for the
        #: sweeper.
        self._offering: set[asyncio.Task[None]] = set()
        self._taken: list[int] = []
        self._publisher: asyncio.Task[None] | None = None
        self._deleter: asyncio.Task[None] | None = None

    def submit(self, rows: Sequence[tuple[int, OutboxMessage]]) -> None:
        """Hand over rows the caller has just committed: due ones are published now (or
        offered first), in the background, scheduled ones when their ``not_before`` comes.
        Never blocks."""
        now = datetime.now(UTC)
        loop = asyncio.get_running_loop()
        for row in rows:
            row_id, message = row
            when = message.not_before
            # Below a timer's resolution a row is due: uvloop (milliseconds) fires a timer
            # a fraction early, and makes a shorter call_later a call_soon, whose handle
            # has no when() for the pruning below.
            if when is not None and (when - now).total_seconds() >= _TIMER_RESOLUTION_S:
                self._timers = {t for t in self._timers if t.when() > loop.time()}
                self._timers.add(loop.call_later((when - now).total_seconds(), self.submit, [row]))
            elif self._offers is not None and self._offers.wanted(message):
                offering = loop.create_task(self._offer(self._offers, row_id, message))
                self._offering.add(offering)
                offering.add_done_callback(self._offering.discard)
            else:
                self._queued.append((row_id, message, publish_span(message)))
        if self._queued:
            self._start_publisher()

    async def flush(self) -> None:
        """Wait until everything submitted so far is published and its rows deleted (or
        the attempt failed, leaving the rows to the sweeper)."""
        while busy := [
            t for t in (*self._offering, self._publisher, self._deleter) if t and not t.done()
        ]:
            await asyncio.wait(busy)

    async def drain(self, timeout_s: float = 5.0) -> None:
        """On shutdown: give the fast path a moment to finish; the sweeper has the rest."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), timeout_s)

    async def publish_committed(self, rows: Sequence[tuple[int, OutboxMessage]]) -> None:
        """``submit`` and ``flush``: for callers that must know the rows went out."""
        self.submit(rows)
        await self.flush()

    async def _publish_queued(self) -> None:
        # One task at a time publishes, so messages leave in commit order; whatever was
        # queued meanwhile goes out as the next group.
        while self._queued:
            batch = self._queued[:_PUBLISH_GROUP]
            del self._queued[:_PUBLISH_GROUP]
            try:
                await self._publish((m, span) for _, m, span in batch)
            except Exception as exc:
                # The rows stay in the table: the sweeper publishes them once stale.
                log.warning("outbox_fast_path_failed", count=len(batch), error=type(exc).__name__)
                continue
            self._published.extend(row_id for row_id, _, _ in batch)
            self._start_deleter()

    async def _offer(self, offers: StepOffers, row_id: int, message: OutboxMessage) -> None:
        span = publish_span(message, "offer")
        with span:  # ends at the worker's answer
            taken = await offers.offer(message)
        if taken:
            self._taken.append(row_id)
            self._start_deleter()
        else:
            self._queued.append((row_id, message, publish_span(message)))
            self._start_publisher()

    def _start_publisher(self) -> None:
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.get_running_loop().create_task(self._publish_queued())

    def _start_deleter(self) -> None:
        if self._deleter is None or self._deleter.done():
            self._deleter = asyncio.get_running_loop().create_task(self._delete_published())

    async def _delete_published(self) -> None:
        while self._published or self._taken:
            ids, self._published = self._published, []
            taken, self._taken = self._taken, []
            try:
                async with self._pool.acquire() as conn:
                    if ids:
                        await conn.execute(queries.delete_published_outbox, ids)
                    if taken:
                        assert self._offers is not None
                        await conn.execute(queries.defer_taken_offers, taken, self._offers.lease_s)
            except Exception as exc:
                log.warning(
                    "outbox_delete_failed", count=len(ids) + len(taken), error=type(exc).__name__
                )

    async def _publish(self, messages: Iterable[tuple[OutboxMessage, Span]]) -> None:
        await publish(self._js, messages)

    async def sweep_once(self) -> int:
        """Publish and delete one batch of stale due rows; returns how many."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                queries.claim_stale_outbox, self._stale_after_s, self._batch_size
            )
            if not rows:
                return 0
            # A taken offer whose worker has reported on its attempt is done with: only
            # its row goes. Every other row is published.
            messages = [
                OutboxMessage(
                    r["subject"], r["msg_id"], r["payload"], trace_context=r["trace_context"]
                )
                for r in rows
                if not r["reported"]
            ]
            await self._publish((m, publish_span(m)) for m in messages)
            await conn.execute(queries.delete_outbox, [r["id"] for r in rows])
        if messages:
            # Rows only deleted are first steps their workers reported on: routine.
            log.info("outbox_swept", count=len(messages))
        return len(rows)

    async def run(self) -> None:
        """Sweep forever; a failed sweep (Postgres or NATS down) is retried next round."""
        try:
            while True:
                try:
                    while await self.sweep_once() == self._batch_size:
                        pass
                except Exception as exc:
                    log.warning("outbox_sweep_failed", error=type(exc).__name__)
                await asyncio.sleep(self._sweep_interval_s)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the background work; unpublished rows stay for the next sweep."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for task in (*self._offering, self._publisher, self._deleter):
            if task is not None:
                task.cancel()


async def publish(js: JetStreamContext, messages: Iterable[tuple[OutboxMessage, Span]]) -> None:
    """Publish messages together (pipelined, the acks awaited as one), each in its publish
    span; raises if any was not stored. A message published twice is stored once
    (``Nats-Msg-Id``), so a caller may always publish again what it is unsure of."""

    async def one(m: OutboxMessage, span: Span) -> None:
        with span:  # ends at JetStream's ack (or its failure)
            await js.publish(
                m.subject, m.payload, headers=message_headers(m.msg_id, m.trace_context)
            )

    await asyncio.gather(*(one(m, span) for m, span in messages))


def publish_span(message: OutboxMessage, verb: str = "publish") -> Span:
    """The PRODUCER span of one message's publish (or offer), in its job's trace, from
    now; the API's no-op span unless spans are recorded."""
    span = tracing.job_span(verb, message.trace_context, kind=SpanKind.PRODUCER)
    if span.is_recording():
        span.update_name(f"{verb} {message.subject}")
        span.set_attribute("messaging.destination.name", message.subject)
    return span


#: Most messages published in one go (they are pipelined; the acks are awaited together).
_PUBLISH_GROUP = 1000
