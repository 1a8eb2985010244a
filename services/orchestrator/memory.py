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


def _size(job: JobRecord) -> int:
    return len(job.input) + sum(len(s.output or b"") for s in job.steps)


class JobMemory:
    def __init__(self, capacity: int = DEFAULT_CAPACITY, max_bytes: int = DEFAULT_BYTES) -> None:
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._bytes = 0
        self._jobs: OrderedDict[uuid.UUID, JobRecord] = OrderedDict()

    def __len__(self) -> int:
        return len(self._jobs)

    def recall(self, job_ids: Iterable[uuid.UUID]) -> Mapping[uuid.UUID, JobRecord] | None:
        """Every one of the jobs as last written here, or ``None`` unless all are here."""
        jobs = {}
        for job_id in job_ids:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            jobs[job_id] = job
        return jobs

    def remember(self, jobs: Iterable[JobRecord]) -> None:
        """Jobs just committed, as committed; a finished job has nothing more to decide."""
        for job in jobs:
            self._drop(job.id)
            if not job.status.terminal:
                self._jobs[job.id] = job
                self._bytes += _size(job)
        while self._jobs and (len(self._jobs) > self._capacity or self._bytes > self._max_bytes):
            _, oldest = self._jobs.popitem(last=False)
            self._bytes -= _size(oldest)

    def seed(self, job: JobRecord) -> None:
        """A job as another process created it (``jobkit.snapshots``), unless this replica
        already has it: then what it has is its own later write."""
        if job.id not in self._jobs and not job.status.terminal:
            self.remember([job])

    def forget(self, job_ids: Iterable[uuid.UUID]) -> None:
        """Jobs whose state here may be wrong: a write that failed, or whose outcome is
        unknown."""
        for job_id in job_ids:
            self._drop(job_id)

    @property
    def bytes(self) -> int:
        """What the remembered jobs' inputs and outputs take."""
        return self._bytes

    def _drop(self, job_id: uuid.UUID) -> None:
        if (job := self._jobs.pop(job_id, None)) is not None:
            self._bytes -= _size(job)
