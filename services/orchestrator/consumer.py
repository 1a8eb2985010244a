"""The orchestrator's NATS adapter: consumes job submissions and step reports in batches,
commits each batch's decisions in one transaction, then publishes what was committed.

Inputs come two ways into the same batches: JetStream (``JOB_UPDATES``: submissions, and
the progress and heartbeats no orchestrator took as requests), acked once committed, and
core NATS requests (``jobs.results``: an attempt's result, heartbeats and progress),
answered once committed (``RESULT_SETTLED``) or, when nothing was committed, asked again
(``RESULT_AGAIN``). A worker acks its dispatch only on the first answer, so a result is
in Postgres or still held by a worker, never only in flight.
A worker whose success says it can take the job's next step gets that step in the
answer (``ResultAnswer``): a JetStream write, its delivery and an outbox row fewer a step.
That step's result comes back here, on this replica's own subject, where the job is
remembered as last written (``memory.JobMemory``): no read before its decision.

The wire format is ``codec``'s, the decisions are ``batching``'s and ``state_machine``'s;
this module reads, writes and acknowledges.

When spans are recorded, each input is a CONSUMER span of its job's trace from its
arrival to the commit (``orchestrate submitted``, ``orchestrate step_succeeded``...),
followed by a ``publish events`` span until the events, notices and outbox rows are out.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

import asyncpg
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from opentelemetry.trace import Span, SpanKind

from jobkit import bus, metrics, snapshots, store, tracing
from jobkit.catalog import Catalog
from jobkit.db import Conn, wrap_db_errors
from jobkit.dispatch_gate import DispatchGate
from jobkit.logging import get_logger
from jobkit.model import EventRecord, JobChange, JobRecord, NewJob, OutboxMessage
from jobkit.outbox import OutboxRelay
from jobkit.pricing import PriceTable
from jobkit.publish import publish_events, publish_notices
from jobkit.sql import queries
from jobkit.step_tokens import StepTokens
from jobtypes import CATALOG
from services.orchestrator.batching import Handed, Skipped, decide_batch, merge
from services.orchestrator.codec import (
    answer_awaited,
    cancel_notice,
    decode,
    encode_dispatch,
    handed_answer,
    handed_out_answer,
)
from services.orchestrator.config import Timing
from services.orchestrator.in_hand import InHand
from services.orchestrator.memory import JobMemory
from services.orchestrator.state_machine import (
    DeadlinePassed,
    Input,
    Message,
    ReportKind,
    StepReport,
    Submitted,
)

log = get_logger(__name__)

#: Batches a lane decides and commits at once (``services.orchestrator.in_hand``).
BATCHES_IN_FLIGHT = 2


class _Read(Enum):
    """Where a batch's jobs come from before its decisions."""

    #: This replica's memory if it has every job, else an unlocked read.
    FROM_MEMORY = "from_memory"
    READ = "read"
    #: A read holding the rows' locks, inside the write's transaction.
    LOCK = "lock"


class _StaleMemory(store.StaleRead):
    """A batch decided from memory met a job someone else wrote since."""


@dataclass(frozen=True, slots=True)
class _Answer:
    """A result's answer that hands its worker the job's next step, in that job's trace."""

    payload: bytes
    headers: dict[str, str] | None


#: ``Dispatcher.hand_out``: waiting step attempts for so many freed worker slots.
HandOut = Callable[[int], list[OutboxMessage]]


class _Wake(Enum):
    """A queue item that only wakes ``run``: to stop, to prove it is alive, or because
    a batch in hand has finished while inputs were held for it."""

    STOP = "stop"
    TICK = "tick"
    BATCH_DONE = "batch_done"


@dataclass(frozen=True, slots=True)
class _Received:
    """An input as it came: its message, its arrival (ns since the epoch), and what it
    says (``None``: it could not be read)."""

    msg: Msg
    arrived_ns: int | None
    item: Message | None

    @classmethod
    def of(cls, msg: Msg, arrived_ns: int | None) -> _Received:
        try:
            item: Message | None = decode(msg.subject, msg.data)
        except ValueError:
            item = None
        return cls(msg, arrived_ns, item)

    def job_id_of(self) -> uuid.UUID | None:
        return None if self.item is None else self.item.job_id


class Orchestrator:
    def __init__(
        self,
        pool: asyncpg.Pool,
        nc: NatsClient,
        js: JetStreamContext,
        relay: OutboxRelay,
        *,
        batch_size: int,
        batches_in_flight: int = BATCHES_IN_FLIGHT,
        timing: Timing | None = None,
        prices: PriceTable | None = None,
        step_tokens: StepTokens | None = None,
        gate: DispatchGate | None = None,
        hand_out: HandOut | None = None,
        catalog: Catalog = CATALOG,
    ) -> None:
        #: Waiting attempts for the slots a batch's results free (``Dispatcher.hand_out``).
        self._hand_out = hand_out
        self._pool = pool
        #: The deployed job types, each job decided by its own type version's spec.
        self._catalog = catalog
        #: Whether step attempts are held for the fair dispatcher (none: never).
        self._gate = gate
        #: Mint the step tokens of the dispatches of job types that read their owner's
        #: history (none configured: such steps get none, and fail saying so).
        self._step_tokens = step_tokens
        self._encode = functools.partial(encode_dispatch, step_tokens=step_tokens)
        self._nc = nc
        self._js = js
        self._relay = relay
        self._batch_size = batch_size
        self._batches_in_flight = batches_in_flight
        self._timing = timing or Timing()
        self._prices = prices or PriceTable()
        #: Inputs with their arrival (ns since the epoch), and wake-ups.
        self._queue: asyncio.Queue[tuple[Msg, int] | _Wake] = asyncio.Queue()
        #: The same, for results of jobs that came by the express lane: decided in batches
        #: of their own, beside the main queue's, so a newcomer's result never waits
        #: behind a flood's (whose batches fill the main queue while the dispatcher holds).
        self._express: asyncio.Queue[tuple[Msg, int] | _Wake] = asyncio.Queue()
        #: Express batches being decided and committed.
        self._express_batches = 0
        self._stopping = asyncio.Event()
        self._subscription: JetStreamContext.PushSubscription | None = None
        self._results: list[Subscription] = []
        self._memory = JobMemory()
        #: Results of the steps this replica hands over come here (``ResultAnswer``).
        self.result_subject = bus.direct_result_subject(uuid.uuid4().hex)
        #: The time of the last completed loop round: what the liveness probe checks.
        self.last_progress = 0.0

    async def _enqueue(self, msg: Msg) -> None:
        express = msg.headers is not None and msg.headers.get(bus.LANE_HEADER) == bus.EXPRESS_LANE
        (self._express if express else self._queue).put_nowait((msg, time.time_ns()))

    async def subscribe(self, ack_wait_s: float, max_deliver: int) -> None:
        # Counted from here: a consumer that has not had its first tick yet is not stalled.
        self.last_progress = asyncio.get_running_loop().time()
        config = bus.orchestrator_consumer_config(ack_wait_s, max_deliver)
        await bus.ensure_consumer(self._js, bus.UPDATES_STREAM, config)
        self._subscription = await self._js.subscribe(
            "jobs.updates.>",
            queue=bus.ORCHESTRATOR_CONSUMER,
            durable=bus.ORCHESTRATOR_CONSUMER,
            stream=bus.UPDATES_STREAM,
            config=config,
            manual_ack=True,
            cb=self._enqueue,
            pending_msgs_limit=-1,
        )
        await self.subscribe_results()

    async def subscribe_results(self) -> None:
        """Take attempts' results (core NATS requests): shared with the other replicas, and
        on this replica's own subject, those of the steps it handed over; and the new jobs
        job_api announces, into memory."""
        self._results = [
            await self._nc.subscribe(
                bus.RESULT_SUBJECT, queue=bus.RESULT_QUEUE, cb=self._enqueue, pending_msgs_limit=-1
            ),
            await self._nc.subscribe(self.result_subject, cb=self._enqueue, pending_msgs_limit=-1),
            # Every replica: any of them may take the job's first result.
            await self._nc.subscribe(
                bus.SNAPSHOT_SUBJECT, cb=self._on_snapshot, pending_msgs_limit=-1
            ),
        ]

    async def _on_snapshot(self, msg: Msg) -> None:
        try:
            job = snapshots.decode(msg.data)
        except (ValueError, KeyError, TypeError):
            return  # not one this release wrote: the job is read when its result comes
        self._memory.seed(job)

    async def stop(self) -> None:
        """Take nothing new; the batches in hand commit, the rest go back for another replica."""
        self._stopping.set()
        for subscription in (self._subscription, *self._results):
            if subscription is not None:
                await subscription.unsubscribe()
        self._queue.put_nowait(_Wake.STOP)
        self._express.put_nowait(_Wake.STOP)

    async def run(self) -> None:
        """Consume, decide, commit, until ``stop``; then hand back what is still queued.
        The express lane's results go in batches of their own, at the same time: inputs
        on different jobs commit independently (each write is checked against its job's
        version, as between replicas)."""
        await asyncio.gather(
            self._consume(self._queue, lane="main", proves_alive=True),
            self._consume(self._express, lane=bus.EXPRESS_LANE, proves_alive=False),
        )

    async def _consume(
        self,
        queue: asyncio.Queue[tuple[Msg, int] | _Wake],
        *,
        lane: str,
        proves_alive: bool,
    ) -> None:
        """One queue's loop: up to ``self._batches_in_flight`` batches in hand at once,
        never two on one job (``in_hand``), each of what came while none could start.

        Only the main queue's (woken by ticks) says the orchestrator is alive: a
        newcomer's result committed beside a stuck main loop must not hide it from the
        liveness probe. A batch done proves it, and a tick while none is in hand."""
        loop = asyncio.get_running_loop()
        express = lane == bus.EXPRESS_LANE
        jobs_in_hand: InHand[_Received] = InHand(_Received.job_id_of, self._batch_size)
        slots = asyncio.Semaphore(self._batches_in_flight)
        batches: set[asyncio.Task[None]] = set()

        async def decide(received: list[_Received], jobs: frozenset[uuid.UUID]) -> None:
            try:
                metrics.ORCHESTRATOR_BATCH.labels(lane).observe(len(received))
                try:
                    await self._process(received, yields_to_express=not express)
                except Exception as exc:
                    # Nothing was committed; the inputs come back in a second.
                    log.warning("batch_failed", count=len(received), error=type(exc).__name__)
                    for r in received:
                        await _quietly(_unsettled(r.msg, delay_s=1.0))
                    await asyncio.sleep(0.5)
                if proves_alive:
                    self.last_progress = loop.time()
            finally:
                self._express_batches -= express
                jobs_in_hand.done(jobs)
                slots.release()
                if jobs_in_hand.holding:
                    queue.put_nowait(_Wake.BATCH_DONE)

        async def admit(batch: list[_Received], got: tuple[Msg, int]) -> None:
            try:
                received = _Received.of(*got)
            except Exception as exc:
                # Not malformed input (a ValueError, settled as poison) but a bug: the
                # input comes back later, as a failed batch's do, and the lane goes on.
                log.error("input_unreadable", subject=got[0].subject, error=type(exc).__name__)
                await _quietly(_unsettled(got[0], delay_s=1.0))
                return
            jobs_in_hand.admit(batch, received)

        while not self._stopping.is_set():
            await slots.acquire()
            if self._stopping.is_set():  # while it waited for a batch to end
                break
            batch = jobs_in_hand.begin()
            while not batch and not self._stopping.is_set():
                got = await queue.get()
                if got is _Wake.BATCH_DONE:
                    batch = jobs_in_hand.begin()
                elif got is _Wake.TICK:
                    if proves_alive and not batches:
                        self.last_progress = loop.time()
                elif not isinstance(got, _Wake):
                    await admit(batch, got)
            while len(batch) < self._batch_size and not queue.empty():
                got = queue.get_nowait()
                if not isinstance(got, _Wake):
                    await admit(batch, got)
            if not batch:
                slots.release()
                continue
            # Counted from now: a main batch started after it lets it go first.
            self._express_batches += express
            task = asyncio.create_task(decide(batch, jobs_in_hand.start(batch)))
            batches.add(task)
            task.add_done_callback(batches.discard)
        # The batches in hand commit; what is held or still queued goes back.
        await asyncio.gather(*batches)
        for left in jobs_in_hand.held():
            await _quietly(_unsettled(left.msg))
        while not queue.empty():
            got = queue.get_nowait()
            if not isinstance(got, _Wake):
                await _quietly(_unsettled(got[0]))

    async def _let_express_go(self) -> None:
        """Give the event loop a turn while the express lane has work, between the phases
        of a main batch. Nothing else would: a queue's ``get`` returns without yielding
        while it holds inputs, so under a flood the main batches' deciding, answering and
        publishing ran back to back but for their commits, and a newcomer's result read
        meanwhile waited through them (p99 1.6 ms before its batch began, 0.5 with
        these turns, in the fairness phase's flood)."""
        if self._express_batches or not self._express.empty():
            await asyncio.sleep(0)

    async def process(
        self,
        batch: Sequence[Msg],
        arrived_ns: Sequence[int] = (),
        *,
        yields_to_express: bool = False,
    ) -> None:
        """Decide and commit one batch of NATS inputs; ack them once committed.
        ``arrived_ns``: when each arrived (ns since the epoch), where its span starts.
        ``yields_to_express``: a main batch, which lets the express lane's go first."""
        arrivals: Sequence[int | None] = arrived_ns or [None] * len(batch)
        await self._process(
            [_Received.of(msg, at) for msg, at in zip(batch, arrivals, strict=True)],
            yields_to_express=yields_to_express,
        )

    async def _process(
        self, received: Sequence[_Received], *, yields_to_express: bool = False
    ) -> None:
        if yields_to_express:
            await self._let_express_go()
        items: list[tuple[Msg, Message]] = []
        hops: list[Span] = []
        for r in received:
            if r.item is None:
                log.error("poison_message", subject=r.msg.subject)
                # Never again: a result's worker stops sending it (its lease runs out).
                await _quietly(
                    r.msg.term() if _from_stream(r.msg) else r.msg.respond(bus.RESULT_SETTLED)
                )
                continue
            items.append((r.msg, r.item))
            hops.append(_hop_span(r.msg, r.item, len(received), r.arrived_ns))

        async def settle(answers: Mapping[int, _Answer]) -> None:
            for n, (msg, _) in enumerate(items):
                if _from_stream(msg):
                    await _quietly(msg.ack())
                elif (answer := answers.get(n)) is not None:
                    await _quietly(
                        self._nc.publish(msg.reply, answer.payload, headers=answer.headers)
                    )
                else:
                    await _quietly(msg.respond(bus.RESULT_SETTLED))

        # Only a main batch's results get other jobs' waiting steps (an express slot is for
        # a newcomer's), and only those whose workers will still be waiting for the answer.
        awaited = (
            frozenset(n for n, (msg, _) in enumerate(items) if answer_awaited(msg.headers))
            if yields_to_express and self._hand_out is not None
            else frozenset()
        )
        await self.commit(
            [i for _, i in items],
            hops,
            settle,
            yields_to_express=yields_to_express,
            hands_out=awaited,
        )

    async def commit(
        self,
        inputs: Sequence[Input],
        hops: Sequence[Span] = (),
        settle: Callable[[Mapping[int, _Answer]], Awaitable[None]] | None = None,
        *,
        yields_to_express: bool = False,
        hands_out: frozenset[int] = frozenset(),
    ) -> None:
        """Decide every input in order, commit the decisions, ``settle`` the inputs, then
        publish the results. ``settle`` is given the answers that hand a step to a worker,
        by the index of the result they answer: the workers go on with those steps while
        the events are published. ``hands_out``: the inputs (by index) whose success, if
        it frees its slot (its job has no next step for it), may be answered with another
        job's waiting step.

        Optimistically first: from the jobs as this replica last wrote them, if it
        remembers them all (one round trip), else read without locks (two); the write is
        guarded by each job's version. If another writer - a replica, job_api's cancel -
        changed one of the jobs meanwhile, nothing was written: decide again from a fresh
        read, then, if that conflicts too, holding the rows' locks.

        ``hops``: the inputs' spans (``_hop_span``), ended at the commit; each recorded
        one is followed by a ``publish events`` span. ``yields_to_express``: a main
        batch, which lets the express lane's go between its phases.
        """
        job_ids = list({i.job_id for i in inputs})
        try:
            try:
                try:
                    async with wrap_db_errors(), self._pool.acquire() as conn:
                        written = await self._decide_and_write(
                            conn, job_ids, inputs, _Read.FROM_MEMORY
                        )
                except _StaleMemory:
                    # Another writer got to a job this replica remembers (a heartbeat
                    # another replica took, a cancel): read it as it is now.
                    self._memory.forget(job_ids)
                    async with wrap_db_errors(), self._pool.acquire() as conn:
                        written = await self._decide_and_write(conn, job_ids, inputs, _Read.READ)
            except store.StaleRead:
                log.info("batch_conflict", count=len(inputs))
                self._memory.forget(job_ids)
                async with wrap_db_errors(), self._pool.acquire() as conn, conn.transaction():
                    written = await self._decide_and_write(conn, job_ids, inputs, _Read.LOCK)
        except BaseException:
            self._memory.forget(job_ids)  # written or not: unknown
            raise
        # Each input's span ends at the commit; a recorded one is followed by its events'
        # publish, whose trace the events carry to the notifier. (Inputs that are not
        # messages, expired leases, have none.)
        publishing = {
            item.job_id: tracing.child_span("publish events", hop)
            for item, hop in zip(inputs, hops, strict=False)
            if hop.is_recording()
        }
        for hop in hops:
            hop.end()
        changes, created, events, outbox_rows, notices, handed, now = written
        self._memory.remember(store.as_written(before, change, now) for before, change in changes)
        # After remembering: an express batch decided in this turn reads the jobs as just
        # written, not as before (a job's heartbeats come by the main lane).
        if yields_to_express:
            await self._let_express_go()
        if settle is not None:
            answers = {
                index: _Answer(
                    handed_answer(
                        h.job, h.dispatch, self.result_subject, step_tokens=self._step_tokens
                    ),
                    tracing.trace_headers(h.job.trace_context),
                )
                for index, h in handed.items()
            }
            if hands_out:
                answers.update(self._handed_out(inputs, handed, hands_out))
            await settle(answers)
        log.debug("batch_committed", count=len(inputs), jobs=len(changes), events=len(events))
        metrics.observe_changes(changes)
        for child in created:
            metrics.JOBS_CREATED.labels(child.job.type).inc()
        if yields_to_express:
            await self._let_express_go()
        traces = {job_id: tracing.traceparent_of(s) for job_id, s in publishing.items()}
        await publish_events(self._nc, events, traces)
        await publish_notices(self._nc, [*notices, *(n for _, c in changes for n in c.notices)])
        self._relay.submit(outbox_rows)
        if self._gate is not None:
            await self._gate.committed([*(c.job for _, c in changes), *(n.job for n in created)])
        for span in publishing.values():
            span.end()
        for _, change in changes:
            if change.job.status.terminal:
                log.info(
                    "job_finished",
                    job_id=str(change.job.id),
                    status=change.job.status.value,
                    **tracing.job_log_fields(change.job.trace_context),
                )

    def _handed_out(
        self, inputs: Sequence[Input], handed: Mapping[int, Handed], eligible: frozenset[int]
    ) -> dict[int, _Answer]:
        """Answers for the successes (among ``eligible``) whose slots are free (their jobs
        hand them no next step), each with a waiting attempt the fair dispatcher kept, as
        far as it has some."""
        if self._hand_out is None:
            return {}
        freed = [
            n
            for n, item in enumerate(inputs)
            if n in eligible
            and n not in handed
            and isinstance(item, StepReport)
            and item.kind is ReportKind.SUCCEEDED
            and item.take_next
        ]
        if not freed:
            return {}
        return {
            n: _Answer(handed_out_answer(step), tracing.trace_headers(step.trace_context))
            for n, step in zip(freed, self._hand_out(len(freed)), strict=False)
        }

    async def _decide_and_write(
        self, conn: Conn, job_ids: list[uuid.UUID], inputs: Sequence[Input], read: _Read
    ) -> tuple[
        list[tuple[JobRecord, JobChange]],
        list[NewJob],
        list[EventRecord],
        list[tuple[int, OutboxMessage]],
        list[OutboxMessage],
        Mapping[int, Handed],
        datetime,
    ]:
        now = datetime.now(UTC)
        remembered = self._memory.recall(job_ids) if read is _Read.FROM_MEMORY else None
        batch = None
        if remembered is not None:
            batch = decide_batch(remembered, inputs, now, self._timing.lease_s, self._catalog)
            if batch.skipped:
                # Only a write is checked against the version it was decided from: an
                # input ignored on the strength of memory (a stale attempt, say) is decided
                # again from Postgres, or a result of an attempt another replica started
                # could be settled without being committed.
                remembered, batch = None, None
        jobs = remembered or await store.fetch_jobs(conn, job_ids, lock=read is _Read.LOCK)
        if batch is None:
            # The time after the read: a read that waited for another writer's row locks
            # would otherwise stamp this batch's events before that writer's, out of order.
            now = datetime.now(UTC)
            batch = decide_batch(jobs, inputs, now, self._timing.lease_s, self._catalog)
        notices: list[OutboxMessage] = []
        for skipped in batch.skipped:
            _log_skipped(skipped)
            if (attempt := skipped.attempt_to_stop) is not None:
                notices.append(cancel_notice(attempt))
        changes = [
            (jobs[job_id], merge(ds, self._encode, self._prices))
            for job_id, ds in batch.decided.items()
        ]
        created = list(batch.created)
        try:
            events, outbox_rows = await store.apply_changes(
                conn, changes, now, created, hold_steps=self._gate is not None and self._gate.held
            )
        except store.StaleRead:
            if remembered is not None:
                raise _StaleMemory() from None
            raise
        return changes, created, events, outbox_rows, notices, batch.handed, now

    async def tick_forever(self) -> None:
        """Wake the consumer loop now and then, so an idle orchestrator still proves alive."""
        while not self._stopping.is_set():
            await asyncio.sleep(self._timing.tick_s)
            self._queue.put_nowait(_Wake.TICK)

    async def expire_leases_and_deadlines_forever(self) -> None:
        """Re-dispatch (or fail) attempts whose worker went silent past its lease, and fail
        jobs whose deadline passed: one scan of each a round, not a timer per job."""
        while not self._stopping.is_set():
            for scan, name in (
                (self.expire_leases_once, "lease_scan_failed"),
                (self.expire_deadlines_once, "deadline_scan_failed"),
            ):
                try:
                    while await scan() == _SCAN_BATCH:
                        pass
                except Exception as exc:
                    log.warning(name, error=type(exc).__name__)
            await asyncio.sleep(self._timing.lease_scan_s)

    async def expire_deadlines_once(self) -> int:
        async with wrap_db_errors(), self._pool.acquire() as conn:
            rows = await conn.fetch(queries.passed_deadlines, _SCAN_BATCH)
        if rows:
            log.info("deadlines_passed", count=len(rows))
            await self.commit([DeadlinePassed(r["id"]) for r in rows])
        return len(rows)

    async def expire_leases_once(self) -> int:
        async with wrap_db_errors(), self._pool.acquire() as conn:
            rows = await conn.fetch(queries.expired_leases, _SCAN_BATCH)
        if rows:
            log.warning("leases_expired", count=len(rows))
            await self.commit(
                [
                    StepReport(r["job_id"], r["name"], r["attempt"], ReportKind.LEASE_EXPIRED)
                    for r in rows
                ]
            )
        return len(rows)


_SCAN_BATCH = 500

#: Span names by input, made once.
_HOP_NAMES = {kind: f"orchestrate step_{kind.value}" for kind in ReportKind}


def _hop_span(msg: Msg, item: Message, batch_size: int, arrived_ns: int | None) -> Span:
    """The CONSUMER span of one input in its job's trace, from its arrival; the API's
    no-op span unless spans are recorded."""
    name = "orchestrate submitted" if isinstance(item, Submitted) else _HOP_NAMES[item.kind]
    span = tracing.job_span(name, msg.headers, kind=SpanKind.CONSUMER, start_time=arrived_ns)
    if span.is_recording():
        span.set_attributes(
            {
                "job.id": str(item.job_id),
                "job.step": item.step if isinstance(item, StepReport) else "",
                "orchestrator.batch_size": batch_size,
            }
        )
    return span


def _log_skipped(skipped: Skipped) -> None:
    item, job = skipped.item, skipped.job
    if job is None:
        log.info("input_ignored", job_id=str(item.job_id), reason=skipped.reason)
        return
    log.info(
        "input_ignored",
        job_id=str(item.job_id),
        **tracing.job_log_fields(job.trace_context),
        step=item.step if isinstance(item, StepReport) else None,
        reason=skipped.reason,
    )


def _from_stream(msg: Msg) -> bool:
    """A JetStream message (acked), rather than a result request (answered)."""
    return not bus.is_result(msg.subject)


def _unsettled(msg: Msg, delay_s: float | None = None) -> Awaitable[object]:
    """Nothing was committed for ``msg``: JetStream delivers it again (after ``delay_s``),
    a result's worker sends it again."""
    return msg.nak(delay=delay_s) if _from_stream(msg) else msg.respond(bus.RESULT_AGAIN)


async def _quietly(awaitable: Awaitable[object]) -> None:
    try:
        await awaitable
    except Exception as exc:
        log.warning("ack_failed", error=type(exc).__name__)
