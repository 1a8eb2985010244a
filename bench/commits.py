"""How many small commits per second one Postgres takes, alone and with a synchronous
standby (docs/scaling.md): each of ``--writers`` connections inserts one row per
transaction for ``--seconds``; the servers are the dev stack's (devstack.servers).

    python -m bench.commits [--writers 16] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import asyncpg

from devstack.servers import PostgresPair, PostgresServer


async def _rate(url: str, writers: int, seconds: float) -> float:
    pool = await asyncpg.create_pool(url, min_size=writers, max_size=writers)
    await pool.execute("CREATE TABLE IF NOT EXISTS commits (id bigserial, at timestamptz)")
    count = 0
    stop = time.monotonic() + seconds

    async def writer() -> None:
        nonlocal count
        async with pool.acquire() as conn:
            while time.monotonic() < stop:
                await conn.execute("INSERT INTO commits (at) VALUES (now())")
                count += 1

    await asyncio.gather(*(writer() for _ in range(writers)))
    await pool.close()
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description="Commits per second, alone and replicated.")
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jobs-commits-") as tmp:
        single = PostgresServer(Path(tmp) / "single").start()
        try:
            alone = asyncio.run(_rate(single.url, args.writers, args.seconds))
        finally:
            single.stop()
        pair = PostgresPair(Path(tmp) / "pair").start()
        try:
            replicated = asyncio.run(_rate(pair.url, args.writers, args.seconds))
        finally:
            pair.stop()
    print(f"one server:                 {alone:5.0f} commits/s ({args.writers} writers)")  # noqa: T201
    print(f"with a synchronous standby: {replicated:5.0f} commits/s")  # noqa: T201


if __name__ == "__main__":
    main()
