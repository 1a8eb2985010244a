"""Retention against real Postgres and a real object store (SeaweedFS): expired jobs go,
and so do the objects of every deleted job of a type that saves artifacts, through
``artifact_deletions``, which keeps a job's row until its objects are gone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg

from jobkit.artifacts import ArtifactStore, ObjectStoreSettings, job_prefix
from jobkit.store import erase_jobs, fetch_job
from services.orchestrator.retention import Retention
from tests.integration.helpers import create_job


async def a_few_bytes() -> AsyncIterator[bytes]:
    yield b"an artifact"


def store_of(env: dict[str, str]) -> ArtifactStore:
    settings = ObjectStoreSettings.from_env(env)
    assert settings is not None
    return settings.open()


async def expire(pool: asyncpg.Pool, *job_ids: object) -> None:
    await pool.execute(
        "UPDATE jobs SET status = 'SUCCEEDED', finished_at = now() - interval '2 hours' "
        "WHERE id = ANY($1::uuid[])",
        list(job_ids),
    )


async def test_finished_jobs_are_erased_after_their_ttl(pool: asyncpg.Pool) -> None:
    retention = Retention(pool, retention_s=3600, scan_s=60)
    old, _, _ = await create_job(pool)
    recent, _, _ = await create_job(pool)
    running, _, _ = await create_job(pool)
    await expire(pool, old.id)
    await pool.execute(
        "UPDATE jobs SET status = 'FAILED', finished_at = now() - interval '10 minutes' "
        "WHERE id = $1",
        recent.id,
    )
    assert await retention.erase_expired_once() == 1
    remaining = {r["id"] for r in await pool.fetch("SELECT id FROM jobs")}
    assert remaining == {recent.id, running.id}
    # A real delete: nothing of the job is left anywhere.
    for table in ("job_steps", "job_events"):
        count = await pool.fetchval(f"SELECT count(*) FROM {table} WHERE job_id = $1", old.id)
        assert count == 0, table


async def test_a_deleted_job_leaves_no_step_or_event_behind(pool: asyncpg.Pool) -> None:
    """Steps and events have no foreign key to their job (0019): the delete takes them."""
    gone, _, _ = await create_job(pool)
    kept, _, _ = await create_job(pool)
    async with pool.acquire() as conn, conn.transaction():
        assert await fetch_job(conn, gone.id, lock=True) is not None
        await erase_jobs(conn, [gone.id], [])
    for table in ("job_steps", "job_events"):
        rows = await pool.fetch(f"SELECT DISTINCT job_id FROM {table}")
        assert [r["job_id"] for r in rows] == [kept.id], table


async def test_expired_jobs_take_their_artifacts_with_them(
    pool: asyncpg.Pool, object_store_env: dict[str, str]
) -> None:
    store = store_of(object_store_env)
    retention = Retention(
        pool, retention_s=3600, scan_s=60, artifacts=store, artifact_types=["noop"]
    )
    expired, _, _ = await create_job(pool, owner="ada")
    kept, _, _ = await create_job(pool, owner="ada")
    for job in (expired, kept):
        await store.write(job_prefix("ada", job.id), "a.txt", "text/plain", a_few_bytes())
    await expire(pool, expired.id)
    assert await retention.erase_expired_once() == 1
    # The job is gone at once; its objects with the next sweep, and its row after them.
    assert await pool.fetchval("SELECT count(*) FROM artifact_deletions") == 1
    assert await retention.erase_artifacts_once() == 1
    assert await store.names(job_prefix("ada", expired.id)) == []
    assert len(await store.names(job_prefix("ada", kept.id))) == 1
    assert await pool.fetchval("SELECT count(*) FROM artifact_deletions") == 0


async def test_a_store_that_fails_keeps_the_row_for_the_next_round(
    pool: asyncpg.Pool, object_store_env: dict[str, str]
) -> None:
    unreachable = store_of({**object_store_env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    retention = Retention(
        pool, retention_s=3600, scan_s=60, artifacts=unreachable, artifact_types=["noop"]
    )
    job, _, _ = await create_job(pool, owner="ada")
    await expire(pool, job.id)
    assert await retention.erase_expired_once() == 1
    assert await retention.erase_artifacts_once() == 0
    assert await pool.fetchval("SELECT count(*) FROM artifact_deletions") == 1


async def test_jobs_of_types_without_artifacts_leave_no_row(pool: asyncpg.Pool) -> None:
    retention = Retention(pool, retention_s=3600, scan_s=60)  # no store configured
    job, _, _ = await create_job(pool)
    await expire(pool, job.id)
    assert await retention.erase_expired_once() == 1
    assert await pool.fetchval("SELECT count(*) FROM artifact_deletions") == 0
