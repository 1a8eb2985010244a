"""CreateJob under overload: what job_api's bound on calls in progress
(``MAX_CREATES_IN_FLIGHT``) does to the latency of the calls it takes.

    python -m bench.overload [--calls 4000] [--in-flight 256] [--bound 64] [--bound 0 ...]

For each bound, a stack of its own; its processes on CPU 0 and this client on CPU 1, so
that the client's own work is not what is measured (on a 2-core machine). The client keeps
``in_flight`` CreateJob calls going and, like a well-behaved client, waits as a refusal's
RetryInfo says before trying that job again. It prints, per bound, the latency of the
calls that got in (p50, p99), how many were refused on the way, and the time for them all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from devstack import Stack
from jobctl.client import JobsClient

from .harness import BENCH_ENV


@dataclass
class OverloadRun:
    bound: int
    latencies_s: list[float] = field(default_factory=list)
    refused: int = 0
    seconds: float = 0.0

    def quantile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


async def run_overload(bound: int, calls: int, in_flight: int) -> OverloadRun:
    run = OverloadRun(bound)
    with tempfile.TemporaryDirectory(prefix="jobs-overload-") as tmp:
        stack = Stack(Path(tmp), extra_env={**BENCH_ENV, "MAX_CREATES_IN_FLIGHT": str(bound)})
        pinned = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
        if pinned:
            os.sched_setaffinity(0, {0})  # the stack's processes inherit CPU 0
        await asyncio.to_thread(stack.start)
        if pinned:
            os.sched_setaffinity(0, {1})
        try:
            async with JobsClient(
                stack.job_api_addr, stack.notifier_addr, stack.token("overload"), retries=0
            ) as client:
                gate = asyncio.Semaphore(in_flight)

                async def create() -> None:
                    async with gate:
                        while True:
                            began = time.perf_counter()
                            try:
                                await client.create_job("noop", {})
                            except grpc.aio.AioRpcError as error:
                                if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                                    raise
                                run.refused += 1
                                await asyncio.sleep(1.0)  # the RetryInfo job_api sends
                                continue
                            run.latencies_s.append(time.perf_counter() - began)
                            return

                began = time.perf_counter()
                await asyncio.gather(*(create() for _ in range(calls)))
                run.seconds = time.perf_counter() - began
        finally:
            await asyncio.to_thread(stack.stop)
            if pinned:
                os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description="CreateJob latency under overload, per bound.")
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--in-flight", type=int, default=256)
    parser.add_argument("--bound", type=int, action="append", help="MAX_CREATES_IN_FLIGHT")
    args = parser.parse_args()
    for bound in args.bound or [0, 64, 16]:
        run = asyncio.run(run_overload(bound, args.calls, args.in_flight))
        sys.stdout.write(
            f"bound {bound or 'none':>4}: {args.calls} jobs in {run.seconds:5.1f}s, "
            f"{run.refused:5} refusals on the way; calls that got in: "
            f"p50 {run.quantile_ms(0.5):5.0f} ms, p99 {run.quantile_ms(0.99):5.0f} ms\n"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
