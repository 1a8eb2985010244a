"""The per-user limits' own writes (rate-limit windows, watch sessions) commit without
waiting for the WAL flush, counted from Postgres's I/O statistics, and only those: the
setting never outlives their transaction on a pooled connection, so any other write after
them on the same connection still waits for its flush."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from jobkit import limits
from jobkit.db import Conn
from jobkit.errors import ResourceExhausted

CALLS = 30


async def wal_fsyncs(conn: Conn) -> int:
    """The WAL fsyncs client backends have made, this one's included (its pending I/O
    statistics flushed first)."""
    await conn.execute("SELECT pg_stat_force_next_flush()")
    await conn.execute("SELECT 1")
    count: int = await conn.fetchval(
        "SELECT coalesce(sum(fsyncs), 0) FROM pg_stat_io"
        " WHERE object = 'wal' AND backend_type = 'client backend'"
    )
    return count


async def test_a_creation_is_counted_without_waiting_for_a_flush(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        before = await wal_fsyncs(conn)
        for _ in range(CALLS):
            await limits.count_creation(conn, "alice", CALLS)
        flushed = await wal_fsyncs(conn) - before
        # Each of them used to wait for one (the count is a statement of its own).
        assert flushed < CALLS // 3
        with pytest.raises(ResourceExhausted, match="at most 30 a minute"):
            await limits.count_creation(conn, "alice", CALLS)
        assert await conn.fetchval("SHOW synchronous_commit") == "on"


async def test_a_write_after_it_on_the_same_connection_waits_for_its_flush(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await limits.count_creation(conn, "alice", 10)
        await limits.close_watch(conn, uuid.uuid4())
        before = await wal_fsyncs(conn)
        for _ in range(3):
            await conn.execute(
                "INSERT INTO watch_sessions (id, owner, expires_at) VALUES ($1, 'bob', now())",
                uuid.uuid4(),
            )
        assert await wal_fsyncs(conn) - before >= 3


async def test_counting_a_creation_inside_a_transaction_is_refused(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="outside any transaction"):
            async with conn.transaction():
                await limits.count_creation(conn, "alice", 10)
        assert await conn.fetchval("SELECT count(*) FROM rate_limit_windows") == 0


async def test_watch_sessions_open_close_and_renew_without_waiting_for_a_flush(
    pool: asyncpg.Pool,
) -> None:
    two = limits.Limits(watches=2)
    async with pool.acquire() as conn:
        before = await wal_fsyncs(conn)
        for _ in range(CALLS // 3):
            sessions = [await limits.open_watch(conn, "alice", two) for _ in range(2)]
            with pytest.raises(ResourceExhausted, match="too many open streams"):
                await limits.open_watch(conn, "alice", two)
            await limits.renew_watches(conn, [s for s in sessions if s is not None], 60.0)
            for session in sessions:
                assert session is not None
                await limits.close_watch(conn, session)
        flushed = await wal_fsyncs(conn) - before
        assert flushed < CALLS // 3  # 40 writes that used to wait for a flush each
        assert await conn.fetchval("SELECT count(*) FROM watch_sessions") == 0
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
