"""A step attempt as the message a worker runs (``StepTask``): the job's input, the
checkpoints its earlier steps committed, the step's timeout and where the job's artifacts go;
for a job type that reads its owner's history, the attempt's step token (``step_tokens``).

job_api dispatches a new job's first step with the commit that creates it
(``planning.plan``), the orchestrator each step its decisions start (through the outbox,
or handed to a worker in an answer, ``codec.handed_answer``).
"""

from __future__ import annotations

from datetime import datetime

from jobkit import bus
from jobkit.artifacts import job_prefix
from jobkit.convert import struct_from_bytes
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.model import JobRecord, OutboxMessage
from jobkit.step_tokens import StepTokens


def bare_task(
    job: JobRecord,
    step: str,
    attempt: int,
    timeout_s: float,
    *,
    step_tokens: StepTokens | None = None,
    not_before: datetime | None = None,
) -> worker_pb2.StepTask:
    """The attempt without the job's input and checkpoints: what a worker that already
    has them is handed (``codec.handed_answer``). With ``step_tokens`` that cover the job's
    type, it carries a step token valid from ``not_before`` (or now) for the step's timeout
    and a grace."""
    task = worker_pb2.StepTask(
        job_id=str(job.id),
        job_type=job.type,
        step=step,
        attempt=attempt,
        type_version=job.type_version,
    )
    task.timeout.FromMilliseconds(round(timeout_s * 1000))
    if step_tokens is not None and step_tokens.covers(job.type):
        task.step_token = step_tokens.issue(
            job.owner, str(job.id), step, attempt, timeout_s=timeout_s, not_before=not_before
        )
    return task


def step_task(
    job: JobRecord,
    step: str,
    attempt: int,
    timeout_s: float,
    *,
    step_tokens: StepTokens | None = None,
    not_before: datetime | None = None,
) -> worker_pb2.StepTask:
    task = bare_task(job, step, attempt, timeout_s, step_tokens=step_tokens, not_before=not_before)
    task.input.CopyFrom(struct_from_bytes(job.input))
    task.artifact_prefix = job_prefix(job.owner, job.id)
    saved = job.step_named(step)
    if saved is not None and saved.cursor:
        task.cursor.CopyFrom(struct_from_bytes(saved.cursor))
    for name, output in job.checkpoints.items():
        task.checkpoints[name].CopyFrom(struct_from_bytes(output))
    return task


def step_message(
    job: JobRecord,
    step: str,
    attempt: int,
    timeout_s: float,
    not_before: datetime | None = None,
    *,
    step_tokens: StepTokens | None = None,
    starts_job: bool = False,
) -> OutboxMessage:
    """The attempt for JetStream, from the outbox: at most once per attempt (its msg id).
    ``starts_job``: the attempt is the start of its job (``OutboxMessage.starts_job``)."""
    task = step_task(job, step, attempt, timeout_s, step_tokens=step_tokens, not_before=not_before)
    return OutboxMessage(
        subject=bus.step_subject(job.type, step),
        msg_id=bus.step_msg_id(str(job.id), step, attempt),
        payload=task.SerializeToString(),
        not_before=not_before,
        trace_context=job.trace_context,
        starts_job=starts_job,
    )
