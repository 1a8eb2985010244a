"""``jobkit.records.replace``: the copy ``dataclasses.replace`` makes, by a faster road."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from jobkit.lifecycle import EventType, JobStatus, StepStatus
from jobkit.model import JobChange, JobRecord, NewEvent, StepRecord
from jobkit.records import replace

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def a_job() -> JobRecord:
    job_id = uuid.uuid4()
    return JobRecord(
        id=job_id,
        owner="alice",
        type="noop",
        status=JobStatus.RUNNING,
        input=b"{}",
        created_at=NOW,
        updated_at=NOW,
        steps=(StepRecord(job_id, 0, "prepare", StepStatus.RUNNING, attempt=2),),
        progress=40,
        phase="Working...",
    )


@pytest.mark.parametrize(
    "changes",
    [{}, {"progress": 55}, {"progress": 55, "phase": "Done", "status": JobStatus.SUCCEEDED}],
)
def test_a_record_copied_with_changes_equals_what_dataclasses_makes(
    changes: dict[str, Any],
) -> None:
    job = a_job()
    ours = replace(job, **changes)
    assert ours == dataclasses.replace(job, **changes)
    assert ours is not job
    # Every field, not only those compared: a field left unset would raise here.
    for f in dataclasses.fields(JobRecord):
        assert getattr(ours, f.name) == changes.get(f.name, getattr(job, f.name))
    # The original is untouched.
    assert job.progress == 40


def test_every_record_kind_on_the_step_path_is_copied_alike() -> None:
    job = a_job()
    step = job.steps[0]
    assert replace(step, percent=70) == dataclasses.replace(step, percent=70)
    event = NewEvent(type=EventType.PROGRESS, status=JobStatus.RUNNING, progress=40)
    assert replace(event, phase="x") == dataclasses.replace(event, phase="x")
    change = JobChange(job=job, steps=(step,))
    assert replace(change, usage=()) == dataclasses.replace(change, usage=())


def test_a_field_the_record_does_not_have_is_refused() -> None:
    with pytest.raises(TypeError, match="no field 'progres'"):
        replace(a_job(), progres=50)  # type: ignore[call-arg]


@dataclasses.dataclass(frozen=True, slots=True)
class _Derived:
    base: int
    doubled: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "doubled", self.base * 2)


def test_a_class_whose_constructor_does_more_than_assign_goes_through_it() -> None:
    # Copying the slots would keep the old ``doubled``; its constructor recomputes it.
    assert replace(_Derived(2), base=5).doubled == 10
