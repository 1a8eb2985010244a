"""Where a committed step attempt goes: straight to JetStream, or into the ready queue.

While workers keep up, a step attempt goes through the outbox to JetStream at once, as it
always has: fairness costs the common case nothing. Once they are saturated (JetStream
holds a window's worth of attempts no worker has taken), the orchestrators' dispatchers
(``services/orchestrator/dispatcher.py``) say so on ``jobs.dispatch.mode``, and every
writer holds its step attempts in Postgres's ``ready_steps`` instead
(``store.apply_changes(hold_steps=...)``), for the dispatcher to release in fair order.

The word is advisory: a writer that has not heard it lately, or heard it late, publishes
straight away, which costs some fairness at the switch and never a job. A capped job's
start waits in the ready queue whatever the mode (``store``), since its cap is counted
where it is released.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from jobkit import bus
from jobkit.model import JobRecord

HELD = b"held"
OPEN = b"open"

#: A dispatcher repeats its word every second; a writer that has not heard one for this
#: long (no orchestrator running) goes back to publishing straight away.
_STALE_AFTER_S = 3.0


class DispatchGate:
    def __init__(self, nc: NatsClient) -> None:
        self._nc = nc
        self._held = False
        self._heard_at = float("-inf")

    async def follow(self) -> None:
        """Listen to the dispatchers' word from now on."""
        await self._nc.subscribe(bus.DISPATCH_MODE_SUBJECT, cb=self._on_mode)

    async def _on_mode(self, msg: Msg) -> None:
        self.heard(msg.data == HELD)

    def heard(self, held: bool) -> None:
        self._held = held
        self._heard_at = asyncio.get_running_loop().time()

    @property
    def held(self) -> bool:
        """Whether step attempts written now wait in the ready queue."""
        fresh = asyncio.get_running_loop().time() - self._heard_at < _STALE_AFTER_S
        return self._held and fresh

    async def committed(self, jobs: Iterable[JobRecord]) -> None:
        """After a commit that may have left ready rows (the gate was held, or a capped
        job was written: a new start, or one that ended and freed a turn under its cap),
        wake the dispatchers rather than leave the rows for their next round."""
        if self.held or any(job.concurrency_limit is not None for job in jobs):
            await self._nc.publish(bus.DISPATCH_WAKE_SUBJECT, b"")
