"""Queries on the jobs tables shared by the services that read or write jobs.

A decision about a job is written with the job's new row, its steps, its events and its
outbox messages in one statement (``apply_changes``), guarded by the job's ``version``:
if the job changed since it was read, the statement fails whole with ``StaleRead``.
Writers either lock the rows first (``fetch_jobs(lock=True)`` inside a transaction, in id
order so batches never deadlock) and never see ``StaleRead``, or read without locks and
decide again on ``StaleRead`` (the orchestrator's fast path: two round trips a batch).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import asyncpg

from jobkit import bus, webhooks
from jobkit.db import Conn
from jobkit.gen.jobs.internal.v1 import events_pb2
from jobkit.model import (
    EventRecord,
    JobChange,
    JobRecord,
    NewJob,
    OutboxMessage,
    StepRecord,
    StepUsage,
)
from jobkit.records import replace
from jobkit.sql import queries

#: fetch_jobs's step columns, each an array in step order: ``step_<field>``.
_STEP_FIELDS = (
    "job_id",
    "position",
    "name",
    "status",
    "attempt",
    "retry_base",
    "output",
    "error_code",
    "error_message",
    "lease_expires_at",
    "started_at",
    "finished_at",
    "cursor",
    "percent",
    "input_request",
)


class StaleRead(Exception):
    """A job changed, or went, between reading it and writing a decision made from it."""


async def fetch_jobs(
    conn: Conn, job_ids: Sequence[uuid.UUID], *, lock: bool = False
) -> dict[uuid.UUID, JobRecord]:
    """Load jobs with their steps, in one round trip; with ``lock`` (inside a
    transaction), hold their row locks until commit (taken in id order, so concurrent
    batches never deadlock), and read them once the locks are held: two round trips.
    Read Committed gives each statement its own snapshot, so the read sees whatever the
    lock waited for, steps included."""
    if not job_ids:
        return {}
    if lock:
        await conn.fetch(queries.lock_jobs, list(job_ids))
    rows = await conn.fetch(queries.fetch_jobs, list(job_ids))
    jobs: dict[uuid.UUID, JobRecord] = {}
    for row in rows:
        columns = [row[f"step_{f}"] or () for f in _STEP_FIELDS]
        steps = tuple(
            StepRecord.from_row(dict(zip(_STEP_FIELDS, values, strict=True)))
            for values in zip(*columns, strict=True)
        )
        jobs[row["id"]] = JobRecord.from_row(row, steps)
    return jobs


async def fetch_job(conn: Conn, job_id: uuid.UUID, *, lock: bool = False) -> JobRecord | None:
    return (await fetch_jobs(conn, [job_id], lock=lock)).get(job_id)


async def erase_jobs(
    conn: Conn, job_ids: Sequence[uuid.UUID], artifact_types: Sequence[str]
) -> list[uuid.UUID]:
    """A real delete of ``job_ids`` with their steps and events; the artifacts of those of
    ``artifact_types`` are queued for deletion in the same transaction. The caller holds
    the jobs' row locks from an earlier statement of that transaction (``fetch_job(...,
    lock=True)``, or retention's ``lock_expired_jobs``). Returns the ids deleted."""
    if not job_ids:
        return []
    rows = await conn.fetch(queries.erase_jobs, list(job_ids), list(artifact_types))
    return [r["id"] for r in rows]


async def fetch_events(
    conn: Conn, job_id: uuid.UUID, after_sequence: int, limit: int = 1000
) -> list[EventRecord]:
    rows = await conn.fetch(queries.fetch_events, job_id, after_sequence, limit)
    return [EventRecord.from_row(r) for r in rows]


async def create_jobs(
    conn: Conn, new_jobs: Sequence[NewJob], now: datetime, *, hold_steps: bool = False
) -> tuple[list[EventRecord], list[tuple[int, OutboxMessage]]]:
    """Insert jobs with their planned steps, first events and outbox messages, atomically.
    With ``hold_steps`` (a backlog waits: ``jobkit.dispatch_gate``), step attempts
    wait in the ready queue for the fair dispatcher instead of going to the outbox.

    Raises ``asyncpg.UniqueViolationError`` (and writes nothing) when an idempotency key
    is taken.
    """
    return await _write(conn, [(n.job, n.change) for n in new_jobs], now, new_jobs, hold_steps)


async def apply_changes(
    conn: Conn,
    changes: Sequence[tuple[JobRecord, JobChange]],
    now: datetime,
    created: Sequence[NewJob] = (),
    *,
    hold_steps: bool = False,
) -> tuple[list[EventRecord], list[tuple[int, OutboxMessage]]]:
    """Write a batch of decisions, each against the locked record it was made from, and
    the jobs they create (``created``: a step's children), all or nothing.

    Returns the events with their sequences and the outbox rows written, as
    ``(id, message)``, for the caller to publish after the commit (``hold_steps``: as
    ``create_jobs``).
    """
    everything = [*changes, *((n.job, n.change) for n in created)]
    try:
        return await _write(conn, everything, now, created, hold_steps)
    except (
        asyncpg.SerializationError,  # jobs_expect_version: the job moved on
        asyncpg.UniqueViolationError,  # its next event sequence is taken
        asyncpg.ForeignKeyViolationError,  # it was deleted
    ) as exc:
        raise StaleRead() from exc


class NewJobRow(NamedTuple):
    """Postgres ``new_job_row_v5`` (migration 0014): a job inserted whole, by CreateJob, by
    a step that creates jobs (``parent_job_id``) or by ForkJob (``forked_from_job_id``),
    with its scheduling, its cap, its webhook and the version of its type's step graph."""

    id: uuid.UUID
    owner: str
    type: str
    status: str
    progress: int
    phase: str
    input: bytes
    idempotency_key: str | None
    request_hash: bytes | None
    last_sequence: int
    trace_context: str
    created_at: datetime
    updated_at: datetime
    version: int
    parent_job_id: uuid.UUID | None
    priority: int
    not_before: datetime | None
    deadline_at: datetime | None
    concurrency_key: str | None
    concurrency_limit: int | None
    webhook_url: str | None
    type_version: int
    forked_from_job_id: uuid.UUID | None


class NewStepRow(NamedTuple):
    """Postgres ``new_step_row_v2`` (migration 0014): a new job's planned step; a fork's
    reused step arrives SUCCEEDED with the source's checkpoint as its output."""

    job_id: uuid.UUID
    position: int
    name: str
    status: str
    output: bytes | None
    finished_at: datetime | None


class JobUpdateRow(NamedTuple):
    """Postgres ``job_update_row``: a decision's new job row, at ``version``."""

    id: uuid.UUID
    status: str
    progress: int
    phase: str
    result: bytes | None
    error_code: str | None
    error_message: str | None
    last_sequence: int
    updated_at: datetime
    finished_at: datetime | None
    version: int


class StepUpdateRow(NamedTuple):
    """Postgres ``step_update_row_v3`` (migration 0015): a decision's changed step."""

    job_id: uuid.UUID
    position: int
    status: str
    attempt: int
    retry_base: int
    output: bytes | None
    error_code: str | None
    error_message: str | None
    lease_expires_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    cursor: bytes | None
    percent: int
    #: JSON (``jobkit.inputs.InputRequest.to_json``).
    input_request: str | None


class EventRow(NamedTuple):
    """Postgres ``event_row_v2`` (migration 0015): an event with the sequence its writer
    gave it."""

    job_id: uuid.UUID
    sequence: int
    type: str
    status: str
    progress: int
    phase: str
    step: str
    attempt: int
    message: str
    retry_delay_ms: int
    occurred_at: datetime
    partial_output: str
    input_request: str | None


class UsageRow(NamedTuple):
    """Postgres ``usage_row``: an accepted attempt's model usage, priced."""

    owner: str
    job_id: uuid.UUID
    job_type: str
    step: str
    attempt: int
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    prompts: str
    recorded_at: datetime


class OutboxRow(NamedTuple):
    """Postgres ``outbox_row``: a message to publish after the commit."""

    subject: str
    msg_id: str
    payload: bytes
    not_before: datetime
    trace_context: str


class ReadyRow(NamedTuple):
    """Postgres ``ready_row``: a step attempt held for the fair dispatcher, with what it
    is picked by."""

    job_id: uuid.UUID
    owner: str
    concurrency_key: str
    concurrency_limit: int | None
    priority: int
    subject: str
    msg_id: str
    payload: bytes
    trace_context: str
    not_before: datetime


class WebhookRow(NamedTuple):
    """Postgres ``webhook_row`` (migration 0013): an event's webhook delivery, enqueued
    with the event (``jobkit.webhooks``)."""

    webhook_id: str
    job_id: uuid.UUID
    sequence: int
    type: str
    created_at: datetime


#: Row types a writer of the previous release may still use during a rolling deploy; no
#: writer of this one does. Dropped a release after their successor came.
RETIRED_ROW_TYPES = frozenset(
    {
        "step_update_row",
        "new_job_row",
        "new_job_row_v2",
        "new_job_row_v3",
        "new_job_row_v4",
        "new_step_row",
        "step_update_row_v2",
        "event_row",
    }
)

#: Each Postgres row type and its Python twin: the same fields in the same order (a test
#: compares them with ``pg_attribute``).
ROW_TYPES: dict[str, type[tuple[object, ...]]] = {
    "new_job_row_v5": NewJobRow,
    "new_step_row_v2": NewStepRow,
    "job_update_row": JobUpdateRow,
    "step_update_row_v3": StepUpdateRow,
    "event_row_v2": EventRow,
    "usage_row": UsageRow,
    "outbox_row": OutboxRow,
    "ready_row": ReadyRow,
    "webhook_row": WebhookRow,
}


async def _write(
    conn: Conn,
    changes: Sequence[tuple[JobRecord, JobChange]],
    now: datetime,
    new_jobs: Sequence[NewJob],
    hold_steps: bool,
) -> tuple[list[EventRecord], list[tuple[int, OutboxMessage]]]:
    events: list[EventRecord] = []
    webhook_events: list[tuple[EventRecord, JobRecord]] = []
    for before, change in changes:
        for offset, event in enumerate(change.events, start=1):
            record = EventRecord(before.id, before.last_sequence + offset, event, now)
            events.append(record)
            # Every writer of events comes through here: the one place a webhook is due.
            if change.job.webhook_url and event.type in webhooks.EVENT_TYPES:
                webhook_events.append((record, change.job))
    after = [as_written(before, change, now) for before, change in changes]
    created = {n.job.id: n for n in new_jobs}
    # Each outbox message goes to the outbox, or, a step attempt to hold, to the ready queue.
    held: list[tuple[JobRecord, OutboxMessage]] = []
    messages: list[OutboxMessage] = []
    for _, change in changes:
        for m in change.outbox:
            hold = hold_steps or (m.starts_job and change.job.concurrency_limit is not None)
            if hold and m.subject.startswith(bus.STEPS_SUBJECT_PREFIX):
                held.append((change.job, m))
            else:
                messages.append(m)
    messages += [webhook_message(record, job.trace_context) for record, job in webhook_events]
    # A row inserted by this statement is invisible to its UPDATEs: new jobs go in whole.
    new_job_rows = [
        NewJobRow(
            id=j.id,
            owner=j.owner,
            type=j.type,
            status=j.status.value,
            progress=j.progress,
            phase=j.phase,
            input=j.input,
            idempotency_key=created[j.id].idempotency_key,
            request_hash=created[j.id].request_hash,
            last_sequence=j.last_sequence,
            trace_context=j.trace_context,
            created_at=j.created_at,
            updated_at=j.updated_at,
            version=j.version,
            parent_job_id=j.parent_id,
            priority=j.priority,
            not_before=j.not_before,
            deadline_at=j.deadline_at,
            concurrency_key=j.concurrency_key,
            concurrency_limit=j.concurrency_limit,
            webhook_url=j.webhook_url,
            type_version=j.type_version,
            forked_from_job_id=j.forked_from_id,
        )
        for j in after
        if j.id in created
    ]
    new_step_rows = [
        NewStepRow(
            job_id=s.job_id,
            position=s.position,
            name=s.name,
            status=s.status.value,
            output=s.output,
            finished_at=s.finished_at,
        )
        for j in after
        if j.id in created
        for s in j.steps
    ]
    job_update_rows = [
        JobUpdateRow(
            id=j.id,
            status=j.status.value,
            progress=j.progress,
            phase=j.phase,
            result=j.result,
            error_code=j.error_code,
            error_message=j.error_message,
            last_sequence=j.last_sequence,
            updated_at=j.updated_at,
            finished_at=j.finished_at,
            version=j.version,
        )
        for j in after
        if j.id not in created
    ]
    step_update_rows = [
        StepUpdateRow(
            job_id=s.job_id,
            position=s.position,
            status=s.status.value,
            attempt=s.attempt,
            retry_base=s.retry_base,
            output=s.output,
            error_code=s.error_code,
            error_message=s.error_message,
            lease_expires_at=s.lease_expires_at,
            started_at=s.started_at,
            finished_at=s.finished_at,
            cursor=s.cursor,
            percent=s.percent,
            input_request=s.input_request.to_json() if s.input_request is not None else None,
        )
        for _, change in changes
        for s in change.steps
    ]
    event_rows = [
        EventRow(
            job_id=e.job_id,
            sequence=e.sequence,
            type=e.event.type.value,
            status=e.event.status.value,
            progress=e.event.progress,
            phase=e.event.phase,
            step=e.event.step,
            attempt=e.event.attempt,
            message=e.event.message,
            retry_delay_ms=e.event.retry_delay_ms,
            occurred_at=e.occurred_at,
            partial_output=e.event.partial_output,
            input_request=(
                e.event.input_request.to_json() if e.event.input_request is not None else None
            ),
        )
        for e in events
    ]
    usage_rows = [
        UsageRow(
            owner=before.owner,
            job_id=before.id,
            job_type=before.type,
            step=u.step,
            attempt=u.attempt,
            model=u.model,
            prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens,
            cost_usd=u.cost_usd,
            prompts=" ".join(u.prompts),
            recorded_at=now,
        )
        for before, change in changes
        for u in change.usage
    ]
    outbox_rows = [
        OutboxRow(
            subject=m.subject,
            msg_id=m.msg_id,
            payload=m.payload,
            not_before=m.not_before or now,
            trace_context=m.trace_context,
        )
        for m in messages
    ]
    ready_rows = [
        ReadyRow(
            job_id=job.id,
            owner=job.owner,
            concurrency_key=job.concurrency_key or "",
            # Only a start waits for a turn under the cap: a later step of a job already
            # running is counted with it, and goes when its user's turn comes.
            concurrency_limit=job.concurrency_limit if m.starts_job else None,
            priority=job.priority,
            subject=m.subject,
            msg_id=m.msg_id,
            payload=m.payload,
            trace_context=m.trace_context,
            not_before=m.not_before or now,
        )
        for job, m in held
    ]
    webhook_rows = [
        WebhookRow(
            webhook_id=webhooks.webhook_id(e.job_id, e.sequence),
            job_id=e.job_id,
            sequence=e.sequence,
            type=webhooks.EVENT_TYPES[e.event.type],
            created_at=now,
        )
        for e, _ in webhook_events
    ]
    # One statement, one round trip, one parameter per table.
    row = await conn.fetchrow(
        queries.write_changes,
        new_job_rows,
        new_step_rows,
        job_update_rows,
        step_update_rows,
        event_rows,
        usage_rows,
        outbox_rows,
        ready_rows,
        webhook_rows,
        [change.job.id for _, change in changes for _ in change.claimed],
        [msg_id for _, change in changes for msg_id in change.claimed],
    )
    assert row is not None  # a SELECT without FROM returns one row
    by_msg_id = {m.msg_id: m for m in messages}
    written = [
        (i, by_msg_id[m]) for i, m in zip(row["ids"] or (), row["msg_ids"] or (), strict=True)
    ]
    return events, written


def webhook_message(record: EventRecord, trace_context: str) -> OutboxMessage:
    """The outbox message that hands an event's webhook delivery to JetStream
    (``JOB_WEBHOOKS``): the notifier reads the rest from Postgres on each try."""
    due_id = webhooks.webhook_id(record.job_id, record.sequence)
    return OutboxMessage(
        subject=bus.webhook_subject(str(record.job_id)),
        msg_id=f"webhook:{due_id}",
        payload=events_pb2.WebhookDue(
            webhook_id=due_id, job_id=str(record.job_id), sequence=record.sequence
        ).SerializeToString(),
        trace_context=trace_context,
    )


def as_written(before: JobRecord, change: JobChange, now: datetime) -> JobRecord:
    """The job as writing ``change`` (decided from ``before``) at ``now`` leaves it in
    Postgres: what a writer may remember instead of reading it again."""
    return replace(
        change.job,
        last_sequence=before.last_sequence + len(change.events),
        updated_at=now,
        version=before.version + 1,
    )


def as_created(new: NewJob, now: datetime) -> JobRecord:
    """The new job as ``create_jobs`` at ``now`` leaves it in Postgres, as a read would
    return it: its row and its steps hold only what the insert writes (``NewJobRow``,
    ``NewStepRow``), everything else at the columns' defaults."""
    job = as_written(new.job, new.change, now)
    return replace(
        job,
        result=None,
        error_code=None,
        error_message=None,
        finished_at=None,
        usage=(),
        steps=tuple(
            StepRecord(
                s.job_id, s.position, s.name, s.status, output=s.output, finished_at=s.finished_at
            )
            for s in job.steps
        ),
    )


async def with_usage(conn: Conn, jobs: Sequence[JobRecord]) -> list[JobRecord]:
    """The jobs with their model usage (per step and model, summed over attempts)."""
    if not jobs:
        return []
    rows = await conn.fetch(queries.fetch_usage, [j.id for j in jobs])
    # Summed over attempts, per job, step and model, in order of first use.
    totals: dict[tuple[uuid.UUID, str, str], StepUsage] = {}
    for r in rows:
        key = (r["job_id"], r["step"], r["model"])
        seen = totals.get(key, StepUsage(r["step"], 0, r["model"], 0, 0))
        prompts = [*seen.prompts, *(p for p in r["prompts"].split() if p not in seen.prompts)]
        totals[key] = replace(
            seen,
            prompt_tokens=seen.prompt_tokens + r["prompt_tokens"],
            completion_tokens=seen.completion_tokens + r["completion_tokens"],
            cost_usd=seen.cost_usd + r["cost_usd"],
            prompts=tuple(prompts),
        )
    usage: dict[uuid.UUID, list[StepUsage]] = {}
    for (job_id, _, _), total in totals.items():
        usage.setdefault(job_id, []).append(total)
    return [replace(j, usage=tuple(usage.get(j.id, ()))) for j in jobs]


async def tokens_used_since(conn: Conn, owner: str, since: datetime) -> tuple[int, datetime | None]:
    """A user's model tokens recorded since ``since``, and when the oldest of them was."""
    row = await conn.fetchrow(queries.tokens_used_since, owner, since)
    assert row is not None
    return int(row["tokens"]), row["oldest"]
