"""A client creates jobs through the generated stubs and watches them run to the end."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

from devstack import Stack
from jobctl.client import JobsClient
from jobctl.transport import Scheduling
from jobkit import planning
from jobkit.convert import dict_to_struct
from jobkit.gen.jobs.v1 import (
    job_service_pb2,
    job_service_pb2_grpc,
    jobs_pb2,
    notifier_service_pb2,
    notifier_service_pb2_grpc,
)

pytestmark = pytest.mark.e2e

E = jobs_pb2


async def watch_all(client: JobsClient, job_id: str, after: int = 0) -> list[jobs_pb2.JobEvent]:
    return [e async for e in client.watch(job_id, after)]


def assert_contiguous(events: list[jobs_pb2.JobEvent], start: int = 1) -> None:
    assert [e.sequence for e in events] == list(range(start, start + len(events)))


async def test_noop_job_streams_every_step_to_success(alice: JobsClient) -> None:
    job = await alice.create_job("noop", {"sleep_ms": 50, "fail_attempts": 1})
    assert job.status == E.JOB_STATUS_QUEUED
    assert [s.name for s in job.steps] == ["prepare", "work", "finish"]
    events = await asyncio.wait_for(watch_all(alice, job.job_id), 30)
    assert_contiguous(events)
    assert events[0].type == E.JOB_EVENT_TYPE_CREATED
    assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED
    assert events[-1].status == E.JOB_STATUS_SUCCEEDED
    assert events[-1].progress == 100
    succeeded = Counter(e.step for e in events if e.type == E.JOB_EVENT_TYPE_STEP_SUCCEEDED)
    assert succeeded == {"prepare": 1, "work": 1, "finish": 1}
    retries = [e for e in events if e.type == E.JOB_EVENT_TYPE_STEP_RETRYING]
    assert len(retries) == 3
    assert all(e.attempt == 2 for e in retries)
    progress = [e.progress for e in events]
    assert progress == sorted(progress)
    final = await alice.get_job(job.job_id)
    assert final.status == E.JOB_STATUS_SUCCEEDED
    assert final.progress == 100
    assert [s.attempt for s in final.steps] == [2, 2, 2]
    assert json_format.MessageToDict(final.result)["step"] == "finish"


async def test_watch_resumes_exactly_after_the_given_sequence(alice: JobsClient) -> None:
    job = await alice.create_job("noop", {})
    everything = await asyncio.wait_for(watch_all(alice, job.job_id), 30)
    for after in (1, 3, len(everything) - 1):
        rest = await asyncio.wait_for(watch_all(alice, job.job_id, after), 10)
        assert [e.sequence for e in rest] == [e.sequence for e in everything[after:]]
        assert rest[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED


async def test_watching_a_live_job_from_the_middle(alice: JobsClient) -> None:
    job = await alice.create_job("noop", {"sleep_ms": 300})
    seen: list[jobs_pb2.JobEvent] = []
    async for event in alice.watch(job.job_id):
        seen.append(event)
        if event.type == E.JOB_EVENT_TYPE_STEP_STARTED:
            break  # a client that goes away mid-job
    rest = await asyncio.wait_for(watch_all(alice, job.job_id, seen[-1].sequence), 30)
    assert_contiguous(seen + rest)
    assert rest[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED


async def test_another_user_cannot_see_or_touch_the_job(alice: JobsClient, bob: JobsClient) -> None:
    job = await alice.create_job("noop", {})
    for call in (bob.get_job, bob.cancel_job, bob.retry_job, bob.delete_job):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(job.job_id)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await watch_all(bob, job.job_id)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await bob.list_jobs(page_size=500)
    assert job.job_id not in {j.job_id for j in listed.jobs}
    assert (await alice.get_job(job.job_id)).job_id == job.job_id


async def test_calls_without_a_valid_token_are_unauthenticated(stack: Stack) -> None:
    for token in ("", "not-a-jwt", stack.token("alice") + "x"):
        async with JobsClient(stack.job_api_addr, stack.notifier_addr, token) as client:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.list_job_types()
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await watch_all(client, "00000000-0000-0000-0000-000000000000")
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_invalid_input_names_the_field(stack: Stack) -> None:
    async with grpc.aio.insecure_channel(stack.job_api_addr) as channel:
        stub = job_service_pb2_grpc.JobServiceStub(channel)
        metadata = (("authorization", f"Bearer {stack.token('alice')}"),)
        request = job_service_pb2.CreateJobRequest(type="cv_tailoring")
        request.input.update({"resume": {"name": "Ada"}, "job_posting": {"title": "x"}})
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateJob(request, metadata=metadata)
        error = caught.value
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "input.job_posting.company" in (error.details() or "")
        trailers: dict[str, Any] = dict(error.trailing_metadata() or ())  # type: ignore[arg-type]
        status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
        bad_request = error_details_pb2.BadRequest()
        status.details[0].Unpack(bad_request)
        assert {v.field for v in bad_request.field_violations} == {
            "input.job_posting.company",
            "input.job_posting.description",
        }
        for bad in (
            job_service_pb2.CreateJobRequest(type="nope"),
            job_service_pb2.CreateJobRequest(type=""),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CreateJob(bad, metadata=metadata)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "type" in (caught.value.details() or "")
        for job_id in ("", "123", "../etc"):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.GetJob(job_service_pb2.GetJobRequest(job_id=job_id), metadata=metadata)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetJob(
                job_service_pb2.GetJobRequest(job_id="00000000-0000-0000-0000-000000000000"),
                metadata=metadata,
            )
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListJobs(job_service_pb2.ListJobsRequest(page_size=-1), metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListJobs(
                job_service_pb2.ListJobsRequest(page_token="forged"), metadata=metadata
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    async with grpc.aio.insecure_channel(stack.notifier_addr) as channel:
        notifier = notifier_service_pb2_grpc.NotifierServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in notifier.WatchJob(
                notifier_service_pb2.WatchJobRequest(job_id="x"), metadata=metadata
            ):
                pass
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_cancel_stops_a_running_job_and_retry_resumes_it(alice: JobsClient) -> None:
    job = await alice.create_job("noop", {"sleep_ms": 1500})
    async for event in alice.watch(job.job_id):
        if event.type == E.JOB_EVENT_TYPE_STEP_STARTED:
            break
    cancelled = await alice.cancel_job(job.job_id)
    assert cancelled.status == E.JOB_STATUS_CANCELLED
    assert cancelled.steps[0].status == E.STEP_STATUS_CANCELLED
    events = await asyncio.wait_for(watch_all(alice, job.job_id), 10)
    assert events[-1].type == E.JOB_EVENT_TYPE_CANCELLED
    await asyncio.sleep(1.0)  # the cancelled attempt's result, if any, must be ignored
    assert (await alice.get_job(job.job_id)).status == E.JOB_STATUS_CANCELLED
    assert (await alice.cancel_job(job.job_id)).status == E.JOB_STATUS_CANCELLED

    resumed = await alice.retry_job(job.job_id)
    assert resumed.status == E.JOB_STATUS_QUEUED
    rest = await asyncio.wait_for(watch_all(alice, job.job_id, events[-1].sequence), 30)
    assert_contiguous(events + rest)
    assert rest[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await alice.cancel_job(job.job_id)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_list_jobs_pages_newest_first_with_filters(stack: Stack) -> None:
    async with JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token("lister")) as client:
        created = [(await client.create_job("noop", {})).job_id for _ in range(5)]
        seen: list[str] = []
        token = ""
        while True:
            page = await client.list_jobs(page_size=2, page_token=token)
            assert len(page.jobs) <= 2
            seen += [j.job_id for j in page.jobs]
            token = page.next_page_token
            if not token:
                break
        assert seen == list(reversed(created))
        only_noop = await client.list_jobs(page_size=10, job_type="noop")
        assert len(only_noop.jobs) == 5
        none = await client.list_jobs(page_size=10, job_type="cv_tailoring")
        assert len(none.jobs) == 0


async def test_delete_erases_the_job(alice: JobsClient) -> None:
    job = await alice.create_job("noop", {"sleep_ms": 2000})
    await alice.delete_job(job.job_id)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await alice.get_job(job.job_id)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_idempotency_key_returns_the_same_job_or_conflicts(alice: JobsClient) -> None:
    first = await alice.create_job("noop", {"sleep_ms": 1}, idempotency_key="k-1")
    again = await alice.create_job("noop", {"sleep_ms": 1}, idempotency_key="k-1")
    assert again.job_id == first.job_id
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await alice.create_job("noop", {"sleep_ms": 2}, idempotency_key="k-1")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    # The whole request counts: the same input asked to run otherwise is another request;
    # an unset priority is the default, 5.
    default = await alice.create_job(
        "noop", {"sleep_ms": 1}, idempotency_key="k-1", scheduling=Scheduling(priority=5)
    )
    assert default.job_id == first.job_id
    for other in (Scheduling(priority=9), Scheduling(concurrency_key="mine")):
        with pytest.raises(grpc.aio.AioRpcError) as conflict:
            await alice.create_job("noop", {"sleep_ms": 1}, idempotency_key="k-1", scheduling=other)
        assert conflict.value.code() == grpc.StatusCode.ALREADY_EXISTS, other


async def test_a_job_made_when_only_type_and_input_counted_is_found_by_its_repeat(
    alice: JobsClient, stack: Stack
) -> None:
    first = await alice.create_job("noop", {"sleep_ms": 1}, idempotency_key="k-earlier")
    # As a release before the whole request counted recorded it.
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            "UPDATE jobs SET request_hash = $1 WHERE id = $2",
            planning.input_hash(
                "noop", dict_to_struct({"sleep_ms": 1}).SerializeToString(deterministic=True)
            ),
            uuid.UUID(first.job_id),
        )
    finally:
        await conn.close()
    again = await alice.create_job("noop", {"sleep_ms": 1}, idempotency_key="k-earlier")
    assert again.job_id == first.job_id
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await alice.create_job("noop", {"sleep_ms": 2}, idempotency_key="k-earlier")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_job_types_are_discoverable(alice: JobsClient) -> None:
    types = {t.name: list(t.steps) for t in await alice.list_job_types()}
    assert types["cv_tailoring"] == [
        "load_profile",
        "analyze_posting",
        "tailor_cv",
        "write_cover_letter",
        "render_preview",
    ]
    assert types["noop"] == ["prepare", "work", "finish"]
