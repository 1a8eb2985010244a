"""What a deep or wide backlog costs: a flood of ``--jobs`` noop jobs (three steps of
``--sleep-ms``) from one user, or from ``--users`` users in turn, 64 CreateJobs in flight,
on a stack with the bench's settings and one worker of 32 slots, the fair dispatcher
holding all but a window of it in the ready queue. Prints jobs/s, the CPU milliseconds a
job of every process, and the dispatcher's reads of the queue (exact, or by the owners
next in turn: README, "Scheduling").

    python -m bench.backlog [--jobs 15000] [--sleep-ms 50] [--users 1]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from devstack import Stack

from .fair import scrape_metrics
from .harness import BENCH_ENV, Harness, noop_request
from .procs import CpuMeter
from .throughput import run_throughput

IN_FLIGHT = 64
SLOTS = 32
WARMUP_JOBS = 300


async def _flood(root: Path, jobs: int, sleep_ms: int, users: int) -> None:
    stack = Stack(root, extra_env={**BENCH_ENV, "WORKER_CONCURRENCY": str(SLOTS)})
    await asyncio.to_thread(stack.start)
    try:
        harness = await Harness.open(stack, api_channels=4, notifier_channels=2)
        try:
            await run_throughput(harness, WARMUP_JOBS, IN_FLIGHT)
            await harness.quiesce()
            cpu = CpuMeter(harness.watched())
            before = cpu.snapshot()
            run = await run_throughput(
                harness, jobs, IN_FLIGHT, request=noop_request(sleep_ms=sleep_ms), users=users
            )
            use = CpuMeter.delta(before, cpu.snapshot())
        finally:
            await harness.close()
        metrics = await asyncio.to_thread(
            scrape_metrics, [stack.services["orchestrator"].metrics_url]
        )
    finally:
        await asyncio.to_thread(stack.stop)
    per_job = {name: 1000 * s / jobs for name, s in use.procs.items() if name != "harness"}
    print(  # noqa: T201
        f"{jobs} jobs of 3 x {sleep_ms} ms from {users} user(s): {run.jobs_per_s:.1f} jobs/s, "
        f"all succeeded: {'yes' if run.ok else 'NO'}; CPU ms a job {sum(per_job.values()):.2f}: "
        + ", ".join(f"{name} {ms:.2f}" for name, ms in sorted(per_job.items()))
    )
    for line in metrics.splitlines():
        if line.startswith("jobs_dispatch_queue_reads_total"):
            print(line)  # noqa: T201


def main() -> None:
    parser = argparse.ArgumentParser(description="What a deep or wide backlog costs.")
    parser.add_argument("--jobs", type=int, default=15_000)
    parser.add_argument("--sleep-ms", type=int, default=50)
    parser.add_argument("--users", type=int, default=1, help="the flood's users, in turn")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jobs-backlog-") as tmp:
        asyncio.run(_flood(Path(tmp), args.jobs, args.sleep_ms, args.users))


if __name__ == "__main__":
    main()
