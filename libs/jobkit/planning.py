"""Planning a new job, as pure functions: no grpc, asyncpg or nats.

job_api decodes a CreateJob request into a ``CreateRequest``; the orchestrator makes one
for each child a step asks for (a ``bulk_import`` row); ForkJob makes one from its source
job (``fork_input``, ``fork_scheduling``) with what the fork reuses (``reuse_for_fork``).
``validate`` checks it against the catalogue and the caller's limits, and ``plan`` turns
what passed into the job, its steps, its ``CREATED`` event and its first step's dispatch
for the outbox, ready for the one statement that commits them. Cancel and retry, the
transitions of a job that exists, are planned beside this in ``jobkit.control``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jobkit import bus, control, standing, webhooks
from jobkit.catalog import Catalog, JobTypeSpec
from jobkit.dispatch import step_message
from jobkit.errors import FailedPrecondition, FieldViolation, InvalidArgument
from jobkit.lifecycle import EventType, JobStatus, StepStatus
from jobkit.model import (
    JobChange,
    JobRecord,
    NewEvent,
    NewJob,
    OutboxMessage,
    Scheduling,
    StepRecord,
)
from jobkit.records import replace
from jobkit.step_tokens import StepTokens

MAX_IDEMPOTENCY_KEY_LENGTH = 200
#: The largest input CreateJob takes unless ``MAX_INPUT_BYTES`` says otherwise; the
#: orchestrator holds the jobs a step creates to it.
DEFAULT_MAX_INPUT_BYTES = 1024 * 1024
#: Priorities a request may ask for, and what it gets when it asks for none (0).
MIN_PRIORITY, DEFAULT_PRIORITY, MAX_PRIORITY = 1, 5, 9
#: The longest deadline a request may set: a job is not meant to wait longer than this.
MAX_DEADLINE_S = 30 * 24 * 3600.0
MAX_CONCURRENCY_KEY_LENGTH = 200
MAX_CONCURRENCY_LIMIT = 1000


def input_hash(job_type: str, input_bytes: bytes) -> bytes:
    """A request's type and input: all that a job made by an earlier release recorded of
    its request."""
    return hashlib.sha256(job_type.encode() + b"\0" + input_bytes).digest()


def request_hash(
    job_type: str, input_bytes: bytes, scheduling: Scheduling, webhook_url: str | None
) -> bytes:
    """The whole request: its type and input, and how it asks to be run (the scheduling
    as validated, so an unset priority and 5 are the same request) and told about."""
    how = json.dumps(
        [
            scheduling.priority,
            scheduling.not_before.isoformat() if scheduling.not_before else None,
            scheduling.deadline_s,
            scheduling.concurrency_key,
            scheduling.concurrency_limit,
            webhook_url,
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256(input_hash(job_type, input_bytes) + b"\0" + how.encode()).digest()


def fork_request_hash(valid: ValidRequest, source_id: uuid.UUID, from_step: str) -> ValidRequest:
    """A fork's request, told apart by its source and its first step too: the same key
    for a fork of another job, or from another step, is a different request."""

    def of(digest: bytes) -> bytes:
        return hashlib.sha256(digest + b"\0fork\0" + source_id.bytes + from_step.encode()).digest()

    return replace(valid, request_hash=of(valid.request_hash), earlier_hash=of(valid.earlier_hash))


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """A CreateJob request, decoded."""

    job_type: str
    #: The input, serialized deterministically: what is stored and hashed.
    input: bytes
    #: The same input as a document, for the job type's schema.
    document: Mapping[str, object]
    idempotency_key: str | None
    scheduling: Scheduling = field(default_factory=Scheduling)
    #: Where the job's terminal events are POSTed (``jobkit.webhooks``), if anywhere.
    webhook_url: str | None = None
    #: The version of the type's step graph to plan by (a fork's: its source's); ``None``:
    #: the current one.
    type_version: int | None = None


@dataclass(frozen=True, slots=True)
class ValidRequest:
    """A request that passed ``validate``: a known job type and an input it accepts."""

    spec: JobTypeSpec
    input: bytes
    idempotency_key: str | None
    #: What a repeat with the same idempotency key must match (``request_hash``).
    request_hash: bytes
    #: What it matched when only the type and input counted (``input_hash``): a repeat of
    #: a request whose job was made then still finds it.
    earlier_hash: bytes
    #: With its priority in 1-9 (the default filled in).
    scheduling: Scheduling = field(default_factory=lambda: Scheduling(DEFAULT_PRIORITY))
    #: The webhook URL, checked as far as it can be without resolving its host: the
    #: caller resolves a host name (``webhooks.addresses``) before planning the job.
    webhook: webhooks.Target | None = None


def validate(
    request: CreateRequest,
    catalog: Catalog,
    *,
    max_input_bytes: int,
    webhook_allow_hosts: frozenset[str] = frozenset(),
) -> ValidRequest:
    """Raise ``InvalidArgument`` on the first thing wrong, in the order a caller fixes them:
    the type, the input's size, its schema, the idempotency key, the scheduling, the
    webhook URL (``webhook_allow_hosts``: ``WEBHOOK_ALLOW_HOSTS``)."""
    if request.type_version is not None and request.job_type in catalog:
        spec = catalog.spec(request.job_type, request.type_version)
        if spec is None:
            raise FailedPrecondition(
                control.version_gone_message(request.job_type, request.type_version)
            )
    else:
        spec = catalog.get(request.job_type)
    if spec is None:
        known = ", ".join(t.name for t in catalog.values())
        raise InvalidArgument.on("type", f"must be one of: {known}")
    if len(request.input) > max_input_bytes:
        raise InvalidArgument.on("input", f"must be at most {max_input_bytes} bytes")
    violations = spec.validate_input(request.document)
    if violations:
        first = violations[0]
        raise InvalidArgument(f"{first.field} {first.description}", violations)
    key = request.idempotency_key
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidArgument.on(
            "idempotency_key", f"must be at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters"
        )
    scheduling = _valid_scheduling(request.scheduling)
    return ValidRequest(
        spec=spec,
        input=request.input,
        idempotency_key=key,
        request_hash=request_hash(spec.name, request.input, scheduling, request.webhook_url),
        earlier_hash=input_hash(spec.name, request.input),
        scheduling=scheduling,
        webhook=(
            webhooks.parse_url(request.webhook_url, webhook_allow_hosts)
            if request.webhook_url
            else None
        ),
    )


def _valid_scheduling(asked: Scheduling) -> Scheduling:
    if asked.priority == 0:
        asked = replace(asked, priority=DEFAULT_PRIORITY)
    if not MIN_PRIORITY <= asked.priority <= MAX_PRIORITY:
        raise InvalidArgument.on(
            "priority", f"must be between {MIN_PRIORITY} and {MAX_PRIORITY} (0 or unset: 5)"
        )
    if asked.deadline_s is not None and not 0 < asked.deadline_s <= MAX_DEADLINE_S:
        raise InvalidArgument.on(
            "deadline", f"must be positive and at most {MAX_DEADLINE_S / 86400:g} days"
        )
    key = asked.concurrency_key
    if key is not None and len(key) > MAX_CONCURRENCY_KEY_LENGTH:
        raise InvalidArgument.on(
            "concurrency_key", f"must be at most {MAX_CONCURRENCY_KEY_LENGTH} characters"
        )
    limit = asked.concurrency_limit
    if limit is not None and not 1 <= limit <= MAX_CONCURRENCY_LIMIT:
        raise InvalidArgument.on(
            "concurrency_limit", f"must be between 1 and {MAX_CONCURRENCY_LIMIT} (0 or unset: none)"
        )
    if limit is not None and not key:
        raise InvalidArgument.on("concurrency_limit", "needs a concurrency_key to count by")
    return replace(asked, concurrency_key=key or None)


def plan(
    request: ValidRequest,
    *,
    owner: str,
    job_id: uuid.UUID,
    now: datetime,
    trace_context: str,
    dispatch_first_step: bool = True,
    parent_id: uuid.UUID | None = None,
    step_tokens: StepTokens | None = None,
    reuse: Reuse | None = None,
) -> NewJob:
    """The new job, QUEUED with every step PENDING, its ``CREATED`` event, and its first
    step's first attempt, dispatched straight to the workers: no round through the
    orchestrator before any work starts. The job stays QUEUED until that attempt's worker
    first reports (``state_machine.apply_report``). Without ``dispatch_first_step``, the
    outbox holds a submission instead, and an orchestrator starts the job (as RetryJob's
    resumed jobs are started). ``parent_id``: the job whose step creates this one.
    ``step_tokens`` mint the first attempt's step token, for a job type that reads its
    owner's history. ``reuse``: a fork's leading steps, SUCCEEDED from the start with the
    source's checkpoints (never dispatched), each recorded by a ``STEP_SUCCEEDED`` event
    (attempt 0, "reused from job ...") after ``CREATED``; the first step dispatched is
    the one after them."""
    spec = request.spec
    reused = dict(reuse.checkpoints) if reuse is not None else {}
    steps = tuple(
        StepRecord(job_id, i, name, StepStatus.SUCCEEDED, output=reused[name], finished_at=now)
        if name in reused
        else StepRecord(job_id, i, name, StepStatus.PENDING)
        for i, name in enumerate(spec.step_names)
    )
    names = spec.step_names
    reused_events = tuple(
        NewEvent(
            type=EventType.STEP_SUCCEEDED,
            status=JobStatus.QUEUED,
            # The bar as if the reused steps so far had run: their shares filled.
            progress=spec.progress_of(
                [100 if n in reused and j <= i else 0 for j, n in enumerate(names)]
            ),
            phase=control.QUEUED_PHASE,
            step=name,
            message=f"reused from job {reuse.source_id}",
        )
        for i, name in enumerate(names)
        if reuse is not None and name in reused
    )
    job = JobRecord(
        id=job_id,
        owner=owner,
        type=request.spec.name,
        status=JobStatus.QUEUED,
        input=request.input,
        created_at=now,
        updated_at=now,
        phase=control.QUEUED_PHASE,
        progress=reused_events[-1].progress if reused_events else 0,
        steps=steps,
        trace_context=trace_context,
        parent_id=parent_id,
        priority=request.scheduling.priority,
        not_before=request.scheduling.not_before,
        deadline_at=(
            now + timedelta(seconds=request.scheduling.deadline_s)
            if request.scheduling.deadline_s is not None
            else None
        ),
        concurrency_key=request.scheduling.concurrency_key,
        concurrency_limit=request.scheduling.concurrency_limit,
        webhook_url=request.webhook.url if request.webhook is not None else None,
        type_version=spec.version,
        forked_from_id=reuse.source_id if reuse is not None else None,
    )
    created = NewEvent(
        type=EventType.CREATED, status=JobStatus.QUEUED, progress=0, phase=control.QUEUED_PHASE
    )
    change = JobChange(
        job=job,
        events=(created, *reused_events),
        outbox=(_first_message(job, request.spec, dispatch_first_step, step_tokens),),
    )
    return NewJob(job, change, request.idempotency_key, request.request_hash)


def _first_message(
    job: JobRecord,
    spec: JobTypeSpec,
    dispatch_first_step: bool,
    step_tokens: StepTokens | None = None,
) -> OutboxMessage:
    # A job asked to wait leaves the outbox when it may start: no loop per job polls it.
    # One whose graph starts with several steps at once (a fork from a parallel step) is
    # started by the orchestrator, which starts them all.
    if not dispatch_first_step or len(standing.ready(job, spec)) != 1:
        submitted = control.submitted_message(replace(job, last_sequence=1))
        return replace(submitted, not_before=job.not_before)
    queued = job.queued_attempt
    assert queued is not None  # a job type has at least one step
    first, attempt = queued
    timeout_s = spec.step(first.name).timeout_s
    return step_message(
        job,
        first.name,
        attempt,
        timeout_s,
        job.not_before,
        step_tokens=step_tokens,
        starts_job=True,
    )


def expressed(new: NewJob) -> NewJob:
    """``new`` with its first step in the express lane (``bus.EXPRESS_STREAM``): for an
    owner with nothing else unfinished while the workers are saturated, so a newcomer
    starts at once rather than behind another user's backlog. Unchanged if the job waits
    for its time (``not_before``) or for a turn under its key's cap, whose count the
    dispatcher keeps exact, or if it starts through the orchestrator."""
    job = new.job
    if job.not_before is not None or job.concurrency_limit is not None:
        return new
    outbox = tuple(
        replace(m, subject=bus.express_subject(m.subject))
        if m.subject.startswith(bus.STEPS_SUBJECT_PREFIX)
        else m
        for m in new.change.outbox
    )
    return replace(new, change=replace(new.change, outbox=outbox))


@dataclass(frozen=True, slots=True)
class Reuse:
    """What a fork takes over from its source job: the committed checkpoints of the steps
    before the one it runs from."""

    source_id: uuid.UUID
    #: (step name, output) of each reused step, in step order.
    checkpoints: tuple[tuple[str, bytes], ...] = ()


def reuse_for_fork(source: JobRecord, catalog: Catalog, from_step: str) -> Reuse:
    """What a fork of ``source`` from ``from_step`` (empty: its first step, a plain re-run)
    reuses: the committed checkpoint of every step that is neither ``from_step`` nor
    waits for it (in a graph, a parallel branch's too: forking the cover letter keeps the
    CV and its review). ``InvalidArgument`` if ``from_step`` is no step of the source's
    type version; ``FailedPrecondition`` if that version is gone, or a step ``from_step``
    waits for has not succeeded in the source."""
    spec = catalog.spec(source.type, source.type_version)
    if spec is None:
        raise FailedPrecondition(control.version_gone_message(source.type, source.type_version))
    names = spec.step_names
    if not from_step:
        index = 0
    elif from_step in names:
        index = names.index(from_step)
    else:
        raise InvalidArgument.on("from_step", f"must be a step of {spec.name}: {', '.join(names)}")
    by_name = {s.name: s for s in source.steps}
    for i in sorted(spec.upstream(index)):
        step = by_name.get(names[i])
        if step is None or step.status is not StepStatus.SUCCEEDED:
            state = step.status.value.lower() if step is not None else "missing"
            raise FailedPrecondition(
                f"step {names[i]} of job {source.id} has not succeeded (it is {state}): "
                f"fork from {names[i]} or an earlier step"
            )
    rerun = spec.downstream(index) if from_step else frozenset(range(len(names)))
    return Reuse(
        source.id,
        tuple(
            (name, by_name[name].output or b"")
            for i, name in enumerate(names)
            if i not in rerun and name in by_name and by_name[name].status is StepStatus.SUCCEEDED
        ),
    )


def fork_input(source: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A fork's input: the source's, with each top-level key of ``overrides`` replacing
    the source's (a shallow merge: a nested object is replaced whole, never merged)."""
    return {**source, **overrides}


def fork_scheduling(source: JobRecord) -> Scheduling:
    """A fork's scheduling: the source's priority, concurrency key and cap, and deadline
    (the same time from creation). Not its ``not_before``: a fork starts now."""
    return Scheduling(
        priority=source.priority,
        deadline_s=(
            (source.deadline_at - source.created_at).total_seconds()
            if source.deadline_at is not None
            else None
        ),
        concurrency_key=source.concurrency_key,
        concurrency_limit=source.concurrency_limit,
    )


def as_overrides(error: InvalidArgument, overrides: Mapping[str, Any]) -> InvalidArgument:
    """``error`` from validating a fork's merged input, its fields named as the caller
    sent them: ``input_overrides.<key>...`` for what an override brought, ``input...`` for
    what the source's input did."""

    def renamed(name: str) -> str:
        head, dot, rest = name.partition(".")
        if head == "input" and dot and rest.split(".", 1)[0].split("[", 1)[0] in overrides:
            return f"input_overrides.{rest}"
        return name

    violations = [FieldViolation(renamed(v.field), v.description) for v in error.violations]
    if not violations:
        return error
    first = violations[0]
    return InvalidArgument(f"{first.field} {first.description}", violations)
