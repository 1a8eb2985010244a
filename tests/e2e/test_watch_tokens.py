"""WatchJob's end, and watch tokens: a read-only pass for one job's events, for clients
that cannot set headers (a browser's EventSource, through the gateway)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import grpc
import jwt
import pytest

from devstack import Stack
from jobctl.client import JobsClient
from jobkit.gen.jobs.v1 import job_service_pb2, jobs_pb2, notifier_service_pb2
from jobkit.rpc import WATCH_LIVE_HEADER
from jobkit.watch_tokens import WatchTokens

pytestmark = pytest.mark.e2e

Code = grpc.StatusCode


async def _finished_job(client: JobsClient) -> tuple[str, int]:
    job = await client.create_job("noop", {})
    events = [e async for e in client.watch(job.job_id)]
    return job.job_id, events[-1].sequence


async def _watch(
    client: JobsClient, job_id: str, after: int, token: str | None = None
) -> list[int]:
    metadata = None if token is None else (("authorization", f"Bearer {token}"),)
    call = client.notifier.WatchJob(
        notifier_service_pb2.WatchJobRequest(job_id=job_id, after_sequence=after),
        metadata=metadata or client._metadata,
        timeout=5,
    )
    return [event.sequence async for event in call]


@pytest.mark.parametrize("past_end", [0, 1, 2**62, 2**63 - 1])
async def test_watch_of_a_finished_job_at_or_past_its_end_ends_at_once_empty(
    alice: JobsClient, past_end: int
) -> None:
    job_id, last = await _finished_job(alice)
    started = time.monotonic()
    assert await _watch(alice, job_id, min(last + past_end, 2**63 - 1)) == []
    assert time.monotonic() - started < 2


async def test_a_stream_with_nothing_to_replay_says_at_once_whether_it_is_live(
    alice: JobsClient,
) -> None:
    """A running job resumed at its newest event: the headers say the stream is live
    before any event comes (what the gateway opens its event stream on). A finished job's
    stream, or one with events to replay, has no such header: an event or the end follows."""
    # Its first step's progress comes 4 s in, its start at its first heartbeat (1 s).
    job = await alice.create_job("noop", {"sleep_ms": 8000})
    seen = 0
    async for event in alice.watch(job.job_id):
        seen = event.sequence
        if event.type == jobs_pb2.JOB_EVENT_TYPE_STEP_STARTED:
            break
    live = alice.notifier.WatchJob(
        notifier_service_pb2.WatchJobRequest(job_id=job.job_id, after_sequence=seen),
        metadata=alice._metadata,
    )
    try:
        headers = await asyncio.wait_for(live.initial_metadata(), 2.5)  # before its progress
        assert (WATCH_LIVE_HEADER, "1") in tuple(headers or ())
    finally:
        live.cancel()
    await alice.cancel_job(job.job_id)
    job_id, last = await _finished_job(alice)
    for after in (last, last - 2):
        ended = alice.notifier.WatchJob(
            notifier_service_pb2.WatchJobRequest(job_id=job_id, after_sequence=after),
            metadata=alice._metadata,
            timeout=5,
        )
        events = [e async for e in ended]
        assert len(events) == last - after
        assert WATCH_LIVE_HEADER not in dict(await ended.initial_metadata() or ())


async def test_watch_of_a_finished_job_before_its_end_replays_the_rest(alice: JobsClient) -> None:
    job_id, last = await _finished_job(alice)
    assert await _watch(alice, job_id, last - 2) == [last - 1, last]


async def test_a_watch_token_watches_its_job_only(alice: JobsClient, stack: Stack) -> None:
    job = await alice.create_job("noop", {"sleep_ms": 100})
    issued = await alice.create_watch_token(job.job_id)
    lifetime = issued.expires_at.ToSeconds() - time.time()
    assert 800 < lifetime <= 900
    header = jwt.get_unverified_header(issued.token)
    assert header["typ"] == "jobs-watch+jwt"

    sequences = await _watch(alice, job.job_id, 0, issued.token)
    assert sequences == list(range(1, len(sequences) + 1))
    assert len(sequences) >= 8

    other = await alice.create_job("noop", {})
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await _watch(alice, other.job_id, 0, issued.token)
    assert denied.value.code() == Code.PERMISSION_DENIED

    # Never a user: every JobService call refuses it.
    watcher = JobsClient(stack.job_api_addr, stack.notifier_addr, issued.token, retries=0)
    async with watcher:
        for call in (
            watcher.get_job(job.job_id),
            watcher.list_job_types(),
            watcher.cancel_job(job.job_id),
            watcher.create_watch_token(job.job_id),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == Code.UNAUTHENTICATED


async def test_watch_tokens_cannot_be_forged_or_borrowed(
    alice: JobsClient, bob: JobsClient, stack: Stack
) -> None:
    job = await alice.create_job("noop", {})
    # Derived from another secret:
    forged, _ = WatchTokens("not-the-secret").issue("alice", job.job_id, datetime.now(UTC))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _watch(alice, job.job_id, 0, forged)
    assert refused.value.code() == Code.UNAUTHENTICATED
    # Signed with the user-token secret itself rather than the derived key:
    raw = jwt.encode(
        {"sub": "alice", "job": job.job_id, "exp": int(time.time()) + 60},
        stack.jwt_secret,
        algorithm="HS256",
        headers={"typ": "jobs-watch+jwt"},
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _watch(alice, job.job_id, 0, raw)
    assert refused.value.code() == Code.UNAUTHENTICATED

    # Bob cannot get one for Alice's job: it does not exist for him.
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await bob.create_watch_token(job.job_id)
    assert missing.value.code() == Code.NOT_FOUND


async def test_an_expired_watch_token_is_refused(alice: JobsClient, stack: Stack) -> None:
    job = await alice.create_job("noop", {})
    signer = WatchTokens(stack.jwt_secret, ttl_s=-60, leeway_s=0)
    token, _ = signer.issue("alice", job.job_id, datetime.now(UTC))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _watch(alice, job.job_id, 0, token)
    assert refused.value.code() == Code.UNAUTHENTICATED


async def test_create_watch_token_checks_its_argument(alice: JobsClient) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await alice.jobs.CreateWatchToken(
            job_service_pb2.CreateWatchTokenRequest(job_id="../etc/passwd"),
            metadata=alice._metadata,
            timeout=5,
        )
    assert bad.value.code() == Code.INVALID_ARGUMENT
    assert "job_id" in (bad.value.details() or "")


async def test_a_running_job_watched_from_mid_way_streams_to_its_end(alice: JobsClient) -> None:
    """A running job watched from mid-way gets the rest as it happens, then
    ends with the terminal event (not at the client's deadline)."""
    job = await alice.create_job("noop", {"sleep_ms": 300})
    events = await asyncio.wait_for(_watch(alice, job.job_id, 2), timeout=10)
    assert events[0] == 3
    assert events == list(range(3, events[-1] + 1))
