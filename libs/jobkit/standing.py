"""Where an active job stands, from its steps: which may start, its status, its phase and
its progress (pure). The orchestrator's decisions and SubmitInput's both read a job this
way, so a job answered by a person and one advanced by a worker look the same.
"""

from __future__ import annotations

from datetime import datetime

from jobkit.catalog import JobTypeSpec, combined_phase
from jobkit.lifecycle import EventType, JobStatus, StepStatus, job_can_move
from jobkit.model import JobChange, JobRecord, NewEvent, StepRecord
from jobkit.records import replace

#: A step with an attempt on its way to a worker or running on one.
UNDER_WAY = (StepStatus.RUNNING, StepStatus.RETRYING)


def ready(job: JobRecord, spec: JobTypeSpec) -> list[int]:
    """The positions of the steps not started whose dependencies have all succeeded."""
    done = {s.position for s in job.steps if s.status is StepStatus.SUCCEEDED}
    return [
        s.position
        for s in job.steps
        if s.status is StepStatus.PENDING and set(spec.after(s.position)) <= done
    ]


def status(job: JobRecord) -> JobStatus:
    """An active job's status: waiting for input while one of its steps is."""
    waiting = any(s.status is StepStatus.WAITING_INPUT for s in job.steps)
    return JobStatus.WAITING_INPUT if waiting else JobStatus.RUNNING


def phase(job: JobRecord, spec: JobTypeSpec) -> str:
    """The phase of the steps under way, together; if none is, of those waiting for
    input (each step's ``waiting_phase``)."""
    running = [spec.steps[s.position].phase for s in job.steps if s.status in UNDER_WAY]
    if running:
        return combined_phase(running)
    waiting = [
        spec.steps[s.position].waiting_phase
        for s in job.steps
        if s.status is StepStatus.WAITING_INPUT
    ]
    return combined_phase(waiting) if waiting else job.phase


def progress(job: JobRecord, spec: JobTypeSpec) -> int:
    """The job's progress as its steps stand; never back (a new attempt starts at 0 %)."""
    percents = [100 if s.status is StepStatus.SUCCEEDED else s.percent for s in job.steps]
    return max(job.progress, spec.progress_of(percents))


def restated(job: JobRecord, spec: JobTypeSpec) -> JobRecord:
    """An active job with its status, progress and phase as its steps now stand."""
    return replace(job, status=status(job), progress=progress(job, spec), phase=phase(job, spec))


def step_event(job: JobRecord, kind: EventType, step: StepRecord, **fields: object) -> NewEvent:
    """An event about ``step`` of ``job``, showing the job as it stands after it."""
    return NewEvent(
        type=kind,
        status=job.status,
        progress=job.progress,
        phase=job.phase,
        step=step.name,
        attempt=step.attempt,
        **fields,  # type: ignore[arg-type]
    )


def finished(
    job: JobRecord, spec: JobTypeSpec, now: datetime, done: tuple[StepRecord, ...] = ()
) -> JobChange:
    """Every step has succeeded (the last of them ``done`` now, each with its
    ``STEP_SUCCEEDED``): so has the job, with its last step's output as its result."""
    assert job_can_move(job.status, JobStatus.SUCCEEDED)
    events = tuple(
        NewEvent(
            type=EventType.STEP_SUCCEEDED,
            status=JobStatus.RUNNING,
            progress=99,
            phase=job.phase,
            step=step.name,
            attempt=step.attempt,
        )
        for step in done
    )
    result = replace(
        job,
        status=JobStatus.SUCCEEDED,
        progress=100,
        phase=spec.done_phase,
        result=job.steps[-1].output,
        finished_at=now,
    )
    final = NewEvent(
        type=EventType.SUCCEEDED, status=JobStatus.SUCCEEDED, progress=100, phase=spec.done_phase
    )
    return JobChange(job=result, steps=done, events=(*events, final))
