"""Job and step statuses and the legal transitions between them (pure, no I/O).

Every writer of job state — the orchestrator for progress, job_api for cancel and retry —
checks its change against this table while holding the job's row lock.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    #: A step asked a person for input; no worker is held while the job waits.
    WAITING_INPUT = "WAITING_INPUT"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_JOB_STATUSES

    @property
    def active(self) -> bool:
        """Started and not finished: its steps may run, wait, and be stopped."""
        return self in (JobStatus.RUNNING, JobStatus.WAITING_INPUT)


class StepStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    #: Its handler asked for input; the answer (SubmitInput) becomes its checkpoint.
    WAITING_INPUT = "WAITING_INPUT"


class EventType(StrEnum):
    CREATED = "CREATED"
    STEP_STARTED = "STEP_STARTED"
    PROGRESS = "PROGRESS"
    STEP_SUCCEEDED = "STEP_SUCCEEDED"
    STEP_RETRYING = "STEP_RETRYING"
    STEP_FAILED = "STEP_FAILED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    INPUT_REQUIRED = "INPUT_REQUIRED"

    @property
    def terminal(self) -> bool:
        return self in (EventType.SUCCEEDED, EventType.FAILED, EventType.CANCELLED)


TERMINAL_JOB_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

#: from-status -> the statuses it may move to.
JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    # Started by the orchestrator, or cancelled before it got to it.
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset(
        {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.WAITING_INPUT}
    ),
    # An answer resumes it; a failing branch, its deadline or a cancel ends it.
    JobStatus.WAITING_INPUT: frozenset({JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.SUCCEEDED: frozenset(),
    # RetryJob resumes from the last checkpoint.
    JobStatus.FAILED: frozenset({JobStatus.QUEUED}),
    JobStatus.CANCELLED: frozenset({JobStatus.QUEUED}),
}

STEP_TRANSITIONS: dict[StepStatus, frozenset[StepStatus]] = {
    StepStatus.PENDING: frozenset({StepStatus.RUNNING, StepStatus.CANCELLED}),
    StepStatus.RUNNING: frozenset(
        {
            StepStatus.SUCCEEDED,
            StepStatus.RETRYING,
            StepStatus.FAILED,
            StepStatus.CANCELLED,
            # A lost attempt (lease expired) is dispatched again as the next attempt.
            StepStatus.RUNNING,
            StepStatus.WAITING_INPUT,
        }
    ),
    # Answered (the answer is its checkpoint), timed out, or stopped with its job.
    StepStatus.WAITING_INPUT: frozenset(
        {StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.CANCELLED}
    ),
    StepStatus.RETRYING: frozenset({StepStatus.RUNNING, StepStatus.CANCELLED}),
    StepStatus.SUCCEEDED: frozenset(),
    StepStatus.FAILED: frozenset({StepStatus.PENDING}),
    StepStatus.CANCELLED: frozenset({StepStatus.PENDING}),
}


def job_can_move(current: JobStatus, target: JobStatus) -> bool:
    return target in JOB_TRANSITIONS[current]


def step_can_move(current: StepStatus, target: StepStatus) -> bool:
    return target in STEP_TRANSITIONS[current]
