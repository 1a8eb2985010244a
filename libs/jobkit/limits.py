"""Per-user limits backed by Postgres, so they hold across replicas: job creations per
minute, unfinished jobs, and open WatchJob streams. A limit of 0 disables it.

Each check answers ``ResourceExhausted`` with how long to wait, which the gRPC layer sends
as ``google.rpc.RetryInfo``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from jobkit.config import env_int
from jobkit.db import Conn
from jobkit.errors import ResourceExhausted


@dataclass(frozen=True, slots=True)
class Limits:
    creations_per_minute: int = 60
    running_jobs: int = 100
    watches: int = 100
    #: A watch session not renewed for this long is presumed gone (its notifier died).
    watch_session_ttl_s: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Limits:
        return cls(
            creations_per_minute=env_int(env, "RATE_LIMIT_PER_MINUTE", 60),
            running_jobs=env_int(env, "MAX_RUNNING_JOBS_PER_USER", 100),
            watches=env_int(env, "MAX_WATCHES_PER_USER", 100),
        )


async def _lock_user(conn: Conn, scope: str, owner: str) -> None:
    """Serialise one user's check-then-act across replicas until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"{scope}:{owner}")


async def count_creation(conn: Conn, owner: str, limit: int) -> None:
    """Count one job creation in the current minute; refuse the one over the limit."""
    if limit <= 0:
        return
    row = await conn.fetchrow(
        """INSERT INTO rate_limit_windows (owner, window_start, count)
           VALUES ($1, date_trunc('minute', now()), 1)
           ON CONFLICT (owner, window_start)
           DO UPDATE SET count = rate_limit_windows.count + 1
           RETURNING count,
                     extract(epoch FROM date_trunc('minute', now()) + interval '1 minute'
                             - now()) AS wait_s""",
        owner,
    )
    assert row is not None
    if row["count"] > limit:
        raise ResourceExhausted(
            f"too many jobs created: at most {limit} a minute", retry_after_s=float(row["wait_s"])
        )


async def check_running(conn: Conn, owner: str, limit: int) -> None:
    """Inside the creating transaction: refuse a job beyond ``limit`` unfinished ones."""
    if limit <= 0:
        return
    await _lock_user(conn, "running", owner)
    running = await conn.fetchval(
        "SELECT count(*) FROM jobs WHERE owner = $1 AND status IN ('QUEUED', 'RUNNING')", owner
    )
    if running >= limit:
        raise ResourceExhausted(
            f"too many unfinished jobs: at most {limit} at a time", retry_after_s=5.0
        )


async def open_watch(conn: Conn, owner: str, limits: Limits) -> uuid.UUID | None:
    """Register a WatchJob stream; refuse one beyond the limit. None when unlimited."""
    if limits.watches <= 0:
        return None
    session = uuid.uuid4()
    async with conn.transaction():
        await _lock_user(conn, "watch", owner)
        open_now = await conn.fetchval(
            "SELECT count(*) FROM watch_sessions WHERE owner = $1 AND expires_at > now()", owner
        )
        if open_now >= limits.watches:
            raise ResourceExhausted(
                f"too many open streams: at most {limits.watches} at a time", retry_after_s=5.0
            )
        await conn.execute(
            "INSERT INTO watch_sessions (id, owner, expires_at) "
            "VALUES ($1, $2, now() + make_interval(secs => $3))",
            session,
            owner,
            limits.watch_session_ttl_s,
        )
    return session


async def close_watch(conn: Conn, session: uuid.UUID) -> None:
    await conn.execute("DELETE FROM watch_sessions WHERE id = $1", session)


async def renew_watches(conn: Conn, sessions: Sequence[uuid.UUID], ttl_s: float) -> None:
    if sessions:
        await conn.execute(
            "UPDATE watch_sessions SET expires_at = now() + make_interval(secs => $2) "
            "WHERE id = ANY($1::uuid[])",
            list(sessions),
            ttl_s,
        )


async def prune(conn: Conn) -> None:
    """Forget finished rate windows and expired watch sessions."""
    await conn.execute(
        "DELETE FROM rate_limit_windows WHERE window_start < now() - interval '5 minutes'"
    )
    await conn.execute("DELETE FROM watch_sessions WHERE expires_at < now()")
