"""Retention: what the orchestrators erase on a timer. Finished jobs past their TTL go,
with their steps and events; the artifacts of a deleted job (by retention or DeleteJob)
go from the object store after it, through ``artifact_deletions``, so a crash between the
two deletes leaves a row to finish, never an orphaned object.

Every replica runs both loops; ``FOR UPDATE SKIP LOCKED`` keeps them off each other's rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg

from jobkit import limits
from jobkit.artifacts import ArtifactError, ArtifactStore, job_prefix
from jobkit.db import wrap_db_errors
from jobkit.logging import get_logger
from jobkit.sql import queries

log = get_logger(__name__)

#: Jobs erased, or artifact prefixes deleted, per round.
SCAN_BATCH = 500
#: Prefixes deleted at once (each is a listing and a delete request or more).
PREFIXES_AT_ONCE = 8


class Retention:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        retention_s: float,
        scan_s: float,
        artifacts: ArtifactStore | None = None,
        artifact_types: Sequence[str] = (),
        artifact_scan_s: float = 5.0,
    ) -> None:
        self._pool = pool
        self._retention_s = retention_s
        self._scan_s = scan_s
        self._artifacts = artifacts
        #: Without a store there is nothing to delete there: no rows are left for it.
        self._artifact_types = list(artifact_types) if artifacts is not None else []
        self._artifact_scan_s = artifact_scan_s

    async def erase_expired_forever(self) -> None:
        """Finished jobs older than the TTL go, with their steps and events."""
        while True:
            try:
                while await self.erase_expired_once() == SCAN_BATCH:
                    pass
            except Exception as exc:
                log.warning("retention_failed", error=type(exc).__name__)
            await asyncio.sleep(self._scan_s)

    async def erase_expired_once(self) -> int:
        async with wrap_db_errors(), self._pool.acquire() as conn:
            deleted = await conn.fetch(
                queries.erase_expired_jobs, self._retention_s, SCAN_BATCH, self._artifact_types
            )
            await limits.prune(conn)
        if deleted:
            log.info("jobs_expired", count=len(deleted))
        return len(deleted)

    async def erase_artifacts_forever(self) -> None:
        """Deleted jobs' artifacts go from the object store."""
        if self._artifacts is None:
            return
        while True:
            try:
                while await self.erase_artifacts_once() == SCAN_BATCH:
                    pass
            except Exception as exc:
                log.warning("artifact_deletion_failed", error=type(exc).__name__)
            await asyncio.sleep(self._artifact_scan_s)

    async def erase_artifacts_once(self) -> int:
        """Delete the objects of up to ``SCAN_BATCH`` deleted jobs, then their rows; a
        prefix that fails keeps its row for the next round. Returns how many were done."""
        store = self._artifacts
        if store is None:
            return 0
        async with wrap_db_errors(), self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(queries.claim_artifact_deletions, SCAN_BATCH)
            if not rows:
                return 0
            gate = asyncio.Semaphore(PREFIXES_AT_ONCE)

            async def erase(job_id: object, owner: str) -> object | None:
                async with gate:
                    try:
                        await store.delete_prefix(job_prefix(owner, str(job_id)))
                    except ArtifactError as exc:
                        log.warning("artifact_prefix_failed", job_id=str(job_id), error=str(exc))
                        return None
                    return job_id

            done = [
                job_id
                for job_id in await asyncio.gather(*(erase(r["job_id"], r["owner"]) for r in rows))
                if job_id is not None
            ]
            await conn.execute(queries.finish_artifact_deletions, done)
        log.info("artifacts_deleted", jobs=len(done), failed=len(rows) - len(done))
        return len(done)
