"""The notifier's replay read: a page of a job's events with the job's row, in one
statement, for its owner (or an admin) only."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from jobkit import control, store
from jobkit.auth import Principal
from jobkit.errors import NotFound
from jobkit.lifecycle import EventType, JobStatus
from services.notifier import servicer
from services.notifier.fanout import EventHub
from services.notifier.servicer import NotifierServicer, read_page
from tests.integration.helpers import create_job

ALICE = Principal("alice")


async def finished_job(pool: asyncpg.Pool, events: int) -> uuid.UUID:
    """A job of alice's over with ``events`` events (an even number): created, then
    cancelled and queued again until the last, which cancels it."""
    job, _, _ = await create_job(pool, owner="alice")
    changes = [control.cancel, control.retry] * ((events - 2) // 2) + [control.cancel]
    for change_of in changes:
        async with pool.acquire() as conn, conn.transaction():
            current = await store.fetch_job(conn, job.id, lock=True)
            assert current is not None
            now = datetime.now(UTC)
            change = change_of(current, now)
            assert change is not None
            await store.apply_changes(conn, [(current, change)], now)
    return job.id


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
    job_id = await finished_job(pool, 8)

    pages, read, after = [], [], 0
    while True:
        page = await read_page(pool, job_id, after, ALICE)
        pages.append([e.sequence for e in page.events])
        read += page.events
        after = page.events[-1].sequence if page.events else after
        if not page.full:
            break
    assert pages == [[1, 2, 3], [4, 5, 6], [7, 8]]
    # Each event as the store's own reader has it (its status is the event's, not the job's).
    async with pool.acquire() as conn:
        assert read == await store.fetch_events(conn, job_id, 0)
    assert {e.event.status for e in read} == {JobStatus.QUEUED, JobStatus.CANCELLED}
    assert page.status is JobStatus.CANCELLED
    assert page.finished(8)
    # A client that had seen up to 7 has the end still to come; one past it has not.
    assert not page.finished(7)
    assert (await read_page(pool, job_id, 8, ALICE)).finished(8)


async def test_a_watch_replays_page_after_page_and_ends_with_a_finished_job(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream itself (``NotifierServicer._stream``): it reads on past a full page and
    ends once the job is over and its last event sent, with no live event to wait for."""
    monkeypatch.setattr(servicer, "REPLAY_PAGE", 3)
    job_id = await finished_job(pool, 6)

    hub = EventHub(None, pool, buffer=16, resync_after_s=60)  # type: ignore[arg-type]
    notifier = NotifierServicer(pool, hub, None)  # type: ignore[arg-type]

    async def watch(after: int) -> list[int]:
        watcher = hub.watch(str(job_id))
        watcher.last_sequence = after
        first = await read_page(pool, job_id, after, ALICE)
        stream = notifier._stream(job_id, watcher, ALICE, first)
        return [e.sequence async for e in stream]

    assert await asyncio.wait_for(watch(0), 10) == [1, 2, 3, 4, 5, 6]
    assert await asyncio.wait_for(watch(4), 10) == [5, 6]
    assert await asyncio.wait_for(watch(6), 10) == []
