"""Queries on the jobs tables shared by the services that read or write jobs.

Writers lock the job rows they change (``SELECT ... FOR UPDATE``, in id order so that
batches never deadlock) and commit the new rows, the job's events and its outbox messages
in the same transaction (``apply_changes``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from jobkit.db import Conn
from jobkit.model import EventRecord, JobChange, JobRecord, OutboxMessage, StepRecord

_JOB_COLUMNS = """id, owner, type, status, progress, phase, input, result, error_code,
    error_message, last_sequence, created_at, updated_at, finished_at"""
_STEP_COLUMNS = """job_id, position, name, status, attempt, retry_base, output, error_code,
    error_message, lease_expires_at, started_at, finished_at"""


async def fetch_jobs(
    conn: Conn, job_ids: Sequence[uuid.UUID], *, lock: bool = False
) -> dict[uuid.UUID, JobRecord]:
    """Load jobs with their steps; with ``lock``, hold their row locks until commit."""
    if not job_ids:
        return {}
    suffix = " ORDER BY id FOR UPDATE" if lock else ""
    job_rows = await conn.fetch(
        f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ANY($1::uuid[]){suffix}",
        list(job_ids),
    )
    step_rows = await conn.fetch(
        f"SELECT {_STEP_COLUMNS} FROM job_steps WHERE job_id = ANY($1::uuid[]) "
        "ORDER BY job_id, position",
        [r["id"] for r in job_rows],
    )
    steps: dict[uuid.UUID, list[StepRecord]] = {}
    for row in step_rows:
        steps.setdefault(row["job_id"], []).append(StepRecord.from_row(row))
    return {r["id"]: JobRecord.from_row(r, tuple(steps.get(r["id"], ()))) for r in job_rows}


async def fetch_job(conn: Conn, job_id: uuid.UUID, *, lock: bool = False) -> JobRecord | None:
    return (await fetch_jobs(conn, [job_id], lock=lock)).get(job_id)


async def fetch_events(
    conn: Conn, job_id: uuid.UUID, after_sequence: int, limit: int = 1000
) -> list[EventRecord]:
    rows = await conn.fetch(
        """SELECT job_id, sequence, type, status, progress, phase, step, attempt, message,
                  retry_delay_ms, occurred_at
           FROM job_events WHERE job_id = $1 AND sequence > $2
           ORDER BY sequence LIMIT $3""",
        job_id,
        after_sequence,
        limit,
    )
    return [EventRecord.from_row(r) for r in rows]


async def insert_job(
    conn: Conn,
    job: JobRecord,
    idempotency_key: str | None,
    request_hash: bytes | None,
) -> None:
    """Insert a new job and its planned steps (events and outbox go through apply_changes)."""
    await conn.execute(
        """INSERT INTO jobs (id, owner, type, status, progress, phase, input,
                             idempotency_key, request_hash, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)""",
        job.id,
        job.owner,
        job.type,
        job.status.value,
        job.progress,
        job.phase,
        job.input,
        idempotency_key,
        request_hash,
        job.created_at,
    )
    await conn.executemany(
        "INSERT INTO job_steps (job_id, position, name, status) VALUES ($1, $2, $3, $4)",
        [(s.job_id, s.position, s.name, s.status.value) for s in job.steps],
    )


async def apply_changes(
    conn: Conn, changes: Sequence[tuple[JobRecord, JobChange]], now: datetime
) -> tuple[list[EventRecord], list[tuple[int, OutboxMessage]]]:
    """Write a batch of decisions, each against the locked record it was made from.

    Returns the events with their sequences and the outbox rows written, as
    ``(id, message)``, for the caller to publish after the commit.
    """
    events: list[EventRecord] = []
    for before, change in changes:
        for offset, event in enumerate(change.events, start=1):
            events.append(EventRecord(before.id, before.last_sequence + offset, event, now))
    jobs = [
        replace(change.job, last_sequence=before.last_sequence + len(change.events), updated_at=now)
        for before, change in changes
    ]
    if jobs:
        await conn.execute(
            """UPDATE jobs AS j SET status = u.status, progress = u.progress, phase = u.phase,
                   result = u.result, error_code = u.error_code,
                   error_message = u.error_message, last_sequence = u.last_sequence,
                   updated_at = u.updated_at, finished_at = u.finished_at
               FROM unnest($1::uuid[], $2::text[], $3::smallint[], $4::text[], $5::bytea[],
                           $6::text[], $7::text[], $8::bigint[], $9::timestamptz[],
                           $10::timestamptz[])
                    AS u(id, status, progress, phase, result, error_code, error_message,
                         last_sequence, updated_at, finished_at)
               WHERE j.id = u.id""",
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
        )
    steps = [s for _, change in changes for s in change.steps]
    if steps:
        await conn.execute(
            """UPDATE job_steps AS s SET status = u.status, attempt = u.attempt,
                   retry_base = u.retry_base, output = u.output, error_code = u.error_code,
                   error_message = u.error_message, lease_expires_at = u.lease_expires_at,
                   started_at = u.started_at, finished_at = u.finished_at
               FROM unnest($1::uuid[], $2::smallint[], $3::text[], $4::int[], $5::int[],
                           $6::bytea[], $7::text[], $8::text[], $9::timestamptz[],
                           $10::timestamptz[], $11::timestamptz[])
                    AS u(job_id, position, status, attempt, retry_base, output, error_code,
                         error_message, lease_expires_at, started_at, finished_at)
               WHERE s.job_id = u.job_id AND s.position = u.position""",
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
        )
    if events:
        await conn.execute(
            """INSERT INTO job_events (job_id, sequence, type, status, progress, phase, step,
                                       attempt, message, retry_delay_ms, occurred_at)
               SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[],
                                    $5::smallint[], $6::text[], $7::text[], $8::int[],
                                    $9::text[], $10::int[], $11::timestamptz[])""",
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
        )
    messages = [m for _, change in changes for m in change.outbox]
    written: list[tuple[int, OutboxMessage]] = []
    if messages:
        rows = await conn.fetch(
            """INSERT INTO outbox (subject, msg_id, payload, not_before)
               SELECT u.subject, u.msg_id, u.payload, coalesce(u.not_before, $5)
               FROM unnest($1::text[], $2::text[], $3::bytea[], $4::timestamptz[])
                    WITH ORDINALITY AS u(subject, msg_id, payload, not_before, n)
               ORDER BY u.n
               RETURNING id, msg_id""",
            [m.subject for m in messages],
            [m.msg_id for m in messages],
            [m.payload for m in messages],
            [m.not_before for m in messages],
            now,
        )
        by_msg_id = {m.msg_id: m for m in messages}
        written = [(r["id"], by_msg_id[r["msg_id"]]) for r in rows]
    return events, written
