"""The job domain as frozen dataclasses: what the services pass around instead of rows or
protos. Proto types stop at the adapters (``jobkit.convert``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from jobkit.inputs import InputRequest
from jobkit.lifecycle import EventType, JobStatus, StepStatus


class Row(Protocol):
    """A database row as the driver returns it (asyncpg.Record or a mapping)."""

    def __getitem__(self, key: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class StepRecord:
    job_id: uuid.UUID
    position: int
    name: str
    status: StepStatus
    attempt: int = 0
    #: Attempts made before the last RetryJob; ``attempt - retry_base`` counts this run's.
    retry_base: int = 0
    output: bytes | None = None
    error_code: str | None = None
    error_message: str | None = None
    lease_expires_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: The step's own progress marker, serialized Struct (``StepContext.save_cursor``): what
    #: its next attempt resumes from.
    cursor: bytes | None = None
    #: How far the running attempt is (its last progress report), 0-100.
    percent: int = 0
    #: While ``WAITING_INPUT``: what the step asks.
    input_request: InputRequest | None = None

    @property
    def attempts_this_run(self) -> int:
        return self.attempt - self.retry_base

    @classmethod
    def from_row(cls, row: Row) -> StepRecord:
        return cls(
            job_id=row["job_id"],
            position=row["position"],
            name=row["name"],
            status=StepStatus(row["status"]),
            attempt=row["attempt"],
            retry_base=row["retry_base"],
            output=row["output"],
            error_code=row["error_code"],
            error_message=row["error_message"],
            lease_expires_at=row["lease_expires_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            cursor=row["cursor"],
            percent=row["percent"],
            input_request=InputRequest.from_json(row["input_request"]),
        )


@dataclass(frozen=True, slots=True)
class StepUsage:
    """Model tokens one step attempt used, as its worker reported them with its result."""

    step: str
    attempt: int
    model: str
    prompt_tokens: int
    completion_tokens: int
    #: By the price table of the process that commits it.
    cost_usd: float = 0.0
    #: The prompts (id@version) sent to this model, for reproducing the result.
    prompts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Scheduling:
    """When and in what order a job may run, as CreateJob asks (all optional)."""

    #: 1-9; 0 means the default.
    priority: int = 0
    #: The job does not start before this instant.
    not_before: datetime | None = None
    #: Seconds from creation after which the job fails with ``DEADLINE_EXCEEDED``.
    deadline_s: float | None = None
    #: Jobs with the same key share their user's turn (fair scheduling).
    concurrency_key: str | None = None
    #: With a key: at most this many of the owner's jobs with it run at once.
    concurrency_limit: int | None = None


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: uuid.UUID
    owner: str
    type: str
    status: JobStatus
    input: bytes
    created_at: datetime
    updated_at: datetime
    progress: int = 0
    phase: str = ""
    result: bytes | None = None
    error_code: str | None = None
    error_message: str | None = None
    last_sequence: int = 0
    finished_at: datetime | None = None
    steps: tuple[StepRecord, ...] = ()
    #: W3C ``traceparent`` of the request that created the job: every message for it carries
    #: this, so one job is one trace (``jobkit.tracing``).
    trace_context: str = ""
    #: Bumped by every write; a write names the version its decision was made from.
    version: int = 0
    #: Model usage per step and model, summed over attempts (``attempt`` 0); loaded only
    #: where a job is shown (``store.with_usage``), not by the orchestrator.
    usage: tuple[StepUsage, ...] = ()
    #: The job whose step created this one (a ``bulk_import``), if any.
    parent_id: uuid.UUID | None = None
    #: Scheduling, as CreateJob asked (``jobkit.planning``): 1-9, higher first among jobs
    #: waiting for a worker; not started before ``not_before``; FAILED with
    #: ``DEADLINE_EXCEEDED`` once ``deadline_at`` passes; concurrency shared by key.
    priority: int = 5
    not_before: datetime | None = None
    deadline_at: datetime | None = None
    concurrency_key: str | None = None
    #: At most this many of the owner's jobs with ``concurrency_key`` released to workers
    #: and unfinished at once (``services/orchestrator/dispatcher.py``).
    concurrency_limit: int | None = None
    #: Where the events of ``jobkit.webhooks.EVENT_TYPES`` are POSTed (CreateJob's
    #: ``webhook_url``, checked then): each such event's commit enqueues its delivery.
    webhook_url: str | None = None
    #: The version of its type's step graph the job was created with
    #: (``JobTypeSpec.version``): the one the orchestrator decides it by, to its end.
    type_version: int = 1
    #: The job ForkJob copied this one's input and leading checkpoints from, if any.
    forked_from_id: uuid.UUID | None = None

    @classmethod
    def from_row(cls, row: Row, steps: tuple[StepRecord, ...] = ()) -> JobRecord:
        return cls(
            id=row["id"],
            owner=row["owner"],
            type=row["type"],
            status=JobStatus(row["status"]),
            input=row["input"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            progress=row["progress"],
            phase=row["phase"],
            result=row["result"],
            error_code=row["error_code"],
            error_message=row["error_message"],
            last_sequence=row["last_sequence"],
            finished_at=row["finished_at"],
            steps=steps,
            trace_context=row["trace_context"],
            version=row["version"],
            parent_id=row["parent_job_id"],
            priority=row["priority"],
            not_before=row["not_before"],
            deadline_at=row["deadline_at"],
            concurrency_key=row["concurrency_key"],
            concurrency_limit=row["concurrency_limit"],
            webhook_url=row["webhook_url"],
            type_version=row["type_version"],
            forked_from_id=row["forked_from_job_id"],
        )

    def step_named(self, name: str) -> StepRecord | None:
        for step in self.steps:
            if step.name == name:
                return step
        return None

    @property
    def queued_attempt(self) -> tuple[StepRecord, int] | None:
        """A QUEUED job's first unfinished step, and the attempt it is (or will be)
        dispatched as: the one after the step's last. job_api dispatches a new job's with
        the commit that creates it; the orchestrator, a resumed job's as it starts it.
        While the job is QUEUED the step's record shows its last attempt: the worker's
        first report on the new one starts the job."""
        if self.status is not JobStatus.QUEUED:
            return None
        step = next((s for s in self.steps if s.status is not StepStatus.SUCCEEDED), None)
        return None if step is None else (step, step.attempt + 1)

    @property
    def checkpoints(self) -> dict[str, bytes]:
        """Committed outputs of succeeded steps, by step name."""
        return {
            s.name: s.output
            for s in self.steps
            if s.status is StepStatus.SUCCEEDED and s.output is not None
        }


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append to a job's log; the writer gives it the next sequence."""

    type: EventType
    status: JobStatus
    progress: int
    phase: str = ""
    step: str = ""
    attempt: int = 0
    message: str = ""
    retry_delay_ms: int = 0
    #: PROGRESS of a step streaming text: all it has written so far (see jobs.v1.JobEvent).
    partial_output: str = ""
    #: INPUT_REQUIRED: what the step asks.
    input_request: InputRequest | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    job_id: uuid.UUID
    sequence: int
    event: NewEvent
    occurred_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> EventRecord:
        return cls(
            job_id=row["job_id"],
            sequence=row["sequence"],
            occurred_at=row["occurred_at"],
            event=NewEvent(
                type=EventType(row["type"]),
                status=JobStatus(row["status"]),
                progress=row["progress"],
                phase=row["phase"],
                step=row["step"],
                attempt=row["attempt"],
                message=row["message"],
                retry_delay_ms=row["retry_delay_ms"],
                partial_output=row["partial_output"],
                input_request=InputRequest.from_json(row["input_request"]),
            ),
        )


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A JetStream message committed with a state change, published after the commit."""

    subject: str
    msg_id: str
    payload: bytes
    not_before: datetime | None = None
    #: Published as the NATS header ``traceparent`` (the job's trace).
    trace_context: str = ""
    #: A step attempt that starts its job (CreateJob's first dispatch, or the
    #: orchestrator's start of a queued job): under a concurrency cap, it waits for its
    #: turn in the ready queue (``jobkit.store``).
    starts_job: bool = False


@dataclass(frozen=True, slots=True)
class JobChange:
    """Everything one decision changes about one job, committed atomically.

    ``job`` and ``steps`` are the new versions of the records (steps only where changed).
    """

    job: JobRecord
    steps: tuple[StepRecord, ...] = ()
    events: tuple[NewEvent, ...] = ()
    outbox: tuple[OutboxMessage, ...] = ()
    #: Core-NATS notices sent after the commit (e.g. "stop this step" to workers).
    notices: tuple[OutboxMessage, ...] = field(default=())
    #: Model usage of the attempt whose result this decision accepted.
    usage: tuple[StepUsage, ...] = ()
    #: The msg ids of step attempts whose first word from a worker this change records: a
    #: ready-queue row one was handed out from, hidden meanwhile, is deleted with it.
    claimed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to insert together with its first change: what CreateJob commits, and what a
    step's cursor creates (``jobkit.planning.plan`` makes both)."""

    job: JobRecord
    change: JobChange
    idempotency_key: str | None = None
    #: What a repeat with the same idempotency key must match.
    request_hash: bytes | None = None
