"""New jobs committed several to a statement while a commit is in flight: group commit.

A CreateJob that needs no check under its user's lock (no running-jobs quota, no
newcomer's question, no idempotency key) is one insert statement. Written one at a time,
each job pays for a pool connection, a round trip, the statement's start in Postgres and a
commit of its own: with noop jobs against the bench's Postgres, 0.83-0.89 ms of Postgres's
CPU a job one to a statement, 0.25-0.36 eight to a statement, and half the client's. So
while a commit is in flight (``flushes``), jobs that come meanwhile wait for it and go in
the next together (at most ``max_batch``); with none in flight a job commits at once, from
its caller's own task, as it always did: batching never waits when nothing is busy.
One in flight rather than two: in the bench's throughput run (two rounds of the three,
one sitting) Postgres's CPU a job went 1.19-1.27 ms -> 0.84-0.92 with two, 0.75-0.82 with
one, and jobs/s 285-290 -> 302-328 -> 332-352.

A batch is one transaction, all or nothing, stamped with one time. One that fails for a
reason other than Postgres being out of reach is tried again a job at a time, so a job
that cannot be written fails alone, not the others that happened to share its batch.

After its commit each batch hands its jobs over (``hand_over``), as a job committed
alone does.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
from nats.aio.client import Client as NatsClient

from jobkit import metrics, snapshots, store
from jobkit.db import wrap_db_errors
from jobkit.errors import Unavailable
from jobkit.model import EventRecord, NewJob, OutboxMessage
from jobkit.outbox import OutboxRelay
from jobkit.publish import publish_events

#: Commits in flight before new jobs wait to go in the next one together.
FLUSHES = 1
#: The most jobs a statement inserts.
MAX_BATCH = 64


@dataclass(frozen=True, slots=True)
class Created:
    """A new job as committed: its events (with their sequences) and the time written as
    its ``updated_at`` and its events' (the batch's)."""

    events: list[EventRecord]
    now: datetime


@dataclass(slots=True)
class _Waiting:
    new: NewJob
    hold_steps: bool
    #: Whether its CreateJob's span is recorded: its events carry its trace.
    traced: bool
    future: asyncio.Future[Created] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommit:
    """Commits new jobs (``create``), several to a statement while ``flushes`` commits are
    in flight (one by default)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        nc: NatsClient,
        relay: OutboxRelay,
        clock: Callable[[], datetime],
        *,
        flushes: int = FLUSHES,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._pool = pool
        self._nc = nc
        self._relay = relay
        self._clock = clock
        self._flushes = flushes
        self._max_batch = max_batch
        self._in_flight = 0
        self._waiting: deque[_Waiting] = deque()
        #: Flushes of waiting jobs: held here so that they are not collected mid-way.
        self._tasks: set[asyncio.Task[None]] = set()

    async def create(self, new: NewJob, *, hold_steps: bool, traced: bool) -> Created:
        """Commit ``new`` (``hold_steps``: as ``store.create_jobs``) and hand it over
        (``traced``: its events carry the job's trace). Raises what ``store.create_jobs``
        raises, ``Unavailable`` for an unreachable Postgres."""
        waiting = _Waiting(new, hold_steps, traced)
        if self._in_flight < self._flushes and not self._waiting:
            self._in_flight += 1
            try:
                (created,) = await self._write([waiting], hold_steps)
                return created
            finally:
                self._in_flight -= 1
                self._flush_waiting()
        self._waiting.append(waiting)
        # A caller that goes away (its deadline) leaves its job in the batch: written or
        # not, as when a call is cancelled during its commit.
        return await waiting.future

    def _flush_waiting(self) -> None:
        while self._waiting and self._in_flight < self._flushes:
            batch = [
                self._waiting.popleft() for _ in range(min(self._max_batch, len(self._waiting)))
            ]
            self._in_flight += 1
            # A context of its own: the batch is no one caller's (their log fields, their
            # redacted terms).
            task = asyncio.create_task(self._flush(batch), context=contextvars.Context())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, batch: list[_Waiting]) -> None:
        try:
            for hold_steps in (False, True):
                group = [w for w in batch if w.hold_steps is hold_steps]
                if group:
                    await self._settle(group, hold_steps)
        finally:
            self._in_flight -= 1
            self._flush_waiting()

    async def _settle(self, group: list[_Waiting], hold_steps: bool) -> None:
        try:
            created = await self._write(group, hold_steps)
        except Exception as exc:
            if len(group) > 1 and not isinstance(exc, Unavailable):
                for waiting in group:
                    await self._settle([waiting], hold_steps)
                return
            for waiting in group:
                if not waiting.future.done():
                    waiting.future.set_exception(exc)
            return
        for waiting, one in zip(group, created, strict=True):
            if not waiting.future.done():
                waiting.future.set_result(one)

    async def _write(self, group: Sequence[_Waiting], hold_steps: bool) -> list[Created]:
        news = [w.new for w in group]
        metrics.CREATE_BATCH.observe(len(news))
        now = self._clock()
        async with wrap_db_errors(), self._pool.acquire() as conn:
            events, outbox_rows = await store.create_jobs(conn, news, now, hold_steps=hold_steps)
        traces = {w.new.job.id: w.new.job.trace_context for w in group if w.traced}
        await hand_over(self._nc, self._relay, news, now, events, outbox_rows, traces)
        by_job: dict[uuid.UUID, list[EventRecord]] = {new.job.id: [] for new in news}
        for event in events:
            by_job[event.job_id].append(event)
        return [Created(by_job[new.job.id], now) for new in news]


async def hand_over(
    nc: NatsClient,
    relay: OutboxRelay,
    news: Sequence[NewJob],
    now: datetime,
    events: Sequence[EventRecord],
    outbox_rows: Sequence[tuple[int, OutboxMessage]],
    traces: Mapping[uuid.UUID, str],
) -> None:
    """After new jobs' commit (at ``now``), in this order: their events to the watchers
    (``traces``: the jobs whose events carry their trace), the jobs to the orchestrators,
    and their outbox rows to the relay, so that an orchestrator has a job before its first
    result, and its watchers its ``CREATED`` first."""
    await publish_events(nc, events, traces)
    for new in news:
        await snapshots.announce(nc, store.as_created(new, now))
    relay.submit(outbox_rows)
