"""User-initiated transitions (cancel, retry), as pure decisions over a locked job.

job_api commits these itself, under the job's row lock, so CancelJob and RetryJob answer
with the job's new state instead of "requested"; the orchestrator serialises with them on
the same lock and its fencing ignores whatever the cancelled attempt reports later.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jobkit import bus, inputs, standing
from jobkit.catalog import Catalog, JobTypeSpec
from jobkit.convert import dict_to_struct
from jobkit.errors import FailedPrecondition, InvalidArgument
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.lifecycle import EventType, JobStatus, StepStatus, job_can_move
from jobkit.model import JobChange, JobRecord, NewEvent, OutboxMessage, StepRecord
from jobkit.records import replace

CANCELLED_PHASE = "Cancelled"
QUEUED_PHASE = "Queued"
FAILED_PHASE = "Failed"
#: The error code of a job whose deadline passed before it finished.
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
#: The error code of a job whose type's version (its step graph) this deployment no
#: longer has (``Catalog.version_gone``): nothing can decide its next step.
JOB_TYPE_VERSION_GONE = "JOB_TYPE_VERSION_GONE"


def version_gone_message(job_type: str, version: int) -> str:
    return (
        f"version {version} of job type {job_type} is no longer deployed: "
        "create a new job to run the current version"
    )


def submitted_message(job: JobRecord) -> OutboxMessage:
    """The outbox message that asks the orchestrator to start (or resume) a job."""
    return OutboxMessage(
        subject=bus.SUBMITTED_SUBJECT,
        # Unique per submission: a retried job is submitted again after more events.
        msg_id=f"{job.id}:submitted:{job.last_sequence}",
        payload=worker_pb2.JobSubmitted(job_id=str(job.id)).SerializeToString(),
        trace_context=job.trace_context,
    )


def cancel(job: JobRecord, now: datetime) -> JobChange | None:
    """Cancel a queued or running job; ``None`` if it is already cancelled."""
    if job.status is JobStatus.CANCELLED:
        return None
    if not job_can_move(job.status, JobStatus.CANCELLED):
        raise FailedPrecondition(f"a {job.status.value.lower()} job cannot be cancelled")
    return _end(job, now, JobStatus.CANCELLED, CANCELLED_PHASE, "cancelled by request")


def expire(job: JobRecord, now: datetime) -> JobChange | None:
    """Fail a queued or running job whose deadline has passed (``DEADLINE_EXCEEDED``): its
    running step is told to stop, as for a cancel. ``None`` if it is finished or in time."""
    if job.status.terminal or job.deadline_at is None or job.deadline_at > now:
        return None
    message = f"the job's deadline passed ({job.deadline_at.isoformat(timespec='seconds')})"
    return _end(job, now, JobStatus.FAILED, FAILED_PHASE, message, DEADLINE_EXCEEDED)


def retire(job: JobRecord, now: datetime) -> JobChange | None:
    """Fail a queued or running job whose type version is gone (``JOB_TYPE_VERSION_GONE``),
    its running step told to stop, as for a cancel. ``None`` if it is finished."""
    if job.status.terminal:
        return None
    message = version_gone_message(job.type, job.type_version)
    return _end(job, now, JobStatus.FAILED, FAILED_PHASE, message, JOB_TYPE_VERSION_GONE)


def _end(
    job: JobRecord,
    now: datetime,
    status: JobStatus,
    phase: str,
    message: str,
    error_code: str | None = None,
) -> JobChange:
    """The job ended now, CANCELLED or FAILED (with ``error_code``, which its stopped steps
    carry too); its running steps stopped, and their workers told. Its events: a failed
    job's stopped steps each get ``STEP_FAILED`` first, as a step that fails by itself does,
    so a client following the events sees them fail; then the job's own event."""
    step_status = StepStatus.CANCELLED if status is JobStatus.CANCELLED else StepStatus.FAILED
    error = (error_code, message) if error_code is not None else None
    steps, notices = stop_steps(job, now, step_status, error)
    ended = replace(job, status=status, phase=phase, finished_at=now, steps=with_steps(job, steps))
    if error_code is not None:
        ended = replace(ended, error_code=error_code, error_message=message)
    step_events = tuple(
        NewEvent(
            type=EventType.STEP_FAILED,
            status=job.status,
            progress=job.progress,
            phase=job.phase,
            step=s.name,
            attempt=s.attempt,
            message=message,
        )
        for s in steps
        if s.status is StepStatus.FAILED
    )
    event_type = EventType.CANCELLED if status is JobStatus.CANCELLED else EventType.FAILED
    event = NewEvent(
        type=event_type, status=status, progress=job.progress, phase=phase, message=message
    )
    return JobChange(job=ended, steps=steps, events=(*step_events, event), notices=notices)


#: The steps a job that ends stops: those under way, and those waiting for input.
_STOPPABLE = (StepStatus.RUNNING, StepStatus.RETRYING, StepStatus.WAITING_INPUT)


def stop_steps(
    job: JobRecord, now: datetime, status: StepStatus, error: tuple[str, str] | None = None
) -> tuple[tuple[StepRecord, ...], tuple[OutboxMessage, ...]]:
    """The steps a job that ends now stops (as ``status``): every one running, retrying
    or waiting for input; and the notices that tell their workers to stop."""
    steps: tuple[StepRecord, ...]
    if (queued := job.queued_attempt) is not None:
        # Its attempt may be with a worker already: stop it, and count it as used, so a
        # resumed job dispatches a new one (JetStream drops a repeated message id), and as
        # outside any run, so it takes nothing from the retry budget.
        step, attempt = queued
        used = replace(step, attempt=attempt, retry_base=attempt)
        active, steps = [used], (used,)
    else:
        stopping = [s for s in job.steps if s.status in _STOPPABLE]
        stopped = [
            replace(s, status=status, lease_expires_at=None, finished_at=now, input_request=None)
            for s in stopping
        ]
        if error is not None:
            stopped = [replace(s, error_code=error[0], error_message=error[1]) for s in stopped]
        steps = tuple(stopped)
        # A step waiting for input has no worker to tell.
        active = [s for s in stopping if s.status is not StepStatus.WAITING_INPUT]
    notices = tuple(
        OutboxMessage(
            subject=bus.CANCEL_SUBJECT,
            msg_id=f"{job.id}:{s.name}:{s.attempt}:cancel",
            payload=worker_pb2.CancelStep(
                job_id=str(job.id), step=s.name, attempt=s.attempt
            ).SerializeToString(),
        )
        for s in active
    )
    return steps, notices


def with_steps(job: JobRecord, changed: tuple[StepRecord, ...]) -> tuple[StepRecord, ...]:
    by_position = {s.position: s for s in changed}
    return tuple(by_position.get(s.position, s) for s in job.steps)


def retry(job: JobRecord, now: datetime, catalog: Catalog | None = None) -> JobChange:
    """Resume a FAILED or CANCELLED job from its last checkpoint, with fresh attempts.
    With ``catalog`` (the deployed types), refused for a job whose type version is gone:
    nothing could run its steps, and the orchestrator would fail it again at once."""
    if catalog is not None and catalog.version_gone(job.type, job.type_version):
        raise FailedPrecondition(version_gone_message(job.type, job.type_version))
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise FailedPrecondition(
            f"only failed or cancelled jobs can be retried; this one is {job.status.value.lower()}"
        )
    if job.deadline_at is not None and job.deadline_at <= now:
        raise FailedPrecondition("the job's deadline has passed: create a new job instead")
    steps = tuple(
        replace(
            s,
            status=StepStatus.PENDING,
            retry_base=s.attempt,
            error_code=None,
            error_message=None,
            lease_expires_at=None,
            finished_at=None,
        )
        for s in job.steps
        if s.status is not StepStatus.SUCCEEDED and s.status is not StepStatus.PENDING
    )
    by_position = {s.position: s for s in steps}
    resumed = replace(
        job,
        status=JobStatus.QUEUED,
        phase=QUEUED_PHASE,
        error_code=None,
        error_message=None,
        finished_at=None,
        steps=tuple(by_position.get(s.position, s) for s in job.steps),
    )
    resume_from = next((s.name for s in resumed.steps if s.status is StepStatus.PENDING), "")
    event = NewEvent(
        type=EventType.STEP_RETRYING,
        status=JobStatus.QUEUED,
        progress=job.progress,
        phase=QUEUED_PHASE,
        step=resume_from,
        message="retry requested: resuming from the last checkpoint",
    )
    # The submission's msg_id must differ from earlier ones: count the retry event in.
    submission = submitted_message(replace(resumed, last_sequence=job.last_sequence + 1))
    return JobChange(job=resumed, steps=steps, events=(event,), outbox=(submission,))


def answer(
    job: JobRecord,
    spec: JobTypeSpec,
    step_name: str,
    document: Mapping[str, Any],
    now: datetime,
) -> JobChange:
    """SubmitInput: the answer ``document`` to step ``step_name``'s request for input,
    applied to the request's draft (``inputs.answered``), becomes the step's checkpoint,
    and the job is submitted again for the orchestrator to start what the answer made
    ready. Refused (changing nothing) if the step is not waiting, or the answer breaks its
    schema."""
    step = job.step_named(step_name)
    if step is None:
        names = ", ".join(s.name for s in job.steps)
        raise InvalidArgument.on("step", f"must be a step of the job: {names}")
    if step.status is not StepStatus.WAITING_INPUT or step.input_request is None:
        raise FailedPrecondition(
            f"step {step_name} is not waiting for input (it is {step.status.value.lower()})"
        )
    expires_at = step.input_request.expires_at
    if expires_at is not None and expires_at <= now:
        until = expires_at.isoformat(timespec="seconds")
        raise FailedPrecondition(f"step {step_name} waited for input until {until}: too late")
    violations = inputs.violations(step.input_request, document)
    if violations:
        first = violations[0]
        raise InvalidArgument(f"{first.field} {first.description}", violations)
    checkpoint = dict_to_struct(inputs.answered(step.input_request, document))
    answered = replace(
        step,
        status=StepStatus.SUCCEEDED,
        output=checkpoint.SerializeToString(),
        lease_expires_at=None,
        finished_at=now,
        input_request=None,
        percent=100,
    )
    resumed = replace(job, steps=with_steps(job, (answered,)))
    if all(s.status is StepStatus.SUCCEEDED for s in resumed.steps):
        # It was the last step: the job is done now, with nothing left to start.
        ended = standing.finished(replace(resumed, status=JobStatus.RUNNING), spec, now)
        answered_event = replace(
            standing.step_event(ended.job, EventType.STEP_SUCCEEDED, answered, message="answered"),
            status=JobStatus.RUNNING,
            progress=99,
            phase=job.phase,
        )
        return replace(ended, steps=(answered,), events=(answered_event, *ended.events))
    resumed = standing.restated(resumed, spec)
    event = standing.step_event(resumed, EventType.STEP_SUCCEEDED, answered, message="answered")
    # Its msg_id must differ from earlier submissions': count this event in.
    submission = submitted_message(replace(resumed, last_sequence=job.last_sequence + 1))
    return JobChange(job=resumed, steps=(answered,), events=(event,), outbox=(submission,))
