"""A new job's first step offered straight to a free worker (jobkit.offers), end to end:
taken when the workers are idle, and never lost when the worker that took it dies.

A stack of its own: a short step lease, so a dead worker's offered step is sent again
through JetStream in seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import Stack
from jobctl.client import JobsClient
from jobkit.gen.jobs.v1 import jobs_pb2
from tests.e2e.test_observability import sample, scrape

pytestmark = pytest.mark.e2e

E = jobs_pb2


@pytest.fixture(scope="module")
def offer_stack(tmp_root: Path) -> Iterator[Stack]:
    env = {"STEP_LEASE_S": "2", "LEASE_SCAN_S": "0.2"}
    running = Stack(tmp_root / "offer-stack", extra_env=env).start()
    yield running
    running.stop()


def offers(stack: Stack, outcome: str, lane: str = "main") -> float:
    samples = scrape(stack.services["job_api"].metrics_url)
    return sample(samples, "jobs_step_offers_total", lane=lane, outcome=outcome)


async def wait_for_offer(stack: Stack, taken_before: float) -> None:
    for _ in range(100):
        if offers(stack, "taken") > taken_before:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("no worker took the first step when offered")


async def watch_all(client: JobsClient, job_id: str) -> list[jobs_pb2.JobEvent]:
    return [e async for e in client.watch(job_id)]


async def test_an_idle_worker_takes_the_first_step_offered(offer_stack: Stack) -> None:
    client = JobsClient(
        offer_stack.job_api_addr, offer_stack.notifier_addr, offer_stack.token("ada")
    )
    before = offers(offer_stack, "taken")
    job = await client.create_job("noop", {})
    events = await asyncio.wait_for(watch_all(client, job.job_id), 30)
    assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED
    assert offers(offer_stack, "taken") == before + 1
    final = await client.get_job(job.job_id)
    assert [s.attempt for s in final.steps] == [1, 1, 1]


async def test_a_worker_killed_holding_an_offered_step_loses_nothing(offer_stack: Stack) -> None:
    """Killed before its first heartbeat: nothing but the job's outbox row knows the step
    was taken. Once a lease's length has passed, it goes through JetStream to the next
    worker, as the same attempt: no retry spent."""
    client = JobsClient(
        offer_stack.job_api_addr, offer_stack.notifier_addr, offer_stack.token("bea")
    )
    before = offers(offer_stack, "taken")
    job = await client.create_job("noop", {"sleep_ms": 2000})
    await wait_for_offer(offer_stack, before)
    offer_stack.services["ai_worker"].kill()
    offer_stack.start_service("ai_worker")
    events = await asyncio.wait_for(watch_all(client, job.job_id), 60)
    assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED
    final = await client.get_job(job.job_id)
    assert [s.attempt for s in final.steps] == [1, 1, 1]
    started = [e for e in events if e.type == E.JOB_EVENT_TYPE_STEP_STARTED]
    assert [e.step for e in started] == ["prepare", "work", "finish"]
