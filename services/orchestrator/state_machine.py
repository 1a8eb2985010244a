"""The orchestrator's decisions, as pure functions of a job and what just happened.

No grpc, asyncpg or nats here: given the locked ``JobRecord`` and an input (the job was
submitted, a worker reported on a step), each function returns the ``Decision`` to
commit, or ``Ignored`` with the reason when the input is stale. Fencing lives here: a
report counts only for the attempt currently running, of a job still running, so a
duplicate, late or redelivered report can never commit a checkpoint twice.

A job type's steps form a graph (``StepSpec.after``): every step whose dependencies have
succeeded runs, so several may run at once. Each keeps its own attempts, events and
checkpoint; the job's progress sums theirs (``JobTypeSpec.progress_of``) and its phase
names them all (``combined_phase``). A step may end by asking a person for input: it waits
as ``WAITING_INPUT`` (and the job with it) holding no worker, until SubmitInput commits the
answer as its checkpoint (``jobkit.control.answer``) and submits the job again, which
starts what the answer made ready (``start_job``).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from jobkit import bus, control, standing
from jobkit.catalog import JobTypeSpec, StepSpec
from jobkit.inputs import MAX_WAIT_S, InputRequest
from jobkit.lifecycle import EventType, JobStatus, StepStatus, step_can_move
from jobkit.model import (
    JobChange,
    JobRecord,
    NewEvent,
    NewJob,
    StepRecord,
    StepUsage,
)
from jobkit.offers import DEFAULT_STEP_LEASE_S
from jobkit.records import replace


class ReportKind(StrEnum):
    PROGRESS = "progress"
    HEARTBEAT = "heartbeat"
    #: A long step's own progress marker (``StepCursor``), kept for its next attempt.
    CURSOR = "cursor"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: The attempt ends asking a person for input (``input_request``).
    INPUT_REQUIRED = "input_required"
    #: Not from a worker: the orchestrator's scan found the attempt's lease expired, or
    #: the wait of a step waiting for input ran out.
    LEASE_EXPIRED = "lease_expired"


#: How long an attempt stays leased after a sign of life from its worker, unless set.
DEFAULT_LEASE_S = DEFAULT_STEP_LEASE_S
#: The error code of a step whose wait for an answer ran out.
INPUT_TIMEOUT = "INPUT_TIMEOUT"


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
    #: INPUT_REQUIRED: what the step asks (without ``expires_at``), and how long it waits.
    input_request: InputRequest | None = None
    wait_s: float | None = None


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
    dispatching its first step itself (``DISPATCH_FIRST_STEP=0``, or more than one step
    to start); or a job to go on, after SubmitInput answered a waiting step."""

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
    #: It starts its job (a QUEUED job started): a capped job's waits for its turn.
    starts_job: bool = False


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
        percent=0,
        input_request=None,
    )
    new_job = standing.restated(_with_step(job, new_step), spec)
    event = standing.step_event(new_job, EventType.STEP_STARTED, new_step)
    dispatch = Dispatch(
        job.id, step.name, attempt, step_spec.timeout_s, not_before, handed_lease_s is not None
    )
    return new_job, new_step, event, dispatch


def _start_ready(
    job: JobRecord,
    spec: JobTypeSpec,
    now: datetime,
    *,
    handed_lease_s: float | None = None,
    handable: frozenset[int] = frozenset(),
) -> tuple[JobRecord, list[StepRecord], list[NewEvent], list[Dispatch]]:
    """Start every step whose dependencies have succeeded, in step order. The first of
    them in ``handable`` (a step whose checkpoints the reporting worker holds) goes to that
    worker, leased for ``handed_lease_s``, if given; the others go through JetStream."""
    steps: list[StepRecord] = []
    events: list[NewEvent] = []
    dispatches: list[Dispatch] = []
    for index in standing.ready(job, spec):
        hand = (
            handed_lease_s is not None
            and index in handable
            and not any(d.handed for d in dispatches)
        )
        job, step, event, dispatch = _start_step(
            job,
            spec,
            index,
            now,
            attempt=job.steps[index].attempt + 1,
            handed_lease_s=handed_lease_s if hand else None,
        )
        steps.append(step)
        events.append(event)
        dispatches.append(dispatch)
    return job, steps, events, dispatches


def start_job(job: JobRecord, spec: JobTypeSpec, now: datetime) -> Decision | Ignored:
    """QUEUED -> RUNNING: dispatch every step ready to run (a resumed job's: those whose
    dependencies have checkpoints; committed steps never rerun). An active job goes on:
    SubmitInput answered a step, and what waited for it starts (or, if it was the last
    step, the job succeeds)."""
    if job.status is not JobStatus.QUEUED and not job.status.active:
        return Ignored(f"job is {job.status.value}, not QUEUED")
    if all(s.status is StepStatus.SUCCEEDED for s in job.steps):
        if job.status is JobStatus.QUEUED:
            return Ignored("every step already succeeded")
        return Decision(standing.finished(job, spec, now))
    started, steps, events, dispatches = _start_ready(job, spec, now)
    if not steps:
        return Ignored("no step is ready to start")
    if job.status is JobStatus.QUEUED:
        dispatches = [replace(d, starts_job=True) for d in dispatches]
    return Decision(
        JobChange(job=started, steps=tuple(steps), events=tuple(events)), tuple(dispatches)
    )


def _fence(job: JobRecord, report: StepReport) -> StepRecord | Ignored:
    if not job.status.active:
        return Ignored(f"job is {job.status.value}")
    step = job.step_named(report.step)
    if step is None:
        return Ignored("unknown step")
    if report.kind is ReportKind.LEASE_EXPIRED and step.status is StepStatus.WAITING_INPUT:
        return step if step.attempt == report.attempt else Ignored("stale wait")
    if step.status not in standing.UNDER_WAY:
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
        outcome = _apply_report(job, spec, report, now, rng, lease_s)
    else:
        started_job, started_event = started
        outcome = _apply_report(started_job, spec, report, now, rng, lease_s)
        if not isinstance(outcome, Ignored):
            outcome = _after((started_event,), outcome)
    if isinstance(outcome, Ignored) or not _first_word(job, report, started is not None):
        return outcome
    claimed = bus.step_msg_id(str(job.id), report.step, report.attempt)
    return replace(outcome, change=replace(outcome.change, claimed=(claimed,)))


def _first_word(job: JobRecord, report: StepReport, started: bool) -> bool:
    """Whether ``report`` is the first word from a worker on its attempt: a queued job's
    first step, or an attempt that waited in a queue unleased (a retry, one released by the
    fair dispatcher). Its ready-queue row, if it was handed out from one, is done with."""
    if started:
        return True
    if report.kind is ReportKind.LEASE_EXPIRED:
        return False
    step = job.step_named(report.step)
    return step is not None and step.attempt == report.attempt and step.lease_expires_at is None


def _after(events: tuple[NewEvent, ...], decision: Decision) -> Decision:
    """``decision`` with ``events`` first: what was decided on the way to it."""
    if not events:
        return decision
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
        if step.status is StepStatus.WAITING_INPUT:
            expired = replace(
                report,
                kind=ReportKind.FAILED,
                error_code=INPUT_TIMEOUT,
                error_message="nobody answered the step's request for input in time",
                retryable=False,
            )
            return _failed(job, spec, step, expired, now, rng)
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
        return _progressed(job, spec, step, report)
    if report.kind in (ReportKind.SUCCEEDED, ReportKind.INPUT_REQUIRED):
        # A result carries no text, only its last progress report (percent and phase).
        announced = _progressed(job, spec, step, report)
        announced_step = announced.change.job.steps[step.position]
        if report.kind is ReportKind.SUCCEEDED:
            ended = _succeeded(announced.change.job, spec, announced_step, report, now, lease_s)
        else:
            ended = _input_required(announced.change.job, spec, announced_step, report, now)
        decision = _after(announced.change.events, ended)
    else:
        decision = _failed(job, spec, step, report, now, rng)
    # The result counts, so does what it cost: once per attempt, like its checkpoint.
    if not report.usage:
        return decision
    return replace(decision, change=replace(decision.change, usage=report.usage))


def _holds(spec: JobTypeSpec, done: int) -> frozenset[int]:
    """The steps whose every dependency's checkpoint the worker that ran step ``done``
    holds: it was given the checkpoints of ``done``'s dependencies (all of its ancestors
    had succeeded when it started) and has its own output."""
    known = {done}
    stack = list(spec.after(done))
    while stack:
        index = stack.pop()
        if index not in known:
            known.add(index)
            stack.extend(spec.after(index))
    return frozenset(
        i for i in range(len(spec.steps)) if spec.after(i) and set(spec.after(i)) <= known
    )


def _handed_again(
    job: JobRecord, spec: JobTypeSpec, report: StepReport, lease_s: float
) -> Ignored | None:
    """A repeated success whose first answer was lost (the worker timed out, the answering
    orchestrator died after its commit): the step it handed over has not been heard of
    since, so it goes to the same worker again rather than waiting out its lease and
    costing an attempt. A second runner of one attempt would be harmless (fencing), so
    only the evidence that nobody started it is checked: started by this success, and
    its lease untouched since (a step started with it but not handed over has no lease
    until its worker reports)."""
    done = job.step_named(report.step)
    if (
        not job.status.active
        or done is None
        or done.status is not StepStatus.SUCCEEDED
        or done.attempt != report.attempt
    ):
        return None
    following = next(
        (
            s
            for s in job.steps
            if done.position in spec.after(s.position)
            and s.status is StepStatus.RUNNING
            and s.started_at is not None
            and s.started_at == done.finished_at
            and s.lease_expires_at == s.started_at + timedelta(seconds=lease_s)
        ),
        None,
    )
    if following is None:
        return None
    timeout_s = spec.steps[following.position].timeout_s
    dispatch = Dispatch(job.id, following.name, following.attempt, timeout_s, handed=True)
    return Ignored("a repeated result: its next step is handed over again", dispatch)


def _progressed(
    job: JobRecord, spec: JobTypeSpec, step: StepRecord, report: StepReport
) -> Decision:
    percent = max(0, min(100, report.percent))
    if percent != step.percent:
        step = replace(step, percent=percent)
        job = _with_step(job, step)
    progress = standing.progress(job, spec)
    alone = sum(1 for s in job.steps if s.status in standing.UNDER_WAY) <= 1
    # A step running alone may say where it is in its own words; steps running together
    # share the phase that names them all.
    phase = (report.phase or job.phase) if alone else standing.phase(job, spec)
    changed_steps = (step,)
    if progress == job.progress and phase == job.phase and not report.partial_output:
        return Decision(JobChange(job=job, steps=changed_steps))
    new_job = replace(job, progress=progress, phase=phase)
    event = NewEvent(
        type=EventType.PROGRESS,
        status=job.status,
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
        percent=100,
    )
    job = _with_step(job, done)
    if all(s.status is StepStatus.SUCCEEDED for s in job.steps):
        return Decision(standing.finished(job, spec, now, (done,)))
    job = standing.restated(job, spec)
    succeeded_event = standing.step_event(job, EventType.STEP_SUCCEEDED, done)
    started_job, started, events, dispatches = _start_ready(
        job,
        spec,
        now,
        handed_lease_s=lease_s if report.take_next else None,
        handable=_holds(spec, done.position),
    )
    return Decision(
        JobChange(job=started_job, steps=(done, *started), events=(succeeded_event, *events)),
        tuple(dispatches),
    )


def _input_required(
    job: JobRecord, spec: JobTypeSpec, step: StepRecord, report: StepReport, now: datetime
) -> Decision:
    """The attempt ends asking for input: the step waits, leased for as long as it may
    wait (the lease scan ends a wait that runs out), and the job waits with it."""
    assert report.input_request is not None
    # Nothing waits for ever: unless the step said, the longest wait there is.
    wait_s = report.wait_s if report.wait_s is not None else MAX_WAIT_S
    expires_at = now + timedelta(seconds=wait_s)
    request = replace(report.input_request, expires_at=expires_at)
    waiting = replace(
        step,
        status=StepStatus.WAITING_INPUT,
        lease_expires_at=expires_at,
        input_request=request,
        error_code=None,
        error_message=None,
    )
    job = standing.restated(_with_step(job, waiting), spec)
    event = standing.step_event(
        job, EventType.INPUT_REQUIRED, waiting, message=request.prompt, input_request=request
    )
    return Decision(JobChange(job=job, steps=(waiting,), events=(event,)))


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
    waited = step.status is StepStatus.WAITING_INPUT
    if report.retryable and not waited and policy.allows_another(step.attempts_this_run):
        delay_s = policy.delay_s(step.attempts_this_run, rng)
        if report.retry_after_s is not None:
            # The dependency said when it will take us again: sooner would fail again.
            delay_s = max(delay_s, report.retry_after_s)
        not_before = now + timedelta(seconds=delay_s)
        retry_event = NewEvent(
            type=EventType.STEP_RETRYING,
            status=job.status,
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
            percent=0,
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
    if waited:
        job_message = f"step {step.name} failed: {message}"
    else:
        used = step.attempts_this_run
        attempts = f"after {used} attempt{'s' if used != 1 else ''}"
        job_message = f"step {step.name} failed {attempts}: {message}"
    job = _with_step(job, failed_step)
    # The other branches stop with it, their workers told, as for a cancel; RetryJob
    # resumes every branch that had not finished.
    stopped, notices = control.stop_steps(job, now, StepStatus.CANCELLED)
    failed_job = replace(
        job,
        status=JobStatus.FAILED,
        phase="Failed",
        error_code=code,
        error_message=job_message,
        finished_at=now,
        steps=control.with_steps(job, stopped),
    )
    events = (
        NewEvent(
            type=EventType.STEP_FAILED,
            status=job.status,
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
    return Decision(
        JobChange(job=failed_job, steps=(failed_step, *stopped), events=events, notices=notices)
    )
