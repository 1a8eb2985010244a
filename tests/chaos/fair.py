"""Chaos during a fair backlog: a heavy user's jobs wait in the ready queue, something is
killed, and afterwards nothing is lost and fairness is back.

    python -m tests.chaos.fair [--jobs 2000] [--scenario NAME ...]   (make chaos)

The stack is narrow (one worker with 4 slots, a JetStream window of 4, two orchestrators),
so a flood of 20 ms jobs keeps the dispatcher holding for the whole scenario. The heavy
user floods; the fault lands while its backlog waits; once the stack is back, a light user
submits 3 jobs. Then the books: every job accepted finished SUCCEEDED (``lost``), no step
committed twice (``dup``), every job's events are numbered 1..n without a gap (``gaps``),
nothing is left in the ready queue, and the light user's 3 finished before a quarter of
the heavy jobs still waiting when they came (``fair``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from devstack import Stack
from jobctl.client import JobsClient
from tests.chaos.harness import (
    CHAOS_ENV,
    DUPLICATED_STEPS,
    Fault,
    _connect_retrying,
    _submit,
    crash_postgres,
    kill_nats,
    kill_orchestrator,
    kill_worker,
)
from tests.chaos.harness import Outcome as Submitted

FAIR_ENV = {
    **CHAOS_ENV,
    "WORKER_CONCURRENCY": "4",
    "DISPATCH_WINDOW": "4",
    "DISPATCH_HOLD_AT": "8",
}
STEP_MS = 20
LIGHT_JOBS = 3

SCENARIOS: dict[str, Fault] = {
    "kill -9 orchestrator": kill_orchestrator,
    "kill -9 ai_worker": kill_worker,
    "kill -9 nats-server": kill_nats,
    "postgres stop -m immediate": crash_postgres,
}


@dataclass
class FairOutcome:
    scenario: str
    accepted: int = 0
    succeeded: int = 0
    duplicated: int = 0
    gaps: int = 0
    #: Rows left in the ready queue once every job is over.
    stranded: int = 0
    #: Heavy jobs still waiting when the light user came, and how many of them finished
    #: before the light user's last did.
    backlog: int = 0
    ahead: int = 0
    seconds: float = 0.0

    @property
    def lost(self) -> int:
        return self.accepted - self.succeeded

    @property
    def fair(self) -> bool:
        return self.backlog > 0 and self.ahead < self.backlog // 4

    @property
    def ok(self) -> bool:
        return (
            self.accepted > 0
            and self.lost == 0
            and self.duplicated == 0
            and self.gaps == 0
            and self.stranded == 0
            and self.fair
        )


async def run_scenario(stack: Stack, name: str, fault: Fault, jobs: int) -> FairOutcome:
    outcome = FairOutcome(name)
    started = time.monotonic()
    deadline = started + 300
    heavy_jobs = Submitted(name)
    user = uuid.uuid4().hex[:8]
    async with (
        JobsClient(
            stack.job_api_addr,
            stack.notifier_addr,
            stack.token(f"heavy-{user}"),
            timeout_s=5,
            retries=0,
        ) as heavy,
        JobsClient(
            stack.job_api_addr,
            stack.notifier_addr,
            stack.token(f"light-{user}"),
            timeout_s=5,
            retries=0,
        ) as light,
    ):
        gate = asyncio.Semaphore(32)

        async def submit(client: JobsClient, into: Submitted) -> None:
            async with gate:
                await _submit(client, into, STEP_MS, deadline)

        await asyncio.gather(*(submit(heavy, heavy_jobs) for _ in range(jobs)))
        await fault(stack)
        await asyncio.to_thread(stack.wait_ready, 60)
        assert stack.postgres is not None
        pg = await _connect_retrying(stack.postgres.url)
        heavy_ids = [uuid.UUID(j) for j in heavy_jobs.accepted]
        waiting_before = await _unfinished(pg, heavy_ids)
        light_jobs = Submitted(name)
        await asyncio.gather(*(submit(light, light_jobs) for _ in range(LIGHT_JOBS)))
        light_ids = [uuid.UUID(j) for j in light_jobs.accepted]
        everything = heavy_ids + light_ids
        while time.monotonic() < deadline:
            if not await _unfinished(pg, everything):
                break
            await asyncio.sleep(0.5)
    try:
        await _count(pg, outcome, everything, waiting_before, light_ids)
    finally:
        await pg.close()
    outcome.seconds = time.monotonic() - started
    return outcome


async def _print_duplicates(pg: asyncpg.Connection, job_ids: list[uuid.UUID]) -> None:
    """The event log of each job with a step committed twice: what to read first."""
    rows = await pg.fetch(
        """SELECT job_id, sequence, type, step, attempt, status, message, occurred_at
           FROM job_events
           WHERE job_id IN (SELECT job_id FROM job_events
                            WHERE job_id = ANY($1::uuid[]) AND type = 'STEP_SUCCEEDED'
                            GROUP BY job_id, step HAVING count(*) > 1)
           ORDER BY job_id, sequence""",
        job_ids,
    )
    for row in rows:
        print("duplicated:", dict(row), flush=True)


async def _count(
    pg: asyncpg.Connection,
    outcome: FairOutcome,
    everything: list[uuid.UUID],
    waiting_before: list[uuid.UUID],
    light_ids: list[uuid.UUID],
) -> None:
    outcome.accepted = len(everything)
    outcome.succeeded = await pg.fetchval(
        "SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[]) AND status = 'SUCCEEDED'",
        everything,
    )
    outcome.duplicated = await pg.fetchval(DUPLICATED_STEPS, everything)
    if outcome.duplicated:
        await _print_duplicates(pg, everything)
    outcome.gaps = await pg.fetchval(
        """SELECT count(*) FROM (
               SELECT job_id FROM job_events WHERE job_id = ANY($1::uuid[])
               GROUP BY job_id
               HAVING min(sequence) <> 1 OR max(sequence) <> count(*)) AS g""",
        everything,
    )
    outcome.stranded = await pg.fetchval(
        "SELECT count(*) FROM ready_steps WHERE job_id = ANY($1::uuid[])", everything
    )
    light_last = await pg.fetchval(
        "SELECT max(finished_at) FROM jobs WHERE id = ANY($1::uuid[])", light_ids
    )
    outcome.backlog = len(waiting_before)
    outcome.ahead = await pg.fetchval(
        "SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[]) AND finished_at < $2",
        waiting_before,
        light_last,
    )
    if not outcome.fair:
        await _print_light_path(pg, light_ids)


async def _print_light_path(pg: asyncpg.Connection, light_ids: list[uuid.UUID]) -> None:
    """The light user's event logs, with the time each event came after their first: where
    an unfair wait lies."""
    rows = await pg.fetch(
        """SELECT job_id, sequence, type, step, attempt,
                  occurred_at - min(occurred_at) OVER () AS after
           FROM job_events WHERE job_id = ANY($1::uuid[])
           ORDER BY occurred_at""",
        light_ids,
    )
    for row in rows:
        print("light:", dict(row), flush=True)


async def _unfinished(pg: asyncpg.Connection, ids: list[uuid.UUID]) -> list[uuid.UUID]:
    rows = await pg.fetch(
        "SELECT id FROM jobs WHERE id = ANY($1::uuid[]) AND status IN ('QUEUED', 'RUNNING')", ids
    )
    return [r["id"] for r in rows]


async def run_all(root: Path, names: list[str], jobs: int) -> list[FairOutcome]:
    stack = Stack(root, orchestrators=2, extra_env=FAIR_ENV)
    await asyncio.to_thread(stack.start)
    outcomes: list[FairOutcome] = []
    try:
        for name in names:
            outcome = await run_scenario(stack, name, SCENARIOS[name], jobs)
            outcomes.append(outcome)
            print(render([outcome]).splitlines()[-1], flush=True)
            await asyncio.to_thread(stack.wait_ready, 60)
    finally:
        await asyncio.to_thread(stack.stop)
    return outcomes


def render(outcomes: list[FairOutcome]) -> str:
    header = (
        f"{'scenario':<28} {'accepted':>8} {'lost':>5} {'dup':>4} {'gaps':>5} "
        f"{'stranded':>8} {'backlog':>7} {'ahead':>6} {'secs':>6}  result"
    )
    lines = [header, "-" * len(header)]
    for o in outcomes:
        lines.append(
            f"{o.scenario:<28} {o.accepted:>8} {o.lost:>5} {o.duplicated:>4} {o.gaps:>5} "
            f"{o.stranded:>8} {o.backlog:>7} {o.ahead:>6} {o.seconds:>6.1f}  "
            f"{'ok' if o.ok else 'FAILED'}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="Kill things during a fair backlog.")
    parser.add_argument("--jobs", type=int, default=2000, help="the heavy user's flood")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    parser.add_argument("--dir", help="keep data and logs here")
    args = parser.parse_args()
    names = args.scenario or list(SCENARIOS)
    with tempfile.TemporaryDirectory(prefix="jobs-chaos-fair-") as tmp:
        outcomes = asyncio.run(run_all(Path(args.dir or tmp), names, args.jobs))
    print("\n" + render(outcomes))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
