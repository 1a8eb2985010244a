"""CancelJob and RetryJob decisions."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from jobkit import bus, control
from jobkit.errors import FailedPrecondition
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.lifecycle import EventType, JobStatus, StepStatus
from jobkit.model import JobRecord
from jobtypes.noop.spec import SPEC as NOOP
from services.orchestrator.state_machine import ReportKind, StepReport, apply_report, start_job
from tests.unit.test_state_machine import NOW, decided, new_job


def running_job() -> JobRecord:
    return decided(start_job(new_job(), NOOP, NOW)).change.job


def test_cancel_stops_the_running_step_and_tells_its_worker() -> None:
    job = running_job()
    change = control.cancel(job, NOW)
    assert change is not None
    assert change.job.status is JobStatus.CANCELLED
    assert [e.type for e in change.events] == [EventType.CANCELLED]
    assert change.steps[0].status is StepStatus.CANCELLED
    (notice,) = change.notices
    assert notice.subject == bus.CANCEL_SUBJECT
    decoded = worker_pb2.CancelStep.FromString(notice.payload)
    assert (decoded.job_id, decoded.step, decoded.attempt) == (str(job.id), "prepare", 1)


def test_cancel_is_idempotent_and_refused_for_finished_jobs() -> None:
    cancelled = control.cancel(running_job(), NOW)
    assert cancelled is not None
    assert control.cancel(cancelled.job, NOW) is None
    with pytest.raises(FailedPrecondition):
        control.cancel(replace(running_job(), status=JobStatus.SUCCEEDED), NOW)


def test_a_late_result_after_cancel_is_ignored() -> None:
    job = running_job()
    cancelled = control.cancel(job, NOW)
    assert cancelled is not None
    late = StepReport(job.id, "prepare", 1, ReportKind.SUCCEEDED, output=b"o")
    assert not hasattr(apply_report(cancelled.job, NOOP, late, NOW), "change")


def test_retry_resumes_after_the_last_checkpoint_with_fresh_attempts() -> None:
    job = running_job()
    job = decided(
        apply_report(
            job, NOOP, StepReport(job.id, "prepare", 1, ReportKind.SUCCEEDED, output=b"p"), NOW
        )
    ).change.job
    failure = StepReport(job.id, "work", 1, ReportKind.FAILED, error_code="X", retryable=False)
    failed = decided(apply_report(job, NOOP, failure, NOW)).change.job
    assert failed.status is JobStatus.FAILED
    change = control.retry(failed, NOW)
    assert change.job.status is JobStatus.QUEUED
    assert change.job.error_code is None
    # Attempt numbers keep growing (so a late report of attempt 1 stays stale), while
    # the retry budget starts afresh.
    assert {s.name: (s.status, s.attempt, s.attempts_this_run) for s in change.job.steps} == {
        "prepare": (StepStatus.SUCCEEDED, 1, 1),
        "work": (StepStatus.PENDING, 1, 0),
        "finish": (StepStatus.PENDING, 0, 0),
    }
    (submission,) = change.outbox
    assert submission.subject == bus.SUBMITTED_SUBJECT
    restarted = decided(start_job(change.job, NOOP, NOW))
    assert restarted.dispatches[0].step == "work"
    assert restarted.dispatches[0].attempt == 2
    late = StepReport(failed.id, "work", 1, ReportKind.SUCCEEDED, output=b"late")
    assert not hasattr(apply_report(restarted.change.job, NOOP, late, NOW), "change")
    assert change.job.steps[0].output == b"p"


def test_only_failed_or_cancelled_jobs_can_be_retried() -> None:
    with pytest.raises(FailedPrecondition):
        control.retry(running_job(), NOW)


def test_cancel_while_queued_stops_the_dispatched_attempt_and_a_retry_takes_a_new_one() -> None:
    # A new job is QUEUED with its first attempt already sent to the workers (job_api).
    queued = new_job()
    assert queued.queued_attempt == (queued.steps[0], 1)
    change = control.cancel(queued, NOW)
    assert change is not None
    (notice,) = change.notices
    assert worker_pb2.CancelStep.FromString(notice.payload).attempt == 1
    (step,) = change.steps
    # Counted as used (JetStream would drop a second message with its id), outside any run.
    assert (step.status, step.attempt, step.attempts_this_run) == (StepStatus.PENDING, 1, 0)
    late = StepReport(queued.id, "prepare", 1, ReportKind.SUCCEEDED, output=b"o")
    assert not hasattr(apply_report(change.job, NOOP, late, NOW), "change")

    resumed = control.retry(change.job, NOW).job
    started = decided(start_job(resumed, NOOP, NOW))
    (dispatch,) = started.dispatches
    assert dispatch.attempt == 2
    assert started.change.job.steps[0].attempts_this_run == 1  # the whole budget is left


def test_a_passed_deadline_fails_the_job_and_stops_its_running_step() -> None:
    job = replace(running_job(), deadline_at=NOW + timedelta(seconds=10))
    assert control.expire(job, NOW + timedelta(seconds=9)) is None  # in time
    change = control.expire(job, NOW + timedelta(seconds=10))
    assert change is not None
    assert change.job.status is JobStatus.FAILED
    assert change.job.error_code == control.DEADLINE_EXCEEDED
    # The stopped step fails in the log too, before the job, as a step failing by itself does.
    assert [e.type for e in change.events] == [EventType.STEP_FAILED, EventType.FAILED]
    assert (change.events[0].step, change.events[0].attempt) == ("prepare", 1)
    (stopped,) = change.steps
    assert (stopped.status, stopped.error_code) == (StepStatus.FAILED, "DEADLINE_EXCEEDED")
    (notice,) = change.notices
    assert worker_pb2.CancelStep.FromString(notice.payload).step == "prepare"
    # Finished jobs, and jobs without a deadline, are left alone.
    assert control.expire(change.job, NOW + timedelta(hours=1)) is None
    assert control.expire(running_job(), NOW + timedelta(days=400)) is None


def test_a_queued_job_past_its_deadline_fails_and_its_dispatched_attempt_is_stopped() -> None:
    job = replace(new_job(), deadline_at=NOW)
    change = control.expire(job, NOW)
    assert change is not None
    assert change.job.status is JobStatus.FAILED
    (used,) = change.steps
    assert used.attempt == 1  # the attempt already dispatched counts as used
    assert len(change.notices) == 1


def test_a_job_past_its_deadline_cannot_be_retried() -> None:
    job = replace(running_job(), deadline_at=NOW)
    failed = control.expire(job, NOW)
    assert failed is not None
    with pytest.raises(FailedPrecondition, match="deadline"):
        control.retry(failed.job, NOW + timedelta(seconds=1))
