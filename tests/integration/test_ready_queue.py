"""The fair dispatcher's reads of a deep ready queue: what they return, and that they
reach a few rows a group, not the whole queue (services/orchestrator/dispatcher.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from devstack import PostgresServer
from jobkit.db import KEYED_LOOKUPS, Conn, create_pool, migrate
from jobkit.sql import queries
from tests.conftest import create_database
from tests.integration.test_store import nodes

#: A heavy user's flood, its capped starts under one key with its later steps beside them,
#: another user's few, and work scheduled for later: (owner, key, priority, limit, rows,
#: due).
QUEUE = [
    ("heavy", "", 5, None, 100_000, True),
    ("heavy", "batch", 5, 2, 1500, True),
    ("heavy", "batch", 5, None, 3, True),
    ("heavy", "", 9, None, 2, True),
    ("light", "", 5, None, 2, True),
    ("light", "", 5, None, 5, False),
    ("later", "", 5, None, 4, False),
]


@pytest.fixture(scope="module")
async def keyed_pool(postgres_server: PostgresServer) -> AsyncIterator[asyncpg.Pool]:
    """The queue above, in a database of its own (filled once: the tests leave it as they
    found it), through a pool as the orchestrator opens it (its planner settings)."""
    url = await create_database(postgres_server, "deep_ready_queue")
    pool = await create_pool(url, min_size=1, max_size=2, planner=KEYED_LOOKUPS)
    await migrate(pool)
    async with pool.acquire() as conn:
        for owner, key, priority, limit, rows, due in QUEUE:
            await conn.execute(
                "INSERT INTO ready_steps (job_id, owner, concurrency_key, concurrency_limit,"
                " priority, subject, msg_id, payload, not_before)"
                " SELECT gen_random_uuid(), $1, $2, $3, $4, 'jobs.steps.noop.prepare',"
                " gen_random_uuid()::text, 'p', now() + make_interval(secs => $5)"
                " FROM generate_series(1, $6)",
                owner,
                key,
                limit,
                priority,
                -1 if due else 3600,
                rows,
            )
        await conn.execute("VACUUM ANALYZE ready_steps")
    yield pool
    await pool.close()


@asynccontextmanager
async def rolled_back(pool: asyncpg.Pool) -> AsyncIterator[Conn]:
    """A connection in a transaction that is rolled back: releases leave the queue whole."""
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            yield conn
        finally:
            await transaction.rollback()


def group_counts(rows: list[asyncpg.Record]) -> dict[tuple[str, str, int, bool], int]:
    return {
        (r["owner"], r["concurrency_key"], r["priority"], r["capped"]): r["waiting"] for r in rows
    }


async def test_a_bounded_count_is_the_exact_one_cut_at_its_bound(
    keyed_pool: asyncpg.Pool,
) -> None:
    async with keyed_pool.acquire() as conn:
        exact = await conn.fetch(queries.ready_groups)
        bounded = await conn.fetch(queries.ready_groups_bounded, 5)
    assert group_counts(exact) == {
        ("heavy", "", 5, False): 100_000,
        ("heavy", "batch", 5, True): 1500,
        ("heavy", "batch", 5, False): 3,
        ("heavy", "", 9, False): 2,
        ("light", "", 5, False): 2,
    }
    assert group_counts(bounded) == {
        group: min(count, 5) for group, count in group_counts(exact).items()
    }
    limits = {r["owner"] + r["concurrency_key"]: r["concurrency_limit"] for r in bounded}
    assert limits["heavybatch"] == 2


async def rows_read(conn: Conn, sql: str, *args: object) -> int:
    """The ready_steps rows a statement's plan reached: those its scans returned and
    those they read and filtered out, over every loop."""
    explained = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
    plan = json.loads(explained)[0]["Plan"]
    return sum(
        round((n["Actual Rows"] + n.get("Rows Removed by Filter", 0)) * n["Actual Loops"])
        for n in nodes(plan)
        if n.get("Relation Name") == "ready_steps"
    )


async def test_a_deep_queue_is_counted_a_few_rows_a_group(keyed_pool: asyncpg.Pool) -> None:
    """101,514 waiting in five groups: the bounded count reads their first rows."""
    async with keyed_pool.acquire() as conn:
        assert await rows_read(conn, queries.ready_groups) > 100_000
        assert await rows_read(conn, queries.ready_groups_bounded, 5) < 60


async def test_a_newcomers_release_skips_the_flood_queued_before_it(
    keyed_pool: asyncpg.Pool,
) -> None:
    """Two rows of the flood and the newcomer's two: the release reaches those four. (Its
    delete once joined the picked rows to the whole queue, 100,000 rows read for four.)"""
    groups = (["heavy", "light"], ["", ""], [5, 5], [False, False], [2, 2])
    async with rolled_back(keyed_pool) as conn:
        assert await rows_read(conn, queries.release_ready, *groups) < 20
        left = await conn.fetchval(
            "SELECT count(*) FROM ready_steps WHERE owner = 'light' AND not_before <= now()"
        )
        assert left == 0  # the release ran (EXPLAIN ANALYZE runs it)


async def test_a_release_takes_a_groups_oldest_due_rows(keyed_pool: asyncpg.Pool) -> None:
    async with rolled_back(keyed_pool) as conn:
        oldest = await conn.fetch(
            "SELECT id FROM ready_steps WHERE owner = 'heavy' AND concurrency_key = 'batch'"
            " AND concurrency_limit IS NOT NULL ORDER BY id LIMIT 3"
        )
        rows = await conn.fetch(
            queries.release_ready, ["heavy", "light"], ["batch", ""], [5, 5], [True, False], [3, 9]
        )
        assert [r["id"] for r in rows if r["owner"] == "heavy"] == [r["id"] for r in oldest]
        assert len([r for r in rows if r["owner"] == "light"]) == 2  # not the five not due
