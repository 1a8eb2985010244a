"""Scheduling through the public API: a job's priority, concurrency key, not_before and
deadline, as CreateJob takes them and GetJob, the gateway and jobctl show them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import grpc
import httpx
import pytest

from devstack import Stack
from jobctl.client import JobsClient
from jobctl.transport import Scheduling
from jobkit.gen.jobs.v1 import jobs_pb2
from tests.e2e.test_durability import worker_log_events
from tests.e2e.test_jobctl import jobctl

pytestmark = pytest.mark.e2e

E = jobs_pb2


async def test_a_job_does_not_start_before_its_time(alice: JobsClient) -> None:
    when = datetime.now(UTC) + timedelta(seconds=3)
    job = await alice.create_job("noop", {}, scheduling=Scheduling(not_before=when))
    assert job.status == E.JOB_STATUS_QUEUED
    assert job.not_before.ToDatetime(tzinfo=UTC) == when
    events = [e async for e in alice.watch(job.job_id)]
    assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED
    started = next(e for e in events if e.type == E.JOB_EVENT_TYPE_STEP_STARTED)
    late_s = (started.occurred_at.ToDatetime(tzinfo=UTC) - when).total_seconds()
    # To the second: not a moment early, and no polling interval late.
    assert 0 <= late_s < 1.0, late_s


async def test_a_deadline_fails_a_long_step_on_time_and_stops_its_worker(
    alice: JobsClient, stack: Stack
) -> None:
    job = await alice.create_job(
        "noop", {"sleep_ms": 60_000}, scheduling=Scheduling(deadline_s=2.0)
    )
    assert job.deadline.ToTimedelta() == timedelta(seconds=2)
    events = await asyncio.wait_for(_all(alice, job.job_id), 20)
    assert events[-1].type == E.JOB_EVENT_TYPE_FAILED
    # The running step's failure is in the log before the job's, for whoever follows it.
    assert (events[-2].type, events[-2].step) == (E.JOB_EVENT_TYPE_STEP_FAILED, "prepare")
    failed = await alice.get_job(job.job_id)
    assert failed.error.code == "DEADLINE_EXCEEDED"
    took = (events[-1].occurred_at.ToDatetime() - job.created_at.ToDatetime()).total_seconds()
    # The deadline, then at most one scan of the orchestrator's (LEASE_SCAN_S, 1 s).
    assert 2.0 <= took < 4.0, took
    assert failed.steps[0].status == E.STEP_STATUS_FAILED
    # Its worker was told to stop the step, and did.
    for _ in range(30):
        if "step_cancelled" in worker_log_events(stack, job.job_id):
            break
        await asyncio.sleep(0.1)
    assert "step_cancelled" in worker_log_events(stack, job.job_id)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await alice.retry_job(job.job_id)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def _all(client: JobsClient, job_id: str) -> list[jobs_pb2.JobEvent]:
    return [e async for e in client.watch(job_id)]


async def test_priority_and_key_are_kept_and_shown(alice: JobsClient, stack: Stack) -> None:
    job = await alice.create_job(
        "noop", {}, scheduling=Scheduling(priority=8, concurrency_key="tenant-7")
    )
    shown = await alice.get_job(job.job_id)
    assert (shown.priority, shown.concurrency_key) == (8, "tenant-7")
    plain = await alice.create_job("noop", {})
    assert plain.priority == 5
    assert not plain.HasField("deadline")
    async with httpx.AsyncClient(base_url=stack.gateway_url) as http:
        body = (
            await http.get(
                f"/v1/jobs/{job.job_id}",
                headers={"Authorization": f"Bearer {stack.token('alice')}"},
            )
        ).json()
    assert (body["priority"], body["concurrencyKey"]) == (8, "tenant-7")
    for bad, field in (
        (Scheduling(priority=12), "priority"),
        (Scheduling(deadline_s=-1), "deadline"),
        (Scheduling(concurrency_limit=2), "concurrency_limit"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await alice.create_job("noop", {}, scheduling=bad)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (refused.value.details() or "")


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_jobctl_submits_with_scheduling_and_shows_it(stack: Stack, transport: str) -> None:
    token = stack.token(f"scheduler-{transport}")
    made = jobctl(
        stack,
        "submit",
        "noop",
        "--priority",
        "7",
        "--not-before",
        "+1",
        "--deadline",
        "30",
        "--concurrency-key",
        "batch",
        "--concurrency-limit",
        "3",
        "-o",
        "json",
        token=token,
        transport=transport,
    )
    assert made.returncode == 0, made.stderr
    job_id = json.loads(made.stdout)["job_id"]
    shown = jobctl(stack, "get", job_id, token=token, transport=transport)
    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if x.startswith("priority"))
    assert line.startswith("priority 7; not before ")
    assert line.endswith("; deadline 30s after creation; key batch (at most 3 at once)")
