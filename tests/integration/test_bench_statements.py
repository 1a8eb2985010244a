"""The profiled run's view of Postgres (``bench.profile.statement_costs``), against the dev
stack's real Postgres: what it counts, by which name, and only while it runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from bench.profile import name_of, statement_costs
from devstack import PostgresServer
from jobkit.db import create_pool, migrate
from jobkit.sql import queries
from tests.conftest import create_database


async def fetch_events(pool: asyncpg.Pool, times: int) -> None:
    for _ in range(times):
        await pool.fetch(queries.fetch_events, uuid.uuid4(), 0, 10)


async def calls_of(admin: asyncpg.Connection, name: str) -> int:
    rows = await admin.fetch(
        "SELECT query, calls FROM pg_stat_statements"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    return sum(r["calls"] for r in rows if name_of(r["query"]) == name)


@pytest.fixture(scope="module")
def profiled_server(tmp_root: Path) -> Iterator[PostgresServer]:
    """A Postgres as a profiled benchmark's stack starts it."""
    server = PostgresServer(tmp_root / "profiled-postgres", statement_stats=True).start()
    yield server
    server.stop()


async def test_the_services_statements_are_counted_by_name_only_during_the_block(
    profiled_server: PostgresServer,
) -> None:
    assert profiled_server.loads_statement_stats  # the embedded build ships the module
    url = await create_database(profiled_server, "profiled")
    pool = await create_pool(url, min_size=1, max_size=2)
    admin = await asyncpg.connect(url)  # the superuser, as the harness connects
    try:
        await migrate(pool)
        await fetch_events(pool, 3)  # before: not counted
        async with statement_costs(admin) as costs:
            await fetch_events(pool, 5)
            assert costs == []  # filled as the block ends
        (fetched,) = [c for c in costs if c.query == "fetch_events"]
        assert fetched.calls == 5
        assert fetched.ms > 0
        assert fetched.rows == 0  # no such jobs
        # Tracking is off again: what runs after is not counted.
        await fetch_events(pool, 4)
        assert await calls_of(admin, "fetch_events") == 5
    finally:
        await admin.close()
        await pool.close()


async def test_an_ordinary_stack_s_postgres_loads_no_statement_stats(
    postgres_server: PostgresServer, database_url: str
) -> None:
    """What is measured and run otherwise carries none of its hooks; a profile there
    finds nothing and leaves the server as it was."""
    assert not postgres_server.loads_statement_stats
    admin = await asyncpg.connect(database_url)
    try:
        async with statement_costs(admin) as costs:
            await admin.fetchval("SELECT 1")
        assert costs == []
        assert await admin.fetchval("SHOW shared_preload_libraries") == ""
        assert await admin.fetchval("SELECT count(*) FROM pg_extension") == 1  # plpgsql
        altered = "SELECT count(*) FROM pg_file_settings WHERE sourcefile LIKE '%.auto.conf'"
        assert await admin.fetchval(altered) == 0  # no ALTER SYSTEM
    finally:
        await admin.close()


def test_a_statement_not_in_jobkit_sql_is_shown_by_its_first_words() -> None:
    assert name_of(queries.release_ready) == "release_ready"
    # Postgres keeps constants as parameters: still the same statement.
    assert name_of(queries.claim_stale_outbox.replace("'jobs.steps.%'", "$3")) == (
        "claim_stale_outbox"
    )
    assert name_of(queries.defer_taken_offers.replace("taken = true", "taken = $3")) == (
        "defer_taken_offers"
    )
    assert name_of("SELECT  1 -- a check\n FROM jobs WHERE id = $1") == (
        "SELECT 1 FROM jobs WHERE id = $1"
    )
