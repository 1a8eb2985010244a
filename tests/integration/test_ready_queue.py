"""The fair dispatcher's reads of a deep or wide ready queue: what they return, and that they
reach a few rows a group, not the whole queue (services/orchestrator/dispatcher.py)."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from prometheus_client import REGISTRY

from devstack import PostgresServer
from jobkit.db import KEYED_LOOKUPS, Conn, create_pool, migrate
from jobkit.sql import queries
from services.job_api.repository import steps_waiting_their_turn
from services.orchestrator.fairness import URGENT
from services.orchestrator.ready_queue import ReadyQueue
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


async def test_a_read_in_turn_of_every_owner_is_the_exact_count_cut_at_its_bound(
    keyed_pool: asyncpg.Pool,
) -> None:
    async with keyed_pool.acquire() as conn:
        exact = await conn.fetch(queries.ready_groups)
        everyone = await conn.fetch(
            queries.ready_groups_in_turn, [False, True], ["", ""], [10, 10], 5
        )
    assert group_counts(exact) == {
        ("heavy", "", 5, False): 100_000,
        ("heavy", "batch", 5, True): 1500,
        ("heavy", "batch", 5, False): 3,
        ("heavy", "", 9, False): 2,
        ("light", "", 5, False): 2,
    }
    # Owners with nothing due are read too (their groups with 0), so a read of N owners
    # is N owners of the lane, whatever their rows' times.
    assert group_counts(everyone) == {
        **{group: min(count, 5) for group, count in group_counts(exact).items()},
        ("later", "", 5, False): 0,
    }
    limits = {r["owner"] + r["concurrency_key"]: r["concurrency_limit"] for r in everyone}
    assert limits["heavybatch"] == 2
    # Each read's groups come in turn order, marked with the read (1-based).
    assert [(r["read"], r["owner"]) for r in everyone] == [
        (1, "heavy"),
        (1, "heavy"),
        (1, "heavy"),
        (1, "later"),
        (1, "light"),
        (2, "heavy"),
    ]


async def test_a_read_in_turn_takes_a_lanes_next_owners_after_the_last_served(
    keyed_pool: asyncpg.Pool,
) -> None:
    async with keyed_pool.acquire() as conn:
        rows = await conn.fetch(
            queries.ready_groups_in_turn,
            [False, False, True, True],
            ["heavy", "", "heavy", ""],
            [1, 1, 1, 1],
            5,
        )
    by_read = {r["read"]: r["owner"] for r in rows}
    # After heavy in the normal lane: later (its one group, nothing due), and from the
    # first: heavy; the urgent lane has nobody after heavy, and heavy from the first.
    assert by_read == {1: "later", 2: "heavy", 4: "heavy"}
    assert [r["waiting"] for r in rows if r["read"] == 4] == [2]


async def rows_read(conn: Conn, sql: str, *args: object) -> int:
    """The ready_steps rows a statement's plan reached: those its scans returned and
    those they read and filtered out, over every loop."""
    return (await reached(conn, sql, *args))[0]


async def pages_read(conn: Conn, sql: str, *args: object) -> int:
    """The pages of ready_steps and its indexes a statement's scans of it touched: also
    what an index scan passes over without returning (its index conditions)."""
    return (await reached(conn, sql, *args))[1]


async def reached(conn: Conn, sql: str, *args: object) -> tuple[int, int]:
    explained = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
    scans = [
        n
        for n in nodes(json.loads(explained)[0]["Plan"])
        if n.get("Relation Name") == "ready_steps"
    ]
    rows = sum(
        round((n["Actual Rows"] + n.get("Rows Removed by Filter", 0)) * n["Actual Loops"])
        for n in scans
    )
    pages = sum(n["Shared Hit Blocks"] + n["Shared Read Blocks"] for n in scans)
    return rows, pages


async def test_a_deep_queue_is_read_in_turn_a_few_rows_a_group(keyed_pool: asyncpg.Pool) -> None:
    """101,514 waiting in seven groups: a read in turn reaches their first rows."""
    async with keyed_pool.acquire() as conn:
        assert await rows_read(conn, queries.ready_groups) > 100_000
        for after in ("", "heavy", "light"):
            args = ([False, False, True, True], [after, "", after, ""], [10] * 4, 5)
            assert await rows_read(conn, queries.ready_groups_in_turn, *args) < 100
            # And the index pages passed over to find them: a handful a group.
            assert await pages_read(conn, queries.ready_groups_in_turn, *args) < 250, after


async def test_a_newcomers_release_skips_the_flood_queued_before_it(
    keyed_pool: asyncpg.Pool,
) -> None:
    """Two rows of the flood and the newcomer's two: the release reaches those four. (Its
    delete once joined the picked rows to the whole queue, 100,000 rows read for four.)"""
    groups = (["heavy", "light"], ["", ""], [5, 5], [False, False], [2, 2], 0, 0.0)
    async with rolled_back(keyed_pool) as conn:
        assert await rows_read(conn, queries.release_ready, *groups) < 20
        assert await pages_read(conn, queries.release_ready, *groups) < 60
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
            queries.release_ready,
            ["heavy", "light"],
            ["batch", ""],
            [5, 5],
            [True, False],
            [3, 9],
            0,
            0.0,
        )
        assert [r["id"] for r in rows if r["owner"] == "heavy"] == [r["id"] for r in oldest]
        assert len([r for r in rows if r["owner"] == "light"]) == 2  # not the five not due


#: A wide queue: 10,000 owners of one attempt each, and a few whose names sort
#: differently by locale than by code point.
WIDE = [f"user-{i:05d}" for i in range(1, 10_001)] + ["Zed", "amy", "émile", "Ωmega"]


@pytest.fixture(scope="module")
async def wide_pool(postgres_server: PostgresServer) -> AsyncIterator[asyncpg.Pool]:
    url = await create_database(postgres_server, "wide_ready_queue")
    pool = await create_pool(url, min_size=1, max_size=2, planner=KEYED_LOOKUPS)
    await migrate(pool)
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO ready_steps (job_id, owner, priority, subject, msg_id, payload,"
            " not_before)"
            " SELECT gen_random_uuid(), o, 5, 'jobs.steps.noop.prepare',"
            " gen_random_uuid()::text, 'p', now() - interval '1 second'"
            " FROM unnest($1::text[]) AS o",
            WIDE,
        )
        await conn.execute("VACUUM ANALYZE ready_steps")
    yield pool
    await pool.close()


async def test_owners_take_turns_in_the_order_python_sorts_them(wide_pool: asyncpg.Pool) -> None:
    """The policy's turns go round owners in Python's order (code points); the reads
    must walk them in the same order, or a view would skip or repeat owners."""
    async with wide_pool.acquire() as conn:
        rows = await conn.fetch(queries.ready_groups_in_turn, [False], [""], [len(WIDE)], 1)
        after_amy = await conn.fetch(queries.ready_groups_in_turn, [False], ["amy"], [3], 1)
        at_the_end = await conn.fetch(queries.ready_groups_in_turn, [False], ["user-10000"], [5], 1)
    assert [r["owner"] for r in rows] == sorted(WIDE)
    assert [r["owner"] for r in after_amy] == ["user-00001", "user-00002", "user-00003"]
    assert [r["owner"] for r in at_the_end] == ["émile", "Ωmega"]


async def test_a_wide_queue_is_read_in_turn_a_few_rows_an_owner(wide_pool: asyncpg.Pool) -> None:
    """10,004 owners of one attempt: counting them reads every row; a round's read of
    the next ten owners in each lane, after the last served and from the first, reaches
    a few rows an owner."""
    args = ([False, False, True, True], ["user-05000", "", "user-05000", ""], [10] * 4, 11)
    async with wide_pool.acquire() as conn:
        assert await rows_read(conn, queries.ready_groups) >= len(WIDE)
        assert await rows_read(conn, queries.ready_groups_in_turn, *args) < 100
        assert await pages_read(conn, queries.ready_groups_in_turn, *args) < 200


@pytest.fixture
async def mixed_pool(postgres_server: PostgresServer) -> AsyncIterator[asyncpg.Pool]:
    """400 owners of a few attempts each: keys, priorities (9 among them), capped starts,
    and owners whose work is not due yet, runs of them side by side."""
    url = await create_database(postgres_server, "mixed_ready_queue")
    pool = await create_pool(url, min_size=1, max_size=2, planner=KEYED_LOOKUPS)
    await migrate(pool)
    rng = random.Random(15)
    rows = []
    for i in range(400):
        owner = rng.choice(["user", "User", "émile", "zoë", "Ωmega"]) + f"-{i:03d}"
        later = (i // 20) % 4 == 1  # twenty owners in a row, every eighty, wait for later
        for _ in range(rng.randint(1, 5)):
            capped = rng.random() < 0.2
            rows.append(
                (
                    owner,
                    rng.choice(["", "", "k1", "k2"]),
                    rng.choice([1, 2]) if capped else None,
                    rng.choice([5, 5, 5, 7, URGENT]),
                    3600 if later else -1,
                )
            )
    async with pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO ready_steps (job_id, owner, concurrency_key, concurrency_limit,"
            " priority, subject, msg_id, payload, not_before)"
            " VALUES (gen_random_uuid(), $1, $2, $3, $4, 'jobs.steps.noop.prepare',"
            " gen_random_uuid()::text, 'p', now() + make_interval(secs => $5))",
            rows,
        )
        await conn.execute("VACUUM ANALYZE ready_steps")
    yield pool
    await pool.close()


def in_turn_reads() -> float:
    return REGISTRY.get_sample_value("jobs_dispatch_queue_reads_total", {"read": "in_turn"}) or 0


async def test_rounds_read_in_turn_release_what_exact_counts_would(
    mixed_pool: asyncpg.Pool,
) -> None:
    """Round after round, each releasing what it picked, a dispatcher reading the owners
    next in turn releases the same attempts as one counting the whole queue, reading
    further when the owners it read could not take every release."""
    in_turn, exact = ReadyQueue(), ReadyQueue()
    rng = random.Random(4)
    decided_in_turn = 0
    reads_before = in_turn_reads()
    async with rolled_back(mixed_pool) as conn:
        for _ in range(60):
            room = rng.randint(0, 12)
            a = await in_turn.decide_in_turn(conn, room)
            decided_in_turn += a is not None
            if a is None:
                a = await in_turn.decide_exactly(conn, room)
            b = await exact.decide_exactly(conn, room)
            assert a.picks == b.picks
            assert in_turn.turns.last_owner == exact.turns.last_owner
            if b.picks:
                taken = await exact.take(conn, b.picks)
                assert len(taken) == sum(b.picks.values())
        left = await conn.fetchval("SELECT count(*) FROM ready_steps WHERE not_before <= now()")
    assert decided_in_turn >= 50
    # Some rounds found too few owners able to go among those first read, and read on.
    assert in_turn_reads() - reads_before > decided_in_turn
    assert left > 0  # the rounds never ran out of work to choose from


async def test_whether_a_user_has_steps_waiting_their_turn(keyed_pool: asyncpg.Pool) -> None:
    """job_api's question before sending a newcomer by the express lane: due or not,
    urgent or not, a step of theirs in the ready queue means their turn has not come."""
    async with keyed_pool.acquire() as conn:
        for owner, waits in (("heavy", True), ("light", True), ("later", True), ("new", False)):
            assert await steps_waiting_their_turn(conn, owner) is waits, owner
        args = (queries.steps_waiting_their_turn, "heavy")
        assert await pages_read(conn, *args) < 10
