"""How late the machine wakes a sleeping process: the delay every hop of a job meets.

A job's path wakes a process at each hop (job_api, nats-server, a worker, an orchestrator,
Postgres, the notifier, the client). On a 2-core box that others share, a process woken
while both cores are busy waits for one, and that wait, not any one service, sets a
latency's tail: a few such stalls make a p99. ``probe()`` runs a process of its own
beside a measurement that sleeps 1 ms at a time and notes how much longer each sleep took
(``python -m bench.wakeups``: it prints its samples, in µs, when its stdin closes), so the
report can show the machine's own delays beside the figures they inflate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from bench.stats import finite, percentile

#: Each sleep asks for this long.
SLEEP_S = 0.001


@dataclass
class Wakeups:
    """The probe's oversleeps, ms, in the order they happened (filled once it ends)."""

    late_ms: list[float] = field(default_factory=list)
    #: The probe's process, while it runs.
    pid: int = 0

    def p(self, q: float) -> float:
        return percentile(self.late_ms, q)

    @property
    def worst_ms(self) -> float:
        return max(self.late_ms, default=float("nan"))

    def over(self, ms: float) -> int:
        """Wake-ups later than ``ms``."""
        return sum(1 for x in self.late_ms if x > ms)

    @property
    def seconds(self) -> float:
        """How long the probe slept, lateness included: the time its samples span."""
        return len(self.late_ms) * SLEEP_S + sum(self.late_ms) / 1000

    def over_per_s(self, ms: float) -> float:
        """Wake-ups later than ``ms`` a second of the probe's span (NaN without samples)."""
        return self.over(ms) / self.seconds if self.late_ms else float("nan")

    def as_json(self) -> dict[str, object]:
        return {
            "sleep_ms": SLEEP_S * 1000,
            "samples": len(self.late_ms),
            "late_ms_p50": finite(self.p(50)),
            "late_ms_p99": finite(self.p(99)),
            "late_ms_max": finite(self.worst_ms),
            "late_over_5ms": self.over(5),
        }


@contextlib.asynccontextmanager
async def probe() -> AsyncIterator[Wakeups]:
    """A probe process for the block's length; its samples are in the result once the
    block has ended."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.wakeups",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    found = Wakeups(pid=proc.pid)
    try:
        assert proc.stdout is not None
        assert proc.stdin is not None
        if await asyncio.wait_for(proc.stdout.readline(), 30) != b"ready\n":
            raise RuntimeError("the wake-up probe did not start")
        yield found
        proc.stdin.close()
        found.late_ms = [us / 1000 for us in json.loads(await proc.stdout.read())]
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def sleep_until_told(stop: threading.Event) -> Sequence[int]:
    """Sleep ``SLEEP_S`` at a time until ``stop``; each sleep's excess, µs."""
    late: list[int] = []
    while not stop.is_set():
        began = time.perf_counter_ns()
        time.sleep(SLEEP_S)
        late.append(max(0, (time.perf_counter_ns() - began) // 1000 - int(SLEEP_S * 1e6)))
    return late


def main() -> None:
    stop = threading.Event()

    def until_stdin_closes() -> None:
        sys.stdin.read()
        stop.set()

    # Stdin's end is read in a thread of its own, so the sleeper's only work is sleeping.
    threading.Thread(target=until_stdin_closes, daemon=True).start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    late = sleep_until_told(stop)
    sys.stdout.write(json.dumps(late))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
