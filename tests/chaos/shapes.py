"""Chaos for the long shapes of work: a bulk import with its worker killed mid-way, and
artifacts written while the object store dies. Then the books are checked, against
Postgres and a listing of the bucket.

    python -m tests.chaos.shapes [--rows 10000] [--scenario NAME ...]   (make chaos)

An import must create exactly one job per row: ``lost`` rows have no job, ``dup`` rows
have more than one. Every job must finish. ``orphans`` are objects under ``owners/`` that
no job's result and no upload names: nothing may be left there. A write that died leaves
at most a ``partial/`` object, which the bucket's lifecycle rule expires (counted, not a
failure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from devstack import Stack
from devstack.seed import seed_history
from jobctl.client import JobsClient
from jobkit.artifacts import PARTIAL_PREFIX, ObjectStoreSettings, job_prefix, upload_prefix
from jobkit.convert import struct_from_bytes, struct_to_dict
from jobkit.gen.jobs.v1 import jobs_pb2
from jobtypes.bulk_import.steps import lines_of
from tests.chaos.harness import CHAOS_ENV, _connect_retrying


@dataclass
class ShapeOutcome:
    scenario: str
    #: Rows (an import) or jobs (artifacts) the scenario asked for.
    expected: int = 0
    created: int = 0
    lost: int = 0
    duplicated: int = 0
    unfinished: int = 0
    failed: int = 0
    #: Attempts past each step's first: how much the fault disturbed.
    retried: int = 0
    orphans: int = 0
    partials: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.expected > 0
            and self.created == self.expected
            and self.lost == self.duplicated == self.unfinished == self.failed == 0
            and self.orphans == 0
        )


Scenario = Callable[[Stack, JobsClient, asyncpg.Connection, int], Awaitable[ShapeOutcome]]


async def _pieces(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 256 * 1024):
        yield data[start : start + 256 * 1024]


async def _settle(pg: asyncpg.Connection, query: str, *args: object, deadline: float) -> int:
    """Wait until ``query`` (a count of what is not finished) is 0, or the deadline."""
    while True:
        left = int(await pg.fetchval(query, *args))
        if left == 0 or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.5)


async def _kill_worker_when(
    client: JobsClient, stack: Stack, job_id: str, seen: Callable[[jobs_pb2.JobEvent], bool]
) -> None:
    """SIGKILL the worker as soon as one of the job's events is ``seen`` (frozen first, so
    it stops where the event found it), and start a new one a second later."""
    worker = stack.services["ai_worker"]
    async for event in client.watch(job_id, max_reconnects=50):
        if seen(event):
            worker.signal(signal.SIGSTOP)
            break
    worker.kill()
    await asyncio.sleep(1.0)
    stack.start_service("ai_worker")


async def worker_killed_mid_import(
    stack: Stack, client: JobsClient, pg: asyncpg.Connection, rows: int
) -> ShapeOutcome:
    outcome = ShapeOutcome("kill -9 worker mid-import", expected=rows)
    data = b"".join(json.dumps({"write": f"row-{n}"}).encode() + b"\n" for n in range(rows))
    upload = await client.upload(_pieces(data), "application/x-ndjson")
    job = await client.create_job(
        "bulk_import", {"upload_id": upload.upload_id, "job_type": "noop"}
    )
    # Twice: at the first committed batch, and again half-way through the rows.
    await _kill_worker_when(client, stack, job.job_id, lambda e: e.phase.startswith("Imported"))
    await _kill_worker_when(client, stack, job.job_id, lambda e: e.progress >= 50)
    parent = uuid.UUID(job.job_id)
    deadline = time.monotonic() + 60 + rows / 20
    finished = "status IN ('SUCCEEDED', 'FAILED', 'CANCELLED')"
    await _settle(
        pg, f"SELECT count(*) FROM jobs WHERE id = $1 AND NOT {finished}", parent, deadline=deadline
    )
    row = await pg.fetchrow(
        "SELECT count(*) AS jobs, count(DISTINCT input) AS rows FROM jobs WHERE parent_job_id = $1",
        parent,
    )
    assert row is not None
    outcome.created = int(row["rows"])
    outcome.duplicated = int(row["jobs"]) - int(row["rows"])
    outcome.lost = rows - int(row["rows"])
    outcome.unfinished = await _settle(
        pg,
        f"SELECT count(*) FROM jobs WHERE (id = $1 OR parent_job_id = $1) AND NOT {finished}",
        parent,
        deadline=deadline,
    )
    outcome.failed = int(
        await pg.fetchval(
            "SELECT count(*) FROM jobs WHERE (id = $1 OR parent_job_id = $1) "
            "AND status <> 'SUCCEEDED'",
            parent,
        )
    )
    outcome.retried = await _retried(pg, [parent])
    return outcome


async def _retried(pg: asyncpg.Connection, job_ids: list[uuid.UUID]) -> int:
    return int(
        await pg.fetchval(
            "SELECT coalesce(sum(attempt - 1), 0) FROM job_steps "
            "WHERE job_id = ANY($1::uuid[]) AND attempt > 1",
            job_ids,
        )
    )


async def worker_killed_mid_export(
    stack: Stack, client: JobsClient, pg: asyncpg.Connection, rows: int
) -> ShapeOutcome:
    """An export of ``rows`` jobs (a history written straight into Postgres) whose worker
    is killed when the first jobs are out: the next attempt starts over, and the one
    artifact holds every job once."""
    outcome = ShapeOutcome("kill -9 worker mid-export", expected=rows)
    owner = "chaos-exporter"
    await seed_history(pg, owner, rows)
    async with JobsClient(
        stack.job_api_addr, stack.notifier_addr, stack.token(owner), timeout_s=30
    ) as exporter:
        job = await exporter.create_job("data_export", {})
        await _kill_worker_when(
            exporter, stack, job.job_id, lambda e: e.phase.startswith("Exported") and e.progress > 0
        )
        events = [e async for e in exporter.watch(job.job_id, max_reconnects=50)]
        if events[-1].type != jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED:
            outcome.failed = 1
            return outcome
        ids: list[str] = []
        _, pieces = await exporter.download(job.job_id, "export.jsonl")
        async for _, line in lines_of(pieces):
            ids.append(json.loads(line)["job"]["jobId"])
    outcome.created = len(set(ids))
    outcome.duplicated = len(ids) - len(set(ids))
    outcome.lost = rows - len(set(ids))
    outcome.retried = await _retried(pg, [uuid.UUID(job.job_id)])
    return outcome


async def object_store_killed_mid_write(
    stack: Stack, client: JobsClient, pg: asyncpg.Connection, jobs: int
) -> ShapeOutcome:
    count = max(4, jobs // 100)
    outcome = ShapeOutcome("kill -9 object store", expected=count)
    created = [
        await client.create_job("noop", {"sleep_ms": 100, "artifact_bytes": 8 * 1024 * 1024})
        for _ in range(count)
    ]
    store = stack.object_store
    assert store is not None
    await asyncio.sleep(1.0)  # the first writes are under way
    store.kill()
    await asyncio.sleep(2.0)
    await asyncio.to_thread(store.start)
    ids = [uuid.UUID(j.job_id) for j in created]
    outcome.unfinished = await _settle(
        pg,
        "SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[]) "
        "AND status NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED')",
        ids,
        deadline=time.monotonic() + 180,
    )
    outcome.created = int(
        await pg.fetchval("SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[])", ids)
    )
    outcome.failed = int(
        await pg.fetchval(
            "SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[]) AND status <> 'SUCCEEDED'", ids
        )
    )
    outcome.retried = await _retried(pg, ids)
    return outcome


SCENARIOS: dict[str, Scenario] = {
    "kill -9 worker mid-import": worker_killed_mid_import,
    "kill -9 worker mid-export": worker_killed_mid_export,
    "kill -9 object store": object_store_killed_mid_write,
}


async def count_orphans(stack: Stack, pg: asyncpg.Connection) -> tuple[int, int]:
    """Objects under ``owners/`` that no job's result and no upload names, and objects
    under ``partial/``."""
    assert stack.object_store is not None
    settings = ObjectStoreSettings.from_env(stack.object_store.env())
    assert settings is not None
    store = settings.open()
    named: set[str] = set()
    for row in await pg.fetch("SELECT id, owner, result FROM jobs WHERE result IS NOT NULL"):
        result = struct_to_dict(struct_from_bytes(row["result"]))
        for entry in result.get("artifacts", []) or []:
            named.add(job_prefix(row["owner"], row["id"]) + str(entry["sha256"]))
    for row in await pg.fetch("SELECT id, owner, sha256 FROM uploads"):
        named.add(upload_prefix(row["owner"], row["id"]) + row["sha256"])
    stored = await store.names("owners/")
    partials = await store.names(PARTIAL_PREFIX)
    return len(set(stored) - named), len(partials)


async def run_all(root: Path, names: list[str], rows: int) -> list[ShapeOutcome]:
    stack = Stack(root, extra_env=CHAOS_ENV, with_object_store=True)
    await asyncio.to_thread(stack.start)
    outcomes: list[ShapeOutcome] = []
    try:
        assert stack.postgres is not None
        pg = await _connect_retrying(stack.postgres.url)
        try:
            async with JobsClient(
                stack.job_api_addr, stack.notifier_addr, stack.token("chaos"), timeout_s=30
            ) as client:
                for name in names:
                    started = time.monotonic()
                    outcome = await SCENARIOS[name](stack, client, pg, rows)
                    outcome.orphans, outcome.partials = await count_orphans(stack, pg)
                    outcome.seconds = time.monotonic() - started
                    outcomes.append(outcome)
                    print(render([outcome]).splitlines()[-1], flush=True)
                    await asyncio.to_thread(stack.wait_ready, 60)
        finally:
            await pg.close()
    finally:
        await asyncio.to_thread(stack.stop)
    return outcomes


def render(outcomes: list[ShapeOutcome]) -> str:
    header = (
        f"{'scenario':<28} {'expected':>8} {'created':>8} {'lost':>5} {'dup':>4} "
        f"{'unfinished':>10} {'failed':>6} {'retried':>7} {'orphans':>7} {'partials':>8} "
        f"{'secs':>6}  result"
    )
    lines = [header, "-" * len(header)]
    for o in outcomes:
        lines.append(
            f"{o.scenario:<28} {o.expected:>8} {o.created:>8} {o.lost:>5} {o.duplicated:>4} "
            f"{o.unfinished:>10} {o.failed:>6} {o.retried:>7} {o.orphans:>7} {o.partials:>8} "
            f"{o.seconds:>6.1f}  {'ok' if o.ok else 'FAILED'}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="Kill things mid-import and mid-write.")
    parser.add_argument("--rows", type=int, default=10_000, help="rows in the import")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    parser.add_argument("--dir", help="keep data and logs here")
    args = parser.parse_args()
    names = args.scenario or list(SCENARIOS)
    with tempfile.TemporaryDirectory(prefix="jobs-chaos-shapes-") as tmp:
        outcomes = asyncio.run(run_all(Path(args.dir or tmp), names, args.rows))
    print("\n" + render(outcomes))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
