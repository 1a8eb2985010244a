"""The orchestrator's decisions: transitions, events, dispatches and fencing."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from jobkit.catalog import JobTypeSpec
from jobkit.convert import dict_to_struct, struct_to_dict
from jobkit.dispatch import step_task
from jobkit.lifecycle import (
    JOB_TRANSITIONS,
    EventType,
    JobStatus,
    StepStatus,
    job_can_move,
)
from jobkit.model import JobRecord, StepRecord
from jobtypes.cv_tailoring.spec import V1 as CV_TAILORING_V1
from jobtypes.noop.spec import SPEC as NOOP
from services.orchestrator.state_machine import (
    Decision,
    Ignored,
    ReportKind,
    StepReport,
    apply_report,
    start_job,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def new_job(spec: JobTypeSpec = NOOP, status: JobStatus = JobStatus.QUEUED) -> JobRecord:
    job_id = uuid.uuid4()
    return JobRecord(
        id=job_id,
        owner="alice",
        type=spec.name,
        status=status,
        input=b"",
        created_at=NOW,
        updated_at=NOW,
        steps=tuple(
            StepRecord(job_id, i, s.name, StepStatus.PENDING) for i, s in enumerate(spec.steps)
        ),
    )


def decided(outcome: Decision | Ignored) -> Decision:
    assert isinstance(outcome, Decision), outcome
    return outcome


def report(
    job: JobRecord,
    kind: ReportKind,
    step: str | None = None,
    attempt: int | None = None,
    **fields: object,
) -> StepReport:
    running = next(s for s in job.steps if s.status in (StepStatus.RUNNING, StepStatus.RETRYING))
    return StepReport(
        job.id,
        step or running.name,
        running.attempt if attempt is None else attempt,
        kind,
        **fields,  # type: ignore[arg-type]
    )


def test_job_transition_table_is_closed_and_terminal_states_only_resume() -> None:
    assert set(JOB_TRANSITIONS) == set(JobStatus)
    assert JOB_TRANSITIONS[JobStatus.SUCCEEDED] == frozenset()
    for status in (JobStatus.FAILED, JobStatus.CANCELLED):
        assert JOB_TRANSITIONS[status] == {JobStatus.QUEUED}
    assert not job_can_move(JobStatus.QUEUED, JobStatus.SUCCEEDED)
    assert job_can_move(JobStatus.RUNNING, JobStatus.CANCELLED)


def test_start_dispatches_the_first_step_and_emits_step_started() -> None:
    decision = decided(start_job(new_job(), NOOP, NOW))
    assert decision.change.job.status is JobStatus.RUNNING
    assert [e.type for e in decision.change.events] == [EventType.STEP_STARTED]
    assert decision.change.events[0].step == "prepare"
    (dispatch,) = decision.dispatches
    assert (dispatch.step, dispatch.attempt) == ("prepare", 1)
    assert dispatch.timeout_s == NOOP.steps[0].timeout_s
    assert dispatch.not_before is None
    assert decision.change.steps[0].status is StepStatus.RUNNING


def test_start_is_ignored_once_every_ready_step_is_under_way_or_the_job_ended() -> None:
    started = decided(start_job(new_job(), NOOP, NOW)).change.job
    # A repeated submission finds nothing more to start.
    assert isinstance(start_job(started, NOOP, NOW), Ignored)
    for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        assert isinstance(start_job(new_job(status=status), NOOP, NOW), Ignored)


def test_a_resumed_job_starts_after_its_last_checkpoint() -> None:
    job = new_job()
    done = replace(job.steps[0], status=StepStatus.SUCCEEDED, attempt=1, output=b"x")
    job = replace(job, steps=(done, *job.steps[1:]))
    decision = decided(start_job(job, NOOP, NOW))
    assert decision.dispatches[0].step == "work"


def run_to_completion(spec: JobTypeSpec) -> list[EventType]:
    job = decided(start_job(new_job(spec), spec, NOW)).change.job
    kinds = [EventType.STEP_STARTED]
    while job.status is JobStatus.RUNNING:
        d = decided(apply_report(job, spec, report(job, ReportKind.SUCCEEDED, output=b"o"), NOW))
        kinds += [e.type for e in d.change.events]
        job = d.change.job
    assert job.progress == 100
    return kinds


def test_success_of_every_step_succeeds_the_job_with_the_last_output() -> None:
    kinds = run_to_completion(NOOP)
    assert kinds == [
        EventType.STEP_STARTED,
        EventType.STEP_SUCCEEDED,
        EventType.STEP_STARTED,
        EventType.STEP_SUCCEEDED,
        EventType.STEP_STARTED,
        EventType.STEP_SUCCEEDED,
        EventType.SUCCEEDED,
    ]


def test_cv_tailoring_phases_follow_the_seed_progress_marks() -> None:
    spec = CV_TAILORING_V1
    job = decided(start_job(new_job(spec), spec, NOW)).change.job
    marks = [job.progress]
    while job.status is JobStatus.RUNNING:
        job = decided(
            apply_report(job, spec, report(job, ReportKind.SUCCEEDED, output=b"o"), NOW)
        ).change.job
        marks.append(job.progress)
    assert marks == [10, 25, 50, 75, 95, 100]
    assert job.phase == "Preview ready!"


def test_progress_is_monotonic_and_carries_phase_text() -> None:
    job = decided(start_job(new_job(), NOOP, NOW)).change.job
    d = decided(
        apply_report(job, NOOP, report(job, ReportKind.PROGRESS, percent=50, phase="Halfway"), NOW)
    )
    assert d.change.job.progress == 16
    assert d.change.job.phase == "Halfway"
    assert d.change.events[0].type is EventType.PROGRESS
    back = apply_report(
        d.change.job,
        NOOP,
        report(d.change.job, ReportKind.PROGRESS, percent=10, phase="Halfway"),
        NOW,
    )
    # Going backwards changes nothing the user sees; it still counts as a sign of life.
    back = decided(back)
    assert back.change.events == ()
    assert back.change.job.progress == 16


def test_signs_of_life_renew_the_lease_and_silence_expires_it() -> None:
    job = decided(start_job(new_job(), NOOP, NOW)).change.job
    assert job.steps[0].lease_expires_at is None  # queued work is not leased
    expired = report(job, ReportKind.LEASE_EXPIRED)
    assert isinstance(apply_report(job, NOOP, expired, NOW), Ignored)
    beat = decided(apply_report(job, NOOP, report(job, ReportKind.HEARTBEAT), NOW, lease_s=10))
    job = beat.change.job
    assert job.steps[0].lease_expires_at == NOW + timedelta(seconds=10)
    assert isinstance(apply_report(job, NOOP, expired, NOW + timedelta(seconds=9)), Ignored)
    lost = decided(apply_report(job, NOOP, expired, NOW + timedelta(seconds=11), lease_s=10))
    (event,) = lost.change.events
    assert event.type is EventType.STEP_RETRYING
    assert "stopped responding" in event.message
    assert lost.change.steps[0].error_code == "STEP_LOST"
    assert lost.dispatches[0].attempt == 2


def test_a_next_step_handed_to_the_reporting_worker_is_leased_from_its_dispatch() -> None:
    job = decided(start_job(new_job(), NOOP, NOW)).change.job
    done = report(job, ReportKind.SUCCEEDED, output=b"", take_next=True)
    d = decided(apply_report(job, NOOP, done, NOW, lease_s=10))
    (dispatch,) = d.dispatches
    assert (dispatch.step, dispatch.attempt, dispatch.handed) == ("work", 1, True)
    # In no queue, so nothing else would bring it back: the lease starts now.
    work = d.change.job.steps[1]
    assert (work.status, work.lease_expires_at) == (StepStatus.RUNNING, NOW + timedelta(seconds=10))
    expired = report(d.change.job, ReportKind.LEASE_EXPIRED)
    lost = decided(apply_report(d.change.job, NOOP, expired, NOW + timedelta(seconds=11)))
    assert lost.change.steps[0].error_code == "STEP_LOST"
    # Without take_next the next step goes through JetStream, unleased until it runs.
    queued = decided(apply_report(job, NOOP, replace(done, take_next=False), NOW, lease_s=10))
    assert not queued.dispatches[0].handed
    assert queued.change.job.steps[1].lease_expires_at is None


def test_a_repeated_success_gets_its_next_step_again_until_that_step_is_heard_of() -> None:
    job = decided(start_job(new_job(), NOOP, NOW)).change.job
    done = report(job, ReportKind.SUCCEEDED, output=b"", take_next=True)
    handed = decided(apply_report(job, NOOP, done, NOW, lease_s=10)).change.job
    # The answer was lost: the worker sends the same result again, a little later.
    later = NOW + timedelta(seconds=5)
    again = apply_report(handed, NOOP, done, later, lease_s=10)
    assert isinstance(again, Ignored)
    assert again.rehand is not None
    assert (again.rehand.step, again.rehand.attempt, again.rehand.handed) == ("work", 1, True)
    # Without take_next, or once the handed step's worker has spoken, nothing is handed.
    plain = apply_report(handed, NOOP, replace(done, take_next=False), later)
    assert isinstance(plain, Ignored)
    assert plain.rehand is None
    beat = report(handed, ReportKind.HEARTBEAT, step="work", attempt=1)
    alive = decided(apply_report(handed, NOOP, beat, NOW + timedelta(seconds=1), lease_s=10))
    heard = apply_report(alive.change.job, NOOP, done, later, lease_s=10)
    assert isinstance(heard, Ignored)
    assert heard.rehand is None


def test_a_result_that_overtook_its_last_progress_report_brings_that_phase_first() -> None:
    job = decided(start_job(new_job(), NOOP, NOW)).change.job
    done = report(job, ReportKind.SUCCEEDED, output=b"", percent=80, phase="Almost there...")
    d = decided(apply_report(job, NOOP, done, NOW))
    assert [(e.type, e.phase) for e in d.change.events][:2] == [
        (EventType.PROGRESS, "Almost there..."),
        (EventType.STEP_SUCCEEDED, "Almost there..."),
    ]
    # Already recorded (the report came first, through JetStream): nothing twice.
    heard = decided(apply_report(job, NOOP, replace(done, kind=ReportKind.PROGRESS), NOW))
    after = decided(apply_report(heard.change.job, NOOP, done, NOW))
    assert EventType.PROGRESS not in [e.type for e in after.change.events]


def test_a_retry_is_never_handed_over_whatever_the_worker_says() -> None:
    job = decided(start_job(new_job(), NOOP, NOW)).change.job
    failure = report(job, ReportKind.FAILED, retryable=True, take_next=True)
    (dispatch,) = decided(apply_report(job, NOOP, failure, NOW, random.Random(7))).dispatches
    assert not dispatch.handed  # it waits out its back-off in JetStream


def test_the_first_report_on_a_queued_job_s_dispatched_attempt_starts_the_job() -> None:
    # job_api committed the job QUEUED and sent attempt 1 of its first step to the workers.
    job = new_job()
    done = StepReport(job.id, "prepare", 1, ReportKind.SUCCEEDED, output=b"p")
    d = decided(apply_report(job, NOOP, done, NOW))
    assert [e.type for e in d.change.events] == [
        EventType.STEP_STARTED,
        EventType.STEP_SUCCEEDED,
        EventType.STEP_STARTED,
    ]
    assert [(e.step, e.attempt) for e in d.change.events] == [
        ("prepare", 1),
        ("prepare", 1),
        ("work", 1),
    ]
    assert d.change.job.status is JobStatus.RUNNING
    prepare = d.change.job.steps[0]
    assert (prepare.status, prepare.attempt, prepare.started_at) == (StepStatus.SUCCEEDED, 1, NOW)
    # A sign of life starts it too, and leases the attempt from then.
    beat = StepReport(job.id, "prepare", 1, ReportKind.HEARTBEAT)
    alive = decided(apply_report(job, NOOP, beat, NOW, lease_s=10))
    assert [e.type for e in alive.change.events] == [EventType.STEP_STARTED]
    assert alive.change.job.steps[0].status is StepStatus.RUNNING
    assert alive.change.job.steps[0].lease_expires_at == NOW + timedelta(seconds=10)
    # Any other attempt, or another step, is no word on the dispatched one.
    for stray in (replace(done, attempt=2), replace(done, step="work", attempt=1)):
        assert isinstance(apply_report(job, NOOP, stray, NOW), Ignored)


def test_retryable_failure_schedules_the_next_attempt_with_backoff() -> None:
    job = decided(start_job(new_job(), NOOP, NOW)).change.job
    failure = report(
        job, ReportKind.FAILED, error_code="FLAKY", error_message="try again", retryable=True
    )
    d = decided(apply_report(job, NOOP, failure, NOW, random.Random(7)))
    (event,) = d.change.events
    assert event.type is EventType.STEP_RETRYING
    assert event.attempt == 2
    assert event.retry_delay_ms > 0
    step = d.change.steps[0]
    assert (step.status, step.attempt, step.error_code) == (StepStatus.RETRYING, 2, "FLAKY")
    (dispatch,) = d.dispatches
    assert dispatch.attempt == 2
    assert dispatch.not_before is not None
    assert abs((dispatch.not_before - NOW).total_seconds() * 1000 - event.retry_delay_ms) < 1


def test_retry_after_from_the_worker_is_a_floor_on_the_backoff() -> None:
    job = decided(start_job(new_job(), NOOP, NOW)).change.job
    failure = report(
        job,
        ReportKind.FAILED,
        error_code="MODEL_RATE_LIMITED",
        error_message="slow down",
        retryable=True,
        retry_after_s=7.0,
    )
    d = decided(apply_report(job, NOOP, failure, NOW, random.Random(7)))
    (event,) = d.change.events
    assert event.retry_delay_ms == 7000  # the policy's own delay here is at most 50 ms
    (dispatch,) = d.dispatches
    assert dispatch.not_before == NOW + timedelta(seconds=7)


def test_exhausted_retries_fail_the_job_with_an_actionable_error() -> None:
    job = decided(start_job(new_job(), NOOP, NOW)).change.job
    for _ in range(NOOP.steps[0].retry.max_attempts):
        failure = report(
            job, ReportKind.FAILED, error_code="FLAKY", error_message="boom", retryable=True
        )
        job = decided(apply_report(job, NOOP, failure, NOW)).change.job
    assert job.status is JobStatus.FAILED
    assert job.error_code == "FLAKY"
    assert "prepare" in (job.error_message or "")
    assert "5 attempts" in (job.error_message or "")


def test_permanent_failure_fails_the_job_at_once() -> None:
    job = decided(start_job(new_job(), NOOP, NOW)).change.job
    failure = report(
        job, ReportKind.FAILED, error_code="BAD_INPUT", error_message="no", retryable=False
    )
    d = decided(apply_report(job, NOOP, failure, NOW))
    assert [e.type for e in d.change.events] == [EventType.STEP_FAILED, EventType.FAILED]
    assert d.change.job.status is JobStatus.FAILED
    assert not d.dispatches


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda j: replace(j, status=JobStatus.CANCELLED), "job is CANCELLED"),
        (lambda j: j, "stale attempt"),
    ],
)
def test_stale_reports_are_fenced_off(mutate: object, reason: str) -> None:
    job = decided(start_job(new_job(), NOOP, NOW)).change.job
    stale = StepReport(
        job.id, "prepare", 0 if reason == "stale attempt" else 1, ReportKind.SUCCEEDED, output=b"o"
    )
    outcome = apply_report(mutate(job), NOOP, stale, NOW)  # type: ignore[operator]
    assert isinstance(outcome, Ignored)
    assert reason in outcome.reason


def test_a_duplicate_result_never_commits_twice() -> None:
    job = decided(start_job(new_job(), NOOP, NOW)).change.job
    result = report(job, ReportKind.SUCCEEDED, output=b"first")
    job = decided(apply_report(job, NOOP, result, NOW)).change.job
    again = apply_report(job, NOOP, replace(result, output=b"second"), NOW)
    assert isinstance(again, Ignored)
    assert job.steps[0].output == b"first"


def test_first_report_of_a_retried_attempt_marks_the_step_running() -> None:
    job = decided(start_job(new_job(), NOOP, NOW)).change.job
    failure = report(job, ReportKind.FAILED, error_code="E", retryable=True)
    job = decided(apply_report(job, NOOP, failure, NOW)).change.job
    d = decided(apply_report(job, NOOP, report(job, ReportKind.HEARTBEAT), NOW))
    assert d.change.steps[0].status is StepStatus.RUNNING
    assert d.change.steps[0].error_code is None


def test_only_the_first_word_from_a_worker_on_a_waiting_attempt_claims_it() -> None:
    """The first report on an attempt that waited unleased (a queued job's first step, a
    retry, either maybe handed out from the ready queue) names it (``JobChange.claimed``),
    so the ready queue's hidden row goes with that write; later words, and a handed next
    step's (leased from its dispatch), claim nothing."""
    job = new_job()
    beat = StepReport(job.id, "prepare", 1, ReportKind.HEARTBEAT)
    started = decided(apply_report(job, NOOP, beat, NOW, lease_s=10))
    assert started.change.claimed == (f"{job.id}:prepare:1",)
    job = started.change.job
    again = decided(apply_report(job, NOOP, beat, NOW, lease_s=10))
    assert again.change.claimed == ()
    # The step fails and is retried: its next attempt waits unleased, and is claimed once.
    failure = StepReport(job.id, "prepare", 1, ReportKind.FAILED, error_code="E", retryable=True)
    job = decided(apply_report(job, NOOP, failure, NOW)).change.job
    retried = StepReport(job.id, "prepare", 2, ReportKind.SUCCEEDED, output=b"p", take_next=True)
    done = decided(apply_report(job, NOOP, retried, NOW, lease_s=10))
    assert done.change.claimed == (f"{job.id}:prepare:2",)
    # The next step went to the same worker, leased from its dispatch: nothing to claim.
    job = done.change.job
    assert job.steps[1].lease_expires_at is not None
    work = StepReport(job.id, "work", 1, ReportKind.SUCCEEDED, output=b"w")
    assert decided(apply_report(job, NOOP, work, NOW)).change.claimed == ()
    # And a lease running out is no word from a worker.
    expired = StepReport(job.id, "work", 1, ReportKind.LEASE_EXPIRED)
    later = NOW + timedelta(seconds=11)
    assert decided(apply_report(job, NOOP, expired, later, lease_s=10)).change.claimed == ()


def test_streamed_text_is_an_event_even_when_progress_stands_still() -> None:
    job = decided(start_job(new_job(), NOOP, NOW)).change.job
    first = decided(
        apply_report(
            job,
            NOOP,
            report(job, ReportKind.PROGRESS, percent=0, partial_output="Dear hiring"),
            NOW,
        )
    )
    (event,) = first.change.events
    assert (event.type, event.partial_output, event.step) == (
        EventType.PROGRESS,
        "Dear hiring",
        "prepare",
    )
    assert first.change.job.progress == job.progress  # the text moved, the bar did not
    more = decided(
        apply_report(
            first.change.job,
            NOOP,
            report(first.change.job, ReportKind.PROGRESS, partial_output="Dear hiring manager"),
            NOW,
        )
    )
    assert more.change.events[0].partial_output == "Dear hiring manager"
    # Plain progress carries no text.
    plain = decided(apply_report(job, NOOP, report(job, ReportKind.PROGRESS, percent=50), NOW))
    assert plain.change.events[0].partial_output == ""


def test_a_cursor_is_kept_for_the_step_s_next_attempt_and_renews_the_lease() -> None:
    job = decided(start_job(new_job(), NOOP, NOW)).change.job
    marker = dict_to_struct({"counted": 3}).SerializeToString()
    saved = decided(
        apply_report(job, NOOP, report(job, ReportKind.CURSOR, cursor=marker), NOW, lease_s=10)
    )
    assert saved.change.events == ()  # the step's own business: nothing for watchers
    (step,) = saved.change.steps
    assert step.cursor == marker
    assert step.lease_expires_at == NOW + timedelta(seconds=10)
    job = saved.change.job
    assert job.steps[0].cursor == marker
    # The attempt fails; its retry is dispatched with the step's cursor still there.
    failed = decided(
        apply_report(job, NOOP, report(job, ReportKind.FAILED, error_code="X", retryable=True), NOW)
    )
    assert failed.change.job.steps[0].cursor == marker
    task = step_task(failed.change.job, "prepare", 2, 60)
    assert struct_to_dict(task.cursor) == {"counted": 3}
    # A cursor from an attempt that is no longer current changes nothing.
    stale = report(failed.change.job, ReportKind.CURSOR, attempt=1, cursor=b"")
    assert isinstance(apply_report(failed.change.job, NOOP, stale, NOW), Ignored)
