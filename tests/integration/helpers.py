"""Building jobs the way job_api does, for tests below the gRPC layer."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg

from jobkit import control, store
from jobkit.convert import dict_to_struct
from jobkit.lifecycle import EventType, JobStatus, StepStatus
from jobkit.model import (
    EventRecord,
    JobChange,
    JobRecord,
    NewEvent,
    NewJob,
    OutboxMessage,
    StepRecord,
)
from jobtypes import CATALOG


async def create_job(
    pool: asyncpg.Pool,
    job_type: str = "noop",
    owner: str = "alice",
    input: dict[str, object] | None = None,
    webhook_url: str | None = None,
) -> tuple[JobRecord, list[EventRecord], list[tuple[int, OutboxMessage]]]:
    spec = CATALOG[job_type]
    now = datetime.now(UTC)
    job_id = uuid.uuid4()
    job = JobRecord(
        id=job_id,
        owner=owner,
        type=job_type,
        status=JobStatus.QUEUED,
        input=dict_to_struct(input or {}).SerializeToString(),
        created_at=now,
        updated_at=now,
        steps=tuple(
            StepRecord(job_id, i, s.name, StepStatus.PENDING) for i, s in enumerate(spec.steps)
        ),
        webhook_url=webhook_url,
    )
    change = JobChange(
        job=job,
        events=(NewEvent(EventType.CREATED, JobStatus.QUEUED, 0),),
        outbox=(control.submitted_message(replace(job, last_sequence=1)),),
    )
    async with pool.acquire() as conn:
        events, rows = await store.create_jobs(conn, [NewJob(job, change)], now)
    return job, events, rows
