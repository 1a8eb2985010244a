"""Load shedding at job_api's door: a bound on the CreateJob calls in progress at once.

Past the bound a call is answered at once with RESOURCE_EXHAUSTED and a ``RetryInfo``
(429 with ``Retry-After`` through the gateway) instead of joining the queue for a
database connection: under overload the callers that get in keep their latency, and the
others learn at once when to come back, rather than every call waiting longer and longer.
Per-user backlogs are bounded separately, in Postgres (``MAX_RUNNING_JOBS_PER_USER``), and
the whole queue by ``MAX_BACKLOG`` (``refuse_past_backlog``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from jobkit import metrics
from jobkit.dispatch_gate import Word
from jobkit.errors import ResourceExhausted

#: What a refused caller is told to wait: long enough for the calls ahead of it to finish.
RETRY_AFTER_S = 1.0


class Admission:
    """At most ``limit`` calls inside ``admit()`` at once, in this process (0: no bound)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    @contextmanager
    def admit(self) -> Iterator[None]:
        if self.limit and self.in_flight >= self.limit:
            metrics.CREATES_SHED.labels("in_flight").inc()
            raise ResourceExhausted(
                f"job_api is at capacity ({self.limit} job creations in progress)",
                retry_after_s=RETRY_AFTER_S,
            )
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1


#: Bounds on when a caller refused for a full queue is told to come back.
_BACKLOG_RETRY_S = (1.0, 60.0)


def refuse_past_backlog(word: Word, limit: int) -> None:
    """Refuse a new job while ``limit`` or more step attempts wait for a worker (0: no
    bound), as the dispatchers last said. The caller is told to come back when, at the
    rate the queue has been draining, it is down to half the bound."""
    if not limit or word.backlog < limit:
        return
    metrics.CREATES_SHED.labels("backlog").inc()
    drain_s = (word.backlog - limit / 2) / word.drain_per_s if word.drain_per_s > 0 else 60.0
    low, high = _BACKLOG_RETRY_S
    raise ResourceExhausted(
        f"the queue is full: {word.backlog} steps wait for a worker (at most {limit})",
        retry_after_s=round(min(max(drain_s, low), high), 1),
    )
