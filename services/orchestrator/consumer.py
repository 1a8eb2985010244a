"""The orchestrator's NATS adapter: consumes job submissions and step reports in batches,
commits each batch's decisions in one transaction, then publishes what was committed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from jobkit import bus, limits, metrics, store, tracing
from jobkit.catalog import job_type
from jobkit.convert import struct_from_bytes
from jobkit.db import Conn, wrap_db_errors
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.logging import get_logger
from jobkit.model import EventRecord, JobChange, JobRecord, OutboxMessage, StepUsage
from jobkit.outbox import OutboxRelay
from jobkit.pricing import PriceTable
from jobkit.publish import publish_events, publish_notices
from jobkit.sql import queries
from services.orchestrator.state_machine import (
    DEFAULT_LEASE_S,
    Decision,
    Dispatch,
    Ignored,
    ReportKind,
    StepReport,
    apply_report,
    start_job,
)

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Submitted:
    job_id: uuid.UUID


Input = Submitted | StepReport


def decode(msg: Msg) -> Input:
    """Wire message -> domain input; raises ValueError on anything malformed."""
    if msg.subject == bus.SUBMITTED_SUBJECT:
        submitted = worker_pb2.JobSubmitted.FromString(msg.data)
        return Submitted(uuid.UUID(submitted.job_id))
    if msg.subject == bus.REPORT_SUBJECT:
        report = worker_pb2.StepReport.FromString(msg.data)
        job_id = uuid.UUID(report.job_id)
        outcome = report.WhichOneof("outcome")
        if outcome == "progress":
            return StepReport(
                job_id,
                report.step,
                report.attempt,
                ReportKind.PROGRESS,
                percent=report.progress.percent,
                phase=report.progress.phase,
                partial_output=report.progress.partial_output,
            )
        if outcome == "heartbeat":
            return StepReport(job_id, report.step, report.attempt, ReportKind.HEARTBEAT)
        if outcome == "succeeded":
            return StepReport(
                job_id,
                report.step,
                report.attempt,
                ReportKind.SUCCEEDED,
                output=report.succeeded.output.SerializeToString(),
                usage=_usage(report),
            )
        if outcome == "failed":
            return StepReport(
                job_id,
                report.step,
                report.attempt,
                ReportKind.FAILED,
                error_code=report.failed.code,
                error_message=report.failed.message,
                retryable=report.failed.retryable,
                usage=_usage(report),
                retry_after_s=(
                    report.failed.retry_after.ToTimedelta().total_seconds()
                    if report.failed.HasField("retry_after")
                    else None
                ),
            )
    raise ValueError(f"unexpected message on {msg.subject}")


def _usage(report: worker_pb2.StepReport) -> tuple[StepUsage, ...]:
    return tuple(
        StepUsage(
            report.step,
            report.attempt,
            u.model,
            u.prompt_tokens,
            u.completion_tokens,
            prompts=tuple(u.prompts),
        )
        for u in report.usage
    )


def encode_dispatch(job: JobRecord, dispatch: Dispatch) -> OutboxMessage:
    task = worker_pb2.StepTask(
        job_id=str(job.id),
        job_type=job.type,
        step=dispatch.step,
        attempt=dispatch.attempt,
        input=struct_from_bytes(job.input),
    )
    task.timeout.FromMilliseconds(round(dispatch.timeout_s * 1000))
    for name, output in job.checkpoints.items():
        task.checkpoints[name].CopyFrom(struct_from_bytes(output))
    return OutboxMessage(
        subject=bus.step_subject(job.type, dispatch.step),
        msg_id=f"{job.id}:{dispatch.step}:{dispatch.attempt}",
        payload=task.SerializeToString(),
        not_before=dispatch.not_before,
        trace_context=job.trace_context,
    )


def cancel_notice(report: StepReport) -> OutboxMessage:
    """Tell workers to stop an attempt that no longer counts."""
    return OutboxMessage(
        subject=bus.CANCEL_SUBJECT,
        msg_id=f"{report.job_id}:{report.step}:{report.attempt}:cancel",
        payload=worker_pb2.CancelStep(
            job_id=str(report.job_id), step=report.step, attempt=report.attempt
        ).SerializeToString(),
    )


def decide(
    job: JobRecord, item: Input, now: datetime, lease_s: float = DEFAULT_LEASE_S
) -> Decision | Ignored:
    spec = job_type(job.type)
    if spec is None:
        return Ignored(f"unknown job type {job.type}")
    if isinstance(item, Submitted):
        return start_job(job, spec, now)
    return apply_report(job, spec, item, now, lease_s=lease_s)


def merge(
    before: JobRecord, decisions: Sequence[Decision], prices: PriceTable | None = None
) -> JobChange:
    """One change out of several decisions on the same job within a batch; model usage is
    priced here, by this orchestrator's price table."""
    steps = {s.position: s for d in decisions for s in d.change.steps}
    outbox = tuple(encode_dispatch(d.change.job, x) for d in decisions for x in d.dispatches)
    table = prices or PriceTable()
    return JobChange(
        job=decisions[-1].change.job,
        steps=tuple(steps.values()),
        events=tuple(e for d in decisions for e in d.change.events),
        outbox=outbox,
        usage=tuple(
            replace(u, cost_usd=table.cost(u.model, u.prompt_tokens, u.completion_tokens))
            for d in decisions
            for u in d.change.usage
        ),
    )


@dataclass(frozen=True, slots=True)
class Timing:
    """The orchestrator's clocks (all seconds)."""

    #: An attempt with no sign of life from its worker for this long is presumed lost.
    lease_s: float = DEFAULT_LEASE_S
    #: How often to look for expired leases.
    lease_scan_s: float = 1.0
    #: Finished jobs are erased this long after they finish.
    retention_s: float = 24 * 3600.0
    #: How often to erase expired jobs.
    retention_scan_s: float = 60.0


class Orchestrator:
    def __init__(
        self,
        pool: asyncpg.Pool,
        nc: NatsClient,
        js: JetStreamContext,
        relay: OutboxRelay,
        *,
        batch_size: int,
        timing: Timing | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        self._pool = pool
        self._nc = nc
        self._js = js
        self._relay = relay
        self._batch_size = batch_size
        self._timing = timing or Timing()
        self._prices = prices or PriceTable()
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._stopping = asyncio.Event()
        #: The time of the last completed loop round: what the liveness probe checks.
        self.last_progress = 0.0

    async def _enqueue(self, msg: Msg) -> None:
        await self._queue.put(msg)

    async def subscribe(self, ack_wait_s: float, max_deliver: int) -> None:
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

    async def stop(self) -> None:
        """Take nothing new; the batch in hand commits, the rest go back for another replica."""
        self._stopping.set()
        await self._subscription.unsubscribe()
        self._queue.put_nowait(_STOP)

    async def run(self) -> None:
        """Consume, decide, commit, until ``stop``; then hand back what is still queued."""
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            messages = [m for m in batch if m is not _STOP and m is not _TICK]
            if messages:
                try:
                    await self.process(messages)
                except Exception as exc:
                    # Nothing was committed; the inputs come back in a second.
                    log.warning("batch_failed", count=len(messages), error=type(exc).__name__)
                    for msg in messages:
                        await _quietly(msg.nak(delay=1.0))
                    await asyncio.sleep(0.5)
            self.last_progress = loop.time()
        while not self._queue.empty():
            msg = self._queue.get_nowait()
            if msg is not _STOP and msg is not _TICK:
                await _quietly(msg.nak())

    async def process(self, batch: Sequence[Msg]) -> None:
        """Decide and commit one batch of NATS inputs; ack them once committed."""
        items: list[tuple[Msg, Input]] = []
        for msg in batch:
            try:
                items.append((msg, decode(msg)))
            except ValueError:
                log.error("poison_message", subject=msg.subject)
                await _quietly(msg.term())
        await self.commit([i for _, i in items])
        for msg, _ in items:
            await _quietly(msg.ack())

    async def commit(self, inputs: Sequence[Input]) -> None:
        """Decide every input in order, commit the decisions, then publish the results.

        Optimistically first: read without locks, write guarded by each job's version (two
        round trips). If another writer - a replica, job_api's cancel - changed one of the
        jobs meanwhile, nothing was written: decide again, holding the rows' locks.
        """
        try:
            async with wrap_db_errors(), self._pool.acquire() as conn:
                written = await self._decide_and_write(conn, inputs, lock=False)
        except store.StaleRead:
            log.info("batch_conflict", count=len(inputs))
            async with wrap_db_errors(), self._pool.acquire() as conn, conn.transaction():
                written = await self._decide_and_write(conn, inputs, lock=True)
        changes, events, outbox_rows, notices = written
        log.debug("batch_committed", count=len(inputs), jobs=len(changes), events=len(events))
        metrics.observe_changes(changes)
        await publish_events(self._nc, events)
        await publish_notices(self._nc, notices)
        self._relay.submit(outbox_rows)
        for _, change in changes:
            if change.job.status.terminal:
                log.info(
                    "job_finished",
                    job_id=str(change.job.id),
                    status=change.job.status.value,
                    **tracing.job_log_fields(change.job.trace_context),
                )

    async def _decide_and_write(
        self, conn: Conn, inputs: Sequence[Input], *, lock: bool
    ) -> tuple[
        list[tuple[JobRecord, JobChange]],
        list[EventRecord],
        list[tuple[int, OutboxMessage]],
        list[OutboxMessage],
    ]:
        now = datetime.now(UTC)
        notices: list[OutboxMessage] = []
        jobs = await store.fetch_jobs(conn, list({i.job_id for i in inputs}), lock=lock)
        decided: dict[uuid.UUID, list[Decision]] = {}
        for item in inputs:
            before = jobs.get(item.job_id)
            if before is None:
                log.info("input_ignored", job_id=str(item.job_id), reason="job not found")
                continue
            current = decided[item.job_id][-1].change.job if item.job_id in decided else before
            outcome = decide(current, item, now, self._timing.lease_s)
            if isinstance(outcome, Ignored):
                log.info(
                    "input_ignored",
                    job_id=str(item.job_id),
                    **tracing.job_log_fields(current.trace_context),
                    step=getattr(item, "step", None),
                    reason=outcome.reason,
                )
                if isinstance(item, StepReport) and item.kind in _ALIVE:
                    # A worker is still busy with an attempt that no longer counts
                    # (cancelled job, superseded attempt): tell it again to stop.
                    notices.append(cancel_notice(item))
                continue
            decided.setdefault(item.job_id, []).append(outcome)
        changes = [
            (jobs[job_id], merge(jobs[job_id], ds, self._prices)) for job_id, ds in decided.items()
        ]
        events, outbox_rows = await store.apply_changes(conn, changes, now)
        return changes, events, outbox_rows, notices

    async def tick_forever(self, interval_s: float = 5.0) -> None:
        """Wake the consumer loop now and then, so an idle orchestrator still proves alive."""
        while not self._stopping.is_set():
            await asyncio.sleep(interval_s)
            self._queue.put_nowait(_TICK)

    async def expire_leases_forever(self) -> None:
        """Re-dispatch (or fail) attempts whose worker went silent past its lease."""
        while not self._stopping.is_set():
            try:
                while await self.expire_leases_once() == _SCAN_BATCH:
                    pass
            except Exception as exc:
                log.warning("lease_scan_failed", error=type(exc).__name__)
            await asyncio.sleep(self._timing.lease_scan_s)

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

    async def erase_expired_forever(self) -> None:
        """Retention: finished jobs older than the TTL go, with their steps and events."""
        while not self._stopping.is_set():
            try:
                while await self.erase_expired_once() == _SCAN_BATCH:
                    pass
            except Exception as exc:
                log.warning("retention_failed", error=type(exc).__name__)
            await asyncio.sleep(self._timing.retention_scan_s)

    async def erase_expired_once(self) -> int:
        async with wrap_db_errors(), self._pool.acquire() as conn:
            deleted = await conn.fetch(
                queries.erase_expired_jobs, self._timing.retention_s, _SCAN_BATCH
            )
            await limits.prune(conn)
        if deleted:
            log.info("jobs_expired", count=len(deleted))
        return len(deleted)


_SCAN_BATCH = 500
_ALIVE = frozenset({ReportKind.HEARTBEAT, ReportKind.PROGRESS})


class _Marker:
    """A queue item that only wakes ``run``: to stop, or to prove it is alive."""


_STOP: Any = _Marker()
_TICK: Any = _Marker()


async def _quietly(awaitable: object) -> None:
    try:
        await awaitable  # type: ignore[misc]
    except Exception as exc:
        log.warning("ack_failed", error=type(exc).__name__)
