"""Postgres: the connection pool, schema migrations and driver-error wrapping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib import resources

import asyncpg

from jobkit.errors import Unavailable
from jobkit.logging import get_logger
from jobkit.sql import queries

log = get_logger(__name__)

# Any 64-bit constant works; this one spells "jobs-mig" in ASCII.
MIGRATION_LOCK_ID = 0x6A6F62732D6D6967

Pool = asyncpg.Pool
#: A connection, or one borrowed from a pool (which proxies it).
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

# Connection-level failures: the server is down, restarting, or unreachable.
_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ConnectionFailureError,
)


@contextlib.asynccontextmanager
async def wrap_db_errors() -> AsyncIterator[None]:
    """Turn "Postgres is not reachable" into ``Unavailable``; other errors pass unchanged.

    The driver's message is not kept: asyncpg's details can echo row values.
    """
    try:
        yield
    except _UNAVAILABLE_ERRORS as exc:
        raise Unavailable() from exc


async def create_pool(
    dsn: str, *, min_size: int = 2, max_size: int = 10, wait_s: float = 60.0
) -> asyncpg.Pool:
    """Open a pool, waiting up to ``wait_s`` for Postgres to accept connections."""
    deadline = asyncio.get_running_loop().time() + wait_s
    delay = 0.1
    while True:
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                command_timeout=30,
                # A connection dropped by a Postgres restart is replaced on next acquire.
                max_inactive_connection_lifetime=60,
                reset=_keep_session,
            )
            return pool
        except _UNAVAILABLE_ERRORS:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.info("postgres_not_ready", retry_in_s=round(delay, 2))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Return a connection to the pool as it is.

    asyncpg still rolls back an open transaction first; its default reset would also run
    ``RESET ALL; UNLISTEN *; pg_advisory_unlock_all()...``, a round trip on every release
    for session state this code never leaves behind (the migration lock is released
    explicitly).
    """


def migration_files() -> list[tuple[str, str]]:
    """The schema migrations, ordered by name: ``[(name, sql), ...]``."""
    folder = resources.files("jobkit") / "migrations"
    files = sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    return files


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply pending migrations; safe to call from many replicas at once.

    A session-level advisory lock serialises the replicas; each migration runs in its own
    transaction together with the row that records it. Returns the names applied now.
    """
    applied_now: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute(queries.migration_lock, MIGRATION_LOCK_ID)
        try:
            await conn.execute(queries.create_migrations_table)
            done = {r["name"] for r in await conn.fetch(queries.applied_migrations)}
            for name, sql in migration_files():
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(queries.record_migration, name)
                applied_now.append(name)
                log.info("migration_applied", migration=name)
        finally:
            await conn.execute(queries.migration_unlock, MIGRATION_LOCK_ID)
    return applied_now
