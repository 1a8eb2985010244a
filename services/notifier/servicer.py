"""jobs.v1.NotifierService over grpc.aio: WatchJob replays, then tails, a job's events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import structlog

from jobkit import limits, store, tracing
from jobkit.auth import Authenticator, Principal, bearer_token
from jobkit.convert import event_to_proto, parse_job_id
from jobkit.db import wrap_db_errors
from jobkit.errors import InvalidArgument, NotFound
from jobkit.gen.jobs.v1 import jobs_pb2, notifier_service_pb2, notifier_service_pb2_grpc
from jobkit.lifecycle import JobStatus
from jobkit.limits import Limits
from jobkit.logging import get_logger
from jobkit.metrics import WATCH_STREAMS
from jobkit.rpc import authenticate, bind_caller, server_streaming
from jobkit.sql import queries
from jobkit.watch_tokens import WatchTokens, is_watch_token
from services.notifier.fanout import EventHub, Resync, Watcher

log = get_logger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]

_TERMINAL_EVENTS = frozenset(
    {
        jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED,
        jobs_pb2.JOB_EVENT_TYPE_FAILED,
        jobs_pb2.JOB_EVENT_TYPE_CANCELLED,
    }
)
REPLAY_PAGE = 500


class NotifierServicer(notifier_service_pb2_grpc.NotifierServiceServicer):
    def __init__(
        self,
        pool: asyncpg.Pool,
        hub: EventHub,
        auth: Authenticator,
        limits: Limits | None = None,
        watch_tokens: WatchTokens | None = None,
    ) -> None:
        self._pool = pool
        self._hub = hub
        self._auth = auth
        self._limits = limits or Limits()
        self._watch_tokens = watch_tokens
        #: Open streams' sessions, renewed in Postgres while they live (MAX_WATCHES_PER_USER).
        self._sessions: set[uuid.UUID] = set()

    async def renew_sessions_forever(self) -> None:
        interval = self._limits.watch_session_ttl_s / 3
        while True:
            await asyncio.sleep(interval)
            try:
                async with self._pool.acquire() as conn:
                    await limits.renew_watches(
                        conn, list(self._sessions), self._limits.watch_session_ttl_s
                    )
            except Exception as exc:
                log.warning("watch_renewal_failed", error=type(exc).__name__)

    def _caller(self, context: Context, job_id: str) -> Principal:
        """The user's own token, or a watch token issued for this job (CreateWatchToken)."""
        metadata = context.invocation_metadata()
        token = bearer_token(metadata)
        if self._watch_tokens is None or not is_watch_token(token):
            return authenticate(self._auth, context)
        grant = self._watch_tokens.verify(token, job_id)
        return bind_caller(Principal(grant.subject))

    @server_streaming
    async def WatchJob(
        self, request: notifier_service_pb2.WatchJobRequest, context: Context
    ) -> AsyncIterator[jobs_pb2.JobEvent]:
        caller = self._caller(context, request.job_id)
        job_id = parse_job_id(request.job_id)
        if request.after_sequence < 0:
            raise InvalidArgument.on("after_sequence", "must not be negative")
        structlog.contextvars.bind_contextvars(job_id=str(job_id))
        async with wrap_db_errors(), self._pool.acquire() as conn:
            job = await conn.fetchrow(queries.job_owner_and_trace, job_id)
            if job is None or not caller.may_see(job["owner"]):
                raise NotFound()
            tracing.bind_job_trace(job["trace_context"])
            session = await limits.open_watch(conn, caller.subject, self._limits)
        if session is not None:
            self._sessions.add(session)
        log.debug("watch_started", sequence=request.after_sequence)
        # Subscribe before reading history, so nothing committed in between is missed.
        watcher = self._hub.watch(str(job_id))
        watcher.last_sequence = request.after_sequence
        WATCH_STREAMS.inc()
        try:
            async for event in self._stream(job_id, watcher, caller):
                yield event
        finally:
            WATCH_STREAMS.dec()
            log.info("watch_ended", sequence=watcher.last_sequence)
            self._hub.unwatch(watcher)
            if session is not None:
                self._sessions.discard(session)
                await self._close_session(session)

    async def _close_session(self, session: uuid.UUID) -> None:
        try:
            async with self._pool.acquire() as conn:
                await limits.close_watch(conn, session)
        except Exception as exc:
            # It expires on its own within the session TTL.
            log.warning("watch_close_failed", error=type(exc).__name__)

    async def _stream(
        self, job_id: uuid.UUID, watcher: Watcher, caller: Principal
    ) -> AsyncIterator[jobs_pb2.JobEvent]:
        loop = asyncio.get_running_loop()
        # Replay until caught up with Postgres, then live events until the terminal one.
        while True:
            replay = _Replay(self._pool, job_id, watcher, caller)
            async for event in replay:
                yield event
            if replay.finished:
                return
            while True:
                item = await watcher.queue.get()
                watcher.last_activity = loop.time()
                if isinstance(item, Resync) or item.sequence > watcher.last_sequence + 1:
                    break  # a gap or a nudge: replay from Postgres
                if item.sequence <= watcher.last_sequence:
                    if item.type in _TERMINAL_EVENTS:
                        return  # the client had seen the end already
                    continue  # already delivered by the replay
                watcher.last_sequence = item.sequence
                yield item
                if item.type in _TERMINAL_EVENTS:
                    return


class _Replay:
    """The events after a watcher's last sequence, from Postgres. ``finished`` tells, once
    iterated, whether the job is over with nothing after them: its terminal event was just
    replayed, or had been seen before (a client resuming at or past the end)."""

    def __init__(
        self, pool: asyncpg.Pool, job_id: uuid.UUID, watcher: Watcher, caller: Principal
    ) -> None:
        self._pool = pool
        self._job_id = job_id
        self._watcher = watcher
        self._caller = caller
        self.finished = False

    async def __aiter__(self) -> AsyncIterator[jobs_pb2.JobEvent]:
        watcher = self._watcher
        while True:
            async with wrap_db_errors(), self._pool.acquire() as conn:
                row = await conn.fetchrow(queries.job_owner_and_progress, self._job_id)
                if row is None or not self._caller.may_see(row["owner"]):
                    raise NotFound()
                records = await store.fetch_events(
                    conn, self._job_id, watcher.last_sequence, REPLAY_PAGE
                )
            for record in records:
                watcher.last_sequence = record.sequence
                yield event_to_proto(record)
            if len(records) < REPLAY_PAGE:
                self.finished = (
                    JobStatus(row["status"]).terminal
                    and watcher.last_sequence >= row["last_sequence"]
                )
                return
