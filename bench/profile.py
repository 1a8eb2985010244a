"""Where the services' time goes during a throughput run: ``py-spy record`` on each
service process (``--nonblocking``: the target is never paused), in py-spy's raw
collapsed-stack format, summarised as the frames most often on top of the stack (self
time) and most often anywhere on it (inclusive time).

py-spy leaves out samples of idle threads, so an event loop waiting in ``epoll`` does not
count: ``busy_pct`` is the share of samples in which the process was doing something.
py-spy is not a dependency of the project; without it on PATH this is skipped.

Postgres is profiled by statement instead: a profiled benchmark's stack loads
``pg_stat_statements`` with tracking off, and the profiled run turns it on for its length
(``statement_costs``), so each kind of statement's calls and executor time a job are
shown. It keeps statements with their parameters as ``$1``, never their values.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, fields
from pathlib import Path

import asyncpg

from devstack.servers import STATEMENT_STATS
from jobkit.sql import queries

SAMPLE_RATE = 100

_LINE_NUMBER = re.compile(r":\d+\)$")


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@dataclass
class Profile:
    name: str
    samples: int = 0
    seconds: float = 0.0
    self_frames: list[tuple[str, int]] = field(default_factory=list)
    inclusive_frames: list[tuple[str, int]] = field(default_factory=list)
    error: str = ""

    @property
    def busy_pct(self) -> float:
        expected = self.seconds * SAMPLE_RATE
        return 100 * self.samples / expected if expected else 0.0

    def as_json(self, top: int = 25) -> dict[str, object]:
        return {
            "samples": self.samples,
            "seconds": self.seconds,
            "busy_pct": self.busy_pct,
            "self": [{"frame": f, "samples": n} for f, n in self.self_frames[:top]],
            "inclusive": [{"frame": f, "samples": n} for f, n in self.inclusive_frames[:top]],
            "error": self.error,
        }


def summarise(name: str, raw: str, seconds: float) -> Profile:
    """Collapsed stacks ("f1;f2;...;leaf COUNT" per line) -> top self and inclusive frames,
    by function and file (line numbers dropped, so one function is one entry)."""
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_LINE_NUMBER.sub(")", f) for f in stack.split(";")]
        # The first frames name the process and thread when py-spy adds them.
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return Profile(
        name,
        samples=total,
        seconds=seconds,
        self_frames=self_counts.most_common(),
        inclusive_frames=inclusive.most_common(),
    )


async def record(binary: str, name: str, pid: int, seconds: int, out_dir: Path) -> Profile:
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    output = out_dir / f"{name}.collapsed.txt"
    command = [
        binary,
        "record",
        "--nonblocking",
        "--format",
        "raw",
        "--rate",
        str(SAMPLE_RATE),
        "--duration",
        str(seconds),
        "--pid",
        str(pid),
        "--output",
        str(output),
    ]
    # subprocess.run from a thread, not asyncio's subprocesses: those fork the harness,
    # whose gRPC threads then log fork warnings; subprocess spawns without a fork.
    done = await asyncio.to_thread(
        subprocess.run,
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    if done.returncode != 0 or not output.exists():
        return Profile(name, error=done.stderr.decode(errors="replace").strip()[-500:])
    return summarise(name, await asyncio.to_thread(output.read_text), float(seconds))


@dataclass(frozen=True, slots=True)
class StatementCost:
    """One kind of statement over a profiled run: how often it ran, and how long Postgres
    spent planning and executing it (not the commit's wait for the WAL flush)."""

    query: str
    calls: int
    ms: float
    rows: int

    def as_json(self) -> dict[str, object]:
        return {"query": self.query, "calls": self.calls, "ms": self.ms, "rows": self.rows}


@contextlib.asynccontextmanager
async def statement_costs(
    pg: asyncpg.Connection, top: int = 12
) -> AsyncIterator[list[StatementCost]]:
    """Track every statement the services run while the block runs; the list is filled
    with the ``top`` costliest when it ends (left empty where ``pg_stat_statements`` is
    not loaded). ``pg`` must be a superuser's connection."""
    costs: list[StatementCost] = []
    loaded = await pg.fetchval("SELECT current_setting('shared_preload_libraries')")
    if STATEMENT_STATS not in (name.strip() for name in loaded.split(",")):
        yield costs  # an ordinary stack's: nothing to read, nothing changed
        return
    try:
        await pg.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await _track(pg, "top")
        await pg.execute("SELECT pg_stat_statements_reset()")
    except asyncpg.PostgresError:
        yield costs
        return
    try:
        yield costs
        rows = await pg.fetch(_COSTLIEST, top)
        costs += [StatementCost(name_of(r["query"]), r["calls"], r["ms"], r["rows"]) for r in rows]
    finally:
        await _track(pg, "none")


#: This database's statements, the costliest first; the profile's own left out.
_COSTLIEST = """
SELECT query, calls, total_exec_time + total_plan_time AS ms, rows
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND query NOT LIKE '%pg_stat_statements%'
ORDER BY ms DESC
LIMIT $1
"""


def name_of(statement: str) -> str:
    """A statement as Postgres keeps it, by its name in ``jobkit.sql`` if it is one of
    those (constants there and parameters match either way), else its first words."""
    return _NAMES.get(_shape(statement)) or " ".join(_COMMENT.sub("", statement).split())[:120]


_COMMENT = re.compile(r"--[^\n]*")
_CONSTANT = re.compile(r"'(?:[^']|'')*'|\$\d+|\b\d+\b|\b(?:true|false)\b", re.IGNORECASE)


def _shape(statement: str) -> str:
    """What is left of a statement without comments, whitespace and constants."""
    return "".join(_CONSTANT.sub("?", _COMMENT.sub("", statement)).split())


_NAMES = {_shape(getattr(queries, f.name)): f.name for f in fields(queries)}


#: Backends take a reload between their statements, a moment after it is asked for.
_RELOAD_S = 0.2


async def _track(pg: asyncpg.Connection, which: str) -> None:
    """Every backend tracks ``which`` statements (a reload), from a moment later."""
    await pg.execute(f"ALTER SYSTEM SET {STATEMENT_STATS}.track = '{which}'")
    await pg.execute("SELECT pg_reload_conf()")
    await asyncio.sleep(_RELOAD_S)
