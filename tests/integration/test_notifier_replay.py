"""The notifier's replay read: a page of a job's events with the job's row, in one
statement, for its owner (or an admin) only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from jobkit import control, store
from jobkit.auth import Principal
from jobkit.errors import NotFound
from jobkit.lifecycle import EventType, JobStatus
from services.notifier import servicer
from services.notifier.servicer import read_page
from tests.integration.helpers import create_job

ALICE = Principal("alice")


async def cancel_then_retry(pool: asyncpg.Pool, job_id: uuid.UUID, times: int) -> None:
    """Cancel the job and queue it again ``times`` times: two events each."""
    for _ in range(times):
        for change_of in (control.cancel, control.retry):
            async with pool.acquire() as conn, conn.transaction():
                current = await store.fetch_job(conn, job_id, lock=True)
                assert current is not None
                now = datetime.now(UTC)
                change = change_of(current, now)
                assert change is not None
                await store.apply_changes(conn, [(current, change)], now)


async def test_a_page_carries_the_job_and_its_events_after_a_sequence(pool: asyncpg.Pool) -> None:
    job, _, _ = await create_job(pool, owner="alice")
    first = await read_page(pool, job.id, 0, ALICE)
    assert [e.sequence for e in first.events] == [1]
    assert first.events[0].event.type is EventType.CREATED
    assert (first.status, first.last_sequence) == (JobStatus.QUEUED, 1)
    assert not first.full
    assert not first.finished(1)

    # Nothing after the last sequence: the job's row alone, no event.
    caught_up = await read_page(pool, job.id, 1, ALICE)
    assert caught_up.events == []
    assert (caught_up.status, caught_up.last_sequence) == (JobStatus.QUEUED, 1)


async def test_only_the_owner_or_an_admin_reads_a_page(pool: asyncpg.Pool) -> None:
    job, _, _ = await create_job(pool, owner="alice")
    with pytest.raises(NotFound):
        await read_page(pool, job.id, 0, Principal("bob"))
    with pytest.raises(NotFound):
        await read_page(pool, uuid.uuid4(), 0, ALICE)
    admin = await read_page(pool, job.id, 0, Principal("ops", is_admin=True))
    assert [e.sequence for e in admin.events] == [1]


async def test_pages_follow_each_other_to_the_end(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(servicer, "REPLAY_PAGE", 3)
    job, _, _ = await create_job(pool, owner="alice")
    await cancel_then_retry(pool, job.id, 3)  # sequences 2-7
    async with pool.acquire() as conn, conn.transaction():
        current = await store.fetch_job(conn, job.id, lock=True)
        assert current is not None
        now = datetime.now(UTC)
        cancelled = control.cancel(current, now)
        assert cancelled is not None
        await store.apply_changes(conn, [(current, cancelled)], now)  # 8: over

    pages, after = [], 0
    while True:
        page = await read_page(pool, job.id, after, ALICE)
        pages.append([e.sequence for e in page.events])
        after = page.events[-1].sequence if page.events else after
        if not page.full:
            break
    assert pages == [[1, 2, 3], [4, 5, 6], [7, 8]]
    assert page.status is JobStatus.CANCELLED
    assert page.finished(8)
    # A client that had seen up to 7 has the end still to come; one past it has not.
    assert not page.finished(7)
    assert (await read_page(pool, job.id, 8, ALICE)).finished(8)
