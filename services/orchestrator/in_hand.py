"""Which inputs may join a new batch while other batches are in hand.

An orchestrator lane decides and commits more than one batch at a time, so that the
inputs arriving while a batch waits for Postgres are decided meanwhile, not after it:
under load the write is most of a batch's time (4.7 ms of 7.9 in a throughput run here:
a round trip, the statement, the WAL flush, and on a busy box the wait for a core), and
a result that came just after a batch began waited for that batch's whole length and
then for its own.

Two batches in hand never hold the same job. An input on a job that a batch in hand
holds is *held* until that batch has committed and published its events, then goes
first, in the order it came, into the next batch. So a job's inputs are decided, and its
events published, in the order they came, as with one batch at a time; and a batch's
write never meets a job the other is writing, so neither is decided again for it. (A
job's inputs in one batch are decided in order there, as before.)
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class InHand(Generic[T]):
    """The jobs of the batches in hand, and the inputs held back for them."""

    def __init__(self, job_of: Callable[[T], uuid.UUID | None], batch_size: int) -> None:
        #: An input's job; ``None`` for one that holds none (an input that cannot be read).
        self._job_of = job_of
        self._batch_size = batch_size
        #: Each job held by a batch in hand (at most one batch a job).
        self._busy: Counter[uuid.UUID] = Counter()
        #: Inputs waiting for a batch in hand to finish, in the order they came, and
        #: their jobs.
        self._held: list[T] = []
        self._held_jobs: Counter[uuid.UUID] = Counter()

    def begin(self) -> list[T]:
        """A new batch: the held inputs whose jobs no batch in hand holds any more, in the
        order they came, up to the batch size (past it, all stay held: a job's later
        inputs must not go ahead of its earlier)."""
        batch: list[T] = []
        still: list[T] = []
        for item in self._held:
            if len(batch) < self._batch_size and self._job_of(item) not in self._busy:
                batch.append(item)
            else:
                still.append(item)
        self._held = still
        self._held_jobs = Counter(job for item in still if (job := self._job_of(item)) is not None)
        return batch

    def admit(self, batch: list[T], item: T) -> None:
        """``item`` into ``batch`` (being formed), or held if a batch in hand holds its
        job, or if an input on its job is held already."""
        job = self._job_of(item)
        if job is not None and (job in self._busy or job in self._held_jobs):
            self._held.append(item)
            self._held_jobs[job] += 1
        else:
            batch.append(item)

    def start(self, batch: Iterable[T]) -> frozenset[uuid.UUID]:
        """``batch`` is in hand now: its jobs, to give back to ``done``."""
        jobs = frozenset(job for item in batch if (job := self._job_of(item)) is not None)
        self._busy.update(jobs)
        return jobs

    def done(self, jobs: Iterable[uuid.UUID]) -> None:
        """A batch started with ``jobs`` has finished: their held inputs may go."""
        self._busy.subtract(jobs)
        self._busy += Counter()  # drops the jobs no batch holds

    def held(self) -> list[T]:
        """Every input still held (what a stopping lane gives back), and forget them."""
        held, self._held = self._held, []
        self._held_jobs.clear()
        return held

    @property
    def holding(self) -> bool:
        return bool(self._held)
