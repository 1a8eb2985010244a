"""The schema and the shared job queries, against a real Postgres."""

from __future__ import annotations

import asyncio
import json
import re
import typing
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import pytest

from jobkit import control, snapshots, store
from jobkit.db import KEYED_LOOKUPS, Conn, create_pool, migrate, migration_files
from jobkit.inputs import InputRequest
from jobkit.lifecycle import EventType, JobStatus, StepStatus
from jobkit.model import JobChange, JobRecord, NewEvent, NewJob, OutboxMessage, StepUsage
from jobkit.sql import queries
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
        "parent_job_id",
        "priority",
        "not_before",
        "deadline_at",
        "concurrency_key",
        "concurrency_limit",
        "webhook_url",
        "type_version",
        "forked_from_job_id",
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
        "cursor",
        "percent",
        "input_request",
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
        "input_request",
    },
    "outbox": {
        "id",
        "subject",
        "msg_id",
        "payload",
        "not_before",
        "created_at",
        "trace_context",
        "taken",
    },
    "ready_steps": {
        "id",
        "job_id",
        "owner",
        "concurrency_key",
        "concurrency_limit",
        "priority",
        "subject",
        "msg_id",
        "payload",
        "trace_context",
        "not_before",
        "enqueued_at",
    },
    "webhook_deliveries": {
        "webhook_id",
        "job_id",
        "sequence",
        "type",
        "state",
        "attempts",
        "last_status",
        "last_error",
        "created_at",
        "last_attempt_at",
        "next_attempt_at",
        "finished_at",
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


#: The statements job_api and the orchestrator run on every job, each on a few rows by key.
KEYED_STATEMENTS = (
    "write_changes",
    "fetch_jobs",
    "lock_jobs",
    "release_ready",
    "running_under_keys",
    "delete_published_outbox",
    "find_by_idempotency_key",
)
#: The indexes those statements may reach a table through: its keys.
KEY_INDEXES = {
    "jobs_pkey",
    "jobs_owner_idempotency_key",
    "jobs_concurrency_key_live_v2",
    "job_steps_pkey",
    "job_steps_job_id_name_key",
    "ready_steps_pkey",
    "ready_steps_turns",
    "ready_steps_job",
    "outbox_pkey",
}


async def generic_plan(conn: Conn, name: str) -> dict[str, Any]:
    """The plan Postgres keeps for a prepared statement from its sixth run on (its tree:
    ``Node Type``, ``Relation Name``, ``Index Name``, children under ``Plans``)."""
    sql = getattr(queries, name)
    parameters = max((int(n) for n in re.findall(r"\$(\d+)", sql)), default=0)
    await conn.execute(f"PREPARE {name} AS {sql}")
    await conn.execute("SET plan_cache_mode = force_generic_plan")
    arguments = f"({', '.join(['NULL'] * parameters)})" if parameters else ""
    explained = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE {name}{arguments}")
    plan: dict[str, Any] = json.loads(explained)[0]["Plan"]
    return plan


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a plan, the root first."""
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


def loops_without_a_lookup(plan: dict[str, Any]) -> list[str]:
    """The nested loops of a plan whose inner side reaches no index: one that compares
    every row of a batch with every row of another (quadratic in the batch's size)."""
    return [
        node["Node Type"]
        for node in nodes(plan)
        if node["Node Type"] == "Nested Loop"
        and not any("Index Name" in n for n in nodes(node["Plans"][1]))
    ]


async def test_keyed_statements_reach_tables_through_their_keys_at_any_size(
    database_url: str,
) -> None:
    """A plan made while the tables are small is kept as they grow (until an ANALYZE):
    with the services' planner settings every table is reached through a key, and a
    batch's rows are matched to each other without comparing every pair; with the
    defaults, the batch write hashes the whole jobs table, and goes on doing so at any
    size."""
    default = await create_pool(database_url, min_size=1, max_size=1)
    keyed = await create_pool(database_url, min_size=1, max_size=1, planner=KEYED_LOOKUPS)
    try:
        await migrate(keyed)
        async with default.acquire() as conn:
            assert any(
                n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "jobs"
                for n in nodes(await generic_plan(conn, "write_changes"))
            )
        async with keyed.acquire() as conn:
            for name in KEYED_STATEMENTS:
                plan = await generic_plan(conn, name)
                assert not [n for n in nodes(plan) if n["Node Type"] == "Seq Scan"], (name, plan)
                indexes = {n["Index Name"] for n in nodes(plan) if "Index Name" in n}
                assert indexes <= KEY_INDEXES, (name, plan)
                assert not loops_without_a_lookup(plan), (name, plan)
    finally:
        await default.close()
        await keyed.close()


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


#: The Postgres types a row type's field may have, by the field's Python type.
_PG_TYPES: dict[object, set[str]] = {
    uuid.UUID: {"uuid"},
    str: {"text", "jsonb"},  # jsonb: JSON text, as asyncpg sends and reads it
    int: {"smallint", "integer", "bigint"},
    float: {"double precision"},
    bytes: {"bytea"},
    datetime: {"timestamp with time zone"},
}


async def test_every_row_type_has_the_fields_of_its_namedtuple(pool: asyncpg.Pool) -> None:
    """The Python twin of each composite row type has the same fields, in the same order,
    of matching types: asyncpg encodes a NamedTuple by position, so a drift would write
    values into the wrong columns."""
    rows = await pool.fetch(
        """SELECT t.typname, a.attname, format_type(a.atttypid, a.atttypmod) AS type
           FROM pg_type AS t
           JOIN pg_namespace AS n ON n.oid = t.typnamespace
           JOIN pg_class AS c ON c.oid = t.typrelid
           JOIN pg_attribute AS a ON a.attrelid = c.oid
           WHERE n.nspname = 'public' AND c.relkind = 'c'
             AND a.attnum > 0 AND NOT a.attisdropped
           ORDER BY t.typname, a.attnum"""
    )
    in_postgres: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        in_postgres.setdefault(row["typname"], []).append((row["attname"], row["type"]))
    # Every composite type has a twin, and every twin a type.
    assert sorted(in_postgres) == sorted([*store.ROW_TYPES, *store.RETIRED_ROW_TYPES])
    for name, twin in store.ROW_TYPES.items():
        hints = typing.get_type_hints(twin)
        assert [f for f, _ in in_postgres[name]] == list(hints), name
        for field, pg_type in in_postgres[name]:
            python_type = hints[field]
            (python_type,) = [
                t for t in typing.get_args(python_type) or (python_type,) if t is not type(None)
            ]
            assert pg_type in _PG_TYPES[python_type], f"{name}.{field}: {pg_type}"


class _Recording:
    """A connection that remembers the arguments of every ``fetchrow``."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def fetchrow(self, query: str, *args: Any) -> Any:
        self.calls.append((query, args))
        return await self._conn.fetchrow(query, *args)


#: The table each row type is written to (its fields are that table's columns).
_TABLES = {
    "new_job_row_v5": "jobs",
    "new_step_row_v2": "job_steps",
    "job_update_row": "jobs",
    "step_update_row_v3": "job_steps",
    "event_row_v2": "job_events",
    "usage_row": "model_usage",
    "outbox_row": "outbox",
    "ready_row": "ready_steps",
    "webhook_row": "webhook_deliveries",
}


def every_field_set(job: JobRecord, now: datetime) -> JobRecord:
    """A new job like ``job`` with every optional column set, its first step a fork's
    reused one (SUCCEEDED, with its output and when)."""
    fresh_id = uuid.uuid4()
    return replace(
        job,
        id=fresh_id,
        steps=tuple(
            replace(s, job_id=fresh_id)
            if s.position
            else replace(
                s,
                job_id=fresh_id,
                status=StepStatus.SUCCEEDED,
                output=b"reused output",
                finished_at=now,
            )
            for s in job.steps
        ),
        parent_id=job.id,
        forked_from_id=job.id,
        type_version=3,
        priority=8,
        not_before=now,
        deadline_at=now + timedelta(hours=1),
        concurrency_key="tenant-1",
        concurrency_limit=3,
        webhook_url="https://hooks.test/b?c=d",
    )


async def test_every_field_of_a_batch_lands_in_its_column(pool: asyncpg.Pool) -> None:
    """One batch of each kind - creating a job, then a decision that touches every table -
    and every row of every array parameter is found in its table, field by field."""
    job, _, _ = await create_job(pool, "cv_tailoring", webhook_url="https://hooks.test/a")
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        recording = _Recording(conn)
        fresh = every_field_set(job, now)
        # A capped job's start waits for the dispatcher: a ready row, not an outbox row.
        start = OutboxMessage(
            "jobs.steps.cv_tailoring.load", "id-0", b"zero", now, "tp0", starts_job=True
        )
        await store.create_jobs(
            cast(Conn, recording),
            [
                NewJob(
                    fresh,
                    JobChange(
                        job=fresh,
                        events=(NewEvent(EventType.CREATED, JobStatus.QUEUED, 0),),
                        outbox=(start,),
                    ),
                    "idem-1",
                    b"hash",
                )
            ],
            now,
        )
        before = await store.fetch_job(conn, job.id)
        assert before is not None
        step = before.steps[0]
        change = JobChange(
            job=replace(
                before,
                status=JobStatus.FAILED,
                progress=42,
                phase="a phase",
                result=b"a result",
                error_code="JOB_CODE",
                error_message="a job message",
                finished_at=now + timedelta(seconds=1),
            ),
            steps=(
                replace(
                    step,
                    status=StepStatus.FAILED,
                    attempt=3,
                    retry_base=1,
                    output=b"an output",
                    error_code="STEP_CODE",
                    error_message="a step message",
                    lease_expires_at=now + timedelta(seconds=2),
                    started_at=now + timedelta(seconds=3),
                    finished_at=now + timedelta(seconds=4),
                    cursor=b"a cursor",
                    percent=37,
                    input_request=InputRequest("a prompt", {"type": "object"}, {"a": "draft"}),
                ),
            ),
            events=(
                NewEvent(
                    EventType.PROGRESS, JobStatus.RUNNING, 41, "p", step.name, 3, "m", 0, "partial"
                ),
                NewEvent(
                    EventType.INPUT_REQUIRED,
                    JobStatus.WAITING_INPUT,
                    41,
                    step=step.name,
                    input_request=InputRequest("asked", {"type": "object"}, expires_at=now),
                ),
                NewEvent(EventType.FAILED, JobStatus.FAILED, 42, "q", step.name, 3, "n", 250),
            ),
            outbox=(
                OutboxMessage("a.subject", "id-1", b"one", now + timedelta(seconds=5), "tp"),
                OutboxMessage("b.subject", "id-2", b"two"),
            ),
            usage=(StepUsage(step.name, 3, "model-x", 11, 7, 0.5, ("a@1", "b@2")),),
        )
        _, written = await store.apply_changes(cast(Conn, recording), [(before, change)], now)
    # The job's webhook gets its INPUT_REQUIRED and FAILED events (sequences 3 and 4: after
    # CREATED and PROGRESS), in the same commit, after the decision's own messages.
    assert [m.msg_id for _, m in written] == [
        "id-1",
        "id-2",
        f"webhook:{job.id}:3",
        f"webhook:{job.id}:4",
    ]

    casts = dict(re.findall(r"\$(\d+)::(\w+_row(?:_v\d+)?)\[\]", queries.write_changes))
    checked: set[str] = set()
    for query, args in recording.calls:
        assert query == queries.write_changes
        # Every row-typed parameter, then the attempts claimed (no table of their own).
        assert len(args) == len(casts) + 2
        for position, rows in enumerate(args[: len(casts)], start=1):
            row_type = casts[str(position)]
            fields = typing.get_type_hints(store.ROW_TYPES[row_type])
            for row in rows:
                assert isinstance(row, store.ROW_TYPES[row_type])
                found = await pool.fetchval(
                    f"""SELECT count(*) FROM {_TABLES[row_type]} AS t,
                                            (SELECT ($1::{row_type}).*) AS r
                        WHERE ({", ".join(f"t.{f}" for f in fields)})
                              IS NOT DISTINCT FROM ({", ".join(f"r.{f}" for f in fields)})""",
                    row,
                )
                assert found == 1, (row_type, row)
                checked.add(row_type)
    assert checked == set(store.ROW_TYPES)  # the batches touched every table


async def test_a_decision_on_a_deleted_job_writes_nothing(pool: asyncpg.Pool) -> None:
    job, _, _ = await create_job(pool)
    async with pool.acquire() as conn:
        stale = await store.fetch_job(conn, job.id)
        assert stale is not None
        await conn.execute("DELETE FROM jobs WHERE id = $1", job.id)
        now = datetime.now(UTC)
        change = control.cancel(stale, now)
        assert change is not None
        outbox_before = await conn.fetchval("SELECT count(*) FROM outbox")
        with pytest.raises(store.StaleRead):
            await store.apply_changes(conn, [(stale, change)], now)
        assert await conn.fetchval("SELECT count(*) FROM outbox") == outbox_before


async def test_a_taken_idempotency_key_writes_nothing(pool: asyncpg.Pool) -> None:
    job, _, _ = await create_job(pool)
    now = datetime.now(UTC)

    def new_job() -> NewJob:
        job_id = uuid.uuid4()
        created = replace(job, id=job_id, steps=tuple(replace(s, job_id=job_id) for s in job.steps))
        event = NewEvent(EventType.CREATED, JobStatus.QUEUED, 0)
        return NewJob(created, JobChange(job=created, events=(event,)), "key", b"h")

    async with pool.acquire() as conn:
        await store.create_jobs(conn, [new_job()], now)
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM jobs) AS jobs, (SELECT count(*) FROM job_steps) AS"
            " steps, (SELECT count(*) FROM job_events) AS events"
        )
        with pytest.raises(asyncpg.UniqueViolationError):
            await store.create_jobs(conn, [new_job()], now)
        assert (
            await conn.fetchrow(
                "SELECT (SELECT count(*) FROM jobs) AS jobs, (SELECT count(*) FROM job_steps) AS"
                " steps, (SELECT count(*) FROM job_events) AS events"
            )
            == counts
        )


async def test_a_locking_read_that_waited_sees_the_steps_of_the_write_it_waited_for(
    pool: asyncpg.Pool,
) -> None:
    """A writer holds the job's row while it changes a step; a locking read waits for it.
    The read must return the job and its steps as that writer left them, together: a job
    row of the new version beside steps of the old would let a decision made from it
    write the old steps back under the new version (a committed checkpoint undone)."""
    job, _, _ = await create_job(pool)
    async with pool.acquire() as writer, pool.acquire() as reader:
        now = datetime.now(UTC)
        before = await store.fetch_job(writer, job.id)
        assert before is not None
        done = replace(before.steps[0], status=StepStatus.SUCCEEDED, attempt=1, output=b"x")
        change = JobChange(
            job=replace(before, status=JobStatus.RUNNING, steps=(done, *before.steps[1:])),
            steps=(done,),
        )
        write = writer.transaction()
        await write.start()
        await store.apply_changes(writer, [(before, change)], now)
        async with reader.transaction():
            read = asyncio.create_task(store.fetch_job(reader, job.id, lock=True))
            await asyncio.sleep(0.3)
            assert not read.done()  # waiting for the writer's row lock
            await write.commit()
            seen = await read
        assert seen is not None
        assert seen.version == before.version + 1
        assert seen.steps[0].status is StepStatus.SUCCEEDED


async def test_only_a_capped_start_waits_for_a_turn_under_the_cap(pool: asyncpg.Pool) -> None:
    """While the dispatcher holds, every step attempt waits in the ready queue; only a
    capped job's start is counted against its cap there (a later step of a running job
    must leave the job counted as running)."""
    job, _, _ = await create_job(pool)
    async with pool.acquire() as conn:
        before = await store.fetch_job(conn, job.id)
        assert before is not None
        capped = replace(before, concurrency_key="k", concurrency_limit=1)
        await conn.execute(
            "UPDATE jobs SET concurrency_key = 'k', concurrency_limit = 1 WHERE id = $1", job.id
        )
        now = datetime.now(UTC)
        start = OutboxMessage("jobs.steps.noop.prepare", f"{job.id}:s", b"s", starts_job=True)
        later = OutboxMessage("jobs.steps.noop.work", f"{job.id}:w", b"w")
        change = JobChange(job=capped, outbox=(start, later))
        await store.apply_changes(conn, [(capped, change)], now, hold_steps=True)
        rows = await conn.fetch(
            "SELECT msg_id, concurrency_limit FROM ready_steps WHERE job_id = $1 ORDER BY id",
            job.id,
        )
    assert [(r["msg_id"], r["concurrency_limit"]) for r in rows] == [
        (f"{job.id}:s", 1),
        (f"{job.id}:w", None),
    ]


@pytest.mark.parametrize("capped", [False, True])
async def test_a_release_waits_for_the_wal_flush_only_when_a_cap_counts_it(
    pool: asyncpg.Pool, capped: bool
) -> None:
    """A release lost in a server crash is released again and dropped as a repeat, so it
    need not wait for the flush; a capped start's must, since its cap counts it."""
    job, _, _ = await create_job(pool)
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO ready_steps (job_id, owner, concurrency_key, concurrency_limit,"
            " priority, subject, msg_id, payload, not_before)"
            " VALUES ($1, 'alice', '', $2, 5, 'jobs.steps.noop.prepare', $3, 'p', now())",
            job.id,
            1 if capped else None,
            f"{job.id}:r",
        )
        async with conn.transaction():
            assert await conn.fetchval("SHOW synchronous_commit") == "on"
            rows = await conn.fetch(
                queries.release_ready, ["alice"], [""], [5], [capped], [1], 0, 0.0
            )
            assert [r["msg_id"] for r in rows] == [f"{job.id}:r"]
            mode = await conn.fetchval("SHOW synchronous_commit")
        assert mode == ("on" if capped else "off")
        # Only that transaction: the connection goes back to the pool as it was.
        assert await conn.fetchval("SHOW synchronous_commit") == "on"


async def test_a_new_job_as_created_is_what_a_read_returns(pool: asyncpg.Pool) -> None:
    """What job_api sends the orchestrators after CreateJob (``store.as_created``, through
    ``jobkit.snapshots``) is the job exactly as Postgres holds it: every field a read
    returns, for a job with every optional field set and a fork's reused step."""
    job, _, _ = await create_job(pool, "cv_tailoring")
    now = datetime.now(UTC)
    fresh = replace(
        every_field_set(job, now),
        progress=20,
        phase="Queued",
        trace_context="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    events = (
        NewEvent(EventType.CREATED, JobStatus.QUEUED, 0),
        NewEvent(EventType.STEP_SUCCEEDED, JobStatus.QUEUED, 20, step=fresh.steps[0].name),
    )
    new = NewJob(fresh, JobChange(job=fresh, events=events), "key-1", b"hash")
    async with pool.acquire() as conn:
        await store.create_jobs(conn, [new], now)
        read = await store.fetch_job(conn, fresh.id)
    created = store.as_created(new, now)
    assert read == created
    assert snapshots.decode(snapshots.encode(created)) == read
    assert (created.version, created.last_sequence) == (1, 2)
