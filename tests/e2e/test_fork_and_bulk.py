"""ForkJob and the operators' bulk operations, against the whole stack.

A fork reuses its source's committed checkpoints before ``from_step`` (those steps never
run again: attempt 0, no STEP_STARTED, no worker line) and runs the rest with the
overridden input; BulkRetryJobs and BulkCancelJobs take the jobs matching a filter page
by page, resumably, for admins only."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from devstack import Stack
from jobctl.client import JobsClient
from jobctl.transport import BulkFilter
from jobkit.auth import ADMIN_SCOPE
from jobkit.convert import struct_to_dict
from jobkit.gen.jobs.v1 import jobs_pb2
from tests.e2e.test_job_path import assert_contiguous, watch_all
from tests.e2e.test_jobctl import TRANSPORTS, jobctl

pytestmark = pytest.mark.e2e

E = jobs_pb2


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[JobsClient]:
    token = stack.token("ops", scopes=(ADMIN_SCOPE,))
    async with JobsClient(stack.job_api_addr, stack.notifier_addr, token) as client:
        yield client


async def _user(stack: Stack) -> tuple[str, JobsClient]:
    """A user of this test alone: what a bulk filter by owner takes is only its jobs."""
    name = f"bulk-{uuid.uuid4().hex[:8]}"
    return name, JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token(name))


def worker_lines(stack: Stack, job_id: str) -> list[dict[str, object]]:
    text = stack.services["ai_worker"].log_path.read_text(encoding="utf-8")
    return [r for r in map(json.loads, text.splitlines()) if r.get("job_id") == job_id]


async def test_a_fork_reuses_the_checkpoints_before_its_step_and_runs_the_rest(
    alice: JobsClient, stack: Stack
) -> None:
    source = await alice.create_job("noop", {"sleep_ms": 5, "write": "first draft"})
    assert (await watch_all(alice, source.job_id))[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED

    fork = await alice.fork_job(source.job_id, "work", {"write": "second draft"})
    assert fork.job_id != source.job_id
    assert fork.forked_from_job_id == source.job_id
    assert fork.status == E.JOB_STATUS_QUEUED
    events = await watch_all(alice, fork.job_id)
    assert_contiguous(events)
    assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED
    # CREATED, then the reused step recorded as succeeded without running, then the rest.
    assert [(e.type, e.step, e.attempt) for e in events[:2]] == [
        (E.JOB_EVENT_TYPE_CREATED, "", 0),
        (E.JOB_EVENT_TYPE_STEP_SUCCEEDED, "prepare", 0),
    ]
    assert events[1].message == f"reused from job {source.job_id}"
    started = [e.step for e in events if e.type == E.JOB_EVENT_TYPE_STEP_STARTED]
    assert started == ["work", "finish"]
    progress = [e.progress for e in events]
    assert progress == sorted(progress)
    assert progress[-1] == 100

    done = await alice.get_job(fork.job_id)
    assert done.forked_from_job_id == source.job_id
    assert done.type_version == 1
    assert [(s.name, s.status, s.attempt) for s in done.steps] == [
        ("prepare", E.STEP_STATUS_SUCCEEDED, 0),
        ("work", E.STEP_STATUS_SUCCEEDED, 1),
        ("finish", E.STEP_STATUS_SUCCEEDED, 1),
    ]
    # The result reflects the override.
    assert struct_to_dict(done.result)["written"] == "second draft"
    # No worker ran the reused step for the fork.
    lines = worker_lines(stack, fork.job_id)
    ran = {r.get("step") for r in lines if r["event"] == "step_succeeded"}
    assert ran == {"work", "finish"}
    # The source is untouched.
    assert (await alice.get_job(source.job_id)).forked_from_job_id == ""


async def test_a_fork_from_the_start_is_a_re_run_with_the_overrides(alice: JobsClient) -> None:
    source = await alice.create_job("noop", {"sleep_ms": 1, "write": "one"})
    await watch_all(alice, source.job_id)
    fork = await alice.fork_job(source.job_id, "", {"write": "two"})
    events = await watch_all(alice, fork.job_id)
    assert [e.step for e in events if e.type == E.JOB_EVENT_TYPE_STEP_STARTED] == [
        "prepare",
        "work",
        "finish",
    ]
    assert struct_to_dict((await alice.get_job(fork.job_id)).result)["written"] == "two"


async def test_a_fork_with_an_idempotency_key_is_made_once(alice: JobsClient) -> None:
    source = await alice.create_job("noop", {"sleep_ms": 1, "write": "one"})
    await watch_all(alice, source.job_id)
    first = await alice.fork_job(source.job_id, "work", {"write": "two"}, idempotency_key="f-1")
    again = await alice.fork_job(source.job_id, "work", {"write": "two"}, idempotency_key="f-1")
    assert again.job_id == first.job_id
    # The same key for another fork: from another step, or with other overrides.
    for from_step, overrides in (("finish", {"write": "two"}), ("work", {"write": "three"})):
        with pytest.raises(grpc.aio.AioRpcError) as reused:
            await alice.fork_job(source.job_id, from_step, overrides, idempotency_key="f-1")
        assert reused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    # Without a key, each call is a fork of its own.
    other = await alice.fork_job(source.job_id, "work", {"write": "two"})
    assert other.job_id != first.job_id
    listed = await alice.list_jobs(page_size=500)
    assert sum(j.forked_from_job_id == source.job_id for j in listed.jobs) == 2


async def test_forks_that_cannot_be_are_refused(alice: JobsClient, bob: JobsClient) -> None:
    source = await alice.create_job("noop", {"sleep_ms": 1, "fail_attempts": 100})
    assert (await watch_all(alice, source.job_id))[-1].type == E.JOB_EVENT_TYPE_FAILED

    async def refused(client: JobsClient, *args: object) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await client.fork_job(*args)  # type: ignore[arg-type]
        return raised.value

    unknown = await refused(alice, source.job_id, "polish")
    assert unknown.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert unknown.details() == "from_step must be a step of noop: prepare, work, finish"
    # prepare failed: nothing to reuse past it.
    unfinished = await refused(alice, source.job_id, "work")
    assert unfinished.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "step prepare of job" in (unfinished.details() or "")
    assert "has not succeeded (it is failed)" in (unfinished.details() or "")
    # Someone else's job does not exist.
    foreign = await refused(bob, source.job_id, "")
    assert foreign.code() == grpc.StatusCode.NOT_FOUND
    # The merged input is the type's schema's to judge; the field named as it was sent.
    invalid = await refused(alice, source.job_id, "", {"sleep_ms": "slow"})
    assert invalid.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (invalid.details() or "").startswith("input_overrides.sleep_ms ")
    # From the first step it forks, and the override mends the input.
    fork = await alice.fork_job(source.job_id, "prepare", {"fail_attempts": 0})
    assert (await watch_all(alice, fork.job_id))[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_jobctl_fork_shows_the_source(stack: Stack, transport: str) -> None:
    token = stack.token(f"fork-cli-{transport}")
    made = jobctl(
        stack, "submit", "noop", "--set", "sleep_ms=1", "--watch", token=token, transport=transport
    )
    assert made.returncode == 0, made.stderr
    source_id = made.stdout.splitlines()[0].split()[1]
    forked = jobctl(
        stack,
        "fork",
        source_id,
        "--from",
        "finish",
        "--set",
        'write="again"',
        "--watch",
        token=token,
        transport=transport,
    )
    assert forked.returncode == 0, forked.stderr
    assert f"forked   from {source_id}" in forked.stdout
    assert '"written": "again"' in forked.stdout


async def _failed_jobs(client: JobsClient, count: int) -> list[str]:
    """``count`` noop jobs that fail: each step fails its first 5 attempts, all of a run's,
    so each retry takes a job one step further (attempt 6 of a step succeeds)."""
    failing = {"sleep_ms": 1, "fail_attempts": 5}
    jobs = [await client.create_job("noop", failing) for _ in range(count)]
    for job in jobs:
        assert (await watch_all(client, job.job_id))[-1].type == E.JOB_EVENT_TYPE_FAILED
    return [j.job_id for j in jobs]


async def _ended(client: JobsClient, job_id: str) -> list[jobs_pb2.JobEvent]:
    """Every event of a job, once it is over again (a retried job has several ends)."""
    for _ in range(200):
        if (await client.get_job(job_id)).status in (E.JOB_STATUS_SUCCEEDED, E.JOB_STATUS_FAILED):
            break
        await asyncio.sleep(0.05)
    events: list[jobs_pb2.JobEvent] = []
    while more := await watch_all(client, job_id, events[-1].sequence if events else 0):
        events += more
    return events


def _retries(events: list[jobs_pb2.JobEvent]) -> list[jobs_pb2.JobEvent]:
    return [e for e in events if e.message.startswith("retry requested")]


async def test_bulk_retry_brings_failed_jobs_back_page_by_page(
    admin: JobsClient, stack: Stack
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    owner, client = await _user(stack)
    async with client:
        ids = await _failed_jobs(client, 3)
        where = BulkFilter(
            job_type="noop",
            status="JOB_STATUS_FAILED",
            owner=owner,
            created_after=since,
            created_before=datetime.now(UTC),
        )
        first = await admin.bulk_retry(where, limit=2)
        assert (first.changed, first.skipped) == (2, 0)
        assert first.next_page_token
        # Stopped here, and resumed with the token: only the job not taken yet.
        second = await admin.bulk_retry(where, limit=2, page_token=first.next_page_token)
        assert (second.changed, second.skipped, second.next_page_token) == (1, 0, "")
        for job_id in ids:
            events = await _ended(client, job_id)
            assert_contiguous(events)
            (retry,) = _retries(events)  # each taken once, never twice
            # It ran again: its failed step succeeded on the retry's attempt.
            after = events[events.index(retry) :]
            assert (E.JOB_EVENT_TYPE_STEP_SUCCEEDED, "prepare", 6) in [
                (e.type, e.step, e.attempt) for e in after
            ]
        # Two more runs over everything matching, a step further each, and every job is
        # done, each retried once per run.
        for _ in range(2):
            page = await admin.bulk_retry(where, limit=10)
            assert (page.changed, page.next_page_token) == (3, "")
            for job_id in ids:
                await _ended(client, job_id)
        for job_id in ids:
            assert (await client.get_job(job_id)).status == E.JOB_STATUS_SUCCEEDED
            assert len(_retries(await _ended(client, job_id))) == 3
        # Nothing matches any more.
        assert (await admin.bulk_retry(where)).changed == 0
        # A token is bound to its filter.
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await admin.bulk_retry(
                BulkFilter(job_type="noop", owner=owner), page_token=first.next_page_token
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_bulk_operations_are_for_admins_only(alice: JobsClient, admin: JobsClient) -> None:
    for call in (alice.bulk_retry, alice.bulk_cancel):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call(BulkFilter(job_type="noop"))
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "jobs:admin" in (raised.value.details() or "")
    # A status the operation does not apply to is named.
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await admin.bulk_retry(BulkFilter(status="JOB_STATUS_SUCCEEDED"))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == "filter.status must be FAILED or CANCELLED (or unset: both)"


async def test_jobctl_bulk_cancel_loops_over_pages_until_done(stack: Stack) -> None:
    owner, client = await _user(stack)
    async with client:
        jobs = [await client.create_job("noop", {"sleep_ms": 60_000}) for _ in range(3)]
        token = stack.token("ops-cli", scopes=(ADMIN_SCOPE,))
        ran = await asyncio.to_thread(
            jobctl,
            stack,
            "bulk",
            "cancel",
            "--type",
            "noop",
            "--owner",
            owner,
            "--limit",
            "2",
            token=token,
        )
        assert ran.returncode == 0, ran.stderr
        lines = ran.stdout.splitlines()
        assert lines[0] == "page 1: cancelled 2, skipped 0 (so far cancelled 2, skipped 0)"
        assert lines[-1] == "done: cancelled 3, skipped 0"
        for job in jobs:
            assert (await client.get_job(job.job_id)).status == E.JOB_STATUS_CANCELLED
        refused = await asyncio.to_thread(
            jobctl, stack, "bulk", "retry", "--type", "noop", token=stack.token(owner)
        )
        assert refused.returncode == 4
        assert "PERMISSION_DENIED" in refused.stderr
