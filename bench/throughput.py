"""Throughput at saturation: N three-step ``noop`` jobs submitted by concurrent clients,
timed from the first CreateJob to the last job seen terminal.

Completion is detected by polling Postgres every 100 ms for the jobs not yet seen
terminal (so each poll costs index look-ups for the backlog, not for all N jobs), rather
than by N WatchJob streams, which would load the notifier and the harness on a machine
whose two cores the system under test needs.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import grpc

from jobkit.gen.jobs.v1 import job_service_pb2

from .harness import TERMINAL_STATUSES, Harness, noop_request
from .procs import CpuMeter

POLL_S = 0.1


@dataclass
class ThroughputRun:
    jobs: int
    accepted: int = 0
    rejected: int = 0
    succeeded: int = 0
    #: First CreateJob sent -> a poll saw the last job terminal (what the rate is over).
    seconds: float = 0.0
    #: First CreateJob sent -> last CreateJob answered: job_api's acceptance alone.
    submit_seconds: float = 0.0
    #: First CreateJob sent -> the latest ``finished_at`` (the orchestrator's clock, taken
    #: just before the committing transaction): the rate without the poll's granularity.
    db_seconds: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    #: CPU seconds used by processes other than ours during the timed window.
    foreign_cpu_s: float = 0.0
    #: (seconds since start, accepted, terminal) at every poll.
    timeline: list[tuple[float, int, int]] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def jobs_per_s(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    @property
    def accept_per_s(self) -> float:
        return self.accepted / self.submit_seconds if self.submit_seconds else 0.0

    @property
    def db_jobs_per_s(self) -> float:
        return self.accepted / self.db_seconds if self.db_seconds else 0.0

    @property
    def ok(self) -> bool:
        return self.rejected == 0 and self.succeeded == self.accepted == self.jobs

    def as_json(self) -> dict[str, object]:
        return {
            "jobs": self.jobs,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "succeeded": self.succeeded,
            "errors": self.errors,
            "seconds": self.seconds,
            "jobs_per_s": self.jobs_per_s,
            "submit_seconds": self.submit_seconds,
            "accept_per_s": self.accept_per_s,
            "db_seconds": self.db_seconds,
            "db_jobs_per_s": self.db_jobs_per_s,
            "cpu_s": self.cpu_s,
            "foreign_cpu_s": self.foreign_cpu_s,
            "timeline": [[round(t, 3), a, d] for t, a, d in self.timeline],
        }


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """One run of the coarse sweep: ``run_throughput`` with ``in_flight`` submitters."""

    in_flight: int
    run: ThroughputRun

    def as_json(self) -> dict[str, object]:
        r = self.run
        return {
            "in_flight": self.in_flight,
            "jobs": r.jobs,
            "accepted": r.accepted,
            "succeeded": r.succeeded,
            "errors": r.errors,
            "seconds": r.seconds,
            "jobs_per_s": r.jobs_per_s,
            "accept_per_s": r.accept_per_s,
            "db_jobs_per_s": r.db_jobs_per_s,
        }


async def run_throughput(
    harness: Harness,
    jobs: int,
    concurrency: int,
    cpu: CpuMeter | None = None,
    *,
    request: job_service_pb2.CreateJobRequest | None = None,
    submitted: asyncio.Event | None = None,
    users: int = 0,
) -> ThroughputRun:
    """Submit ``jobs`` noop jobs (``request``: a plain one by default) with ``concurrency``
    CreateJob calls in flight, spread over the harness's job_api connections, and wait
    until every one is terminal; ``submitted`` is set once every CreateJob is answered.
    ``users``: more than one, the jobs go to that many users in turn (``bench-user-N``),
    not all to the bench's one."""
    run = ThroughputRun(jobs)
    request = request or noop_request()
    fresh: list[uuid.UUID] = []
    every: list[uuid.UUID] = []
    issued = 0
    last_answer = 0.0

    async def submitter(k: int) -> None:
        nonlocal issued, last_answer
        while issued < jobs:
            issued += 1
            user = f"bench-user-{issued % users}" if users > 1 else None
            try:
                job = await harness.create(request, channel=k, user=user)
            except grpc.aio.AioRpcError as error:
                run.rejected += 1
                name = error.code().name
                run.errors[name] = run.errors.get(name, 0) + 1
                continue
            last_answer = time.perf_counter()
            job_id = uuid.UUID(job.job_id)
            fresh.append(job_id)
            every.append(job_id)

    before = cpu.snapshot() if cpu else None
    wall_start = time.time()
    start = time.perf_counter()
    submitters = asyncio.gather(*(submitter(k) for k in range(concurrency)))
    if submitted is not None:
        submitters.add_done_callback(lambda _: submitted.set())
    pending: set[uuid.UUID] = set()
    done = 0
    while True:
        await asyncio.sleep(POLL_S)
        pending.update(fresh)
        fresh.clear()
        if pending:
            rows = await harness.pg.fetch(
                "SELECT id FROM jobs WHERE id = ANY($1::uuid[]) AND status = ANY($2::text[])",
                list(pending),
                TERMINAL_STATUSES,
            )
            pending.difference_update(r["id"] for r in rows)
            done += len(rows)
        now = time.perf_counter()
        run.timeline.append((now - start, len(every), done))
        if submitters.done() and not pending and not fresh:
            break
    run.seconds = time.perf_counter() - start
    if cpu and before:
        use = CpuMeter.delta(before, cpu.snapshot())
        run.cpu_s = use.procs
        run.foreign_cpu_s = use.foreign
    await submitters
    run.accepted = len(every)
    run.submit_seconds = last_answer - start
    statuses = await harness.statuses(every)
    run.succeeded = statuses.get("SUCCEEDED", 0)
    latest: datetime | None = await harness.pg.fetchval(
        "SELECT max(finished_at) FROM jobs WHERE id = ANY($1::uuid[])", every
    )
    if latest is not None:
        run.db_seconds = latest.timestamp() - wall_start
    return run
