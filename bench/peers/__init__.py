"""Peers: the benchmark's workload on other job systems, measured the same way, side by side.

The workload is our ``noop`` job: a chain of three tasks run one after another, each
deferring the next, done when the third has finished. Each peer runs on servers of its own
(its own Postgres or Redis, durable settings), with its workers as separate processes,
started after our stack has stopped so neither side shares the machine with the other's
idle processes. A peer implements ``Peer``; ``run_throughput`` and ``run_probes`` drive it
exactly as ``bench.throughput`` and ``bench.latency`` drive ours:

- throughput: ``jobs`` chains submitted by ``concurrency`` concurrent submit calls (ours:
  ``concurrency`` CreateJob calls in flight; neither side bounds the jobs queued behind
  them), timed from the first submit to a 100 ms poll seeing the last chain done;
- idle latency: one chain at a time, from the submit call to the client learning that the
  third task finished, the fastest way that peer's users have.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from ..latency import LatencyRun, Probe
from ..procs import CpuMeter, Watched
from ..throughput import SweepPoint, ThroughputRun

#: The peers ``--peer`` knows, in the order they run.
PEERS = ("procrastinate", "celery")

#: Like ``bench.throughput``: how often the harness asks which submitted chains are done.
POLL_S = 0.1

#: A throughput run fails once no chain has finished for this long.
STALL_S = 120.0

#: The repository's root: the peers' worker processes import ``bench.peers.*`` from it.
ROOT = Path(__file__).resolve().parent.parent.parent


class PeerUnavailable(RuntimeError):
    """The peer's packages or server binary are not installed here."""


@dataclass
class WorkerProcess:
    """One of a peer's worker processes, logging to a file."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                self.command,
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def check(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"peer process {self.name} died; see {self.log_path}")

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Peer(ABC):
    """A job system run with the benchmark's workload."""

    #: What ``--peer`` calls it.
    name: str = ""
    #: Its worker processes, set by ``__init__`` and filled by ``start``.
    workers: list[WorkerProcess]

    @abstractmethod
    async def start(self, root: Path, workers: int, concurrency: int, clients: int) -> None:
        """Start its servers and ``workers`` worker processes of ``concurrency`` each, and
        open the client for ``clients`` concurrent submissions; return once the workers are
        ready."""

    @abstractmethod
    async def stop(self) -> None:
        """Close the client, stop the workers, then the servers."""

    @abstractmethod
    def watched(self) -> list[Watched]:
        """Its processes, for CPU and memory (the harness is added by ``CpuMeter``)."""

    @abstractmethod
    def describe(self) -> dict[str, object]:
        """Versions and settings, for the report and the JSON."""

    @property
    @abstractmethod
    def label(self) -> str:
        """A short description: name, version, workers."""

    @abstractmethod
    async def submit(self) -> str:
        """Submit one chain; return a key to ask ``finished`` about."""

    @abstractmethod
    async def finished(self, keys: Collection[str]) -> dict[str, bool]:
        """Of ``keys``, the chains that are done, each with whether it succeeded."""

    @abstractmethod
    async def probe(self) -> Probe:
        """One chain, timed from the submit call to the client seeing it done."""

    @abstractmethod
    async def busy(self) -> int:
        """Tasks queued or running (0 when idle)."""

    def check(self) -> None:
        """Raise if a worker process has died."""
        for worker in self.workers:
            worker.check()

    async def quiesce(self, timeout_s: float = 300.0) -> float:
        """Wait until nothing is queued or running (three readings 200 ms apart)."""
        started = time.monotonic()
        quiet_rounds = 0
        while quiet_rounds < 3:
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"{self.name} did not go idle within {timeout_s:g}s")
            quiet_rounds = quiet_rounds + 1 if await self.busy() == 0 else 0
            await asyncio.sleep(0.2)
        return time.monotonic() - started


def create(name: str) -> Peer:
    """The peer called ``name``; ``PeerUnavailable`` if its packages are missing."""
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}")
    try:
        module = importlib.import_module(f"{__name__}.{name}_peer")
    except ImportError as error:
        raise PeerUnavailable(
            f"{name}: {error}; install the bench peers: pip install -e '.[bench-peers]'"
        ) from error
    peer: Peer = module.PEER_CLASS()
    return peer


@dataclass
class PeerResults:
    """One peer's runs."""

    name: str
    label: str = ""
    meta: dict[str, object] = field(default_factory=dict)
    throughput: list[ThroughputRun] = field(default_factory=list)
    idle: list[LatencyRun] = field(default_factory=list)
    #: The coarse sweep's points (``bench.runner.SWEEP``) up to its client's size.
    sweep: list[SweepPoint] = field(default_factory=list)
    rss_peaks: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: Why it did not run, if it did not.
    skipped: str = ""


async def run_throughput(
    peer: Peer, jobs: int, concurrency: int, cpu: CpuMeter | None = None
) -> ThroughputRun:
    """``bench.throughput.run_throughput`` for a peer: ``concurrency`` submitters, a poll
    every 100 ms for the chains not yet seen done."""
    run = ThroughputRun(jobs)
    fresh: list[str] = []
    every: list[str] = []
    issued = 0
    last_answer = 0.0

    async def submitter() -> None:
        nonlocal issued, last_answer
        while issued < jobs:
            issued += 1
            try:
                key = await peer.submit()
            except Exception as error:
                run.rejected += 1
                name = type(error).__name__
                run.errors[name] = run.errors.get(name, 0) + 1
                continue
            last_answer = time.perf_counter()
            fresh.append(key)
            every.append(key)

    before = cpu.snapshot() if cpu else None
    start = time.perf_counter()
    submitters = asyncio.gather(*(submitter() for _ in range(concurrency)))
    pending: set[str] = set()
    done = 0
    progress_at = start
    try:
        while True:
            await asyncio.sleep(POLL_S)
            pending.update(fresh)
            fresh.clear()
            if pending:
                finished = await peer.finished(pending)
                pending.difference_update(finished)
                done += len(finished)
                run.succeeded += sum(finished.values())
                if finished:
                    progress_at = time.perf_counter()
            now = time.perf_counter()
            run.timeline.append((now - start, len(every), done))
            if submitters.done() and not pending and not fresh:
                break
            peer.check()
            if now - progress_at > STALL_S:
                raise TimeoutError(f"{peer.name}: no chain finished for {STALL_S:g}s")
    finally:
        if not submitters.done():
            submitters.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await submitters
    run.seconds = time.perf_counter() - start
    if cpu and before:
        use = CpuMeter.delta(before, cpu.snapshot())
        run.cpu_s = use.procs
        run.foreign_cpu_s = use.foreign
    run.accepted = len(every)
    run.submit_seconds = last_answer - start
    return run


async def run_probes(peer: Peer, count: int) -> LatencyRun:
    """``count`` chains one at a time on an idle peer."""
    run = LatencyRun()
    for _ in range(count):
        run.probes.append(await peer.probe())
    return run


def probe(total_s: float, submit_s: float, succeeded: bool) -> Probe:
    """A peer's probe: the total and the submit call; the split by events is ours only."""
    nan = float("nan")
    return Probe(
        total_ms=total_s * 1000,
        create_ms=submit_s * 1000,
        pipeline_ms=nan,
        notify_ms=nan,
        succeeded=succeeded,
    )
