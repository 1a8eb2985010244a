"""Who is a newcomer while the fair dispatcher holds: an owner with nothing of theirs
queued or running, whose first step takes the express lane (``planning.expressed``).

Telling takes a query (``limits.any_unfinished``), and while the dispatcher holds, every
CreateJob would ask it: a flood of one user's jobs paid a Postgres transaction a job for
an answer that stays "no newcomer" for the whole flood. A *yes, something unfinished* is
kept here for a moment (``REMEMBER_S``) and trusted without asking again. Trusting it a
little past the moment that user's last job finished costs at most one job the express
lane, a question of latency only: that job waits its fair turn in the ready queue like
any other, and is never lost or run twice. A *no* is never kept: a newcomer is always
asked about.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

#: How long an owner seen with a job unfinished is taken to still have one. Short beside
#: a flood's CreateJob calls (a few a millisecond), long beside the query it saves.
REMEMBER_S = 0.1
#: Owners remembered at most; the least recently seen go first.
CAPACITY = 10_000


class Regulars:
    """Owners lately seen with a job queued or running, each for ``remember_s``."""

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
        """Whether ``owner`` was seen with something unfinished within ``remember_s``."""
        seen_at = self._seen.get(owner)
        if seen_at is None:
            return False
        if self._clock() - seen_at < self._remember_s:
            return True
        del self._seen[owner]
        return False

    def seen(self, owner: str) -> None:
        """``owner`` has a job queued or running now."""
        self._seen.pop(owner, None)
        self._seen[owner] = self._clock()
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
