"""The orchestrator's NATS adapter: consumes job submissions and step reports in batches,
commits each batch's decisions in one transaction, then publishes what was committed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from jobkit import bus, store
from jobkit.catalog import job_type
from jobkit.convert import struct_from_bytes, timestamp
from jobkit.db import wrap_db_errors
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.logging import get_logger
from jobkit.model import JobChange, JobRecord, OutboxMessage
from jobkit.outbox import OutboxRelay
from jobkit.publish import publish_events, publish_notices
from services.orchestrator.state_machine import (
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
            )
    raise ValueError(f"unexpected message on {msg.subject}")


def encode_dispatch(job: JobRecord, dispatch: Dispatch) -> OutboxMessage:
    task = worker_pb2.StepTask(
        job_id=str(job.id),
        job_type=job.type,
        step=dispatch.step,
        attempt=dispatch.attempt,
        input=struct_from_bytes(job.input),
        deadline=timestamp(dispatch.deadline),
    )
    for name, output in job.checkpoints.items():
        task.checkpoints[name].CopyFrom(struct_from_bytes(output))
    return OutboxMessage(
        subject=bus.step_subject(job.type, dispatch.step),
        msg_id=f"{job.id}:{dispatch.step}:{dispatch.attempt}",
        payload=task.SerializeToString(),
        not_before=dispatch.not_before,
    )


def decide(job: JobRecord, item: Input, now: datetime) -> Decision | Ignored:
    spec = job_type(job.type)
    if spec is None:
        return Ignored(f"unknown job type {job.type}")
    if isinstance(item, Submitted):
        return start_job(job, spec, now)
    return apply_report(job, spec, item, now)


def merge(before: JobRecord, decisions: Sequence[Decision]) -> JobChange:
    """One change out of several decisions on the same job within a batch."""
    steps = {s.position: s for d in decisions for s in d.change.steps}
    outbox = tuple(encode_dispatch(d.change.job, x) for d in decisions for x in d.dispatches)
    return JobChange(
        job=decisions[-1].change.job,
        steps=tuple(steps.values()),
        events=tuple(e for d in decisions for e in d.change.events),
        outbox=outbox,
    )


class Orchestrator:
    def __init__(
        self,
        pool: asyncpg.Pool,
        nc: NatsClient,
        js: JetStreamContext,
        relay: OutboxRelay,
        *,
        batch_size: int,
    ) -> None:
        self._pool = pool
        self._nc = nc
        self._js = js
        self._relay = relay
        self._batch_size = batch_size
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def _enqueue(self, msg: Msg) -> None:
        await self._queue.put(msg)

    async def subscribe(self, ack_wait_s: float, max_deliver: int) -> None:
        config = bus.orchestrator_consumer_config(ack_wait_s, max_deliver)
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

    async def stop_taking_work(self) -> None:
        # Unacked messages go back to JetStream and to another replica after ack_wait.
        await self._subscription.unsubscribe()

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self.process(batch)
            except Exception as exc:
                # Nothing committed: the messages are redelivered after ack_wait.
                log.warning("batch_failed", count=len(batch), error=type(exc).__name__)
                for msg in batch:
                    await _quietly(msg.nak(delay=1.0))
                await asyncio.sleep(0.5)

    async def process(self, batch: Sequence[Msg]) -> None:
        """Decide and commit one batch; ack its messages once committed."""
        items: list[tuple[Msg, Input]] = []
        for msg in batch:
            try:
                items.append((msg, decode(msg)))
            except ValueError:
                log.error("poison_message", subject=msg.subject)
                await _quietly(msg.term())
        now = datetime.now(UTC)
        async with wrap_db_errors(), self._pool.acquire() as conn, conn.transaction():
            jobs = await store.fetch_jobs(conn, list({i.job_id for _, i in items}), lock=True)
            decided: dict[uuid.UUID, list[Decision]] = {}
            for _, item in items:
                before = jobs.get(item.job_id)
                if before is None:
                    log.info("input_ignored", job_id=str(item.job_id), reason="job not found")
                    continue
                current = decided[item.job_id][-1].change.job if item.job_id in decided else before
                outcome = decide(current, item, now)
                if isinstance(outcome, Ignored):
                    log.info(
                        "input_ignored",
                        job_id=str(item.job_id),
                        step=getattr(item, "step", None),
                        reason=outcome.reason,
                    )
                    continue
                decided.setdefault(item.job_id, []).append(outcome)
            changes = [(jobs[job_id], merge(jobs[job_id], ds)) for job_id, ds in decided.items()]
            events, outbox_rows = await store.apply_changes(conn, changes, now)
        for msg, _ in items:
            await _quietly(msg.ack())
        await publish_events(self._nc, events)
        await publish_notices(self._nc, [n for _, c in changes for n in c.notices])
        await self._relay.publish_committed(outbox_rows)
        for _, change in changes:
            if change.job.status.terminal:
                log.info("job_finished", job_id=str(change.job.id), status=change.job.status.value)


async def _quietly(awaitable: object) -> None:
    try:
        await awaitable  # type: ignore[misc]
    except Exception as exc:
        log.warning("ack_failed", error=type(exc).__name__)
