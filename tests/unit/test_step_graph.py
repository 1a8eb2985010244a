"""Step graphs and steps that wait for a person, decided by the state machine and
SubmitInput's transition: parallel branches, a diamond, a branch failing while the other
runs, cancel and retry of a parallel phase, the wait, its answer and its timeout."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from jobkit import control
from jobkit.catalog import JobTypeSpec, StepSpec, obj
from jobkit.convert import struct_from_bytes, struct_to_dict
from jobkit.errors import FailedPrecondition, InvalidArgument
from jobkit.inputs import MAX_WAIT_S, InputRequest
from jobkit.lifecycle import EventType, JobStatus, StepStatus
from jobkit.model import JobChange, JobRecord
from jobtypes.cv_tailoring.spec import SPEC as CV_TAILORING
from services.orchestrator.state_machine import (
    INPUT_TIMEOUT,
    Decision,
    Ignored,
    ReportKind,
    StepReport,
    apply_report,
    start_job,
)
from tests.unit.test_state_machine import decided, new_job

NOW = datetime(2026, 1, 1, tzinfo=UTC)

#: a -> (b, c) -> d: the diamond.
DIAMOND = JobTypeSpec(
    "diamond",
    "",
    (
        StepSpec("a", "Starting...", 0),
        StepSpec("b", "Writing B...", 20, after=("a",)),
        StepSpec("c", "Writing C...", 50, after=("a",)),
        StepSpec("d", "Joining...", 80, after=("b", "c")),
    ),
    input_schema=obj({}),
)

ASK = InputRequest("Approve?", {"type": "object", "required": ["ok"]}, {"draft": 1})


def on(job: JobRecord, step: str, kind: ReportKind, **fields: object) -> StepReport:
    found = job.step_named(step)
    assert found is not None
    return StepReport(job.id, step, found.attempt, kind, **fields)  # type: ignore[arg-type]


def succeed(job: JobRecord, spec: JobTypeSpec, step: str, **fields: object) -> Decision:
    report = on(job, step, ReportKind.SUCCEEDED, output=step.encode(), **fields)
    return decided(apply_report(job, spec, report, NOW))


def statuses(job: JobRecord) -> dict[str, StepStatus]:
    return {s.name: s.status for s in job.steps}


def started(decision: Decision) -> list[str]:
    return [e.step for e in decision.change.events if e.type is EventType.STEP_STARTED]


def through_a(spec: JobTypeSpec = DIAMOND) -> JobRecord:
    job = decided(start_job(new_job(spec), spec, NOW)).change.job
    return succeed(job, spec, "a").change.job


def test_a_success_starts_every_step_it_made_ready_each_with_its_own_event() -> None:
    job = decided(start_job(new_job(DIAMOND), DIAMOND, NOW)).change.job
    decision = succeed(job, DIAMOND, "a")
    assert started(decision) == ["b", "c"]
    assert [d.step for d in decision.dispatches] == ["b", "c"]
    assert statuses(decision.change.job) == {
        "a": StepStatus.SUCCEEDED,
        "b": StepStatus.RUNNING,
        "c": StepStatus.RUNNING,
        "d": StepStatus.PENDING,
    }
    assert decision.change.job.phase == "Writing B and C..."


def test_the_join_waits_for_both_branches_in_either_order() -> None:
    for first, second in (("b", "c"), ("c", "b")):
        job = through_a()
        one = succeed(job, DIAMOND, first)
        assert started(one) == []  # d still waits for the other branch
        assert one.change.job.status is JobStatus.RUNNING
        # The phase names the branch still running.
        assert one.change.job.phase == ("Writing C..." if first == "b" else "Writing B...")
        two = succeed(one.change.job, DIAMOND, second)
        assert started(two) == ["d"]
        done = succeed(two.change.job, DIAMOND, "d")
        assert done.change.job.status is JobStatus.SUCCEEDED
        assert done.change.job.result == b"d"


def test_progress_sums_the_running_branches_and_never_goes_back() -> None:
    job = through_a()
    seen = [job.progress]
    for step, percent in (("b", 50), ("c", 50), ("b", 100), ("c", 10)):
        report = on(job, step, ReportKind.PROGRESS, percent=percent)
        job = decided(apply_report(job, DIAMOND, report, NOW)).change.job
        seen.append(job.progress)
    # a: 20 points; b: 30 and c: 30, each half done, then b whole; c reports less later.
    assert seen == [20, 35, 50, 65, 65]
    assert seen == sorted(seen)


def test_a_step_running_alone_may_name_its_phase_but_parallel_steps_share_one() -> None:
    job = through_a()
    report = on(job, "b", ReportKind.PROGRESS, percent=10, phase="Polishing B...")
    assert decided(apply_report(job, DIAMOND, report, NOW)).change.job.phase == "Writing B and C..."
    alone = succeed(job, DIAMOND, "c").change.job
    report = on(alone, "b", ReportKind.PROGRESS, percent=10, phase="Polishing B...")
    assert decided(apply_report(alone, DIAMOND, report, NOW)).change.job.phase == "Polishing B..."


def test_a_branch_failing_fails_the_job_and_stops_the_other_branch() -> None:
    job = through_a()
    report = on(job, "b", ReportKind.FAILED, error_code="BAD", error_message="no", retryable=False)
    decision = decided(apply_report(job, DIAMOND, report, NOW))
    ended = decision.change.job
    assert ended.status is JobStatus.FAILED
    assert statuses(ended)["b"] is StepStatus.FAILED
    assert statuses(ended)["c"] is StepStatus.CANCELLED
    assert {s.name for s in decision.change.steps} == {"b", "c"}
    # The worker running c is told to stop.
    (notice,) = decision.change.notices
    assert notice.msg_id == f"{job.id}:c:1:cancel"
    # A late result of the stopped branch changes nothing.
    late = on(job, "c", ReportKind.SUCCEEDED, output=b"c")
    assert isinstance(apply_report(ended, DIAMOND, late, NOW), Ignored)


def test_retry_after_a_branch_failed_resumes_every_unfinished_branch() -> None:
    job = through_a()
    job = succeed(job, DIAMOND, "c").change.job
    report = on(job, "b", ReportKind.FAILED, error_code="BAD", error_message="no", retryable=False)
    failed = decided(apply_report(job, DIAMOND, report, NOW)).change.job
    resumed = control.retry(failed, NOW).job
    restart = decided(start_job(resumed, DIAMOND, NOW))
    # c's checkpoint stands: only b runs again, as its second attempt.
    assert started(restart) == ["b"]
    assert restart.dispatches[0].attempt == 2
    # And both branches, when both were cut short.
    job = through_a()
    report = on(job, "c", ReportKind.FAILED, error_code="BAD", error_message="no", retryable=False)
    failed = decided(apply_report(job, DIAMOND, report, NOW)).change.job
    again = decided(start_job(control.retry(failed, NOW).job, DIAMOND, NOW))
    assert started(again) == ["b", "c"]


def test_cancel_during_the_parallel_phase_stops_every_running_step() -> None:
    job = through_a()
    change = control.cancel(job, NOW)
    assert change is not None
    assert change.job.status is JobStatus.CANCELLED
    assert statuses(change.job) == {
        "a": StepStatus.SUCCEEDED,
        "b": StepStatus.CANCELLED,
        "c": StepStatus.CANCELLED,
        "d": StepStatus.PENDING,
    }
    assert sorted(n.msg_id for n in change.notices) == sorted(
        [f"{job.id}:b:1:cancel", f"{job.id}:c:1:cancel"]
    )


def test_a_retrying_branch_keeps_the_other_running() -> None:
    job = through_a()
    report = on(job, "b", ReportKind.FAILED, error_code="FLAKY", error_message="x", retryable=True)
    decision = decided(apply_report(job, DIAMOND, report, NOW))
    assert decision.change.job.status is JobStatus.RUNNING
    assert statuses(decision.change.job)["b"] is StepStatus.RETRYING
    assert statuses(decision.change.job)["c"] is StepStatus.RUNNING


def test_only_a_step_whose_checkpoints_the_worker_holds_is_handed_to_it() -> None:
    job = decided(start_job(new_job(DIAMOND), DIAMOND, NOW)).change.job
    # a's worker holds a: b and c both need only a; one of them is handed over.
    decision = succeed(job, DIAMOND, "a", take_next=True)
    assert [(d.step, d.handed) for d in decision.dispatches] == [("b", True), ("c", False)]
    # d needs c's checkpoint too, which b's worker never had: d goes through JetStream.
    job = succeed(decision.change.job, DIAMOND, "c").change.job
    last = succeed(job, DIAMOND, "b", take_next=True)
    assert [(d.step, d.handed) for d in last.dispatches] == [("d", False)]


def test_a_repeated_success_hands_over_again_only_the_step_it_handed() -> None:
    job = decided(start_job(new_job(DIAMOND), DIAMOND, NOW)).change.job
    first = succeed(job, DIAMOND, "a", take_next=True)
    repeat = on(job, "a", ReportKind.SUCCEEDED, output=b"a", take_next=True)
    again = apply_report(first.change.job, DIAMOND, repeat, NOW)
    assert isinstance(again, Ignored)
    assert again.rehand is not None
    assert again.rehand.step == "b"


def asking(spec: JobTypeSpec, job: JobRecord, step: str, wait_s: float | None = None) -> Decision:
    report = on(job, step, ReportKind.INPUT_REQUIRED, input_request=ASK, wait_s=wait_s)
    return decided(apply_report(job, spec, report, NOW))


def test_a_step_asking_for_input_waits_without_a_worker_and_the_job_with_it() -> None:
    job = through_a()
    decision = asking(DIAMOND, job, "b", wait_s=60)
    waiting = decision.change.job
    assert waiting.status is JobStatus.WAITING_INPUT
    step = waiting.step_named("b")
    assert step is not None
    assert step.status is StepStatus.WAITING_INPUT
    assert step.lease_expires_at == NOW + timedelta(seconds=60)
    assert step.input_request == replace(ASK, expires_at=NOW + timedelta(seconds=60))
    (event,) = decision.change.events
    assert event.type is EventType.INPUT_REQUIRED
    assert (event.step, event.status) == ("b", JobStatus.WAITING_INPUT)
    assert event.input_request == step.input_request
    assert decision.dispatches == ()  # nothing goes to a worker
    # The other branch goes on, and the job still waits when it is done.
    after_c = succeed(waiting, DIAMOND, "c")
    assert after_c.change.job.status is JobStatus.WAITING_INPUT
    assert started(after_c) == []
    assert after_c.change.job.phase == "Waiting for your input..."


def test_an_answer_becomes_the_checkpoint_and_the_job_goes_on() -> None:
    job = through_a()
    waiting = asking(DIAMOND, job, "b").change.job
    waiting = succeed(waiting, DIAMOND, "c").change.job
    change = control.answer(waiting, DIAMOND, "b", {"ok": True}, NOW)
    step = change.job.step_named("b")
    assert step is not None
    assert (step.status, step.input_request) == (StepStatus.SUCCEEDED, None)
    # The answer applied to the draft ({"draft": 1}): the draft kept, the answer added.
    assert struct_to_dict(struct_from_bytes(step.output)) == {"draft": 1, "ok": True}
    assert change.job.status is JobStatus.RUNNING
    assert [e.type for e in change.events] == [EventType.STEP_SUCCEEDED]
    (submission,) = change.outbox
    assert submission.msg_id == f"{job.id}:submitted:{waiting.last_sequence + 1}"
    # The orchestrator, given the submission, starts the join.
    assert started(decided(start_job(change.job, DIAMOND, NOW))) == ["d"]


def test_an_answer_to_the_last_step_succeeds_the_job_at_once() -> None:
    """Nothing is left to start: the answer's commit finishes the job, so no window is left
    in which a cancel and a retry could queue a job with nothing to run."""
    spec = JobTypeSpec(
        "ask", "", (StepSpec("a", "A", 0), StepSpec("approve", "B", 50)), input_schema=obj({})
    )
    job = decided(start_job(new_job(spec), spec, NOW)).change.job
    job = succeed(job, spec, "a").change.job
    waiting = asking(spec, job, "approve").change.job
    change = control.answer(waiting, spec, "approve", {"ok": 1}, NOW)
    assert change.job.status is JobStatus.SUCCEEDED
    assert struct_to_dict(struct_from_bytes(change.job.result)) == {"draft": 1, "ok": 1}
    assert [e.type for e in change.events] == [EventType.STEP_SUCCEEDED, EventType.SUCCEEDED]
    assert change.outbox == ()


def test_an_answer_after_the_wait_ran_out_is_refused_though_no_scan_has_seen_it() -> None:
    job = through_a()
    waiting = asking(DIAMOND, job, "b", wait_s=30).change.job
    with pytest.raises(FailedPrecondition, match="too late"):
        control.answer(waiting, DIAMOND, "b", {"ok": 1}, NOW + timedelta(seconds=31))


def test_a_wait_with_no_timeout_of_its_own_still_ends() -> None:
    waiting = asking(DIAMOND, through_a(), "b").change.job
    step = waiting.step_named("b")
    assert step is not None
    assert step.lease_expires_at == NOW + timedelta(seconds=MAX_WAIT_S)


def test_an_invalid_or_misdirected_answer_changes_nothing() -> None:
    job = through_a()
    waiting = asking(DIAMOND, job, "b").change.job
    with pytest.raises(InvalidArgument) as refused:
        control.answer(waiting, DIAMOND, "b", {"other": 1}, NOW)
    assert [v.field for v in refused.value.violations] == ["input.ok"]
    with pytest.raises(FailedPrecondition, match="not waiting"):
        control.answer(waiting, DIAMOND, "c", {"ok": 1}, NOW)
    with pytest.raises(InvalidArgument, match="step"):
        control.answer(waiting, DIAMOND, "nope", {"ok": 1}, NOW)
    answered = control.answer(waiting, DIAMOND, "b", {"ok": 1}, NOW).job
    with pytest.raises(FailedPrecondition, match="not waiting"):
        control.answer(answered, DIAMOND, "b", {"ok": 1}, NOW)


def test_a_wait_that_runs_out_fails_the_step_and_the_job() -> None:
    job = through_a()
    waiting = asking(DIAMOND, job, "b", wait_s=30).change.job
    expired = on(waiting, "b", ReportKind.LEASE_EXPIRED)
    assert isinstance(apply_report(waiting, DIAMOND, expired, NOW), Ignored)  # not yet
    later = NOW + timedelta(seconds=31)
    decision = decided(apply_report(waiting, DIAMOND, expired, later))
    assert decision.change.job.status is JobStatus.FAILED
    assert decision.change.job.error_code == INPUT_TIMEOUT
    assert statuses(decision.change.job)["b"] is StepStatus.FAILED
    assert statuses(decision.change.job)["c"] is StepStatus.CANCELLED


def test_cancel_and_deadline_end_a_waiting_job_without_telling_any_worker() -> None:
    job = through_a()
    job = succeed(job, DIAMOND, "c").change.job
    waiting = asking(DIAMOND, job, "b").change.job
    cancelled = control.cancel(waiting, NOW)
    assert cancelled is not None
    assert cancelled.job.status is JobStatus.CANCELLED
    assert statuses(cancelled.job)["b"] is StepStatus.CANCELLED
    assert cancelled.notices == ()
    expired = control.expire(replace(waiting, deadline_at=NOW), NOW)
    assert isinstance(expired, JobChange)
    assert expired.job.error_code == control.DEADLINE_EXCEEDED


def test_cv_tailoring_writes_the_cv_and_the_letter_together_the_cv_reviewed_then_renders() -> None:
    spec = CV_TAILORING
    assert [s.name for s in spec.steps] == [
        "load_profile", "analyze_posting", "tailor_cv", "write_cover_letter", "render_preview",
    ]  # fmt: skip
    job = decided(start_job(new_job(spec), spec, NOW)).change.job
    assert job.progress == 10
    job = succeed(job, spec, "load_profile").change.job
    both = succeed(job, spec, "analyze_posting")
    assert started(both) == ["tailor_cv", "write_cover_letter"]
    assert both.change.job.phase == "Generating tailored CV and cover letter..."
    assert both.change.job.progress == 50
    # With "review", the CV's step asks its owner once the CV is drafted.
    waiting = asking(spec, both.change.job, "tailor_cv").change.job
    assert waiting.status is JobStatus.WAITING_INPUT
    assert waiting.phase == "Generating cover letter..."  # the letter is still being written
    job = succeed(waiting, spec, "write_cover_letter").change.job
    assert job.phase == "Waiting for your review of the tailored CV..."
    answered = control.answer(job, spec, "tailor_cv", {"ok": True}, NOW).job
    render = decided(start_job(answered, spec, NOW))
    assert started(render) == ["render_preview"]
    assert render.change.job.phase == "Rendering preview..."
    assert render.change.job.progress == 95


def test_only_a_queued_jobs_start_is_marked_as_starting_it() -> None:
    """A capped job waits for its turn only to start (``OutboxMessage.starts_job``): the
    orchestrator's start of a queued job (a retry, a fork starting two branches) is a
    start; a running job's next steps are not, or the job would stop counting under its
    cap while they wait."""
    job = new_job(DIAMOND)
    started = decided(start_job(job, DIAMOND, NOW))
    assert [d.starts_job for d in started.dispatches] == [True]
    after_a = succeed(started.change.job, DIAMOND, "a")
    assert [d.starts_job for d in after_a.dispatches] == [False, False]
