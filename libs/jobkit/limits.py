"""Per-user limits backed by Postgres, so they hold across replicas: job creations per
minute, unfinished jobs, open WatchJob streams, and model tokens per day. A limit of 0
disables it.

Each check answers ``ResourceExhausted`` with how long to wait, which the gRPC layer sends
as ``google.rpc.RetryInfo``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from jobkit import store
from jobkit.config import env_int
from jobkit.db import Conn
from jobkit.errors import ResourceExhausted
from jobkit.sql import queries


@dataclass(frozen=True, slots=True)
class Limits:
    creations_per_minute: int = 60
    running_jobs: int = 100
    watches: int = 100
    #: A watch session not renewed for this long is presumed gone (its notifier died).
    watch_session_ttl_s: float = 60.0
    #: Model tokens a user may spend in any 24 hours; 0: no budget.
    tokens_per_day: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Limits:
        return cls(
            creations_per_minute=env_int(env, "RATE_LIMIT_PER_MINUTE", 60),
            running_jobs=env_int(env, "MAX_RUNNING_JOBS_PER_USER", 100),
            watches=env_int(env, "MAX_WATCHES_PER_USER", 100),
            tokens_per_day=env_int(env, "TOKEN_BUDGET_PER_USER", 0),
        )


async def _lock_user(conn: Conn, scope: str, owner: str) -> None:
    """Serialise one user's check-then-act across replicas until the transaction ends."""
    await conn.execute(queries.lock_user, f"{scope}:{owner}")


async def count_creation(conn: Conn, owner: str, limit: int) -> None:
    """Count one job creation in the current minute; refuse the one over the limit. In a
    transaction of its own: its commit does not wait for the WAL flush, and neither would
    the rest of a transaction it ran in."""
    if limit <= 0:
        return
    if conn.is_in_transaction():
        raise RuntimeError("count_creation commits on its own, outside any transaction")
    row = await conn.fetchrow(queries.count_creation, owner)
    assert row is not None
    if row["count"] > limit:
        raise ResourceExhausted(
            f"too many jobs created: at most {limit} a minute", retry_after_s=float(row["wait_s"])
        )


async def check_token_budget(conn: Conn, owner: str, tokens_per_day: int) -> None:
    """Refuse a new job once the user's model tokens of the last 24 hours reach the budget
    (jobs already running finish: their steps are not cut off half-way)."""
    if tokens_per_day <= 0:
        return
    now = datetime.now(UTC)
    used, oldest = await store.tokens_used_since(conn, owner, now - _DAY)
    if used >= tokens_per_day:
        frees_up = (oldest + _DAY - now).total_seconds() if oldest is not None else 60.0
        raise ResourceExhausted(
            f"token budget spent: at most {tokens_per_day} model tokens in 24 hours",
            retry_after_s=max(1.0, frees_up),
        )


_DAY = timedelta(days=1)


async def check_running(conn: Conn, owner: str, limit: int, *, count_to: int = 0) -> int | None:
    """Inside the creating transaction: refuse a job beyond ``limit`` unfinished ones
    (queued or running; one waiting for input holds nothing). Returns how many there are,
    counted up to the larger of ``limit`` and ``count_to``, when it counted them: for a
    limit, or when asked (``count_to``), under the user's lock either way; ``None``
    otherwise."""
    if limit <= 0 and count_to <= 0:
        return None
    await _lock_user(conn, "running", owner)
    running: int = await conn.fetchval(queries.count_running_jobs, owner, max(limit, count_to))
    if 0 < limit <= running:
        raise ResourceExhausted(
            f"too many unfinished jobs: at most {limit} at a time", retry_after_s=5.0
        )
    return running


async def unfinished_at_least(conn: Conn, owner: str, n: int) -> bool:
    """Whether the user has ``n`` or more jobs queued or running, without their lock: a yes
    stays true until one of those jobs finishes, so only a no needs ``check_running`` to be
    sure."""
    found: int = await conn.fetchval(queries.count_running_jobs, owner, n)
    return found >= n


async def open_watch(conn: Conn, owner: str, limits: Limits) -> uuid.UUID | None:
    """Register a WatchJob stream; refuse one beyond the limit. None when unlimited."""
    if limits.watches <= 0:
        return None
    session = uuid.uuid4()
    async with conn.transaction():
        await _lock_user(conn, "watch", owner)
        open_now = await conn.fetchval(queries.count_open_watches, owner)
        if open_now >= limits.watches:
            raise ResourceExhausted(
                f"too many open streams: at most {limits.watches} at a time", retry_after_s=5.0
            )
        await conn.execute(queries.open_watch, session, owner, limits.watch_session_ttl_s)
    return session


async def close_watch(conn: Conn, session: uuid.UUID) -> None:
    await conn.execute(queries.close_watch, session)


async def renew_watches(conn: Conn, sessions: Sequence[uuid.UUID], ttl_s: float) -> None:
    if sessions:
        await conn.execute(queries.renew_watches, list(sessions), ttl_s)


async def prune(conn: Conn) -> None:
    """Forget finished rate windows, expired watch sessions and old model usage (kept a
    while past the token budget's day, for the operators' own accounting)."""
    await conn.execute(queries.prune_rate_windows)
    await conn.execute(queries.prune_model_usage)
    await conn.execute(queries.prune_watch_sessions)
