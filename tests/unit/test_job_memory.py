"""The orchestrator's memory of the jobs it wrote last: all of a batch's jobs or none,
never a finished job, the least recently written forgotten first."""

from __future__ import annotations

from dataclasses import replace

from jobkit.lifecycle import JobStatus
from services.orchestrator.memory import JobMemory
from tests.unit.test_state_machine import new_job


def test_a_batch_is_recalled_whole_or_not_at_all() -> None:
    memory = JobMemory()
    one, two = new_job(), new_job()
    memory.remember([one])
    assert memory.recall([one.id]) == {one.id: one}
    assert memory.recall([one.id, two.id]) is None
    memory.remember([two])
    assert memory.recall([two.id, one.id]) == {one.id: one, two.id: two}


def test_a_later_write_replaces_an_earlier_and_a_finished_job_is_dropped() -> None:
    memory = JobMemory()
    job = new_job()
    memory.remember([job])
    running = replace(job, status=JobStatus.RUNNING, version=2)
    memory.remember([running])
    assert memory.recall([job.id]) == {job.id: running}
    memory.remember([replace(running, status=JobStatus.SUCCEEDED, version=3)])
    assert memory.recall([job.id]) is None
    assert len(memory) == 0


def test_the_least_recently_written_go_first_and_forgotten_jobs_are_read_again() -> None:
    memory = JobMemory(capacity=2)
    first, second, third = new_job(), new_job(), new_job()
    memory.remember([first, second])
    memory.remember([first])  # written again: now the most recent
    memory.remember([third])
    assert memory.recall([second.id]) is None
    assert memory.recall([first.id, third.id]) is not None
    memory.forget([first.id])
    assert memory.recall([first.id]) is None
    assert len(memory) == 1


def test_memory_is_bounded_by_the_bytes_of_inputs_and_outputs_too() -> None:
    memory = JobMemory(max_bytes=2500)
    big, small = replace(new_job(), input=b"x" * 2000), replace(new_job(), input=b"y" * 400)
    memory.remember([big, small])
    assert memory.bytes == 2400
    memory.remember([replace(big, version=2)])  # written again: counted once
    assert memory.bytes == 2400
    memory.remember([replace(new_job(), input=b"z" * 500)])  # over: the oldest goes
    assert memory.recall([small.id]) is None
    assert memory.recall([big.id]) is not None
    assert memory.bytes == 2500
    memory.forget([big.id])
    assert memory.bytes == 500


def test_a_seed_never_replaces_this_replica_s_own_write() -> None:
    memory = JobMemory()
    job = new_job()
    memory.seed(job)
    assert memory.recall([job.id]) == {job.id: job}
    # The replica wrote the job since (its first result): a late snapshot changes nothing.
    running = replace(job, status=JobStatus.RUNNING, version=2)
    memory.remember([running])
    memory.seed(job)
    assert memory.recall([job.id]) == {job.id: running}
    # Nor is a finished job brought back by one.
    done = new_job(status=JobStatus.CANCELLED)
    memory.seed(done)
    assert memory.recall([done.id]) is None


def test_a_backlog_s_seeds_never_push_out_the_jobs_this_replica_wrote() -> None:
    memory = JobMemory(capacity=3, seeds=2)
    running = [new_job(), new_job()]
    memory.remember(running)
    backlog = [new_job() for _ in range(5)]
    for job in backlog:
        memory.seed(job)
    assert memory.recall([j.id for j in running]) is not None
    # The seeds push out each other, the oldest first.
    assert memory.recall([j.id for j in backlog[-2:]]) is not None
    assert memory.recall([backlog[0].id]) is None
    # A seeded job this replica then writes moves to its own memory.
    started = replace(backlog[-1], status=JobStatus.RUNNING, version=2)
    memory.remember([started])
    assert memory.recall([started.id]) == {started.id: started}
    assert len(memory) == 3 + 1  # the started job moved, not copied
