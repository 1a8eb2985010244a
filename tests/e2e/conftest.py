"""The four services as separate processes on real Postgres and NATS, driven over gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from jobctl.client import JobsClient
from jobkit.devstack import Stack


@pytest.fixture(scope="session")
def stack(tmp_root: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    running = Stack(tmp_root / "stack").start()
    yield running
    running.stop()
    if request.session.testsfailed:
        # CI keeps only the console: show what the services said.
        for service in running.services.values():
            lines = service.log_path.read_text(encoding="utf-8").splitlines()
            print(f"\n--- last lines of {service.name} ---", *lines[-40:], sep="\n")


@pytest.fixture
async def alice(stack: Stack) -> AsyncIterator[JobsClient]:
    async with JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token("alice")) as c:
        yield c


@pytest.fixture
async def bob(stack: Stack) -> AsyncIterator[JobsClient]:
    async with JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token("bob")) as c:
        yield c
