"""Job type versions: a job keeps the step graph it started with across a deploy that
changes its type, and a job whose version is gone fails cleanly at its next decision."""

from __future__ import annotations

from dataclasses import replace

import pytest

from jobkit import control
from jobkit.catalog import Catalog, JobTypeSpec, StepSpec
from jobkit.errors import FailedPrecondition
from jobkit.lifecycle import EventType, JobStatus, StepStatus
from jobkit.model import JobRecord
from services.orchestrator.batching import decide
from services.orchestrator.state_machine import (
    Decision,
    Ignored,
    ReportKind,
    StepReport,
    Submitted,
)
from tests.unit.test_state_machine import NOW, new_job

_SCHEMA = {"type": "object"}

#: Version 1: two steps.
V1 = JobTypeSpec(
    name="essay",
    description="v1",
    steps=(StepSpec("outline", "Outlining...", 0), StepSpec("write", "Writing...", 50)),
    input_schema=_SCHEMA,
)
#: Version 2, deployed later: a review step between, other phases and marks; keeps v1.
V2 = JobTypeSpec(
    name="essay",
    description="v2",
    steps=(
        StepSpec("outline", "Planning the essay...", 0),
        StepSpec("review", "Reviewing the plan...", 30),
        StepSpec("write", "Writing the essay...", 60, timeout_s=300),
    ),
    input_schema=_SCHEMA,
    version=2,
    previous=(V1,),
)
CATALOG = Catalog([V2])


def _job(spec: JobTypeSpec) -> JobRecord:
    return replace(new_job(spec), type_version=spec.version)


def _succeed_running(job: JobRecord, catalog: Catalog = CATALOG) -> Decision:
    running = next(s for s in job.steps if s.status is StepStatus.RUNNING)
    outcome = decide(
        job,
        StepReport(job.id, running.name, running.attempt, ReportKind.SUCCEEDED),
        NOW,
        catalog=catalog,
    )
    assert isinstance(outcome, Decision), outcome
    return outcome


def _run(job: JobRecord, catalog: Catalog = CATALOG) -> tuple[JobRecord, list[str]]:
    """Start the job and succeed every step; the phases it went through."""
    started = decide(job, Submitted(job.id), NOW, catalog=catalog)
    assert isinstance(started, Decision)
    job, phases = started.change.job, [started.change.job.phase]
    while job.status is JobStatus.RUNNING:
        job = _succeed_running(job, catalog).change.job
        phases.append(job.phase)
    return job, phases


def test_the_catalogue_finds_each_version_it_keeps() -> None:
    assert CATALOG.spec("essay", 2) is V2
    assert CATALOG.spec("essay", 1) is V1
    assert CATALOG.spec("essay", 3) is None
    assert CATALOG.spec("poem", 1) is None
    assert V2.every_step_name == ("outline", "review", "write")
    # Gone: older than the current one and not kept. A newer one is not gone: a newer
    # release made the job and decides it.
    assert not CATALOG.version_gone("essay", 1)
    assert Catalog([replace(V2, previous=())]).version_gone("essay", 1)
    assert not CATALOG.version_gone("essay", 3)
    assert not CATALOG.version_gone("poem", 1)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ({"version": 0}, "at least 1"),
        ({"previous": (replace(V1, name="other"),)}, "a previous version is 'other'"),
        ({"previous": (replace(V1, version=2),)}, "distinct and lower"),
        ({"previous": (V1, V1)}, "distinct and lower"),
        ({"version": 3, "previous": (V2,)}, "every previous version once"),
    ],
)
def test_a_spec_with_inconsistent_versions_is_refused_at_load(
    bad: dict[str, object], why: str
) -> None:
    fields = {"version": 2, "previous": (V1,), **bad}
    with pytest.raises(ValueError, match=why):
        JobTypeSpec(name="essay", description="", steps=V2.steps, input_schema=_SCHEMA, **fields)  # type: ignore[arg-type]


def test_a_job_of_each_version_runs_by_its_own_step_graph() -> None:
    old, old_phases = _run(_job(V1))
    new, new_phases = _run(_job(V2))
    assert old.status is new.status is JobStatus.SUCCEEDED
    assert [s.name for s in old.steps] == ["outline", "write"]
    assert old_phases == ["Outlining...", "Writing...", "Done"]
    assert new_phases == [
        "Planning the essay...",
        "Reviewing the plan...",
        "Writing the essay...",
        "Done",
    ]


def test_a_running_job_keeps_its_version_s_steps_after_the_type_changes() -> None:
    """Started under v1 (the only version then), decided after the deploy of v2: its next
    step is v1's "write", with v1's timeout, not v2's "review"."""
    before_deploy = Catalog([V1])
    queued = _job(V1)
    started = decide(queued, Submitted(queued.id), NOW, catalog=before_deploy)
    assert isinstance(started, Decision)
    job = started.change.job
    after = _succeed_running(job, CATALOG)
    (dispatch,) = after.dispatches
    assert dispatch.step == "write"
    assert dispatch.timeout_s == V1.step("write").timeout_s
    assert after.change.job.phase == "Writing..."


def test_a_job_whose_version_is_gone_fails_at_its_next_decision() -> None:
    queued = _job(V1)
    started = decide(queued, Submitted(queued.id), NOW, catalog=CATALOG)
    assert isinstance(started, Decision)
    job = started.change.job
    only_v2 = Catalog([replace(V2, previous=())])
    running = job.steps[0]
    outcome = decide(
        job,
        StepReport(job.id, running.name, running.attempt, ReportKind.SUCCEEDED),
        NOW,
        catalog=only_v2,
    )
    assert isinstance(outcome, Decision)
    failed = outcome.change.job
    assert failed.status is JobStatus.FAILED
    assert failed.error_code == control.JOB_TYPE_VERSION_GONE
    assert "version 1 of job type essay is no longer deployed" in (failed.error_message or "")
    assert [e.type for e in outcome.change.events] == [EventType.STEP_FAILED, EventType.FAILED]
    # Its worker is told to stop the attempt it was running.
    assert len(outcome.change.notices) == 1
    # A finished job is left alone; a version newer than this release is left for a newer
    # orchestrator.
    assert isinstance(decide(failed, Submitted(job.id), NOW, catalog=only_v2), Ignored)
    newer = replace(job, type_version=7)
    assert "version 7" in _ignored(decide(newer, Submitted(job.id), NOW, catalog=CATALOG))


def test_a_queued_job_whose_version_is_gone_fails_when_submitted() -> None:
    job = _job(V1)
    outcome = decide(job, Submitted(job.id), NOW, catalog=Catalog([replace(V2, previous=())]))
    assert isinstance(outcome, Decision)
    assert outcome.change.job.status is JobStatus.FAILED
    assert outcome.change.job.error_code == control.JOB_TYPE_VERSION_GONE


def _ignored(outcome: Decision | Ignored) -> str:
    assert isinstance(outcome, Ignored), outcome
    return outcome.reason


def test_retry_of_a_job_whose_version_is_gone_is_a_failed_precondition() -> None:
    failed = replace(_job(V1), status=JobStatus.FAILED)
    with pytest.raises(FailedPrecondition, match="version 1 of job type essay is no longer"):
        control.retry(failed, NOW, Catalog([replace(V2, previous=())]))
    assert control.retry(failed, NOW, CATALOG).job.status is JobStatus.QUEUED
