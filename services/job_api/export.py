"""jobs.internal.v1.ExportService over grpc.aio: a user's whole history, streamed to the
step that exports it (``data_export``), which runs on a worker that never touches Postgres.

The caller is one step attempt, authorised by its step token (``jobkit.step_tokens``), never
by a user's JWT. The token is checked, then the job it names, in Postgres: it must exist,
be of a type that reads its owner's history, belong to the token's subject, still run, and
the token's attempt must not be older than its step's newest. Then, in one read-only
REPEATABLE READ transaction (one consistent snapshot), the owner's other jobs are read
through a server-side cursor, oldest first, a small batch at a time with their events, and
sent as JSON Lines in pieces of at most ``PIECE_BYTES``: what the process holds is a batch
of jobs and a piece, whatever the user's history. gRPC's flow control keeps a slow reader
from making the server buffer ahead.

Log lines carry counts and ids only: the lines hold the user's personal data.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import grpc

from jobkit import store
from jobkit.auth import Principal, bearer_token
from jobkit.convert import export_line, parse_job_id
from jobkit.db import Conn, wrap_db_errors
from jobkit.errors import PermissionDenied, Unauthenticated
from jobkit.gen.jobs.internal.v1 import export_pb2, export_pb2_grpc
from jobkit.lifecycle import StepStatus
from jobkit.logging import get_logger
from jobkit.model import EventRecord, JobRecord
from jobkit.rpc import bind_caller, server_streaming
from jobkit.sql import queries
from jobkit.step_tokens import StepGrant, StepTokens
from jobtypes import CATALOG

log = get_logger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]

#: The most bytes of JSON Lines one response carries (a line may span several).
PIECE_BYTES = 256 * 1024
#: Jobs read (with their steps, usage and events) per round trip.
BATCH_JOBS = 32


def check_grant(job: JobRecord | None, grant: StepGrant) -> None:
    """``PermissionDenied`` unless the verified ``grant`` still allows an export: its job
    exists, is of a type that reads its owner's history, is the grant's subject's, runs,
    and the grant's attempt of its step is the newest (or about to be)."""
    spec = CATALOG.get(job.type) if job is not None else None
    step = job.step_named(grant.step) if job is not None else None
    if (
        job is None
        or spec is None
        or not spec.reads_history
        or job.owner != grant.subject
        or job.status.terminal
        or step is None
        or step.status is StepStatus.SUCCEEDED
        # The step's record shows the attempt running, or the one before while the new
        # one is queued: an older attempt's token is stale.
        or grant.attempt < step.attempt
    ):
        raise PermissionDenied("this step token grants no export now")


async def pieces(lines: AsyncIterator[bytes], piece_bytes: int) -> AsyncIterator[tuple[bytes, int]]:
    """``lines`` (each ending in a newline) regrouped into pieces of at most
    ``piece_bytes``, each with how many lines are complete once it is written."""
    buffer = bytearray()
    done = 0
    async for line in lines:
        buffer += line
        done += 1
        # Everything before this line was under a piece: any cut falls inside it.
        while len(buffer) >= piece_bytes:
            piece = bytes(buffer[:piece_bytes])
            del buffer[:piece_bytes]
            yield piece, done if not buffer else done - 1
    if buffer:
        yield bytes(buffer), done


class ExportServicer(export_pb2_grpc.ExportServiceServicer):
    def __init__(
        self,
        pool: asyncpg.Pool,
        step_tokens: StepTokens | None,
        *,
        piece_bytes: int = PIECE_BYTES,
        batch_jobs: int = BATCH_JOBS,
    ) -> None:
        self._pool = pool
        self._step_tokens = step_tokens
        self._piece_bytes = piece_bytes
        self._batch_jobs = batch_jobs

    @server_streaming
    async def ExportJobs(
        self, request: export_pb2.ExportJobsRequest, context: Context
    ) -> AsyncIterator[export_pb2.ExportJobsResponse]:
        token = bearer_token(context.invocation_metadata())
        job_id = parse_job_id(request.job_id)
        if self._step_tokens is None:
            # No secret configured: no token can be good.
            raise Unauthenticated()
        grant = self._step_tokens.verify(token, str(job_id))
        bind_caller(Principal(grant.subject))
        async with (
            wrap_db_errors(),
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            check_grant(await store.fetch_job(conn, job_id), grant)
            total = int(await conn.fetchval(queries.export_count, grant.subject, job_id))
            log.info("export_started", job_id=str(job_id), jobs=total)
            yield export_pb2.ExportJobsResponse(total_jobs=total)
            sent, done = 0, 0
            lines = self._lines(conn, grant.subject, job_id)
            async for data, done in pieces(lines, self._piece_bytes):
                sent += len(data)
                yield export_pb2.ExportJobsResponse(data=data, jobs_done=done)
        log.info("export_sent", job_id=str(job_id), jobs=done, size=sent)

    async def _lines(self, conn: Conn, owner: str, job_id: uuid.UUID) -> AsyncIterator[bytes]:
        """The export's lines, a batch of jobs at a time from a server-side cursor."""
        cursor = await conn.cursor(queries.export_job_ids, owner, job_id)
        while rows := await cursor.fetch(self._batch_jobs):
            ids = [row["id"] for row in rows]
            found = await store.fetch_jobs(conn, ids)
            jobs = await store.with_usage(conn, [found[i] for i in ids if i in found])
            events = await _events(conn, ids)
            for job in jobs:
                yield export_line(job, events.get(job.id, ()))


async def _events(conn: Conn, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[EventRecord]]:
    """The events of a batch of jobs, by job, each in sequence order."""
    by_job: dict[uuid.UUID, list[EventRecord]] = {}
    for row in await conn.fetch(queries.export_events, list(job_ids)):
        by_job.setdefault(row["job_id"], []).append(EventRecord.from_row(row))
    return by_job
