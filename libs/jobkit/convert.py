"""Between domain records and the jobs.v1 protos (the adapters' side of the boundary)."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from jobkit.errors import InvalidArgument
from jobkit.gen.jobs.v1 import job_service_pb2, jobs_pb2
from jobkit.inputs import InputRequest
from jobkit.lifecycle import EventType, JobStatus, StepStatus
from jobkit.model import EventRecord, JobRecord, Scheduling, StepUsage
from jobkit.webhooks import EVENT_TYPES, Delivery, DeliveryState


def scheduling_of(request: job_service_pb2.CreateJobRequest) -> Scheduling:
    """CreateJob's scheduling fields (checked by ``planning.validate``)."""
    try:
        not_before = (
            request.not_before.ToDatetime(tzinfo=UTC) if request.HasField("not_before") else None
        )
    except (ValueError, OverflowError):
        raise InvalidArgument.on("not_before", "is not a valid timestamp") from None
    try:
        deadline_s = (
            request.deadline.ToTimedelta().total_seconds() if request.HasField("deadline") else None
        )
    except (ValueError, OverflowError):
        raise InvalidArgument.on("deadline", "is not a valid duration") from None
    return Scheduling(
        priority=request.priority,
        not_before=not_before,
        deadline_s=deadline_s,
        concurrency_key=request.concurrency_key or None,
        concurrency_limit=request.concurrency_limit or None,
    )


def parse_job_id(raw: str, *, field: str = "job_id") -> uuid.UUID:
    """A request's ``job_id`` (or another ``field`` naming a job), or INVALID_ARGUMENT
    naming it."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidArgument.on(field, "must be a UUID") from None


def struct_from_bytes(data: bytes | None) -> struct_pb2.Struct:
    value = struct_pb2.Struct()
    if data:
        value.ParseFromString(data)
    return value


def struct_to_dict(value: struct_pb2.Struct) -> dict[str, Any]:
    """The Struct as plain JSON values (numbers are floats), as ``json_format`` gives it,
    walked directly: it runs for every step's input and checkpoints, and the general
    converter takes about twice as long. Raises ``ValueError`` on NaN or infinity."""
    return {key: _plain(item) for key, item in value.fields.items()}


def _plain(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        if not math.isfinite(value.number_value):
            # JSON has no such number (json_format refuses it the same way).
            raise ValueError("a Struct number must be finite")
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [_plain(item) for item in value.list_value.values]
    return None


def dict_to_struct(doc: dict[str, Any]) -> struct_pb2.Struct:
    value = struct_pb2.Struct()
    value.update(doc)
    return value


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    """``Timestamp.FromDatetime``'s value (a naive time taken as UTC), in a third of its
    time: every event is converted, on the orchestrator's commit path among others."""
    since = value - (_NAIVE_EPOCH if value.tzinfo is None else _EPOCH)
    return timestamp_pb2.Timestamp(
        seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1_000
    )


# Domain enum -> proto enum number, computed once (the protos name them with a prefix).
_JOB_STATUS: dict[JobStatus, Any] = {
    s: jobs_pb2.JobStatus.Value(f"JOB_STATUS_{s.value}") for s in JobStatus
}
_STEP_STATUS: dict[StepStatus, Any] = {
    s: jobs_pb2.StepStatus.Value(f"STEP_STATUS_{s.value}") for s in StepStatus
}
_EVENT_TYPE: dict[EventType, Any] = {
    e: jobs_pb2.JobEventType.Value(f"JOB_EVENT_TYPE_{e.value}") for e in EventType
}
_JOB_STATUS_BY_NUMBER = {number: status for status, number in _JOB_STATUS.items()}


def job_status_proto(status: JobStatus) -> Any:
    return _JOB_STATUS[status]


def job_status_from_proto(value: int) -> JobStatus | None:
    """The domain status for a proto enum number; ``None`` for UNSPECIFIED.

    Raises ``ValueError`` for a number outside the enum.
    """
    if value == jobs_pb2.JOB_STATUS_UNSPECIFIED:
        return None
    try:
        return _JOB_STATUS_BY_NUMBER[value]
    except KeyError:
        raise ValueError(value) from None


def step_status_proto(status: StepStatus) -> Any:
    return _STEP_STATUS[status]


def event_type_proto(kind: EventType) -> Any:
    return _EVENT_TYPE[kind]


def job_to_proto(job: JobRecord) -> jobs_pb2.Job:
    message = jobs_pb2.Job(
        job_id=str(job.id),
        type=job.type,
        status=job_status_proto(job.status),
        progress=job.progress,
        phase=job.phase,
        created_at=timestamp(job.created_at),
        updated_at=timestamp(job.updated_at),
        parent_job_id=str(job.parent_id) if job.parent_id else "",
        priority=job.priority,
        concurrency_key=job.concurrency_key or "",
        concurrency_limit=job.concurrency_limit or 0,
        webhook_url=job.webhook_url or "",
        forked_from_job_id=str(job.forked_from_id) if job.forked_from_id else "",
        type_version=job.type_version,
    )
    if job.not_before is not None:
        message.not_before.FromDatetime(job.not_before)
    if job.deadline_at is not None:
        message.deadline.FromTimedelta(job.deadline_at - job.created_at)
    for step in job.steps:
        entry = message.steps.add(
            name=step.name, status=step_status_proto(step.status), attempt=step.attempt
        )
        if step.error_code:
            entry.error.code = step.error_code
            entry.error.message = step.error_message or ""
        entry.usage.extend(_usage_protos(u for u in job.usage if u.step == step.name))
        if step.status is StepStatus.WAITING_INPUT and step.input_request is not None:
            entry.input_request.CopyFrom(input_request_proto(step.input_request))
    message.usage.extend(_usage_protos(job.usage))
    if job.status is JobStatus.SUCCEEDED and job.result is not None:
        message.result.CopyFrom(struct_from_bytes(job.result))
    if job.status is JobStatus.FAILED and job.error_code:
        message.error.code = job.error_code
        message.error.message = job.error_message or ""
    return message


def _usage_protos(usage: Iterable[StepUsage]) -> list[jobs_pb2.Usage]:
    """One entry per model, summed, in order of first appearance."""
    by_model: dict[str, jobs_pb2.Usage] = {}
    for u in usage:
        entry = by_model.setdefault(u.model, jobs_pb2.Usage(model=u.model))
        entry.prompt_tokens += u.prompt_tokens
        entry.completion_tokens += u.completion_tokens
        entry.cost_usd += u.cost_usd
        entry.prompts.extend(p for p in u.prompts if p not in entry.prompts)
    return list(by_model.values())


def input_request_proto(request: InputRequest) -> jobs_pb2.InputRequest:
    message = jobs_pb2.InputRequest(prompt=request.prompt)
    message.schema.update(dict(request.schema))
    if request.draft is not None:
        message.draft.update(dict(request.draft))
    if request.expires_at is not None:
        message.expires_at.FromDatetime(request.expires_at)
    return message


def event_to_proto(record: EventRecord) -> jobs_pb2.JobEvent:
    event = record.event
    message = jobs_pb2.JobEvent(
        job_id=str(record.job_id),
        sequence=record.sequence,
        type=event_type_proto(event.type),
        status=job_status_proto(event.status),
        progress=event.progress,
        phase=event.phase,
        step=event.step,
        message=event.message,
        occurred_at=timestamp(record.occurred_at),
        attempt=event.attempt,
        partial_output=event.partial_output,
    )
    if event.retry_delay_ms:
        message.retry_delay.FromMilliseconds(event.retry_delay_ms)
    if event.input_request is not None:
        message.input_request.CopyFrom(input_request_proto(event.input_request))
    return message


def event_json(record: EventRecord) -> dict[str, Any]:
    """An event as the proto3 JSON of its ``JobEvent``, every field printed: what the
    gateway's event stream sends as each message's data, a data export's lines hold, and
    a webhook's ``data`` is."""
    return json_format.MessageToDict(
        event_to_proto(record), always_print_fields_with_no_presence=True
    )


def webhook_body(record: EventRecord) -> bytes:
    """A webhook's body for an event of ``EVENT_TYPES``, as the Standard Webhooks spec
    shapes it: ``{"type": "job.succeeded", "timestamp": <the event's time, RFC 3339>,
    "data": <the JobEvent JSON>}``, UTF-8. The same bytes on every try: all of it comes
    from the committed event."""
    document = {
        "type": EVENT_TYPES[record.event.type],
        "timestamp": record.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": event_json(record),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


_DELIVERY_STATE: dict[DeliveryState, Any] = {
    s: jobs_pb2.WebhookDeliveryState.Value(f"WEBHOOK_DELIVERY_STATE_{s.name}")
    for s in DeliveryState
}


def delivery_to_proto(delivery: Delivery) -> jobs_pb2.WebhookDelivery:
    message = jobs_pb2.WebhookDelivery(
        webhook_id=delivery.webhook_id,
        job_id=str(delivery.job_id),
        sequence=delivery.sequence,
        type=delivery.type,
        state=_DELIVERY_STATE[delivery.state],
        attempts=delivery.attempts,
        last_status_code=delivery.last_status or 0,
        last_error=delivery.last_error or "",
        created_at=timestamp(delivery.created_at),
    )
    if delivery.last_attempt_at is not None:
        message.last_attempt_at.FromDatetime(delivery.last_attempt_at)
    if delivery.next_attempt_at is not None:
        message.next_attempt_at.FromDatetime(delivery.next_attempt_at)
    if delivery.finished_at is not None:
        message.finished_at.FromDatetime(delivery.finished_at)
    return message


#: The most bytes one CreateUpload message carries.
UPLOAD_PIECE = 256 * 1024
#: An upload's media type when its sender names none.
DEFAULT_CONTENT_TYPE = "application/octet-stream"


async def upload_requests(
    pieces: AsyncIterable[bytes], content_type: str
) -> AsyncIterator[job_service_pb2.CreateUploadRequest]:
    """A file as CreateUpload's stream: the first message names its content type, each
    carries at most ``UPLOAD_PIECE`` bytes; an empty file is one message."""
    first = True
    async for received in pieces:
        for start in range(0, len(received), UPLOAD_PIECE):
            yield job_service_pb2.CreateUploadRequest(
                content_type=content_type if first else "",
                data=received[start : start + UPLOAD_PIECE],
            )
            first = False
    if first:
        yield job_service_pb2.CreateUploadRequest(content_type=content_type)


async def upload_of(
    requests: AsyncIterable[job_service_pb2.CreateUploadRequest],
) -> tuple[str, AsyncIterator[bytes]]:
    """CreateUpload's stream as its content type (from the first message) and its bytes."""
    messages = aiter(requests)
    first = await anext(messages, None)

    async def pieces() -> AsyncIterator[bytes]:
        if first is not None and first.data:
            yield first.data
        async for message in messages:
            if message.data:
                yield message.data

    content_type = first.content_type if first is not None else ""
    return content_type or DEFAULT_CONTENT_TYPE, pieces()


def export_line(job: JobRecord, events: Iterable[EventRecord]) -> bytes:
    """One job as a line of a ``data_export``'s JSON Lines: ``{"job": ..., "input": ...,
    "events": [...]}``, where ``job`` is the job exactly as GetJob shows it through the
    gateway (the proto3 JSON of ``Job``, every field printed), ``input`` the input it was
    created with (``Job`` has none) and ``events`` its ``JobEvent``s, in the order given
    (sequence order). UTF-8, ending in a newline; no newline inside (JSON escapes them)."""
    document = {
        "job": json_format.MessageToDict(
            job_to_proto(job), always_print_fields_with_no_presence=True
        ),
        "input": struct_to_dict(struct_from_bytes(job.input)),
        "events": [event_json(e) for e in events],
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
