"""Planning a fork (ForkJob): what it reuses from its source, its input, its events."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from google.protobuf import struct_pb2

from jobkit.catalog import Catalog
from jobkit.convert import struct_to_dict
from jobkit.errors import FailedPrecondition, FieldViolation, InvalidArgument
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.lifecycle import EventType, JobStatus, StepStatus
from jobkit.model import JobRecord
from jobkit.planning import (
    CreateRequest,
    as_overrides,
    fork_input,
    fork_scheduling,
    plan,
    reuse_for_fork,
    validate,
)
from jobtypes import CATALOG
from jobtypes.cv_tailoring.spec import SPEC as CV
from jobtypes.noop.spec import SPEC as NOOP
from services.orchestrator.state_machine import Decision, ReportKind, StepReport, apply_report
from tests.unit.test_state_machine import NOW, new_job


def _source(*statuses: StepStatus) -> JobRecord:
    job = new_job(NOOP, JobStatus.FAILED)
    steps = tuple(
        replace(
            s,
            status=status,
            output=_struct({"step": s.name}) if status is StepStatus.SUCCEEDED else None,
            attempt=1,
        )
        for s, status in zip(job.steps, statuses, strict=False)
    )
    return replace(job, steps=steps + job.steps[len(steps) :])


def _struct(doc: dict[str, Any]) -> bytes:
    value = struct_pb2.Struct()
    value.update(doc)
    return value.SerializeToString(deterministic=True)


def test_a_fork_reuses_the_checkpoints_before_its_step() -> None:
    source = _source(StepStatus.SUCCEEDED, StepStatus.SUCCEEDED, StepStatus.FAILED)
    reuse = reuse_for_fork(source, CATALOG, "finish")
    assert reuse.source_id == source.id
    assert reuse.checkpoints == (
        ("prepare", _struct({"step": "prepare"})),
        ("work", _struct({"step": "work"})),
    )
    assert reuse_for_fork(source, CATALOG, "").checkpoints == ()  # a plain re-run
    assert reuse_for_fork(source, CATALOG, "prepare").checkpoints == ()


def test_a_step_the_type_does_not_have_is_invalid_naming_from_step() -> None:
    source = _source(StepStatus.SUCCEEDED)
    with pytest.raises(InvalidArgument) as raised:
        reuse_for_fork(source, CATALOG, "polish")
    assert raised.value.violations == (
        FieldViolation("from_step", "must be a step of noop: prepare, work, finish"),
    )


def test_a_fork_past_a_step_that_did_not_succeed_is_a_failed_precondition() -> None:
    source = _source(StepStatus.SUCCEEDED, StepStatus.FAILED)
    with pytest.raises(FailedPrecondition, match=r"step work of job .* has not succeeded .*failed"):
        reuse_for_fork(source, CATALOG, "finish")
    assert reuse_for_fork(source, CATALOG, "work").checkpoints == (
        ("prepare", _struct({"step": "prepare"})),
    )


def test_a_fork_of_a_job_whose_version_is_gone_is_a_failed_precondition() -> None:
    source = replace(_source(StepStatus.SUCCEEDED), type_version=1)
    bumped = Catalog(
        [replace(spec, version=2) if spec.name == "noop" else spec for spec in CATALOG.values()]
    )
    with pytest.raises(
        FailedPrecondition, match="version 1 of job type noop is no longer deployed"
    ):
        reuse_for_fork(source, bumped, "work")


def test_overrides_replace_top_level_keys_whole() -> None:
    source = {"a": 1, "nested": {"x": 1, "y": 2}}
    assert fork_input(source, {"nested": {"x": 5}, "b": 2}) == {
        "a": 1,
        "nested": {"x": 5},
        "b": 2,
    }


def test_violations_of_the_merged_input_are_named_as_the_caller_sent_them() -> None:
    error = InvalidArgument(
        "input.sleep_ms must be at most 600000",
        [
            FieldViolation("input.sleep_ms", "must be at most 600000"),
            FieldViolation("input.write", "must be a string"),
        ],
    )
    renamed = as_overrides(error, {"sleep_ms": 10**9})
    assert [v.field for v in renamed.violations] == ["input_overrides.sleep_ms", "input.write"]
    assert str(renamed) == "input_overrides.sleep_ms must be at most 600000"


def test_the_fork_keeps_the_source_s_scheduling_but_starts_now() -> None:
    source = replace(
        new_job(NOOP),
        priority=8,
        not_before=NOW + timedelta(hours=1),
        deadline_at=NOW + timedelta(minutes=10),
        concurrency_key="tenant",
        concurrency_limit=2,
    )
    scheduling = fork_scheduling(source)
    assert (scheduling.priority, scheduling.deadline_s, scheduling.not_before) == (8, 600.0, None)
    assert (scheduling.concurrency_key, scheduling.concurrency_limit) == ("tenant", 2)


def test_a_planned_fork_records_its_reused_steps_and_dispatches_its_first_step() -> None:
    source = _source(StepStatus.SUCCEEDED, StepStatus.SUCCEEDED, StepStatus.FAILED)
    doc = {"sleep_ms": 1.0, "write": "again"}
    valid = validate(
        CreateRequest("noop", _struct(doc), doc, None, type_version=source.type_version),
        CATALOG,
        max_input_bytes=1024,
    )
    job_id = uuid.uuid4()
    planned = plan(
        valid,
        owner="alice",
        job_id=job_id,
        now=NOW,
        trace_context="",
        reuse=reuse_for_fork(source, CATALOG, "finish"),
    )
    job = planned.job
    assert job.forked_from_id == source.id
    assert job.type_version == 1
    assert [(s.status, s.attempt, s.output) for s in job.steps] == [
        (StepStatus.SUCCEEDED, 0, _struct({"step": "prepare"})),
        (StepStatus.SUCCEEDED, 0, _struct({"step": "work"})),
        (StepStatus.PENDING, 0, None),
    ]
    events = planned.change.events
    assert [(e.type, e.step, e.attempt) for e in events] == [
        (EventType.CREATED, "", 0),
        (EventType.STEP_SUCCEEDED, "prepare", 0),
        (EventType.STEP_SUCCEEDED, "work", 0),
    ]
    assert all(e.message == f"reused from job {source.id}" for e in events[1:])
    # Progress as if the reused steps had run: up to where the first step to run starts.
    assert [e.progress for e in events] == [0, 33, 66]
    assert job.progress == 66
    # The first dispatched step is the fork's, with the reused checkpoints in its task.
    (dispatch,) = planned.change.outbox
    task = worker_pb2.StepTask.FromString(dispatch.payload)
    assert (task.step, task.attempt) == ("finish", 1)
    assert sorted(task.checkpoints) == ["prepare", "work"]
    assert struct_to_dict(task.input) == doc
    # Its worker's first report starts the job on that step, progress going on from 66.
    started = apply_report(job, NOOP, StepReport(job_id, "finish", 1, ReportKind.HEARTBEAT), NOW)
    assert isinstance(started, Decision)
    assert started.change.job.status is JobStatus.RUNNING
    assert started.change.job.progress == 66


def _cv_source(failed: str | None = None) -> JobRecord:
    """A finished cv_tailoring (version 2) job; ``failed``: that step failed instead."""
    job = new_job(CV, JobStatus.SUCCEEDED if failed is None else JobStatus.FAILED)
    return replace(
        job,
        type_version=CV.version,
        steps=tuple(
            replace(
                s,
                status=StepStatus.FAILED if s.name == failed else StepStatus.SUCCEEDED,
                output=None if s.name == failed else _struct({"step": s.name}),
                attempt=1,
            )
            for s in job.steps
        ),
    )


@pytest.mark.parametrize(
    ("from_step", "reused"),
    [
        # The letter again: the CV (another branch) stands.
        ("write_cover_letter", ["load_profile", "analyze_posting", "tailor_cv"]),
        # The CV again: the letter stands.
        ("tailor_cv", ["load_profile", "analyze_posting", "write_cover_letter"]),
        ("render_preview", ["load_profile", "analyze_posting", "tailor_cv", "write_cover_letter"]),
        ("", []),
    ],
)
def test_a_fork_reuses_every_step_that_does_not_wait_for_its_first(
    from_step: str, reused: list[str]
) -> None:
    reuse = reuse_for_fork(_cv_source(), CATALOG, from_step)
    assert [name for name, _ in reuse.checkpoints] == reused


def test_a_fork_needs_only_the_steps_its_first_waits_for() -> None:
    # The letter failed: the CV can still be forked (the letter runs again with it)...
    source = _cv_source(failed="write_cover_letter")
    reuse = reuse_for_fork(source, CATALOG, "tailor_cv")
    assert [name for name, _ in reuse.checkpoints] == ["load_profile", "analyze_posting"]
    # ...but not the preview, which waits for the letter.
    with pytest.raises(FailedPrecondition, match="write_cover_letter"):
        reuse_for_fork(source, CATALOG, "render_preview")
