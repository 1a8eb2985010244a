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
from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg

from jobkit.db import Conn
from jobkit.model import (
    EventRecord,
    JobChange,
    JobRecord,
    OutboxMessage,
    StepRecord,
    StepUsage,
)
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
)


class StaleRead(Exception):
    """A job changed, or went, between reading it and writing a decision made from it."""


async def fetch_jobs(
    conn: Conn, job_ids: Sequence[uuid.UUID], *, lock: bool = False
) -> dict[uuid.UUID, JobRecord]:
    """Load jobs with their steps, in one round trip; with ``lock``, hold their row locks
    until commit (taken in id order, so concurrent batches never deadlock)."""
    if not job_ids:
        return {}
    query = queries.fetch_jobs_for_update if lock else queries.fetch_jobs
    rows = await conn.fetch(query, list(job_ids))
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


async def fetch_events(
    conn: Conn, job_id: uuid.UUID, after_sequence: int, limit: int = 1000
) -> list[EventRecord]:
    rows = await conn.fetch(queries.fetch_events, job_id, after_sequence, limit)
    return [EventRecord.from_row(r) for r in rows]


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to insert together with its first change (what CreateJob commits)."""

    job: JobRecord
    change: JobChange
    idempotency_key: str | None = None
    request_hash: bytes | None = None


async def create_jobs(
    conn: Conn, new_jobs: Sequence[NewJob], now: datetime
) -> tuple[list[EventRecord], list[tuple[int, OutboxMessage]]]:
    """Insert jobs with their planned steps, first events and outbox messages, atomically.

    Raises ``asyncpg.UniqueViolationError`` (and writes nothing) when an idempotency key
    is taken.
    """
    return await _write(conn, [(n.job, n.change) for n in new_jobs], now, new_jobs)


async def apply_changes(
    conn: Conn, changes: Sequence[tuple[JobRecord, JobChange]], now: datetime
) -> tuple[list[EventRecord], list[tuple[int, OutboxMessage]]]:
    """Write a batch of decisions, each against the locked record it was made from.

    Returns the events with their sequences and the outbox rows written, as
    ``(id, message)``, for the caller to publish after the commit.
    """
    try:
        return await _write(conn, changes, now, ())
    except (
        asyncpg.SerializationError,  # jobs_expect_version: the job moved on
        asyncpg.UniqueViolationError,  # its next event sequence is taken
        asyncpg.ForeignKeyViolationError,  # it was deleted
    ) as exc:
        raise StaleRead() from exc


async def _write(
    conn: Conn,
    changes: Sequence[tuple[JobRecord, JobChange]],
    now: datetime,
    new_jobs: Sequence[NewJob],
) -> tuple[list[EventRecord], list[tuple[int, OutboxMessage]]]:
    events: list[EventRecord] = []
    for before, change in changes:
        for offset, event in enumerate(change.events, start=1):
            events.append(EventRecord(before.id, before.last_sequence + offset, event, now))
    after = [
        replace(
            change.job,
            last_sequence=before.last_sequence + len(change.events),
            updated_at=now,
            version=before.version + 1,
        )
        for before, change in changes
    ]
    created = {n.job.id: n for n in new_jobs}
    # A row inserted by this statement is invisible to its UPDATEs: new jobs go in whole.
    jobs = [j for j in after if j.id not in created]
    inserts = [(j, created[j.id]) for j in after if j.id in created]
    planned = [s for j, _ in inserts for s in j.steps]
    steps = [s for _, change in changes for s in change.steps]
    messages = [m for _, change in changes for m in change.outbox]
    usage = [(before, u) for before, change in changes for u in change.usage]
    # One statement, one round trip: the data-modifying CTEs all run to completion
    # whether or not the outer INSERT reads them; empty arrays make them no-ops.
    row = await conn.fetchrow(
        """WITH new_jobs AS (
               INSERT INTO jobs (id, owner, type, status, progress, phase, input,
                                 idempotency_key, request_hash, last_sequence, trace_context,
                                 created_at, updated_at, version)
               SELECT * FROM unnest($39::uuid[], $40::text[], $41::text[], $42::text[],
                                    $43::smallint[], $44::text[], $45::bytea[], $46::text[],
                                    $47::bytea[], $48::bigint[], $49::text[],
                                    $50::timestamptz[], $51::timestamptz[], $57::bigint[])
               RETURNING id),
           new_steps AS (
               INSERT INTO job_steps (job_id, position, name, status)
               SELECT * FROM unnest($52::uuid[], $53::smallint[], $54::text[], $55::text[])),
           job_updates AS (
               UPDATE jobs AS j SET status = u.status, progress = u.progress,
                   phase = u.phase, result = u.result, error_code = u.error_code,
                   error_message = u.error_message, last_sequence = u.last_sequence,
                   updated_at = u.updated_at, finished_at = u.finished_at,
                   version = u.version
               FROM unnest($1::uuid[], $2::text[], $3::smallint[], $4::text[], $5::bytea[],
                           $6::text[], $7::text[], $8::bigint[], $9::timestamptz[],
                           $10::timestamptz[], $56::bigint[])
                    AS u(id, status, progress, phase, result, error_code, error_message,
                         last_sequence, updated_at, finished_at, version)
               WHERE j.id = u.id AND jobs_expect(j.version, u.version - 1, 'job version')
               RETURNING j.id),
           step_updates AS (
               UPDATE job_steps AS s SET status = u.status, attempt = u.attempt,
                   retry_base = u.retry_base, output = u.output, error_code = u.error_code,
                   error_message = u.error_message, lease_expires_at = u.lease_expires_at,
                   started_at = u.started_at, finished_at = u.finished_at
               FROM unnest($11::uuid[], $12::smallint[], $13::text[], $14::int[], $15::int[],
                           $16::bytea[], $17::text[], $18::text[], $19::timestamptz[],
                           $20::timestamptz[], $21::timestamptz[])
                    AS u(job_id, position, status, attempt, retry_base, output, error_code,
                         error_message, lease_expires_at, started_at, finished_at)
               -- Through job_updates: a job's row is locked before its steps, the order
               -- every writer follows, so concurrent writers never deadlock.
               JOIN job_updates AS ju ON ju.id = u.job_id
               WHERE s.job_id = u.job_id AND s.position = u.position),
           new_events AS (
               INSERT INTO job_events (job_id, sequence, type, status, progress, phase, step,
                                       attempt, message, retry_delay_ms, occurred_at,
                                       partial_output)
               SELECT e.* FROM unnest($22::uuid[], $23::bigint[], $24::text[], $25::text[],
                                      $26::smallint[], $27::text[], $28::text[], $29::int[],
                                      $30::text[], $31::int[], $32::timestamptz[],
                                      $59::text[])
                    AS e(job_id, sequence, type, status, progress, phase, step, attempt,
                         message, retry_delay_ms, occurred_at, partial_output)
               -- After the job's row, like the steps: the next sequence is unique per job,
               -- and a concurrent writer of the same one would otherwise wait on us.
               WHERE e.job_id IN (SELECT id FROM job_updates UNION ALL SELECT id FROM new_jobs)),
           new_usage AS (
               INSERT INTO model_usage (owner, job_id, job_type, step, attempt, model,
                                        prompt_tokens, completion_tokens, cost_usd,
                                        prompts, recorded_at)
               SELECT u.*, $69::timestamptz
               FROM unnest($60::text[], $61::uuid[], $62::text[], $63::text[], $64::int[],
                           $65::text[], $66::bigint[], $67::bigint[], $68::float8[],
                           $70::text[])
                    AS u(owner, job_id, job_type, step, attempt, model, prompt_tokens,
                         completion_tokens, cost_usd, prompts)
               -- After the job's row, like the events (same reason: a unique key).
               WHERE u.job_id IN (SELECT id FROM job_updates)
               ON CONFLICT (job_id, step, attempt, model) DO NOTHING),
           new_outbox AS (
               INSERT INTO outbox (subject, msg_id, payload, not_before, trace_context)
               SELECT u.subject, u.msg_id, u.payload, coalesce(u.not_before, $37),
                      u.trace_context
               FROM unnest($33::text[], $34::text[], $35::bytea[], $36::timestamptz[],
                           $38::text[])
                    WITH ORDINALITY AS u(subject, msg_id, payload, not_before, trace_context, n)
               ORDER BY u.n
               RETURNING id, msg_id)
           -- One row, always evaluated: a job deleted since it was read fails the whole
           -- statement like one that changed.
           SELECT jobs_expect((SELECT count(*) FROM job_updates), $58, 'jobs updated') AS ok,
                  (SELECT array_agg(id ORDER BY id) FROM new_outbox) AS ids,
                  (SELECT array_agg(msg_id ORDER BY id) FROM new_outbox) AS msg_ids""",
        [j.id for j in jobs],
        [j.status.value for j in jobs],
        [j.progress for j in jobs],
        [j.phase for j in jobs],
        [j.result for j in jobs],
        [j.error_code for j in jobs],
        [j.error_message for j in jobs],
        [j.last_sequence for j in jobs],
        [j.updated_at for j in jobs],
        [j.finished_at for j in jobs],
        [s.job_id for s in steps],
        [s.position for s in steps],
        [s.status.value for s in steps],
        [s.attempt for s in steps],
        [s.retry_base for s in steps],
        [s.output for s in steps],
        [s.error_code for s in steps],
        [s.error_message for s in steps],
        [s.lease_expires_at for s in steps],
        [s.started_at for s in steps],
        [s.finished_at for s in steps],
        [e.job_id for e in events],
        [e.sequence for e in events],
        [e.event.type.value for e in events],
        [e.event.status.value for e in events],
        [e.event.progress for e in events],
        [e.event.phase for e in events],
        [e.event.step for e in events],
        [e.event.attempt for e in events],
        [e.event.message for e in events],
        [e.event.retry_delay_ms for e in events],
        [e.occurred_at for e in events],
        [m.subject for m in messages],
        [m.msg_id for m in messages],
        [m.payload for m in messages],
        [m.not_before for m in messages],
        now,
        [m.trace_context for m in messages],
        [j.id for j, _ in inserts],
        [j.owner for j, _ in inserts],
        [j.type for j, _ in inserts],
        [j.status.value for j, _ in inserts],
        [j.progress for j, _ in inserts],
        [j.phase for j, _ in inserts],
        [j.input for j, _ in inserts],
        [n.idempotency_key for _, n in inserts],
        [n.request_hash for _, n in inserts],
        [j.last_sequence for j, _ in inserts],
        [j.trace_context for j, _ in inserts],
        [j.created_at for j, _ in inserts],
        [j.updated_at for j, _ in inserts],
        [s.job_id for s in planned],
        [s.position for s in planned],
        [s.name for s in planned],
        [s.status.value for s in planned],
        [j.version for j in jobs],
        [j.version for j, _ in inserts],
        len(jobs),
        [e.event.partial_output for e in events],
        [b.owner for b, u in usage],
        [b.id for b, u in usage],
        [b.type for b, u in usage],
        [u.step for b, u in usage],
        [u.attempt for b, u in usage],
        [u.model for b, u in usage],
        [u.prompt_tokens for b, u in usage],
        [u.completion_tokens for b, u in usage],
        [u.cost_usd for b, u in usage],
        now,
        [" ".join(u.prompts) for b, u in usage],
    )
    assert row is not None  # a SELECT without FROM returns one row
    by_msg_id = {m.msg_id: m for m in messages}
    written = [
        (i, by_msg_id[m]) for i, m in zip(row["ids"] or (), row["msg_ids"] or (), strict=True)
    ]
    return events, written


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
