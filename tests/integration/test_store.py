"""The schema and the shared job queries, against a real Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from jobkit import control, store
from jobkit.db import create_pool, migrate, migration_files
from jobkit.lifecycle import EventType, JobStatus
from tests.integration.helpers import create_job

EXPECTED_COLUMNS = {
    "jobs": {
        "id",
        "owner",
        "type",
        "status",
        "progress",
        "phase",
        "input",
        "result",
        "error_code",
        "error_message",
        "idempotency_key",
        "request_hash",
        "last_sequence",
        "created_at",
        "updated_at",
        "finished_at",
        "trace_context",
        "version",
    },
    "job_steps": {
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
    },
    "job_events": {
        "job_id",
        "sequence",
        "type",
        "status",
        "progress",
        "phase",
        "step",
        "attempt",
        "message",
        "retry_delay_ms",
        "occurred_at",
        "partial_output",
    },
    "outbox": {
        "id",
        "subject",
        "msg_id",
        "payload",
        "not_before",
        "created_at",
        "trace_context",
    },
}


async def test_migrations_create_the_schema_the_code_expects(pool: asyncpg.Pool) -> None:
    rows = await pool.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public'"
    )
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row["table_name"], set()).add(row["column_name"])
    for table, columns in EXPECTED_COLUMNS.items():
        assert found[table] == columns, table
    applied = {r["name"] for r in await pool.fetch("SELECT name FROM schema_migrations")}
    assert applied == {name for name, _ in migration_files()}


async def test_migrate_is_safe_from_many_replicas_at_once(database_url: str) -> None:
    pools = [await create_pool(database_url, min_size=1, max_size=2) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(p) for p in pools))
        assert sorted(len(r) for r in results) == [0, 0, 0, len(migration_files())]
        assert await migrate(pools[0]) == []
    finally:
        for p in pools:
            await p.close()


async def test_event_sequences_are_gap_free_across_writers(pool: asyncpg.Pool) -> None:
    job, events, rows = await create_job(pool)
    assert [e.sequence for e in events] == [1]
    assert len(rows) == 1

    async def cancel_or_retry() -> None:
        async with pool.acquire() as conn, conn.transaction():
            current = await store.fetch_job(conn, job.id, lock=True)
            assert current is not None
            now = datetime.now(UTC)
            change = (
                control.retry(current, now)
                if current.status.terminal
                else control.cancel(current, now)
            )
            assert change is not None
            await store.apply_changes(conn, [(current, change)], now)

    await asyncio.gather(*(cancel_or_retry() for _ in range(10)))
    async with pool.acquire() as conn:
        recorded = await store.fetch_events(conn, job.id, 0)
        final = await store.fetch_job(conn, job.id)
    assert [e.sequence for e in recorded] == list(range(1, 12))
    assert final is not None
    assert final.last_sequence == 11
    kinds = [e.event.type for e in recorded[1:]]
    assert kinds == [EventType.CANCELLED, EventType.STEP_RETRYING] * 5
    assert final.status is JobStatus.QUEUED


async def test_fetch_events_pages_after_a_sequence(pool: asyncpg.Pool) -> None:
    job, _, _ = await create_job(pool)
    async with pool.acquire() as conn:
        assert [e.sequence for e in await store.fetch_events(conn, job.id, 0)] == [1]
        assert await store.fetch_events(conn, job.id, 1) == []


async def test_a_decision_made_from_a_stale_read_writes_nothing(pool: asyncpg.Pool) -> None:
    job, _, _ = await create_job(pool)
    async with pool.acquire() as conn:
        stale = await store.fetch_job(conn, job.id)  # read without a lock
        assert stale is not None
        fresh = await store.fetch_job(conn, job.id)
        assert fresh is not None
        now = datetime.now(UTC)
        # Someone else writes first: the job moves on to version 1.
        cancelled = control.cancel(fresh, now)
        assert cancelled is not None
        await store.apply_changes(conn, [(fresh, cancelled)], now)
        # A decision from the earlier read must not land, not even in part.
        late = control.cancel(stale, now)
        assert late is not None
        with pytest.raises(store.StaleRead):
            await store.apply_changes(conn, [(stale, late)], now)
        final = await store.fetch_job(conn, job.id)
        events = await store.fetch_events(conn, job.id, 0)
    assert final is not None
    assert final.version == stale.version + 1
    assert [e.event.type for e in events] == [EventType.CREATED, EventType.CANCELLED]
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE msg_id LIKE $1", f"{job.id}%")


async def test_a_stale_write_in_a_batch_rolls_back_the_whole_batch(pool: asyncpg.Pool) -> None:
    first, _, _ = await create_job(pool)
    second, _, _ = await create_job(pool)
    async with pool.acquire() as conn:
        jobs = await store.fetch_jobs(conn, [first.id, second.id])
        now = datetime.now(UTC)
        moved_on = control.cancel(jobs[second.id], now)
        assert moved_on is not None
        await store.apply_changes(conn, [(jobs[second.id], moved_on)], now)
        batch = [(jobs[i], control.cancel(jobs[i], now)) for i in (first.id, second.id)]
        with pytest.raises(store.StaleRead):
            await store.apply_changes(conn, [(b, c) for b, c in batch if c is not None], now)
        after = await store.fetch_job(conn, first.id)
    assert after is not None
    assert after.status is JobStatus.QUEUED  # the fresh half of the batch did not land either
    assert after.version == jobs[first.id].version
