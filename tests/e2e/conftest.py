"""The four services as separate processes on real Postgres and NATS, driven over gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from jobctl.client import JobsClient
from jobkit.devstack import Stack


@pytest.fixture(scope="session")
def stack(tmp_root: Path) -> Iterator[Stack]:
    running = Stack(tmp_root / "stack").start()
    yield running
    running.stop()


@pytest.fixture
async def alice(stack: Stack) -> AsyncIterator[JobsClient]:
    async with JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token("alice")) as c:
        yield c


@pytest.fixture
async def bob(stack: Stack) -> AsyncIterator[JobsClient]:
    async with JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token("bob")) as c:
        yield c
