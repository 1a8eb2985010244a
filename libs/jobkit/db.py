"""Postgres: the connection pool, schema migrations and driver-error wrapping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from importlib import resources
from urllib.parse import parse_qsl, urlsplit

import asyncpg
from asyncpg.connect_utils import SessionAttribute

from jobkit.errors import Unavailable
from jobkit.logging import get_logger
from jobkit.sql import queries

log = get_logger(__name__)

# Any 64-bit constant works; this one spells "jobs-mig" in ASCII.
MIGRATION_LOCK_ID = 0x6A6F62732D6D6967

Pool = asyncpg.Pool
#: A connection, or one borrowed from a pool (which proxies it).
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

# Connection-level failures: the server is down, restarting, or unreachable; or, with
# several hosts, none of them is a primary yet (a standby being promoted), or a session
# found itself on a read-only server. A transaction cut by one of these is rolled back by
# the server (or its commit's fate is decided by the old primary's WAL, which a
# synchronous standby holds): the caller's retry goes through the version checks and the
# attempt fencing, so a commit that did land is never made twice.
_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    asyncio.TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.TargetServerAttributeNotMatched,
    asyncpg.exceptions.ReadOnlySQLTransactionError,
)


#: Planner settings for the pools of job_api and the orchestrator, whose statements each
#: touch a handful of rows by key (a batch's jobs, a release's attempts). Postgres plans a
#: prepared statement once for all from its sixth run on (the generic plan), from the
#: tables' sizes at that moment, and keeps the plan until the next ANALYZE. Made while
#: ``jobs`` is small, the batch write's plan hashes the whole table and a read by id scans
#: it, and both go on scanning as the table grows: on a new database, a cost on every
#: batch that grows with every job. Without sequential scans a table is reached through
#: its keys, right at any size, while a batch's own rows are still matched to each other
#: by hashing (turning hash joins off too would compare every pair: quadratic in a burst's
#: batch of hundreds). A statement no index serves is still a scan.
KEYED_LOOKUPS: Mapping[str, str] = {"enable_seqscan": "off"}


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the primary is out of reach (not a fault of the statement)."""
    return isinstance(exc, _UNAVAILABLE_ERRORS)


def hosts(dsn: str) -> list[str]:
    """The ``host:port`` entries of a libpq URL (several for a primary and its standbys)."""
    netloc = urlsplit(dsn).netloc.rpartition("@")[2]
    return [h for h in netloc.split(",") if h]


def session_attrs(dsn: str) -> SessionAttribute | None:
    """What ``create_pool`` asks of a server beyond ``dsn``: with several hosts and no
    ``target_session_attrs`` in it, ``read-write``, so a connection only ever lands on the
    primary (asyncpg's default, ``any``, would take the first host that answers, a
    standby included). ``None``: as ``dsn`` says."""
    query = dict(parse_qsl(urlsplit(dsn).query))
    if len(hosts(dsn)) > 1 and "target_session_attrs" not in query:
        return SessionAttribute.read_write
    return None


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
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    wait_s: float = 60.0,
    planner: Mapping[str, str] | None = None,
) -> asyncpg.Pool:
    """Open a pool, waiting up to ``wait_s`` for Postgres to accept connections; its
    sessions start with the ``planner`` settings (``KEYED_LOOKUPS``)."""
    deadline = asyncio.get_running_loop().time() + wait_s
    delay = 0.1
    while True:
        try:
            pool = await asyncpg.create_pool(
                dsn,
                target_session_attrs=session_attrs(dsn),
                min_size=min_size,
                max_size=max_size,
                command_timeout=30,
                # A connection dropped by a Postgres restart is replaced on next acquire.
                max_inactive_connection_lifetime=60,
                reset=_keep_session,
                server_settings=dict(planner or {}),
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


async def primary_reachable(pool: asyncpg.Pool, timeout_s: float = 2.0) -> bool:
    """Whether a pooled session reaches a writable primary within ``timeout_s``.

    When it does not, every open connection is expired: one left half-open towards a
    vanished or partitioned server is replaced on its next acquire rather than reused, and
    new ones go, by ``target_session_attrs``, to whichever host is the primary now.
    """
    try:
        async with asyncio.timeout(timeout_s), pool.acquire() as conn:
            writable = bool(await conn.fetchval(queries.is_primary))
    except Exception as exc:  # whatever it is, no primary answered: not ready
        if not is_unavailable(exc):
            log.warning("postgres_check_failed", error=type(exc).__name__)
        writable = False
    if not writable:
        await pool.expire_connections()
    return writable


async def follow_primary(
    pool: asyncpg.Pool,
    on_change: Callable[[bool], Awaitable[None]],
    *,
    interval_s: float = 1.0,
    timeout_s: float = 2.0,
) -> None:
    """Forever: check the primary every ``interval_s``; call ``on_change(reachable)`` each
    time that flips (first when it is lost). Health goes NOT_SERVING through it while no
    primary answers (a failover, an outage) and SERVING again by itself once one does."""
    reachable = True
    while True:
        now = await primary_reachable(pool, timeout_s)
        if now != reachable:
            reachable = now
            if now:
                log.info("postgres_primary_back")
            else:
                log.warning("postgres_primary_lost")
            await on_change(now)
        await asyncio.sleep(interval_s)


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
