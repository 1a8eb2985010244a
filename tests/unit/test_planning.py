"""A new job as job_api plans it: QUEUED, with its first step already dispatched."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf import struct_pb2

from jobkit import bus
from jobkit.convert import struct_to_dict
from jobkit.errors import InvalidArgument
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.lifecycle import EventType, JobStatus, StepStatus
from jobkit.model import NewJob, Scheduling
from jobkit.planning import CreateRequest, expressed, fork_request_hash, plan, validate
from jobtypes import CATALOG
from tests.unit.test_state_machine import NOW


def test_a_new_job_is_queued_with_its_first_attempt_sent_to_the_workers() -> None:
    document = {"sleep_ms": 5}
    value = struct_pb2.Struct()
    value.update(document)
    request = CreateRequest("noop", value.SerializeToString(), document, None)
    job_id = uuid.uuid4()
    planned = plan(
        validate(request, CATALOG, max_input_bytes=1024),
        owner="alice",
        job_id=job_id,
        now=NOW,
        trace_context="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    job = planned.job
    assert job.status is JobStatus.QUEUED
    assert [(s.status, s.attempt) for s in job.steps] == [(StepStatus.PENDING, 0)] * 3
    assert [e.type for e in planned.change.events] == [EventType.CREATED]
    # No round through the orchestrator: the outbox holds the step itself.
    (dispatch,) = planned.change.outbox
    assert dispatch.subject == bus.step_subject("noop", "prepare")
    assert dispatch.msg_id == f"{job_id}:prepare:1"
    assert dispatch.trace_context == job.trace_context
    task = worker_pb2.StepTask.FromString(dispatch.payload)
    assert (task.job_id, task.job_type, task.step, task.attempt) == (
        str(job_id),
        "noop",
        "prepare",
        1,
    )
    assert struct_to_dict(task.input) == document
    assert task.timeout.seconds > 0
    assert job.queued_attempt == (job.steps[0], 1)


def test_without_dispatch_first_step_the_job_is_submitted_for_an_orchestrator() -> None:
    value = struct_pb2.Struct()
    request = CreateRequest("noop", value.SerializeToString(), {}, None)
    planned = plan(
        validate(request, CATALOG, max_input_bytes=1024),
        owner="alice",
        job_id=uuid.uuid4(),
        now=NOW,
        trace_context="",
        dispatch_first_step=False,
    )
    (submission,) = planned.change.outbox
    assert submission.subject == bus.SUBMITTED_SUBJECT
    assert worker_pb2.JobSubmitted.FromString(submission.payload).job_id == str(planned.job.id)


def _noop_request(scheduling: Scheduling) -> CreateRequest:
    return CreateRequest("noop", struct_pb2.Struct().SerializeToString(), {}, None, scheduling)


def test_scheduling_defaults_to_priority_5_and_is_planned_onto_the_job() -> None:
    later = NOW + timedelta(minutes=5)
    valid = validate(
        _noop_request(Scheduling(0, later, 90.0, "tenant-a")), CATALOG, max_input_bytes=1024
    )
    assert valid.scheduling.priority == 5
    planned = plan(valid, owner="alice", job_id=uuid.uuid4(), now=NOW, trace_context="")
    job = planned.job
    assert (job.priority, job.not_before, job.concurrency_key) == (5, later, "tenant-a")
    assert job.deadline_at == NOW + timedelta(seconds=90)
    # The first step leaves the outbox when the job may start: no poller needed.
    (dispatch,) = planned.change.outbox
    assert dispatch.not_before == later


def test_a_concurrency_limit_is_planned_onto_the_job() -> None:
    asked = Scheduling(concurrency_key="tenant-a", concurrency_limit=2)
    valid = validate(_noop_request(asked), CATALOG, max_input_bytes=1024)
    planned = plan(valid, owner="alice", job_id=uuid.uuid4(), now=NOW, trace_context="")
    assert (planned.job.concurrency_key, planned.job.concurrency_limit) == ("tenant-a", 2)


@pytest.mark.parametrize(
    ("scheduling", "field"),
    [
        (Scheduling(priority=10), "priority"),
        (Scheduling(priority=-1), "priority"),
        (Scheduling(deadline_s=0), "deadline"),
        (Scheduling(deadline_s=31 * 86400), "deadline"),
        (Scheduling(concurrency_key="k" * 201), "concurrency_key"),
        (Scheduling(concurrency_key="k", concurrency_limit=0), "concurrency_limit"),
        (Scheduling(concurrency_key="k", concurrency_limit=1001), "concurrency_limit"),
        (Scheduling(concurrency_limit=2), "concurrency_limit"),
    ],
)
def test_out_of_range_scheduling_is_refused_naming_its_field(
    scheduling: Scheduling, field: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        validate(_noop_request(scheduling), CATALOG, max_input_bytes=1024)
    assert [v.field for v in refused.value.violations] == [field]


def test_the_request_hash_is_the_whole_request_and_the_earlier_one_type_and_input() -> None:
    def hashes(scheduling: Scheduling) -> tuple[bytes, bytes]:
        valid = validate(_noop_request(scheduling), CATALOG, max_input_bytes=1024)
        return valid.request_hash, valid.earlier_hash

    plain = hashes(Scheduling())
    assert hashes(Scheduling(priority=5)) == plain  # unset is the default
    for other in (
        Scheduling(priority=9),
        Scheduling(deadline_s=60),
        Scheduling(not_before=datetime(2030, 1, 1, tzinfo=UTC)),
        Scheduling(concurrency_key="k"),
        Scheduling(concurrency_key="k", concurrency_limit=2),
    ):
        differs = hashes(other)
        assert differs[0] != plain[0], other
        assert differs[1] == plain[1], other  # what an earlier release recorded
    assert (
        len({hashes(Scheduling(concurrency_key="k", concurrency_limit=n))[0] for n in (1, 2)}) == 2
    )


def test_a_forks_request_hash_names_its_source_and_first_step() -> None:
    valid = validate(_noop_request(Scheduling()), CATALOG, max_input_bytes=1024)
    source, other = uuid.uuid4(), uuid.uuid4()
    fork = fork_request_hash(valid, source, "work").request_hash
    assert fork == fork_request_hash(valid, source, "work").request_hash
    assert fork != valid.request_hash
    assert fork != fork_request_hash(valid, other, "work").request_hash
    assert fork != fork_request_hash(valid, source, "finish").request_hash
    earlier = fork_request_hash(valid, source, "work").earlier_hash
    assert earlier not in (fork, valid.earlier_hash)


def _planned(document: dict[str, Any], scheduling: Scheduling | None = None) -> NewJob:
    value = struct_pb2.Struct()
    value.update(document)
    request = CreateRequest(
        "noop", value.SerializeToString(), document, None, scheduling or Scheduling()
    )
    return plan(
        validate(request, CATALOG, max_input_bytes=1024),
        owner="alice",
        job_id=uuid.uuid4(),
        now=NOW,
        trace_context="",
    )


def test_a_newcomers_first_step_goes_to_the_express_lane_whole() -> None:
    planned = _planned({"sleep_ms": 5})
    fast = expressed(planned)
    (normal,) = planned.change.outbox
    (express,) = fast.change.outbox
    assert normal.subject == bus.step_subject("noop", "prepare")
    assert express.subject == "jobs.express.noop.prepare"
    # The same attempt, the same id: only where it waits changes.
    assert (express.msg_id, express.payload) == (normal.msg_id, normal.payload)
    assert fast.job == planned.job


@pytest.mark.parametrize(
    "scheduling",
    [
        Scheduling(not_before=NOW + timedelta(minutes=5)),
        Scheduling(concurrency_key="k", concurrency_limit=1),
    ],
)
def test_a_job_that_waits_for_its_time_or_its_cap_keeps_its_lane(scheduling: Scheduling) -> None:
    planned = _planned({"sleep_ms": 5}, scheduling)
    assert expressed(planned) == planned
