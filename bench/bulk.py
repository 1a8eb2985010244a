"""Bulk work: an export of a long history and an import of a big file, rows per second and
the worker's memory.

A stack of its own (``<root>/bulk``) with SeaweedFS beside it, and two users:

- *export*: ``rows`` finished ``noop`` jobs are written straight into Postgres for one user
  (set-based SQL: a history as the system would have left it, each job with its three
  steps, a result and eight events), then that user's ``data_export`` runs. Its rate is
  rows over the export step's time (its ``STEP_STARTED`` to the job's ``SUCCEEDED``); the
  artifact's size is read from the result.
- *import*: a file of ``rows`` JSON lines (each a ``noop`` input) is uploaded, then imported
  by ``bulk_import``. Its rate is rows over the ``create_jobs`` step's time; the children
  run meanwhile, as they would (each a quick ``noop``), so the import shares the machine
  with the work it creates. Then the import is cancelled, which cancels the children not
  yet run: that cascade is timed too.

The worker's RSS is sampled throughout: before each job (idle) and its peak while it runs.
The target: flat within 50 MiB of idle whatever the number of rows.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from devstack import Stack
from devstack.seed import seed_history
from jobctl.client import JobsClient
from jobkit.convert import struct_to_dict
from jobkit.gen.jobs.v1 import jobs_pb2

from .harness import BENCH_ENV
from .procs import MIB, RssSampler, Watched
from .tables import table

if TYPE_CHECKING:
    from .runner import Config

EXPORTER = "bench-exporter"
IMPORTER = "bench-importer"


@dataclass
class BulkRun:
    rows: int
    seed_s: float = float("nan")
    #: The export step's time, s, and the artifact's size.
    export_s: float = float("nan")
    export_bytes: int = 0
    #: The import's create_jobs step, s; the rows it made into jobs.
    import_s: float = float("nan")
    imported: int = 0
    #: CancelJob on the import: its unfinished children cancelled with it.
    cancel_s: float = float("nan")
    cancelled_children: int = 0
    #: The worker's RSS when idle before each job, and its peak while the job ran.
    worker_idle: dict[str, int] = field(default_factory=dict)
    worker_peak: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def rate(self, seconds: float, rows: int | None = None) -> float:
        return (self.rows if rows is None else rows) / seconds

    def growth(self, phase: str) -> int:
        return self.worker_peak.get(phase, 0) - self.worker_idle.get(phase, 0)

    def as_json(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "seed_s": self.seed_s,
            "export_s": self.export_s,
            "export_rows_per_s": self.rate(self.export_s),
            "export_bytes": self.export_bytes,
            "import_s": self.import_s,
            "import_rows_per_s": self.rate(self.import_s, self.imported),
            "imported": self.imported,
            "cancel_s": self.cancel_s,
            "cancelled_children": self.cancelled_children,
            "worker_idle_bytes": self.worker_idle,
            "worker_peak_bytes": self.worker_peak,
            "errors": self.errors,
        }


async def _step_time(
    client: JobsClient, job_id: str, step: str, on_event: Callable[[str], None]
) -> float:
    """The time from ``step``'s (last) start to the job's end; raises unless it succeeded."""
    started = time.monotonic()
    async for event in client.watch(job_id):
        if event.type == jobs_pb2.JOB_EVENT_TYPE_STEP_STARTED and event.step == step:
            started = time.monotonic()
        if event.phase:
            on_event(event.phase)
        if event.type == jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED:
            return time.monotonic() - started
        if event.type in (jobs_pb2.JOB_EVENT_TYPE_FAILED, jobs_pb2.JOB_EVENT_TYPE_CANCELLED):
            job = await client.get_job(job_id)
            raise AssertionError(f"the job ended {event.type}: {job.error.code}")
    raise AssertionError("the job's events stopped")


async def _file(rows: int) -> AsyncIterator[bytes]:
    """The import's file, made as it is sent."""
    batch = 5000
    for start in range(0, rows, batch):
        yield "".join(
            json.dumps({"write": f"row {n}"}) + "\n" for n in range(start, min(start + batch, rows))
        ).encode()


async def run_bulk(config: Config, root: Path, say: Callable[[str], None]) -> BulkRun:
    run = BulkRun(config.bulk_rows)
    stack = Stack(root / "bulk", extra_env=BENCH_ENV, with_object_store=True)
    say("bulk: starting a stack of its own with SeaweedFS")
    await asyncio.to_thread(stack.start)
    rss = RssSampler([Watched("ai_worker", stack.services["ai_worker"].pid)])
    sampler = asyncio.create_task(rss.run())
    last_said = [0.0]

    def now_and_then(phase: str) -> None:
        if time.monotonic() - last_said[0] > 5:
            last_said[0] = time.monotonic()
            say(f"bulk: {phase}")

    try:
        assert stack.postgres is not None
        pg = await asyncpg.connect(stack.postgres.url)
        try:
            began = time.monotonic()
            await seed_history(pg, EXPORTER, run.rows)
            run.seed_s = time.monotonic() - began
        finally:
            await pg.close()
        say(f"bulk: {run.rows:,} finished jobs written for the export in {run.seed_s:.1f}s")

        async with JobsClient(
            stack.job_api_addr, stack.notifier_addr, stack.token(EXPORTER), timeout_s=600
        ) as client:
            await asyncio.sleep(1.0)
            mark = time.monotonic()
            run.worker_idle["export"] = rss.peak("ai_worker", since=mark - 1.0)
            job = await client.create_job("data_export", {})
            run.export_s = await _step_time(client, job.job_id, "export_jobs", now_and_then)
            run.worker_peak["export"] = rss.peak("ai_worker", since=mark)
            result = struct_to_dict((await client.get_job(job.job_id)).result)
            run.export_bytes = int(result["artifacts"][0]["size"])
        say(
            f"bulk: exported {run.rows:,} jobs ({run.export_bytes / MIB:,.0f} MiB) in "
            f"{run.export_s:.1f}s"
        )

        async with JobsClient(
            stack.job_api_addr, stack.notifier_addr, stack.token(IMPORTER), timeout_s=600
        ) as client:
            upload = await client.upload(_file(run.rows), "application/x-ndjson")
            await asyncio.sleep(1.0)
            mark = time.monotonic()
            run.worker_idle["import"] = rss.peak("ai_worker", since=mark - 1.0)
            job = await client.create_job(
                "bulk_import", {"upload_id": upload.upload_id, "job_type": "noop"}
            )
            run.import_s = await _step_time(client, job.job_id, "create_jobs", now_and_then)
            run.worker_peak["import"] = rss.peak("ai_worker", since=mark)
            result = struct_to_dict((await client.get_job(job.job_id)).result)
            run.imported = int(result["imported"])
            say(f"bulk: imported {run.imported:,} rows in {run.import_s:.1f}s; cancelling it")
            began = time.monotonic()
            await client.cancel_job(job.job_id)
            run.cancel_s = time.monotonic() - began
    except Exception as error:
        run.errors.append(repr(error))
        say(f"bulk failed: {error!r}")
    finally:
        sampler.cancel()
        if stack.postgres is not None and run.imported:
            try:
                pg = await asyncpg.connect(stack.postgres.url)
                try:
                    run.cancelled_children = int(
                        await pg.fetchval(
                            "SELECT count(*) FROM jobs WHERE owner = $1 AND status = 'CANCELLED'",
                            IMPORTER,
                        )
                    )
                finally:
                    await pg.close()
            except Exception as error:
                run.errors.append(repr(error))
        await asyncio.to_thread(stack.stop)
    return run


def lines(run: BulkRun | None) -> list[str]:
    if run is None:
        return []
    out = [
        "",
        f"bulk ({run.rows:,} rows each way; the worker's RSS idle before each job and its peak "
        "while the job ran):",
    ]
    out += table(
        ["", "rows", "seconds", "rows/s", "worker idle MiB", "worker peak MiB", "growth MiB"],
        [
            [
                f"export ({run.export_bytes / MIB:,.0f} MiB of JSON lines)",
                f"{run.rows:,}",
                f"{run.export_s:.1f}",
                f"{run.rate(run.export_s):,.0f}",
                f"{run.worker_idle.get('export', 0) / MIB:.0f}",
                f"{run.worker_peak.get('export', 0) / MIB:.0f}",
                f"{run.growth('export') / MIB:.0f}",
            ],
            [
                "import (its children running meanwhile)",
                f"{run.imported:,}",
                f"{run.import_s:.1f}",
                f"{run.rate(run.import_s, run.imported):,.0f}",
                f"{run.worker_idle.get('import', 0) / MIB:.0f}",
                f"{run.worker_peak.get('import', 0) / MIB:.0f}",
                f"{run.growth('import') / MIB:.0f}",
            ],
        ],
        "<>>>>>>",
    )
    out.append(
        f"cancelling the import cancelled {run.cancelled_children:,} unfinished children in "
        f"{run.cancel_s:.1f}s (one CancelJob)" + (f"; errors: {run.errors}" if run.errors else "")
    )
    return out
