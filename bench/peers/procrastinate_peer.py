"""procrastinate as a peer, on its own Postgres.

- Postgres: ``devstack.servers.PostgresServer``, the same binaries and durable settings as
  our stack's (``fsync=on``, ``synchronous_commit=on``), in a data directory of its own;
  procrastinate's schema applied with its own schema manager.
- Workers: ``workers`` processes of ``bench.peers.procrastinate_app`` (procrastinate's
  ``run_worker_async``, ``concurrency`` jobs at once, LISTEN/NOTIFY for new jobs).
- Client: this process, an ``App`` with a psycopg pool of as many connections as
  submissions in flight (job_api serves the same calls with 20), deferring the chain's
  first task.
- Done: a trigger on ``procrastinate_jobs`` NOTIFYs ``bench_chain_done`` with the chain's
  key from the transaction that moves the third task to a final status, so the client's
  LISTEN learns of it when that status commits (not before, as a NOTIFY from the task's
  body would, ahead of procrastinate recording the task as succeeded). Throughput polls
  what arrived every 100 ms, as ours polls its jobs table.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections.abc import Collection
from importlib import metadata
from pathlib import Path

import asyncpg
from procrastinate import App

from devstack.servers import PostgresServer

from ..latency import Probe
from ..procs import Watched
from . import Peer, WorkerProcess, probe
from .procrastinate_app import DSN_ENV, POOL_ENV, STEP_1, STEP_3, connector

CHANNEL = "bench_chain_done"

#: The third task's move to a final status, told to whoever listens, at its commit.
TRIGGER = f"""
CREATE OR REPLACE FUNCTION bench_chain_done() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', (NEW.args->>'chain') || ' ' || NEW.status);
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS bench_chain_done ON procrastinate_jobs;
CREATE TRIGGER bench_chain_done AFTER UPDATE OF status ON procrastinate_jobs
    FOR EACH ROW WHEN (NEW.task_name = '{STEP_3}'
                       AND NEW.status IN ('succeeded', 'failed', 'aborted'))
    EXECUTE FUNCTION bench_chain_done();
"""

PROBE_TIMEOUT_S = 60.0


class ProcrastinatePeer(Peer):
    name = "procrastinate"

    def __init__(self) -> None:
        self.postgres: PostgresServer | None = None
        self.workers: list[WorkerProcess] = []
        self.app: App | None = None
        self.conn: asyncpg.Connection | None = None
        #: Chains whose third task reached a final status, not yet collected: succeeded?
        self.done: dict[str, bool] = {}
        self.waiters: dict[str, asyncio.Future[bool]] = {}
        self.concurrency = 0
        self.clients = 0
        self.settings: dict[str, str] = {}

    async def start(self, root: Path, workers: int, concurrency: int, clients: int) -> None:
        self.concurrency = concurrency
        self.clients = clients
        home = root / "peer-procrastinate"
        # A fresh server every time, even in a kept --dir: no queue left from before.
        await asyncio.to_thread(shutil.rmtree, home, ignore_errors=True)
        self.postgres = PostgresServer(home / "postgres")
        await asyncio.to_thread(self.postgres.start)
        url = self.postgres.url
        self.app = App(connector=connector(url, clients))
        await self.app.open_async()
        await self.app.schema_manager.apply_schema_async()
        self.conn = await asyncpg.connect(url)
        await self.conn.execute(TRIGGER)
        await self.conn.add_listener(CHANNEL, self._notified)
        for setting in ("server_version", "synchronous_commit", "fsync"):
            self.settings[setting] = str(await self.conn.fetchval(f"SHOW {setting}"))
        env = {**os.environ, DSN_ENV: url, POOL_ENV: str(concurrency + 4)}
        for k in range(1, workers + 1):
            name = f"worker-{k}"
            command = [sys.executable, "-m", "bench.peers.procrastinate_app"]
            command += ["--concurrency", str(concurrency), "--name", name]
            self.workers.append(WorkerProcess(name, command, env, home / f"{name}.log").start())
        deadline = time.monotonic() + 60
        while await self.conn.fetchval("SELECT count(*) FROM procrastinate_workers") < workers:
            self.check()
            if time.monotonic() > deadline:
                raise TimeoutError("the procrastinate workers did not register within 60s")
            await asyncio.sleep(0.1)
        # A worker registers, then starts listening: give it a moment.
        await asyncio.sleep(0.5)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        key, _, status = str(payload).partition(" ")
        succeeded = status == "succeeded"
        waiter = self.waiters.pop(key, None)
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(succeeded)
            return
        self.done[key] = succeeded

    async def stop(self) -> None:
        if self.app is not None:
            await self.app.close_async()
        if self.conn is not None:
            await self.conn.close()
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in self.workers))
        if self.postgres is not None:
            await asyncio.to_thread(self.postgres.stop)

    def watched(self) -> list[Watched]:
        assert self.postgres is not None
        assert self.postgres.proc is not None
        return [
            *(Watched(w.name, w.pid) for w in self.workers),
            Watched("postgres", self.postgres.proc.pid, tree=True),
        ]

    @property
    def label(self) -> str:
        return (
            f"procrastinate {metadata.version('procrastinate')}, "
            f"{len(self.workers)} workers x {self.concurrency}"
        )

    def describe(self) -> dict[str, object]:
        import psycopg

        return {
            "procrastinate": metadata.version("procrastinate"),
            "psycopg": f"{metadata.version('psycopg')} ({psycopg.pq.__impl__} libpq "
            f"{psycopg.pq.version()})",
            "postgres": self.settings.get("server_version"),
            "postgres_synchronous_commit": self.settings.get("synchronous_commit"),
            "postgres_fsync": self.settings.get("fsync"),
            "workers": len(self.workers),
            "worker_concurrency": self.concurrency,
            "worker": "App.run_worker_async(listen_notify=True) on uvloop, one process each, "
            f"psycopg pool of {self.concurrency + 4}",
            "client": f"App.configure_task().defer_async(), psycopg pool of {self.clients}",
            "done_observed": f"LISTEN {CHANNEL}: NOTIFY from a trigger in the transaction "
            "that marks the third task succeeded",
        }

    async def submit(self) -> str:
        assert self.app is not None
        job_id = await self.app.configure_task(STEP_1).defer_async()
        return str(job_id)

    async def finished(self, keys: Collection[str]) -> dict[str, bool]:
        return {k: self.done.pop(k) for k in keys if k in self.done}

    async def probe(self) -> Probe:
        assert self.app is not None
        started = time.perf_counter()
        key = str(await self.app.configure_task(STEP_1).defer_async())
        submitted = time.perf_counter()
        if key in self.done:
            succeeded = self.done.pop(key)
        else:
            waiter = asyncio.get_running_loop().create_future()
            self.waiters[key] = waiter
            try:
                succeeded = await asyncio.wait_for(waiter, PROBE_TIMEOUT_S)
            finally:
                self.waiters.pop(key, None)
        finished = time.perf_counter()
        return probe(finished - started, submitted - started, succeeded)

    async def busy(self) -> int:
        assert self.conn is not None
        count: int = await self.conn.fetchval(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        )
        return count


PEER_CLASS = ProcrastinatePeer
