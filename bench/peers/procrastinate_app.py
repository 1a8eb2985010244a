"""The procrastinate peer's tasks and worker process.

``python -m bench.peers.procrastinate_app --concurrency 16`` runs one worker with
procrastinate's own API (``App.run_worker_async``: LISTEN/NOTIFY for new jobs, its
default), on uvloop like our services, logging warnings only like our services do in the
benchmark. The three tasks are the chain: each defers the next with the id of the first
job as the chain's key; ``bench.peers.procrastinate_peer`` defers the first and installs
the trigger that tells the client when the third has succeeded.
"""

from __future__ import annotations

import argparse
import logging
import os

import uvloop
from procrastinate import App, JobContext, PsycopgConnector

#: The database the workers use, and their pool's size (set by ``procrastinate_peer``).
DSN_ENV = "BENCH_PEER_DSN"
POOL_ENV = "BENCH_PEER_POOL"

STEP_1 = "bench_chain_step_1"
STEP_2 = "bench_chain_step_2"
STEP_3 = "bench_chain_step_3"


def connector(dsn: str, max_size: int) -> PsycopgConnector:
    """psycopg's pool as procrastinate creates it, sized for the worker's concurrency (its
    default of 4 connections would starve a worker that runs 16 jobs at once)."""
    return PsycopgConnector(conninfo=dsn, min_size=min(4, max_size), max_size=max_size)


app = App(connector=connector(os.environ.get(DSN_ENV, ""), int(os.environ.get(POOL_ENV, "4"))))


@app.task(name=STEP_1, pass_context=True)
async def step_1(context: JobContext) -> None:
    assert context.job.id is not None
    await step_2.defer_async(chain=context.job.id)


@app.task(name=STEP_2)
async def step_2(chain: int) -> None:
    await step_3.defer_async(chain=chain)


@app.task(name=STEP_3)
async def step_3(chain: int) -> None:
    return None


async def work(concurrency: int, name: str) -> None:
    async with app.open_async():
        await app.run_worker_async(concurrency=concurrency, name=name, listen_notify=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.procrastinate_app")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--name", default="worker")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    uvloop.run(work(args.concurrency, args.name))


if __name__ == "__main__":
    main()
