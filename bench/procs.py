"""CPU time and resident memory of the stack's processes, and of the harness itself.

psutil ships no type information, so it is confined to this module and everything it
returns is converted to plain floats and ints here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psutil  # type: ignore[import-untyped]

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Watched:
    """A process we account for, by name.

    ``tree``: include its descendants (Postgres forks a backend per connection, plus its
    background workers), so the figure is the whole server's, not only the postmaster's.
    """

    name: str
    pid: int
    tree: bool = False


def _members(process: Any, tree: bool) -> list[Any]:
    if not tree:
        return [process]
    try:
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return [process]


def cpu_seconds(watched: Watched) -> float:
    """User + system CPU seconds the process (tree) has used so far.

    ``children_*`` hold the time of children that exited and were reaped (Postgres
    backends of closed connections), so a delta between two readings loses nothing when a
    backend comes or goes in between.
    """
    try:
        root = psutil.Process(watched.pid)
    except psutil.NoSuchProcess:
        return float("nan")
    total = 0.0
    for member in _members(root, watched.tree):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            t = member.cpu_times()
            total += float(t.user + t.system + t.children_user + t.children_system)
    return total


def harness_cpu_seconds() -> float:
    """This process's CPU (all its threads, gRPC's included); not py-spy's children."""
    t = psutil.Process(os.getpid()).cpu_times()
    return float(t.user + t.system)


class RssReader:
    """Resident memory of one watched process (tree), cheap enough to read every 100 ms.

    A tree's members are re-listed once a second, not on every read: listing children
    scans all of /proc. For a tree the shared pages (Postgres's shared_buffers, mapped by
    every backend) are counted once: the largest member's shared RSS plus every member's
    private RSS; a plain sum would count shared_buffers once per backend.
    """

    def __init__(self, watched: Watched) -> None:
        self.watched = watched
        self._root: Any = None
        self._members: list[Any] = []
        self._listed_at = 0.0

    def _refresh(self) -> None:
        now = time.monotonic()
        if self._root is not None and now - self._listed_at < 1.0:
            return
        self._listed_at = now
        try:
            if self._root is None:
                self._root = psutil.Process(self.watched.pid)
            self._members = _members(self._root, self.watched.tree)
        except psutil.NoSuchProcess:
            self._members = []

    def read(self) -> int:
        self._refresh()
        if not self.watched.tree:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, IndexError):
                return int(self._members[0].memory_info().rss)
            return 0
        private = 0
        shared = 0
        for member in self._members:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                info = member.memory_info()
                private += int(info.rss - info.shared)
                shared = max(shared, int(info.shared))
        return private + shared


@dataclass
class RssSampler:
    """Samples every watched process's RSS every ``interval_s`` for the whole benchmark."""

    watched: list[Watched]
    interval_s: float = 0.1
    samples: list[tuple[float, dict[str, int]]] = field(default_factory=list)

    async def run(self) -> None:
        readers = [RssReader(w) for w in self.watched]
        harness = psutil.Process(os.getpid())
        while True:
            reading = {r.watched.name: r.read() for r in readers}
            reading["harness"] = int(harness.memory_info().rss)
            self.samples.append((time.monotonic(), reading))
            await asyncio.sleep(self.interval_s)

    def peak(self, name: str, since: float = 0.0, until: float = float("inf")) -> int:
        """The largest RSS of ``name`` sampled between two ``time.monotonic()`` readings."""
        return max(
            (s.get(name, 0) for t, s in self.samples if since <= t <= until),
            default=0,
        )

    def peaks(self) -> dict[str, int]:
        names = {n for _, s in self.samples for n in s}
        return {n: self.peak(n) for n in sorted(names)}


def calibrate(iterations: int = 200_000, repeats: int = 3) -> float:
    """Milliseconds for a fixed pure-Python loop (the best of ``repeats``): how fast this
    CPU is right now. On a shared host the same vCPU can be much slower at times without any
    steal time showing; a run that found it slow has pessimistic figures."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        total = 0
        for i in range(iterations):
            total += i * i % 7
        best = min(best, time.perf_counter() - start)
    return best * 1000


def machine_busy_seconds() -> tuple[float, float]:
    """CPU seconds the whole machine has been busy (all CPUs, every process), and stolen
    by the hypervisor: to tell how much of a run's CPU was someone else's."""
    t = psutil.cpu_times()
    busy = float(t.user + t.nice + t.system + t.irq + t.softirq)
    return busy, float(getattr(t, "steal", 0.0))


async def machine_busy(into: list[tuple[float, float]], every_s: float) -> None:
    """Until cancelled: the machine's busy share of all its CPUs in each ``every_s``."""
    cpus = psutil.cpu_count() or 1
    busy, _ = machine_busy_seconds()
    start = time.time()
    while True:
        await asyncio.sleep(every_s)
        now_busy, _ = machine_busy_seconds()
        now = time.time()
        into.append((start, (now_busy - busy) / max(now - start, 1e-6) / cpus))
        busy, start = now_busy, now


@dataclass(frozen=True, slots=True)
class CpuReading:
    procs: dict[str, float]
    machine_busy: float
    steal: float
    at: float


@dataclass(frozen=True, slots=True)
class CpuUse:
    """CPU seconds between two readings: per process, and what nobody of ours used."""

    procs: dict[str, float]
    wall_s: float
    machine_busy: float
    steal: float

    @property
    def foreign(self) -> float:
        """Busy CPU seconds of processes that are not the stack's or the harness's:
        other people's work on this machine, which makes our figures look worse."""
        return max(0.0, self.machine_busy - sum(self.procs.values()))

    def foreign_pct(self, cpus: int) -> float:
        """``foreign`` as a share of the machine's capacity over the interval."""
        return 100 * self.foreign / (self.wall_s * cpus) if self.wall_s else 0.0


@dataclass
class CpuMeter:
    """CPU seconds of every watched process (and of the harness) between two moments."""

    watched: list[Watched]

    def snapshot(self) -> CpuReading:
        procs = {w.name: cpu_seconds(w) for w in self.watched}
        procs["harness"] = harness_cpu_seconds()
        busy, steal = machine_busy_seconds()
        return CpuReading(procs, busy, steal, time.monotonic())

    @staticmethod
    def delta(before: CpuReading, after: CpuReading) -> CpuUse:
        return CpuUse(
            procs={n: after.procs[n] - before.procs[n] for n in before.procs if n in after.procs},
            wall_s=after.at - before.at,
            machine_busy=after.machine_busy - before.machine_busy,
            steal=after.steal - before.steal,
        )

    async def wait_quiet(
        self, max_foreign_pct: float, timeout_s: float, cpus: int
    ) -> tuple[bool, float]:
        """Wait until others' CPU use over one second is below ``max_foreign_pct`` of the
        machine, or ``timeout_s``. Returns (quiet, the last second's foreign %)."""
        deadline = time.monotonic() + timeout_s
        while True:
            before = self.snapshot()
            await asyncio.sleep(1.0)
            pct = self.delta(before, self.snapshot()).foreign_pct(cpus)
            if pct <= max_foreign_pct or time.monotonic() >= deadline:
                return pct <= max_foreign_pct, pct


def iter_names(watched: list[Watched]) -> Iterator[str]:
    """Watched names, then the harness: the column order of the resource tables."""
    yield from (w.name for w in watched)
    yield "harness"
