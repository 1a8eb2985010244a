"""Load shedding at job_api's door: a bound on the CreateJob calls in progress at once.

Past the bound a call is answered at once with RESOURCE_EXHAUSTED and a ``RetryInfo``
(429 with ``Retry-After`` through the gateway) instead of joining the queue for a
database connection: under overload the callers that get in keep their latency, and the
others learn at once when to come back, rather than every call waiting longer and longer.
Per-user backlogs are bounded separately, in Postgres (``MAX_RUNNING_JOBS_PER_USER``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from jobkit import metrics
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
            metrics.CREATES_SHED.inc()
            raise ResourceExhausted(
                f"job_api is at capacity ({self.limit} job creations in progress)",
                retry_after_s=RETRY_AFTER_S,
            )
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
