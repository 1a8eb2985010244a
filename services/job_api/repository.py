"""job_api's queries: creating jobs (with idempotency), listing, deleting."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from jobkit import store
from jobkit.artifacts import Artifact
from jobkit.db import Conn
from jobkit.lifecycle import JobStatus
from jobkit.model import JobRecord
from jobkit.sql import queries
from jobkit.webhooks import Delivery
from services.job_api.page_tokens import PagePosition


@dataclass(frozen=True, slots=True)
class ListFilter:
    owner: str | None
    status: JobStatus | None
    job_type: str | None
    parent_id: uuid.UUID | None = None

    def fingerprint(self) -> str:
        return (
            f"{self.owner or '*'}|{self.status or '*'}|{self.job_type or '*'}"
            f"|{self.parent_id or '*'}"
        )


@dataclass(frozen=True, slots=True)
class BulkFilter:
    """The jobs a bulk operation takes: in one of ``statuses``, and each other field, when
    set, narrowing it."""

    statuses: tuple[JobStatus, ...]
    job_type: str | None = None
    owner: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def fingerprint(self, operation: str) -> str:
        """What a page token of ``operation`` under this filter is bound to."""
        return "|".join(
            (
                operation,
                ",".join(s.value for s in self.statuses),
                self.job_type or "*",
                self.owner or "*",
                self.created_after.isoformat() if self.created_after else "*",
                self.created_before.isoformat() if self.created_before else "*",
            )
        )


async def bulk_slice(
    conn: Conn, where: BulkFilter, after: PagePosition | None, limit: int
) -> list[PagePosition]:
    """Up to ``limit`` jobs matching ``where``, oldest first, from after ``after``."""
    rows = await conn.fetch(
        queries.bulk_job_ids,
        [s.value for s in where.statuses],
        where.job_type,
        where.owner,
        where.created_after,
        where.created_before,
        after.created_at if after else None,
        after.job_id if after else None,
        limit,
    )
    return [PagePosition(r["created_at"], r["id"]) for r in rows]


async def find_by_idempotency_key(
    conn: Conn, owner: str, key: str
) -> tuple[uuid.UUID, bytes] | None:
    row = await conn.fetchrow(queries.find_by_idempotency_key, owner, key)
    return (row["id"], row["request_hash"]) if row else None


async def list_jobs(
    conn: Conn, where: ListFilter, after: PagePosition | None, limit: int
) -> list[JobRecord]:
    """Newest first, by keyset on (created_at, id); ``limit`` rows at most."""
    rows = await conn.fetch(
        queries.list_job_ids,
        where.owner,
        where.status.value if where.status else None,
        where.job_type,
        where.parent_id,
        after.created_at if after else None,
        after.job_id if after else None,
        limit,
    )
    ids = [r["id"] for r in rows]
    jobs = await store.fetch_jobs(conn, ids)
    return [jobs[i] for i in ids if i in jobs]


async def unfinished_children(
    conn: Conn, parent_id: uuid.UUID, after: PagePosition | None, limit: int
) -> list[PagePosition]:
    """Up to ``limit`` of the jobs ``parent_id``'s step created that are queued or running,
    newest first, from after ``after``."""
    rows = await conn.fetch(
        queries.unfinished_children,
        parent_id,
        after.created_at if after else None,
        after.job_id if after else None,
        limit,
    )
    return [PagePosition(r["created_at"], r["id"]) for r in rows]


async def steps_waiting_their_turn(conn: Conn, owner: str) -> bool:
    """Whether ``owner`` has a step attempt in the ready queue, waiting to be released."""
    found: bool = await conn.fetchval(queries.steps_waiting_their_turn, owner)
    return found


async def insert_upload(conn: Conn, upload_id: uuid.UUID, owner: str, stored: Artifact) -> datetime:
    """Record a file stored for later jobs; returns when."""
    created_at: datetime = await conn.fetchval(
        queries.insert_upload, upload_id, owner, stored.size, stored.sha256, stored.content_type
    )
    return created_at


async def webhook_deliveries(conn: Conn, job_id: uuid.UUID, limit: int) -> list[Delivery]:
    """A job's webhook deliveries, oldest first."""
    rows = await conn.fetch(queries.list_webhook_deliveries, job_id, limit)
    return [Delivery.from_row(r) for r in rows]
