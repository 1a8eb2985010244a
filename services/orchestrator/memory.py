"""The jobs this orchestrator wrote last, as it wrote them: a batch whose jobs are all here
is decided without reading them from Postgres again.

Nothing here is trusted blindly. Every write names the version its decision was made
from, so a job that changed elsewhere (job_api's cancel, another replica's heartbeat)
fails the write whole (``store.StaleRead``), and the batch is decided again from Postgres
under row locks. What matters is that it is rarely stale: a job's results come back to
the orchestrator that handed its next step over (``ResultAnswer.result_subject``), so at
rest, on a step's critical path, the read round trip is gone; a new job's first result
needs none either, since job_api sends every replica the job as it created it
(``jobkit.snapshots``, ``seed``). Under load a batch holds many jobs, some not here, and
is read in one round trip as before.

The jobs sent by job_api are kept apart from those this replica wrote, in a smaller
store of their own: a deep backlog's new jobs, most of which will not start for a while,
push out each other, never the running jobs whose next results are on their way.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from jobkit.model import JobRecord

#: Jobs remembered at most, and their inputs' and outputs' bytes at most (a job can carry
#: a megabyte of input and every step's output); the least recently written go first.
DEFAULT_CAPACITY = 4096
DEFAULT_BYTES = 64 * 1024 * 1024
#: The same for the jobs job_api sent (``seed``), the oldest first out.
DEFAULT_SEEDS = 1024
DEFAULT_SEED_BYTES = 16 * 1024 * 1024


def _size(job: JobRecord) -> int:
    return len(job.input) + sum(len(s.output or b"") for s in job.steps)


class _Bounded:
    """Jobs by id, at most ``capacity`` of them and ``max_bytes`` of their inputs and
    outputs; the least recently put go first."""

    def __init__(self, capacity: int, max_bytes: int) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0
        self.jobs: OrderedDict[uuid.UUID, JobRecord] = OrderedDict()

    def put(self, job: JobRecord) -> None:
        self.drop(job.id)
        self.jobs[job.id] = job
        self.bytes += _size(job)
        while self.jobs and (len(self.jobs) > self.capacity or self.bytes > self.max_bytes):
            _, oldest = self.jobs.popitem(last=False)
            self.bytes -= _size(oldest)

    def drop(self, job_id: uuid.UUID) -> None:
        if (job := self.jobs.pop(job_id, None)) is not None:
            self.bytes -= _size(job)


class JobMemory:
    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        max_bytes: int = DEFAULT_BYTES,
        seeds: int = DEFAULT_SEEDS,
        seed_bytes: int = DEFAULT_SEED_BYTES,
    ) -> None:
        self._written = _Bounded(capacity, max_bytes)
        self._seeded = _Bounded(seeds, seed_bytes)

    def __len__(self) -> int:
        return len(self._written.jobs) + len(self._seeded.jobs)

    def recall(self, job_ids: Iterable[uuid.UUID]) -> Mapping[uuid.UUID, JobRecord] | None:
        """Every one of the jobs as last written, or ``None`` unless all are here."""
        jobs = {}
        for job_id in job_ids:
            job = self._written.jobs.get(job_id) or self._seeded.jobs.get(job_id)
            if job is None:
                return None
            jobs[job_id] = job
        return jobs

    def remember(self, jobs: Iterable[JobRecord]) -> None:
        """Jobs just committed, as committed; a finished job has nothing more to decide."""
        for job in jobs:
            self._seeded.drop(job.id)
            if job.status.terminal:
                self._written.drop(job.id)
            else:
                self._written.put(job)

    def seed(self, job: JobRecord) -> None:
        """A job as another process created it (``jobkit.snapshots``), unless this replica
        already has it: then what it has is its own later write."""
        if job.id not in self._written.jobs and not job.status.terminal:
            self._seeded.put(job)

    def forget(self, job_ids: Iterable[uuid.UUID]) -> None:
        """Jobs whose state here may be wrong: a write that failed, or whose outcome is
        unknown."""
        for job_id in job_ids:
            self._written.drop(job_id)
            self._seeded.drop(job_id)

    @property
    def bytes(self) -> int:
        """What the remembered jobs' inputs and outputs take."""
        return self._written.bytes + self._seeded.bytes
