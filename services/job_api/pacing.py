"""How fast bulk operations (BulkRetryJobs, BulkCancelJobs) change jobs on this replica.

A token bucket with debt: a slice of ``n`` jobs takes ``n`` tokens; when the bucket runs
short, the caller waits until the debt is paid back at ``rate`` tokens a second. Calls
queue behind each other (the lock is held through the wait), so however many operators
run bulk operations at once, one replica changes at most about ``rate`` jobs a second
(plus one second's burst), and the workers see a steady trickle rather than a flood.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class Pacer:
    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._rate = rate
        self._clock = clock
        self._sleep = sleep
        #: Tokens in the bucket (negative: owed); at most one second's worth.
        self._tokens = rate
        self._at = clock()
        self._lock = asyncio.Lock()

    async def take(self, n: int) -> float:
        """Take ``n`` tokens, waiting until they are paid for; returns how long it waited."""
        async with self._lock:
            now = self._clock()
            self._tokens = min(self._rate, self._tokens + (now - self._at) * self._rate)
            self._at = now
            self._tokens -= n
            if self._tokens >= 0:
                return 0.0
            wait_s = -self._tokens / self._rate
            await self._sleep(wait_s)
            return wait_s
