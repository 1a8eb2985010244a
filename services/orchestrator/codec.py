"""The orchestrator's wire codec: the internal protos (jobs.internal.v1) to and from the
domain's values. Only the consumer calls it; the domain never sees a proto.
"""

from __future__ import annotations

import uuid

from google.protobuf.message import DecodeError

from jobkit import bus
from jobkit.convert import struct_to_dict
from jobkit.dispatch import bare_task, step_message
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.inputs import InputRequest
from jobkit.model import JobRecord, OutboxMessage, StepUsage
from jobkit.step_tokens import StepTokens
from services.orchestrator.state_machine import (
    ChildRequest,
    Dispatch,
    Message,
    ReportKind,
    StepReport,
    Submitted,
)


def decode(subject: str, data: bytes) -> Message:
    """Wire message -> domain input; raises ValueError on anything malformed (bytes that
    are no protobuf message too: protobuf's ``DecodeError`` is no ``ValueError``)."""
    try:
        return _decode(subject, data)
    except DecodeError as error:
        raise ValueError(f"undecodable message on {subject}") from error


def _decode(subject: str, data: bytes) -> Message:
    if subject == bus.SUBMITTED_SUBJECT:
        submitted = worker_pb2.JobSubmitted.FromString(data)
        return Submitted(uuid.UUID(submitted.job_id))
    if subject == bus.REPORT_SUBJECT or bus.is_result(subject):
        report = worker_pb2.StepReport.FromString(data)
        job_id = uuid.UUID(report.job_id)
        outcome = report.WhichOneof("outcome")
        if outcome == "progress":
            return StepReport(
                job_id,
                report.step,
                report.attempt,
                ReportKind.PROGRESS,
                percent=report.progress.percent,
                phase=report.progress.phase,
                partial_output=report.progress.partial_output,
            )
        if outcome == "heartbeat":
            return StepReport(job_id, report.step, report.attempt, ReportKind.HEARTBEAT)
        if outcome == "cursor":
            return StepReport(
                job_id,
                report.step,
                report.attempt,
                ReportKind.CURSOR,
                cursor=report.cursor.cursor.SerializeToString(deterministic=True),
                children=tuple(
                    ChildRequest(
                        child.job_type,
                        child.input.SerializeToString(deterministic=True),
                        struct_to_dict(child.input),
                    )
                    for child in report.cursor.children
                ),
            )
        if outcome == "succeeded":
            return StepReport(
                job_id,
                report.step,
                report.attempt,
                ReportKind.SUCCEEDED,
                output=report.succeeded.output.SerializeToString(),
                usage=_usage(report),
                take_next=report.take_next,
                percent=report.last_progress.percent,
                phase=report.last_progress.phase,
            )
        if outcome == "input_required":
            asked = report.input_required
            return StepReport(
                job_id,
                report.step,
                report.attempt,
                ReportKind.INPUT_REQUIRED,
                usage=_usage(report),
                input_request=InputRequest(
                    prompt=asked.prompt,
                    schema=struct_to_dict(asked.schema),
                    draft=struct_to_dict(asked.draft) if asked.HasField("draft") else None,
                ),
                wait_s=(
                    asked.timeout.ToTimedelta().total_seconds()
                    if asked.HasField("timeout")
                    else None
                ),
            )
        if outcome == "failed":
            return StepReport(
                job_id,
                report.step,
                report.attempt,
                ReportKind.FAILED,
                error_code=report.failed.code,
                error_message=report.failed.message,
                retryable=report.failed.retryable,
                usage=_usage(report),
                retry_after_s=(
                    report.failed.retry_after.ToTimedelta().total_seconds()
                    if report.failed.HasField("retry_after")
                    else None
                ),
            )
    raise ValueError(f"unexpected message on {subject}")


def _usage(report: worker_pb2.StepReport) -> tuple[StepUsage, ...]:
    return tuple(
        StepUsage(
            report.step,
            report.attempt,
            u.model,
            u.prompt_tokens,
            u.completion_tokens,
            prompts=tuple(u.prompts),
        )
        for u in report.usage
    )


def encode_dispatch(
    job: JobRecord, dispatch: Dispatch, *, step_tokens: StepTokens | None = None
) -> OutboxMessage:
    """The step attempt for JetStream, through the outbox (with its step token, if the
    job's type reads its owner's history)."""
    return step_message(
        job,
        dispatch.step,
        dispatch.attempt,
        dispatch.timeout_s,
        dispatch.not_before,
        step_tokens=step_tokens,
        starts_job=dispatch.starts_job,
    )


def handed_answer(
    job: JobRecord,
    dispatch: Dispatch,
    result_subject: str,
    *,
    step_tokens: StepTokens | None = None,
) -> bytes:
    """The answer that settles a worker's result and hands it ``dispatch``, whose result
    is to go to ``result_subject``. The worker has the job's input and checkpoints already
    (its own result is the newest), so they are not sent again; a step token is the
    attempt's own, so it is."""
    task = bare_task(
        job, dispatch.step, dispatch.attempt, dispatch.timeout_s, step_tokens=step_tokens
    )
    answer = worker_pb2.ResultAnswer(next=task, result_subject=result_subject)
    return answer.SerializeToString()


def handed_out_answer(waiting: OutboxMessage) -> bytes:
    """The answer that settles a worker's result and hands it another job's waiting step
    (``Dispatcher.hand_out``), whole, as JetStream would have carried it."""
    answer = worker_pb2.ResultAnswer()
    answer.waiting.MergeFromString(waiting.payload)
    return answer.SerializeToString()


#: How long before its worker stops waiting an answer may still hand out a waiting step:
#: the answer is published at once, but a busy box delays its delivery, and clocks differ.
ANSWER_MARGIN_S = 1.0


def answer_awaited(headers: dict[str, str] | None) -> bool:
    """Whether the worker that sent a result will still be waiting for the answer well
    after it is sent (``bus.ANSWER_BY_HEADER``); not when it cannot tell."""
    left = bus.seconds_left(headers, bus.ANSWER_BY_HEADER)
    return left is not None and left > ANSWER_MARGIN_S


def cancel_notice(report: StepReport) -> OutboxMessage:
    """Tell workers to stop an attempt that no longer counts."""
    return OutboxMessage(
        subject=bus.CANCEL_SUBJECT,
        msg_id=f"{report.job_id}:{report.step}:{report.attempt}:cancel",
        payload=worker_pb2.CancelStep(
            job_id=str(report.job_id), step=report.step, attempt=report.attempt
        ).SerializeToString(),
    )
