"""Fixtures shared by the suites: real Postgres and NATS processes, started by the tests.

One Postgres server per session, a fresh database per test; a fresh nats-server per test
(it starts in tens of milliseconds), so no test sees another's streams or rows.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from nats.aio.client import Client as NatsClient

from devstack import NatsServer, PostgresServer, SeaweedServer
from jobkit import bus
from jobkit.db import create_pool, migrate

_database_numbers = itertools.count(1)
_bucket_numbers = itertools.count(1)


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
