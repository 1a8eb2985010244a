"""The profiled run's view of Postgres (``bench.profile.statement_costs``), against the dev
stack's real Postgres: what it counts, by which name, and only while it runs."""

from __future__ import annotations

import uuid

import asyncpg

from bench.profile import name_of, statement_costs
from devstack import PostgresServer
from jobkit.sql import queries


async def fetch_events(pool: asyncpg.Pool, times: int) -> None:
    for _ in range(times):
        await pool.fetch(queries.fetch_events, uuid.uuid4(), 0, 10)


async def calls_of(admin: asyncpg.Connection, name: str) -> int:
    rows = await admin.fetch(
        "SELECT query, calls FROM pg_stat_statements"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    return sum(r["calls"] for r in rows if name_of(r["query"]) == name)


async def test_the_services_statements_are_counted_by_name_only_during_the_block(
    postgres_server: PostgresServer, pool: asyncpg.Pool, database_url: str
) -> None:
    assert postgres_server.statement_stats  # the embedded build ships the module
    admin = await asyncpg.connect(database_url)  # the superuser, as the harness connects
    try:
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
