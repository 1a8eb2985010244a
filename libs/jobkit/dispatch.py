"""A step attempt as the message a worker runs (``StepTask``): the job's input, the
checkpoints its earlier steps committed, the step's timeout and where the job's artifacts go.

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


def bare_task(job: JobRecord, step: str, attempt: int, timeout_s: float) -> worker_pb2.StepTask:
    """The attempt without the job's input and checkpoints: what a worker that already
    has them is handed (``codec.handed_answer``)."""
    task = worker_pb2.StepTask(job_id=str(job.id), job_type=job.type, step=step, attempt=attempt)
    task.timeout.FromMilliseconds(round(timeout_s * 1000))
    return task


def step_task(job: JobRecord, step: str, attempt: int, timeout_s: float) -> worker_pb2.StepTask:
    task = bare_task(job, step, attempt, timeout_s)
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
) -> OutboxMessage:
    """The attempt for JetStream, from the outbox: at most once per attempt (its msg id)."""
    return OutboxMessage(
        subject=bus.step_subject(job.type, step),
        msg_id=bus.step_msg_id(str(job.id), step, attempt),
        payload=step_task(job, step, attempt, timeout_s).SerializeToString(),
        not_before=not_before,
        trace_context=job.trace_context,
    )
