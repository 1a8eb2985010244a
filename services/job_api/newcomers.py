"""Who is a newcomer while the fair dispatcher holds: an owner with at most
``NEWCOMER_UNFINISHED`` job queued or running, whose next job's first step takes the express
lane (``planning.expressed``).

At most one, not none: a user with one job running has nothing waiting for the
dispatcher, so their next job's turn would be the very next one; sent the queue's way it
would wait behind the window of steps already in JetStream instead, and a light user
whose first job is still running as the second comes (a CV job, then its cover letter;
or one job slowed by the flood around it) would see the second start a window late. A
flood cannot use the lane: a user with a backlog has two or more unfinished. Nor can a
user whose one job waits its turn in the ready queue (sent there while the lane was
full): their next job goes behind it, not ahead.

Telling takes a query (``limits.unfinished_at_least``), and while the dispatcher holds,
every CreateJob would ask it: a flood of one user's jobs paid a Postgres transaction a job
for an answer that stays "no newcomer" for the whole flood. A *yes, more unfinished than
a newcomer has* is kept here for a moment (``REMEMBER_S``) and trusted without asking
again. Trusting it a little past the moment one of that user's jobs finished costs at most
one job the express lane, a question of latency only: that job waits its fair turn in the
ready queue like any other, and is never lost or run twice. A *no* is never kept: a
newcomer is always asked about.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

#: The most jobs a newcomer has queued or running (the one it submits not counted).
NEWCOMER_UNFINISHED = 1
#: The fewest jobs queued or running that make a user no newcomer: what is counted up to.
PAST_NEWCOMER = NEWCOMER_UNFINISHED + 1
#: How long an owner seen with more unfinished is taken to still have as many. Short beside
#: a flood's CreateJob calls (a few a millisecond), long beside the query it saves.
REMEMBER_S = 0.1
#: Owners remembered at most; the least recently seen go first.
CAPACITY = 10_000


class Regulars:
    """Owners lately seen with more jobs queued or running than a newcomer has, each for
    ``remember_s``."""

    def __init__(
        self,
        remember_s: float = REMEMBER_S,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._remember_s = remember_s
        self._capacity = capacity
        self._clock = clock
        #: Owner -> when they were last seen with something unfinished, oldest first.
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def known(self, owner: str) -> bool:
        """Whether ``owner`` was seen with more unfinished within ``remember_s``."""
        seen_at = self._seen.get(owner)
        if seen_at is None:
            return False
        if self._clock() - seen_at < self._remember_s:
            return True
        del self._seen[owner]
        return False

    def seen(self, owner: str) -> None:
        """``owner`` has more jobs queued or running now than a newcomer has."""
        self._seen.pop(owner, None)
        self._seen[owner] = self._clock()
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
