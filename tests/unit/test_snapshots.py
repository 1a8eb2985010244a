"""jobkit.snapshots: a job sent from job_api to the orchestrators decodes to the same
record, every field of it."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from jobkit import snapshots
from jobkit.inputs import InputRequest
from jobkit.lifecycle import JobStatus, StepStatus
from jobkit.model import JobRecord, StepRecord

NOW = datetime(2026, 12, 3, 2, 30, 1, 123456, tzinfo=UTC)


def every_field_set() -> JobRecord:
    job_id = uuid.uuid4()
    return JobRecord(
        id=job_id,
        owner="alice",
        type="cv_tailoring",
        status=JobStatus.RUNNING,
        input=b"\x00\x01input",
        created_at=NOW,
        updated_at=NOW + timedelta(microseconds=1),
        progress=42,
        phase="Tailoring",
        result=b"\xffresult",
        error_code="E",
        error_message="an error",
        last_sequence=7,
        finished_at=NOW + timedelta(seconds=3),
        steps=(
            StepRecord(
                job_id,
                0,
                "load",
                StepStatus.SUCCEEDED,
                attempt=2,
                retry_base=1,
                output=b"out",
                error_code="X",
                error_message="m",
                lease_expires_at=NOW + timedelta(seconds=20),
                started_at=NOW,
                finished_at=NOW + timedelta(seconds=1),
                cursor=b"cur",
                percent=100,
            ),
            StepRecord(
                job_id,
                1,
                "review",
                StepStatus.WAITING_INPUT,
                input_request=InputRequest(
                    "Approve?", {"type": "object"}, {"a": 1}, NOW + timedelta(days=1)
                ),
            ),
            StepRecord(job_id, 2, "write", StepStatus.PENDING),
        ),
        trace_context="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        version=4,
        parent_id=uuid.uuid4(),
        priority=9,
        not_before=NOW - timedelta(seconds=1),
        deadline_at=NOW + timedelta(hours=1),
        concurrency_key="tenant",
        concurrency_limit=2,
        webhook_url="https://hooks.test/x",
        type_version=3,
        forked_from_id=uuid.uuid4(),
    )


def test_a_job_with_every_field_set_comes_back_equal() -> None:
    job = every_field_set()
    assert snapshots.decode(snapshots.encode(job)) == job


def test_a_job_with_every_optional_field_empty_comes_back_equal() -> None:
    job_id = uuid.uuid4()
    job = JobRecord(
        job_id,
        "bob",
        "noop",
        JobStatus.QUEUED,
        b"",
        NOW,
        NOW,
        steps=(StepRecord(job_id, 0, "prepare", StepStatus.PENDING),),
    )
    assert snapshots.decode(snapshots.encode(job)) == job


def test_the_round_trip_above_sets_every_field() -> None:
    """So a field added to the records and not to the encoding (it would come back at
    its default) fails the round trip: every field here differs from its default."""
    job = every_field_set()
    for field in dataclasses.fields(JobRecord):
        if field.name != "usage":  # not a column: the orchestrator never loads it
            assert getattr(job, field.name) != field.default, field.name
    for field in dataclasses.fields(StepRecord):
        assert any(getattr(s, field.name) != field.default for s in job.steps), field.name


@pytest.mark.parametrize("data", [b"", b"{}", b"[]", b'{"id": "not a uuid"}', b"\xff"])
def test_what_was_not_encoded_here_is_refused(data: bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        snapshots.decode(data)


def test_a_large_job_is_not_sent() -> None:
    job = every_field_set()
    assert snapshots.fits(job)
    assert not snapshots.fits(dataclasses.replace(job, input=b"x" * (snapshots.MAX_BYTES + 1)))
