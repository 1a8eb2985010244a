"""Several inputs for one job in one orchestrator batch fold into one ordered change."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from jobkit import bus
from jobkit.convert import dict_to_struct, struct_to_dict
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.lifecycle import EventType, JobStatus
from jobtypes.noop.spec import SPEC as NOOP
from services.orchestrator.batching import decide, decide_batch, merge
from services.orchestrator.codec import decode, encode_dispatch
from services.orchestrator.state_machine import (
    ChildRequest,
    DeadlinePassed,
    Decision,
    ReportKind,
    StepReport,
    Submitted,
)
from tests.unit.test_state_machine import NOW, new_job

OUTPUT = dict_to_struct({"prepared": True}).SerializeToString()


def test_a_batch_folds_decisions_on_one_job_in_order() -> None:
    job = new_job(NOOP)
    decisions: list[Decision] = []
    current = job
    inputs: list[Submitted | StepReport] = [
        Submitted(job.id),
        StepReport(job.id, "prepare", 1, ReportKind.PROGRESS, percent=50, phase="Halfway"),
        StepReport(job.id, "prepare", 1, ReportKind.SUCCEEDED, output=OUTPUT),
        StepReport(job.id, "prepare", 1, ReportKind.SUCCEEDED, output=b""),  # fenced
    ]
    for item in inputs:
        outcome = decide(current, item, NOW + timedelta(milliseconds=len(decisions)))
        if isinstance(outcome, Decision):
            decisions.append(outcome)
            current = outcome.change.job
    change = merge(decisions, encode_dispatch)
    assert [e.type for e in change.events] == [
        EventType.STEP_STARTED,
        EventType.PROGRESS,
        EventType.STEP_SUCCEEDED,
        EventType.STEP_STARTED,
    ]
    assert change.job.status is JobStatus.RUNNING
    assert {s.name for s in change.steps} == {"prepare", "work"}
    subjects = [m.subject for m in change.outbox]
    assert subjects == [bus.step_subject("noop", "prepare"), bus.step_subject("noop", "work")]
    task = worker_pb2.StepTask.FromString(change.outbox[1].payload)
    assert struct_to_dict(task.checkpoints["prepare"]) == {"prepared": True}
    assert task.attempt == 1
    assert len({m.msg_id for m in change.outbox}) == 2


def test_a_batch_decides_each_input_on_the_job_its_predecessors_left() -> None:
    job, other = new_job(NOOP), new_job(NOOP)
    missing = uuid.uuid4()
    batch = decide_batch(
        {job.id: job, other.id: other},
        [
            Submitted(job.id),
            StepReport(missing, "prepare", 1, ReportKind.HEARTBEAT),
            StepReport(job.id, "prepare", 1, ReportKind.HEARTBEAT),  # after its start
            # Not the attempt its queued first step was dispatched as (that one is 1).
            StepReport(other.id, "prepare", 2, ReportKind.HEARTBEAT),
            StepReport(other.id, "prepare", 2, ReportKind.SUCCEEDED, output=b""),
        ],
        NOW,
    )
    assert list(batch.decided) == [job.id]
    assert len(batch.decided[job.id]) == 2
    assert [(s.item.job_id, s.reason) for s in batch.skipped] == [
        (missing, "job not found"),
        (other.id, "job is QUEUED"),
        (other.id, "job is QUEUED"),
    ]
    # A worker still busy with an attempt that no longer counts (its job gone, or not its
    # attempt) is told to stop; a result needs no such word.
    assert [s.attempt_to_stop for s in batch.skipped] == [
        batch.skipped[0].item,
        batch.skipped[1].item,
        None,
    ]


def test_a_step_handed_to_a_worker_is_not_in_the_outbox_but_in_that_result_s_answer() -> None:
    job, other = new_job(NOOP), new_job(NOOP)
    batch = decide_batch(
        {job.id: job, other.id: other},
        [
            StepReport(job.id, "prepare", 1, ReportKind.SUCCEEDED, output=OUTPUT, take_next=True),
            StepReport(other.id, "prepare", 1, ReportKind.SUCCEEDED, output=OUTPUT),
        ],
        NOW,
    )
    (handed,) = batch.handed.items()
    assert handed[0] == 0  # answers the first input
    assert (handed[1].dispatch.step, handed[1].dispatch.attempt) == ("work", 1)
    assert handed[1].job.checkpoints == {"prepare": OUTPUT}
    changes = {job_id: merge(ds, encode_dispatch) for job_id, ds in batch.decided.items()}
    assert changes[job.id].outbox == ()
    assert [m.subject for m in changes[other.id].outbox] == [bus.step_subject("noop", "work")]


def _cursor_with_children(job_id: uuid.UUID, line: int, *inputs: dict[str, object]) -> StepReport:
    return StepReport(
        job_id,
        "prepare",
        1,
        ReportKind.CURSOR,
        cursor=dict_to_struct({"line": line}).SerializeToString(deterministic=True),
        children=tuple(
            ChildRequest("noop", dict_to_struct(dict(i)).SerializeToString(deterministic=True), i)
            for i in inputs
        ),
    )


def test_a_cursor_creates_its_children_once_for_the_parents_owner() -> None:
    job = new_job(NOOP)
    batch = decide_batch(
        {job.id: job},
        [
            Submitted(job.id),
            _cursor_with_children(job.id, 2, {"sleep_ms": 1}, {"sleep_ms": 2}),
            # Its answer was lost: the worker sends it again.
            _cursor_with_children(job.id, 2, {"sleep_ms": 1}, {"sleep_ms": 2}),
            _cursor_with_children(job.id, 3, {"sleep_ms": 3}),
        ],
        NOW,
    )
    assert [s.reason for s in batch.skipped] == ["a repeated cursor: its jobs were created"]
    children = [p.job for p in batch.created]
    assert [
        struct_to_dict(worker_pb2.StepTask.FromString(p.change.outbox[0].payload).input)
        for p in batch.created
    ] == [{"sleep_ms": 1}, {"sleep_ms": 2}, {"sleep_ms": 3}]
    assert len(children) == 3
    assert {c.owner for c in children} == {job.owner}
    assert {c.parent_id for c in children} == {job.id}
    assert all(c.status is JobStatus.QUEUED for c in children)
    # Each child's first step goes out with its creation, as CreateJob's does.
    assert [len(p.change.outbox) for p in batch.created] == [1, 1, 1]
    (parent,) = batch.decided.values()
    assert parent[-1].change.job.step_named("prepare").cursor == dict_to_struct(  # type: ignore[union-attr]
        {"line": 3}
    ).SerializeToString(deterministic=True)


def test_a_child_the_catalogue_refuses_fails_the_step_and_creates_nothing() -> None:
    job = new_job(NOOP)
    batch = decide_batch(
        {job.id: job},
        [Submitted(job.id), _cursor_with_children(job.id, 1, {"sleep_ms": "soon"})],
        NOW,
    )
    assert batch.created == ()
    (decisions,) = batch.decided.values()
    failed = decisions[-1].change.job
    assert failed.status is JobStatus.FAILED
    assert failed.error_code == "INVALID_CHILD_JOB"


def test_a_passed_deadline_is_decided_like_a_cancel_and_its_notice_survives_the_merge() -> None:
    job = replace(new_job(NOOP), deadline_at=NOW)
    batch = decide_batch({job.id: job}, [Submitted(job.id), DeadlinePassed(job.id)], NOW)
    (decisions,) = batch.decided.values()
    change = merge(decisions, encode_dispatch)
    assert change.job.status is JobStatus.FAILED
    assert change.job.error_code == "DEADLINE_EXCEEDED"
    assert [worker_pb2.CancelStep.FromString(n.payload).step for n in change.notices] == ["prepare"]
    in_time = replace(new_job(NOOP), deadline_at=NOW + timedelta(seconds=1))
    skipped = decide_batch({in_time.id: in_time}, [DeadlinePassed(in_time.id)], NOW).skipped
    assert [s.reason for s in skipped] == ["deadline not passed"]


@pytest.mark.parametrize("subject", [bus.SUBMITTED_SUBJECT, bus.RESULT_SUBJECT, bus.REPORT_SUBJECT])
def test_bytes_that_are_no_message_are_malformed_input(subject: str) -> None:
    # protobuf's DecodeError is no ValueError: decode's callers catch only ValueError.
    with pytest.raises(ValueError, match="undecodable"):
        decode(subject, b"\xff\xff\xff")
