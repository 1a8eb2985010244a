"""The orchestrator's decisions, as pure functions of a job and what just happened.

No grpc, asyncpg or nats here: given the locked ``JobRecord`` and an input (the job was
submitted, a worker reported on a step), each function returns the ``Decision`` to
commit, or ``Ignored`` with the reason when the input is stale. Fencing lives here: a
report counts only for the attempt currently running, of a job still running, so a
duplicate, late or redelivered report can never commit a checkpoint twice.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from jobkit.catalog import JobTypeSpec, StepSpec
from jobkit.lifecycle import EventType, JobStatus, StepStatus, job_can_move, step_can_move
from jobkit.model import JobChange, JobRecord, NewEvent, NewJob, StepRecord, StepUsage


class ReportKind(StrEnum):
    PROGRESS = "progress"
    HEARTBEAT = "heartbeat"
    #: A long step's own progress marker (``StepCursor``), kept for its next attempt.
    CURSOR = "cursor"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: Not from a worker: the orchestrator's scan found the attempt's lease expired.
    LEASE_EXPIRED = "lease_expired"


#: How long an attempt stays leased after a sign of life from its worker, unless set.
DEFAULT_LEASE_S = 20.0


@dataclass(frozen=True, slots=True)
class StepReport:
    """A worker's word on one attempt of one step (decoded from the wire by the consumer)."""

    job_id: uuid.UUID
    step: str
    attempt: int
    kind: ReportKind
    #: PROGRESS: where the step is; SUCCEEDED: the attempt's last progress report, which
    #: the result may have overtaken (``_succeeded`` applies it first if it is news).
    percent: int = 0
    phase: str = ""
    output: bytes | None = None
    error_code: str = ""
    error_message: str = ""
    retryable: bool = False
    #: The worker's floor on the retry delay (a rate-limited model's ``Retry-After``).
    retry_after_s: float | None = None
    #: PROGRESS of a step streaming text: everything the attempt has written so far.
    partial_output: str = ""
    #: With a result: the model tokens the attempt used (``StepUsage`` without a cost).
    usage: tuple[StepUsage, ...] = ()
    #: With a success: the worker can run the job's next step at once (``Dispatch.handed``).
    take_next: bool = False
    #: CURSOR: the marker, a serialized Struct.
    cursor: bytes | None = None
    #: CURSOR: the jobs the step creates with it (``batching`` plans them).
    children: tuple[ChildRequest, ...] = ()


@dataclass(frozen=True, slots=True)
class ChildRequest:
    """A job a step asks to create with its cursor (a bulk_import's row)."""

    job_type: str
    #: Serialized deterministically, as CreateJob stores an input.
    input: bytes
    #: The same input as a document, for the job type's schema.
    document: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Submitted:
    """A job to start: one RetryJob resumed, or one job_api submitted instead of
    dispatching its first step itself (``DISPATCH_FIRST_STEP=0``)."""

    job_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class DeadlinePassed:
    """Not from a worker: the orchestrator's scan found the job's deadline passed."""

    job_id: uuid.UUID


#: What arrives over NATS: a submission or a report on a step.
Message = Submitted | StepReport
#: What the orchestrator decides on: those, and a deadline its scan found passed.
Input = Message | DeadlinePassed


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Send attempt ``attempt`` of ``step`` to the workers, not before ``not_before``."""

    job_id: uuid.UUID
    step: str
    attempt: int
    timeout_s: float
    not_before: datetime | None = None
    #: Handed to the worker whose result started it, with the answer to that result,
    #: rather than sent through JetStream: leased from its dispatch, since nothing
    #: else would deliver it again if that worker never ran it.
    handed: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    change: JobChange
    dispatches: tuple[Dispatch, ...] = ()
    #: New jobs, committed with the change (a step's children).
    created: tuple[NewJob, ...] = ()


@dataclass(frozen=True, slots=True)
class Ignored:
    reason: str
    #: A step to hand over (again) in the answer, though nothing is written: see
    #: ``_handed_again``.
    rehand: Dispatch | None = None


def _with_step(job: JobRecord, step: StepRecord) -> JobRecord:
    return replace(job, steps=tuple(step if s.position == step.position else s for s in job.steps))


def _start_step(
    job: JobRecord,
    spec: JobTypeSpec,
    index: int,
    now: datetime,
    *,
    attempt: int,
    not_before: datetime | None = None,
    handed_lease_s: float | None = None,
) -> tuple[JobRecord, StepRecord, NewEvent, Dispatch]:
    """Start attempt ``attempt`` of step ``index``; ``handed_lease_s``: it goes straight to
    a worker (``Dispatch.handed``) and is leased for that long from now."""
    step_spec: StepSpec = spec.steps[index]
    step = job.steps[index]
    new_step = replace(
        step,
        status=StepStatus.RUNNING,
        attempt=attempt,
        error_code=None,
        error_message=None,
        # The lease starts with the worker's first heartbeat: while the attempt waits in
        # JetStream it is not lost, and a long queue must not look like dead workers. One
        # handed to a worker is in no queue: the lease is all that brings it back.
        lease_expires_at=(
            None if handed_lease_s is None else now + timedelta(seconds=handed_lease_s)
        ),
        started_at=step.started_at or now,
    )
    new_job = replace(
        _with_step(job, new_step),
        status=JobStatus.RUNNING,
        progress=max(job.progress, step_spec.progress_start),
        phase=step_spec.phase,
    )
    event = NewEvent(
        type=EventType.STEP_STARTED,
        status=JobStatus.RUNNING,
        progress=new_job.progress,
        phase=step_spec.phase,
        step=step.name,
        attempt=attempt,
    )
    dispatch = Dispatch(
        job.id, step.name, attempt, step_spec.timeout_s, not_before, handed_lease_s is not None
    )
    return new_job, new_step, event, dispatch


def start_job(job: JobRecord, spec: JobTypeSpec, now: datetime) -> Decision | Ignored:
    """QUEUED -> RUNNING: dispatch the first step without a committed checkpoint.

    A resumed job (RetryJob) starts after its last checkpoint; committed steps never rerun.
    """
    if job.status is not JobStatus.QUEUED:
        return Ignored(f"job is {job.status.value}, not QUEUED")
    index = next((i for i, s in enumerate(job.steps) if s.status is not StepStatus.SUCCEEDED), None)
    if index is None:
        return Ignored("every step already succeeded")
    new_job, step, event, dispatch = _start_step(
        job, spec, index, now, attempt=job.steps[index].attempt + 1
    )
    return Decision(JobChange(job=new_job, steps=(step,), events=(event,)), (dispatch,))


def _fence(job: JobRecord, report: StepReport) -> StepRecord | Ignored:
    if job.status is not JobStatus.RUNNING:
        return Ignored(f"job is {job.status.value}")
    step = job.step_named(report.step)
    if step is None:
        return Ignored("unknown step")
    if step.status not in (StepStatus.RUNNING, StepStatus.RETRYING):
        return Ignored(f"step is {step.status.value}")
    if step.attempt != report.attempt:
        return Ignored(f"stale attempt (running attempt is {step.attempt})")
    return step


def apply_report(
    job: JobRecord,
    spec: JobTypeSpec,
    report: StepReport,
    now: datetime,
    rng: random.Random | None = None,
    *,
    lease_s: float = DEFAULT_LEASE_S,
) -> Decision | Ignored:
    """Advance the job by a worker's report on the attempt that is running, or on the
    attempt a QUEUED job's first step was dispatched as (``JobRecord.queued_attempt``):
    that report starts the job, with the step's ``STEP_STARTED`` first."""
    started = _start_queued(job, spec, report, now)
    if started is None:
        return _apply_report(job, spec, report, now, rng, lease_s)
    started_job, started_event = started
    outcome = _apply_report(started_job, spec, report, now, rng, lease_s)
    return outcome if isinstance(outcome, Ignored) else _after((started_event,), outcome)


def _after(events: tuple[NewEvent, ...], decision: Decision) -> Decision:
    """``decision`` with ``events`` first: what was decided on the way to it."""
    change = decision.change
    return replace(decision, change=replace(change, events=(*events, *change.events)))


def _start_queued(
    job: JobRecord, spec: JobTypeSpec, report: StepReport, now: datetime
) -> tuple[JobRecord, NewEvent] | None:
    queued = job.queued_attempt
    if queued is None or report.kind is ReportKind.LEASE_EXPIRED:
        return None
    step, attempt = queued
    if (report.step, report.attempt) != (step.name, attempt):
        return None
    # Only the job and the event: the report's own decision changes the step again (every
    # kind of report writes it), and that version is the one written.
    started_job, _, event, _ = _start_step(job, spec, step.position, now, attempt=attempt)
    return started_job, event


def _apply_report(
    job: JobRecord,
    spec: JobTypeSpec,
    report: StepReport,
    now: datetime,
    rng: random.Random | None,
    lease_s: float,
) -> Decision | Ignored:
    fenced = _fence(job, report)
    if isinstance(fenced, Ignored):
        if report.kind is ReportKind.SUCCEEDED and report.take_next:
            return _handed_again(job, spec, report, lease_s) or fenced
        return fenced
    step = fenced
    if report.kind is ReportKind.CURSOR and report.children and report.cursor == step.cursor:
        # The answer to this report was lost and the worker sent it again: its children
        # were committed with the cursor they moved it to.
        return Ignored("a repeated cursor: its jobs were created")
    if report.kind is ReportKind.LEASE_EXPIRED:
        if step.lease_expires_at is None or step.lease_expires_at > now:
            return Ignored("lease is not expired")
        lost = replace(
            report,
            kind=ReportKind.FAILED,
            error_code="STEP_LOST",
            error_message=(
                f"the worker running attempt {step.attempt} stopped responding "
                f"(no heartbeat for {lease_s:g}s)"
            ),
            retryable=True,
        )
        return _failed(job, spec, step, lost, now, rng)
    # Any word from the worker is a sign of life: it renews the lease. The first word from
    # a retried attempt also means that attempt is running now.
    lease = now + timedelta(seconds=lease_s)
    if step.status is StepStatus.RETRYING:
        assert step_can_move(step.status, StepStatus.RUNNING)
        step = replace(step, status=StepStatus.RUNNING, error_code=None, error_message=None)
    step = replace(step, lease_expires_at=lease)
    job = _with_step(job, step)
    if report.kind is ReportKind.HEARTBEAT:
        return Decision(JobChange(job=job, steps=(step,)))
    if report.kind is ReportKind.CURSOR:
        step = replace(step, cursor=report.cursor)
        return Decision(JobChange(job=_with_step(job, step), steps=(step,)))
    if report.kind is ReportKind.PROGRESS:
        return _progress(job, spec, step, report)
    if report.kind is ReportKind.SUCCEEDED:
        # A success carries no text, only its last progress report (percent and phase).
        announced = _progress(job, spec, step, report)
        decision = _after(
            announced.change.events,
            _succeeded(announced.change.job, spec, step, report, now, lease_s),
        )
    else:
        decision = _failed(job, spec, step, report, now, rng)
    # The result counts, so does what it cost: once per attempt, like its checkpoint.
    return replace(decision, change=replace(decision.change, usage=report.usage))


def _handed_again(
    job: JobRecord, spec: JobTypeSpec, report: StepReport, lease_s: float
) -> Ignored | None:
    """A repeated success whose first answer was lost (the worker timed out, the answering
    orchestrator died after its commit): the step it handed over has not been heard of
    since, so it goes to the same worker again rather than waiting out its lease and
    costing an attempt. A second runner of one attempt would be harmless (fencing), so
    only the evidence that nobody started it is checked: started by this success, and
    its lease untouched since."""
    done = job.step_named(report.step)
    if (
        job.status is not JobStatus.RUNNING
        or done is None
        or done.status is not StepStatus.SUCCEEDED
        or done.attempt != report.attempt
        or done.position + 1 >= len(job.steps)
    ):
        return None
    following = job.steps[done.position + 1]
    if (
        following.status is not StepStatus.RUNNING
        or following.started_at is None
        or following.started_at != done.finished_at
        or following.lease_expires_at != following.started_at + timedelta(seconds=lease_s)
    ):
        return None
    timeout_s = spec.steps[following.position].timeout_s
    dispatch = Dispatch(job.id, following.name, following.attempt, timeout_s, handed=True)
    return Ignored("a repeated result: its next step is handed over again", dispatch)


def _progress(job: JobRecord, spec: JobTypeSpec, step: StepRecord, report: StepReport) -> Decision:
    progress = max(job.progress, spec.progress_at(step.position, report.percent))
    phase = report.phase or job.phase
    changed_steps = (step,)
    if progress == job.progress and phase == job.phase and not report.partial_output:
        return Decision(JobChange(job=job, steps=changed_steps))
    new_job = replace(job, progress=progress, phase=phase)
    event = NewEvent(
        type=EventType.PROGRESS,
        status=JobStatus.RUNNING,
        progress=progress,
        phase=phase,
        step=step.name,
        attempt=step.attempt,
        partial_output=report.partial_output,
    )
    return Decision(JobChange(job=new_job, steps=changed_steps, events=(event,)))


def _succeeded(
    job: JobRecord,
    spec: JobTypeSpec,
    step: StepRecord,
    report: StepReport,
    now: datetime,
    lease_s: float,
) -> Decision:
    done = replace(
        step,
        status=StepStatus.SUCCEEDED,
        output=report.output or b"",
        lease_expires_at=None,
        finished_at=now,
        error_code=None,
        error_message=None,
    )
    job = _with_step(job, done)
    next_index = step.position + 1
    succeeded_event = NewEvent(
        type=EventType.STEP_SUCCEEDED,
        status=JobStatus.RUNNING,
        progress=spec.progress_at(step.position, 100) if next_index < len(spec.steps) else 99,
        phase=job.phase,
        step=step.name,
        attempt=step.attempt,
    )
    job = replace(job, progress=max(job.progress, succeeded_event.progress))
    if next_index < len(spec.steps):
        started_job, started, started_event, dispatch = _start_step(
            job,
            spec,
            next_index,
            now,
            attempt=job.steps[next_index].attempt + 1,
            handed_lease_s=lease_s if report.take_next else None,
        )
        return Decision(
            JobChange(
                job=started_job, steps=(done, started), events=(succeeded_event, started_event)
            ),
            (dispatch,),
        )
    assert job_can_move(job.status, JobStatus.SUCCEEDED)
    finished = replace(
        job,
        status=JobStatus.SUCCEEDED,
        progress=100,
        phase=spec.done_phase,
        result=done.output,
        finished_at=now,
    )
    final_event = NewEvent(
        type=EventType.SUCCEEDED,
        status=JobStatus.SUCCEEDED,
        progress=100,
        phase=spec.done_phase,
    )
    return Decision(JobChange(job=finished, steps=(done,), events=(succeeded_event, final_event)))


def _failed(
    job: JobRecord,
    spec: JobTypeSpec,
    step: StepRecord,
    report: StepReport,
    now: datetime,
    rng: random.Random | None,
) -> Decision:
    policy = spec.step(step.name).retry
    code = report.error_code or "STEP_FAILED"
    message = report.error_message or "the step failed"
    if report.retryable and policy.allows_another(step.attempts_this_run):
        delay_s = policy.delay_s(step.attempts_this_run, rng)
        if report.retry_after_s is not None:
            # The dependency said when it will take us again: sooner would fail again.
            delay_s = max(delay_s, report.retry_after_s)
        not_before = now + timedelta(seconds=delay_s)
        retry_event = NewEvent(
            type=EventType.STEP_RETRYING,
            status=JobStatus.RUNNING,
            progress=job.progress,
            phase=job.phase,
            step=step.name,
            attempt=step.attempt + 1,
            message=(
                f"attempt {step.attempt} failed ({code}: {message}); retrying in {delay_s:.2f}s"
            ),
            retry_delay_ms=round(delay_s * 1000),
        )
        waiting = replace(
            step,
            status=StepStatus.RETRYING,
            attempt=step.attempt + 1,
            error_code=code,
            error_message=message,
            lease_expires_at=None,
        )
        # The next attempt is committed and scheduled now; the step stays RETRYING (with
        # the error that caused it) until the worker running that attempt first reports.
        return Decision(
            JobChange(job=_with_step(job, waiting), steps=(waiting,), events=(retry_event,)),
            (
                Dispatch(
                    job.id, step.name, waiting.attempt, spec.step(step.name).timeout_s, not_before
                ),
            ),
        )
    failed_step = replace(
        step,
        status=StepStatus.FAILED,
        error_code=code,
        error_message=message,
        lease_expires_at=None,
        finished_at=now,
    )
    used = step.attempts_this_run
    attempts = f"after {used} attempt{'s' if used != 1 else ''}"
    job_message = f"step {step.name} failed {attempts}: {message}"
    failed_job = replace(
        _with_step(job, failed_step),
        status=JobStatus.FAILED,
        phase="Failed",
        error_code=code,
        error_message=job_message,
        finished_at=now,
    )
    events = (
        NewEvent(
            type=EventType.STEP_FAILED,
            status=JobStatus.RUNNING,
            progress=job.progress,
            phase=job.phase,
            step=step.name,
            attempt=step.attempt,
            message=message,
        ),
        NewEvent(
            type=EventType.FAILED,
            status=JobStatus.FAILED,
            progress=job.progress,
            phase="Failed",
            message=job_message,
        ),
    )
    return Decision(JobChange(job=failed_job, steps=(failed_step,), events=events))
