"""Model usage end to end: each step's tokens and cost on the Job, and a per-user token
budget that refuses new jobs once spent (RESOURCE_EXHAUSTED with RetryInfo)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from devstack import Stack
from jobctl.client import JobsClient
from jobkit.gen.jobs.v1 import jobs_pb2

pytestmark = pytest.mark.e2e

PRICES = '{"noop": {"prompt": 3, "completion": 15}}'


@pytest.fixture(scope="module")
def budget_stack(tmp_root: Path) -> Iterator[Stack]:
    env = {"TOKEN_BUDGET_PER_USER": "1000", "MODEL_PRICES": PRICES}
    running = Stack(tmp_root / "usage-stack", extra_env=env).start()
    yield running
    running.stop()


@pytest.fixture
async def carol(budget_stack: Stack) -> AsyncIterator[JobsClient]:
    stack = budget_stack
    async with JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token("carol")) as c:
        yield c


async def run(client: JobsClient, tokens: int) -> jobs_pb2.Job:
    job = await client.create_job("noop", {"tokens": tokens})
    events = [e async for e in client.watch(job.job_id)]
    assert events[-1].type == jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED
    return await client.get_job(job.job_id)


async def test_usage_is_on_the_job_and_the_budget_refuses_once_spent(
    carol: JobsClient, budget_stack: Stack
) -> None:
    job = await run(carol, 200)  # 3 steps x (200 prompt + 100 completion) = 900 tokens
    for step in job.steps:
        assert [(u.model, u.prompt_tokens, u.completion_tokens) for u in step.usage] == [
            ("noop", 200, 100)
        ]
        assert step.usage[0].cost_usd == pytest.approx((200 * 3 + 100 * 15) / 1e6)
    (total,) = job.usage
    assert (total.prompt_tokens, total.completion_tokens) == (600, 300)
    assert total.cost_usd == pytest.approx((600 * 3 + 300 * 15) / 1e6)
    listed = await carol.list_jobs()
    assert listed.jobs[0].usage[0].prompt_tokens == 600

    await run(carol, 200)  # 900 < 1000 at its start: allowed; 1,800 spent after it
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await carol.create_job("noop", {})
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "token budget" in (refused.value.details() or "")
    trailing: dict[str, Any] = dict(refused.value.trailing_metadata() or ())  # type: ignore[arg-type]
    status = status_pb2.Status.FromString(trailing["grpc-status-details-bin"])
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info)
    assert 3600 < info.retry_delay.seconds <= 24 * 3600  # when the oldest usage ages out

    # Another user's budget is their own.
    stack = budget_stack
    async with JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token("dave")) as dave:
        assert (await dave.create_job("noop", {})).status == jobs_pb2.JOB_STATUS_QUEUED
