"""Durability through the public API: resume from a checkpoint, cancellation that reaches
the running handler, and a worker that hands its step back on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack import Stack
from jobctl.client import JobsClient
from jobkit.gen.jobs.v1 import jobs_pb2

pytestmark = pytest.mark.e2e

E = jobs_pb2


async def wait_for_step(client: JobsClient, job_id: str, step: str) -> int:
    """Follow the job until ``step`` starts; returns the sequence seen so far."""
    async for event in client.watch(job_id):
        if event.type == E.JOB_EVENT_TYPE_STEP_STARTED and event.step == step:
            return event.sequence
    raise AssertionError(f"{step} never started")


def worker_log_events(stack: Stack, job_id: str) -> list[str]:
    text = stack.services["ai_worker"].log_path.read_text(encoding="utf-8")
    return [r["event"] for r in map(json.loads, text.splitlines()) if r.get("job_id") == job_id]


async def test_retry_resumes_from_the_last_checkpoint_without_rerunning_it(
    alice: JobsClient, stack: Stack
) -> None:
    job = await alice.create_job("noop", {"sleep_ms": 800})
    await asyncio.wait_for(wait_for_step(alice, job.job_id, "work"), 20)
    cancelled = await alice.cancel_job(job.job_id)
    assert [s.status for s in cancelled.steps] == [
        E.STEP_STATUS_SUCCEEDED,
        E.STEP_STATUS_CANCELLED,
        E.STEP_STATUS_PENDING,
    ]
    before = [e async for e in alice.watch(job.job_id)]
    await alice.retry_job(job.job_id)
    after = [e async for e in alice.watch(job.job_id, before[-1].sequence)]
    assert after[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED
    restarted = [e.step for e in after if e.type == E.JOB_EVENT_TYPE_STEP_STARTED]
    assert restarted == ["work", "finish"]  # "prepare" kept its checkpoint
    final = await alice.get_job(job.job_id)
    assert [s.attempt for s in final.steps] == [1, 2, 1]
    # The cancel reached the running handler on the worker, which stopped it.
    await asyncio.sleep(0.3)
    assert "step_cancelled" in worker_log_events(stack, job.job_id)


async def test_sigterm_hands_the_running_step_to_another_worker_at_once(
    alice: JobsClient, stack: Stack
) -> None:
    job = await alice.create_job("noop", {"sleep_ms": 3000})
    await asyncio.wait_for(wait_for_step(alice, job.job_id, "prepare"), 20)
    # The step shows as started with its first beat, a second in; its half-way progress
    # report goes at 1.5 s. The signal comes between the two: a cancel that lands as a
    # report's answer does can be lost inside asyncio.wait_for on Python 3.11, and the
    # step then runs to its end (its result reported) instead of being handed back.
    await asyncio.sleep(0.2)
    worker = stack.services["ai_worker"]
    worker.signal(signal.SIGTERM)
    try:
        assert await asyncio.to_thread(worker.stop, 30) == 0  # a clean exit, not a kill
        assert "step_handed_back" in worker_log_events(stack, job.job_id)
    finally:
        # The session's stack needs its worker whatever happened here.
        stack.start_service("ai_worker")
    started = time.monotonic()
    events = [e async for e in alice.watch(job.job_id)]
    assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED
    # Three 3-second steps: a hand-back is taken over at once, well inside JetStream's
    # 30 s redelivery timeout that a dead worker's step would wait for.
    assert time.monotonic() - started < 25
    final = await alice.get_job(job.job_id)
    assert final.steps[0].attempt == 1  # the same attempt, re-run; not a failure


async def test_job_api_answers_unavailable_while_postgres_is_down(
    alice: JobsClient, stack: Stack
) -> None:
    job = await alice.create_job("noop", {})
    assert stack.postgres is not None
    await asyncio.to_thread(stack.postgres.stop, "immediate")
    try:
        for call in (alice.get_job(job.job_id), alice.create_job("noop", {})):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await asyncio.wait_for(call, 30)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        # Not ready while no primary answers (readiness), alive all the same (liveness).
        for addr in (stack.job_api_addr, stack.notifier_addr):
            assert await _health_becomes(addr, "", NOT_SERVING), addr
            assert await _health_becomes(addr, "liveness", SERVING), addr
    finally:
        await asyncio.to_thread(stack.postgres.start)
    for addr in (stack.job_api_addr, stack.notifier_addr):
        assert await _health_becomes(addr, "", SERVING), addr
    # Back without a restart of any service: the pools reconnect on their own.
    deadline = time.monotonic() + 30
    while True:
        try:
            assert (await alice.get_job(job.job_id)).job_id == job.job_id
            break
        except grpc.aio.AioRpcError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
    later = await alice.create_job("noop", {})
    events = [e async for e in alice.watch(later.job_id)]
    assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED
    assert all(s.alive() for s in stack.services.values())


async def test_the_orchestrator_and_the_worker_answer_health_by_their_own_loops(
    alice: JobsClient, stack: Stack
) -> None:
    """What Kubernetes' gRPC probes ask the two services without an API: ready while
    connected, not ready while NATS is gone but alive all the same (an outage must not
    restart them), ready again once it is back by itself; a stopped process answers
    nothing."""
    addrs = [
        s.env["HEALTH_ADDR"]
        for s in stack.services.values()
        if s.name.split("#")[0] in ("orchestrator", "ai_worker")
    ]
    assert addrs
    for addr in addrs:
        for service in ("", "liveness"):
            assert await _health_becomes(addr, service, SERVING), addr
    assert stack.nats is not None
    await asyncio.to_thread(stack.nats.kill)
    try:
        for addr in addrs:
            assert await _health_becomes(addr, "", NOT_SERVING), addr
            assert await _health_becomes(addr, "liveness", SERVING), addr
    finally:
        await asyncio.to_thread(stack.nats.start)
    for addr in addrs:
        for service in ("", "liveness"):
            assert await _health_becomes(addr, service, SERVING, within_s=30), (addr, service)
    job = await alice.create_job("noop", {})
    events = [e async for e in alice.watch(job.job_id)]
    assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED
    # A hung process (SIGSTOP) does not answer: the probe's timeout fails it.
    orchestrator = stack.services["orchestrator"]
    assert orchestrator.proc is not None
    orchestrator.proc.send_signal(signal.SIGSTOP)
    try:
        async with grpc.aio.insecure_channel(orchestrator.env["HEALTH_ADDR"]) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as silent:
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service="liveness"), timeout=1
                )
        assert silent.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        orchestrator.proc.send_signal(signal.SIGCONT)


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _health_becomes(addr: str, service: str, status: int, within_s: float = 15.0) -> bool:
    """Whether ``addr``'s health of ``service`` reads ``status`` within ``within_s``."""
    deadline = time.monotonic() + within_s
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
            if reply.status == status:
                return True
            await asyncio.sleep(0.2)
    return False
