"""How a step attempt on a worker ends, and the report each ending sends.

An attempt ends in exactly one of five ways (``Outcome``):

- ``Succeeded``: the handler returned its output;
- ``InputRequired``: the handler asked a person for input (``StepContext.request_input``);
- ``Failed``: it raised, timed out, has no handler, or kept killing its workers;
- ``Abandoned``: its job was cancelled meanwhile, so nobody wants to hear of it;
- ``HandedBack``: the worker is stopping, and JetStream gives the step to another one.

``to_report`` is the one place an outcome becomes the ``StepReport`` the orchestrator
reads; the last two send nothing. This module is part of the worker's NATS adapter: the
worker messages (``jobs.internal.v1``) are its wire format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, assert_never

from jobkit.convert import dict_to_struct
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.metrics import StepOutcome


@dataclass(frozen=True, slots=True)
class Succeeded:
    """The handler returned ``output``; ``usage`` is the model tokens it spent."""

    output: Mapping[str, object]
    usage: Sequence[worker_pb2.ModelUsage] = ()
    #: The handler's last progress report, if it made one (``StepReport.last_progress``).
    last_progress: worker_pb2.StepProgress | None = None
    #: How ``metrics.observe_step`` labels it.
    label: ClassVar[StepOutcome] = "succeeded"


@dataclass(frozen=True, slots=True)
class InputRequired:
    """The handler asked for input: the step waits for a person's answer, matching
    ``schema``, which becomes its checkpoint."""

    prompt: str
    schema: Mapping[str, object]
    draft: Mapping[str, object] | None = None
    timeout_s: float | None = None
    usage: Sequence[worker_pb2.ModelUsage] = ()
    label: ClassVar[StepOutcome] = "input_required"


@dataclass(frozen=True, slots=True)
class Failed:
    """The attempt failed. ``code`` is stable and ``message`` is shown to the user (never
    the job's input). A ``retryable`` failure may ask for the next attempt to wait at least
    ``retry_after_s`` (a rate-limited model's ``Retry-After``); tokens spent before the
    failure still count (``usage``)."""

    code: str
    message: str
    retryable: bool = True
    retry_after_s: float | None = None
    usage: Sequence[worker_pb2.ModelUsage] = ()
    label: ClassVar[StepOutcome] = "failed"


@dataclass(frozen=True, slots=True)
class Abandoned:
    """Its job was cancelled while it ran (a ``CancelStep`` notice): the handler was
    cancelled, and the message is acked with nothing to report."""

    label: ClassVar[StepOutcome] = "cancelled"


@dataclass(frozen=True, slots=True)
class HandedBack:
    """The worker is stopping: the handler was cancelled and the message given back
    (``nak``), unreported, for another worker to run at once."""

    label: ClassVar[StepOutcome] = "handed_back"


Outcome = Succeeded | InputRequired | Failed | Abandoned | HandedBack


def report_for(
    task: worker_pb2.StepTask, reported_at: datetime | None = None
) -> worker_pb2.StepReport:
    """An empty report about ``task``'s attempt (fenced by job, step and attempt), for the
    caller to fill in its ``outcome``."""
    report = worker_pb2.StepReport(job_id=task.job_id, step=task.step, attempt=task.attempt)
    if reported_at is not None:
        report.reported_at.FromDatetime(reported_at)
    return report


def to_report(
    task: worker_pb2.StepTask, outcome: Outcome, reported_at: datetime
) -> worker_pb2.StepReport | None:
    """The result report ``outcome`` sends about ``task``'s attempt; ``None`` when it sends
    none (``Abandoned``, ``HandedBack``)."""
    match outcome:
        case Succeeded():
            report = report_for(task, reported_at)
            # Set whole, so that even an empty output marks the report a success.
            report.succeeded.CopyFrom(
                worker_pb2.StepSucceeded(output=dict_to_struct(dict(outcome.output)))
            )
            report.usage.extend(outcome.usage)
            if outcome.last_progress is not None:
                report.last_progress.CopyFrom(outcome.last_progress)
            return report
        case InputRequired():
            asked = worker_pb2.StepInputRequired(
                prompt=outcome.prompt, schema=dict_to_struct(dict(outcome.schema))
            )
            if outcome.draft is not None:
                asked.draft.CopyFrom(dict_to_struct(dict(outcome.draft)))
            if outcome.timeout_s is not None:
                asked.timeout.FromMilliseconds(round(outcome.timeout_s * 1000))
            report = report_for(task, reported_at)
            report.input_required.CopyFrom(asked)
            report.usage.extend(outcome.usage)
            return report
        case Failed():
            failed = worker_pb2.StepFailed(
                code=outcome.code, message=outcome.message, retryable=outcome.retryable
            )
            if outcome.retryable and outcome.retry_after_s is not None:
                failed.retry_after.FromMilliseconds(round(outcome.retry_after_s * 1000))
            report = report_for(task, reported_at)
            report.failed.CopyFrom(failed)
            report.usage.extend(outcome.usage)
            return report
        case Abandoned() | HandedBack():
            return None
        case _:
            assert_never(outcome)
