"""Load shedding at job_api: with more CreateJob calls in flight than it takes, the rest
are refused at once, over gRPC (RESOURCE_EXHAUSTED with RetryInfo) and through the gateway
(429 with Retry-After), and a refused call creates nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from devstack import Stack
from jobctl.client import JobsClient
from tests.e2e.test_abuse import retry_delay_s

pytestmark = pytest.mark.e2e

CALLS = 48


@pytest.fixture(scope="module")
def narrow_stack(tmp_root: Path) -> Iterator[Stack]:
    env = {
        "MAX_CREATES_IN_FLIGHT": "2",
        "RATE_LIMIT_PER_MINUTE": "0",
        "MAX_RUNNING_JOBS_PER_USER": "0",
        "MAX_WATCHES_PER_USER": "0",
    }
    running = Stack(tmp_root / "admission-stack", extra_env=env).start()
    yield running
    running.stop()


async def test_calls_past_the_bound_are_refused_with_when_to_retry(narrow_stack: Stack) -> None:
    async with JobsClient(
        narrow_stack.job_api_addr, narrow_stack.notifier_addr, narrow_stack.token("flood")
    ) as client:

        async def create() -> str | grpc.aio.AioRpcError:
            try:
                return (await client.create_job("noop", {})).job_id
            except grpc.aio.AioRpcError as error:
                return error

        outcomes = await asyncio.gather(*(create() for _ in range(CALLS)))
        accepted = [o for o in outcomes if isinstance(o, str)]
        refused = [o for o in outcomes if not isinstance(o, str)]
        assert accepted
        assert refused
        assert {e.code() for e in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert {retry_delay_s(e) for e in refused} == {1.0}
        # A refused call created nothing; every accepted one is there.
        listed = (await client.list_jobs(page_size=500)).jobs
        assert sorted(j.job_id for j in listed) == sorted(accepted)


async def test_the_gateway_answers_429_with_retry_after(narrow_stack: Stack) -> None:
    auth = {"Authorization": f"Bearer {narrow_stack.token('flood-http')}"}
    async with httpx.AsyncClient(base_url=narrow_stack.gateway_url, timeout=30) as http:
        answers = await asyncio.gather(
            *(
                http.post("/v1/jobs", json={"type": "noop", "input": {}}, headers=auth)
                for _ in range(CALLS)
            )
        )
    codes = {a.status_code for a in answers}
    assert codes == {200, 429}
    shed = [a for a in answers if a.status_code == 429]
    assert {a.headers["Retry-After"] for a in shed} == {"1"}
