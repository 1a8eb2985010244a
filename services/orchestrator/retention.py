"""Retention: what the orchestrators erase on a timer. Finished jobs past their TTL go,
with their steps and events, and uploads past theirs; the objects of a deleted job (by
retention or DeleteJob) or upload go from the object store after it, through
``artifact_deletions``, so a crash between the two deletes leaves a row to finish, never
an orphaned object.

Every replica runs both loops; ``FOR UPDATE SKIP LOCKED`` keeps them off each other's rows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import asyncpg

from jobkit import limits, store
from jobkit.artifacts import ArtifactError, ArtifactStore, job_prefix, upload_prefix
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
        upload_ttl_s: float = 7 * 24 * 3600.0,
    ) -> None:
        self._upload_ttl_s = upload_ttl_s
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
            async with conn.transaction():
                # Locked first, by a statement of its own: the erase then sees every step
                # and event a writer added before (0019_children_without_foreign_keys).
                expired = await conn.fetch(queries.lock_expired_jobs, self._retention_s, SCAN_BATCH)
                deleted = await store.erase_jobs(
                    conn, [r["id"] for r in expired], self._artifact_types
                )
            uploads = await conn.fetch(
                queries.erase_expired_uploads, self._upload_ttl_s, SCAN_BATCH
            )
            await limits.prune(conn)
        if deleted:
            log.info("jobs_expired", count=len(deleted))
        if uploads:
            log.info("uploads_expired", count=len(uploads))
        return max(len(deleted), len(uploads))

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

            async def erase(kind: str, id: uuid.UUID, owner: str) -> tuple[str, uuid.UUID] | None:
                prefix = job_prefix(owner, id) if kind == "job" else upload_prefix(owner, id)
                async with gate:
                    try:
                        await store.delete_prefix(prefix)
                    except ArtifactError as exc:
                        log.warning("artifact_prefix_failed", kind=kind, id=str(id), error=str(exc))
                        return None
                    return kind, id

            erased = await asyncio.gather(*(erase(r["kind"], r["id"], r["owner"]) for r in rows))
            done = [pair for pair in erased if pair is not None]
            await conn.execute(
                queries.finish_artifact_deletions, [k for k, _ in done], [i for _, i in done]
            )
        log.info("artifacts_deleted", prefixes=len(done), failed=len(rows) - len(done))
        return len(done)
