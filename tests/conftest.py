"""Fixtures shared by the suites: real Postgres and NATS processes, started by the tests.

One Postgres server per session, a fresh database per test; a fresh nats-server per test
(it starts in tens of milliseconds), so no test sees another's streams or rows.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import os
import tempfile
import time
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from nats.aio.client import Client as NatsClient

from devstack import NatsServer, PostgresServer, SeaweedServer, Stack
from jobkit import bus
from jobkit.db import create_pool, migrate

_database_numbers = itertools.count(1)
_bucket_numbers = itertools.count(1)

#: An async test still running this long before pytest-timeout's limit is cancelled.
_CANCEL_BEFORE_TIMEOUT_S = 10.0
#: A failed test's report shows this many of each service's last log lines.
_LOG_LINES = 40
#: When the test's setup began.
_STARTED = pytest.StashKey[float]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    # pytest-timeout's clock starts here: setup (a stack starting) counts against it.
    item.stash[_STARTED] = time.monotonic()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """An async test that hangs fails alone, cancelled before pytest-timeout fires: the
    traceback says where it waited, and the session's event loop, which every later test
    shares, stays whole. pytest-timeout's signal lands wherever the loop happens to be,
    and may leave it unusable for the tests after (CI once ended in an INTERNALERROR
    raised from such a timeout, after 14 failures whose cause it no longer showed)."""
    test = getattr(item, "obj", None)
    if not isinstance(item, pytest.Function) or not inspect.iscoroutinefunction(test):
        return (yield)
    timeout_s = _timeout_s(item)
    if timeout_s <= 0:  # no limit: nothing to fire first
        return (yield)
    elapsed = time.monotonic() - item.stash.get(_STARTED, time.monotonic())
    limit_s = timeout_s - elapsed - _CANCEL_BEFORE_TIMEOUT_S

    @functools.wraps(test)
    async def bounded(**kwargs: Any) -> Any:
        try:
            return await asyncio.wait_for(test(**kwargs), max(limit_s, 1.0))
        except TimeoutError:
            pytest.fail(f"still running after {limit_s:.0f} s: cancelled where it waited")

    item.obj = bounded
    try:
        return (yield)
    finally:
        item.obj = test


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report ends with what the services of the stacks it used said
    last: CI keeps only the console, and a stack outlives the test that broke it."""
    report = yield
    if report.failed and isinstance(item, pytest.Function):
        for stack in (v for v in item.funcargs.values() if isinstance(v, Stack)):
            for service in stack.services.values():
                try:
                    said = service.log_path.read_text(encoding="utf-8", errors="replace")
                except OSError as error:  # never started: say so, not break the report
                    said = repr(error)
                tail = "\n".join(said.splitlines()[-_LOG_LINES:])
                report.sections.append((f"last lines of {stack.root.name}/{service.name}", tail))
    return report


def _timeout_s(item: pytest.Item) -> float:
    """The test's pytest-timeout limit: its ``timeout`` mark, else ``--timeout``, else the
    configured one (0: none)."""
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    given = item.config.getoption("timeout", None)
    return float(given if given is not None else item.config.getini("timeout") or 0)


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    """Server data and service logs; kept under $JOBS_TEST_DIR when set (for post-mortems)."""
    keep = os.environ.get("JOBS_TEST_DIR")
    if keep:
        root = Path(keep).resolve() / time.strftime("%Y%m%d-%H%M%S")
        root.mkdir(parents=True)
        yield root
        return
    with tempfile.TemporaryDirectory(prefix="jobs-tests-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
def postgres_server(tmp_root: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_root / "postgres").start()
    yield server
    server.stop()


async def create_database(server: PostgresServer, name: str) -> str:
    """A new, empty database on ``server``: its URL."""
    admin = await asyncpg.connect(server.url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return server.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
async def database_url(postgres_server: PostgresServer) -> str:
    """A new, empty database on the session's server."""
    return await create_database(postgres_server, f"test_{next(_database_numbers)}")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh, migrated database."""
    pool = await create_pool(database_url, min_size=1, max_size=5)
    await migrate(pool)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def seaweed_server(tmp_root: Path) -> Iterator[SeaweedServer]:
    """One object store for the session; each test takes a bucket of its own."""
    server = SeaweedServer(tmp_root / "seaweedfs").start()
    yield server
    server.stop()


@pytest.fixture
def object_store_env(seaweed_server: SeaweedServer) -> dict[str, str]:
    """The services' object-store settings, with a new, empty bucket."""
    env = seaweed_server.env()
    env["OBJECT_STORE_URL"] = f"s3://test-{next(_bucket_numbers)}"
    return env


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.kill()


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[NatsClient]:
    client = await bus.connect(nats_server.url, "tests")
    await bus.ensure_streams(client.jetstream())
    yield client
    await client.close()
