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
import json
from collections.abc import Iterable
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from jobkit import bus
from jobkit.model import JobRecord


@dataclass(frozen=True, slots=True)
class Word:
    """What a dispatcher says each round it decides: whether writers hold their step
    attempts, how many attempts wait in the ready queue, and how fast it has been draining
    (attempts released a second), from which job_api tells a caller refused for a full
    queue when to come back; and how many newcomers' first steps wait in the express lane
    for a slot (``express_waiting``): while any do, the lane is no faster than a turn."""

    held: bool
    backlog: int = 0
    drain_per_s: float = 0.0
    express_waiting: int = 0

    def encode(self) -> bytes:
        return json.dumps(
            {
                "held": self.held,
                "backlog": self.backlog,
                "drain_per_s": round(self.drain_per_s, 1),
                "express_waiting": self.express_waiting,
            }
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> Word:
        said = json.loads(data)
        return cls(
            bool(said["held"]),
            int(said["backlog"]),
            float(said["drain_per_s"]),
            # Not said by a dispatcher of an earlier release.
            int(said.get("express_waiting", 0)),
        )

    @property
    def express_open(self) -> bool:
        """Whether a newcomer's first step should take the express lane: none wait in it.
        When many users come at once (a thousand users' first jobs), their first steps
        would queue there, first in, first out, behind the few express slots, while the
        ready queue would give each a turn at every slot; so past the lane's slots they
        wait their turn like anyone's."""
        return self.express_waiting == 0


#: A dispatcher repeats its word every second; a writer that has not heard one for this
#: long (no orchestrator running) goes back to publishing straight away.
_STALE_AFTER_S = 3.0


class DispatchGate:
    def __init__(self, nc: NatsClient) -> None:
        self._nc = nc
        self._word = Word(held=False)
        self._heard_at = float("-inf")

    async def follow(self) -> None:
        """Listen to the dispatchers' word from now on."""
        await self._nc.subscribe(bus.DISPATCH_MODE_SUBJECT, cb=self._on_mode)

    async def _on_mode(self, msg: Msg) -> None:
        try:
            word = Word.decode(msg.data)
        except (ValueError, KeyError, TypeError):
            return  # not a word this release understands
        self.heard(word)

    def heard(self, word: Word) -> None:
        self._word = word
        self._heard_at = asyncio.get_running_loop().time()

    @property
    def word(self) -> Word:
        """The last word, if fresh; else the open gate of a system no dispatcher runs."""
        if asyncio.get_running_loop().time() - self._heard_at < _STALE_AFTER_S:
            return self._word
        return Word(held=False)

    @property
    def held(self) -> bool:
        """Whether step attempts written now wait in the ready queue."""
        return self.word.held

    async def committed(self, jobs: Iterable[JobRecord], *, frees_slots: bool = True) -> None:
        """After a commit that may let the dispatchers release more (``frees_slots``: it
        ended steps while the gate holds, so workers may be free; or it wrote a capped
        job: a start, or one that ended and freed a turn under its cap), wake them rather
        than leave it for their next round. A new job held behind a full window needs no
        wake-up: nothing could take it sooner."""
        if (frees_slots and self.held) or any(j.concurrency_limit is not None for j in jobs):
            await self._nc.publish(bus.DISPATCH_WAKE_SUBJECT, b"")
