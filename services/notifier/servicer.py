"""jobs.v1.NotifierService over grpc.aio: WatchJob replays, then tails, a job's events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import structlog

from jobkit import limits, tracing
from jobkit.auth import Authenticator, Principal, bearer_token
from jobkit.convert import event_to_proto, parse_job_id
from jobkit.db import wrap_db_errors
from jobkit.errors import InvalidArgument, NotFound
from jobkit.gen.jobs.v1 import jobs_pb2, notifier_service_pb2, notifier_service_pb2_grpc
from jobkit.lifecycle import JobStatus
from jobkit.limits import Limits
from jobkit.logging import get_logger
from jobkit.metrics import WATCH_STREAMS
from jobkit.model import EventRecord
from jobkit.rpc import WATCH_LIVE_HEADER, authenticate, bind_caller, server_streaming
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
        # Subscribe before reading history, so nothing committed in between is missed.
        # Nothing reaches the client before the first page's owner check.
        watcher = self._hub.watch(str(job_id))
        watcher.last_sequence = request.after_sequence
        session: uuid.UUID | None = None
        try:
            first = await read_page(self._pool, job_id, watcher.last_sequence, caller)
            tracing.bind_job_trace(first.trace_context)
            if not first.events and not first.finished(watcher.last_sequence):
                # Nothing to replay and more to come: say so now, not with the next event,
                # so a client (the gateway) knows the stream is open and live.
                await context.send_initial_metadata(((WATCH_LIVE_HEADER, "1"),))
            if self._limits.watches > 0:
                async with wrap_db_errors(), self._pool.acquire() as conn:
                    session = await limits.open_watch(conn, caller.subject, self._limits)
            if session is not None:
                self._sessions.add(session)
            log.debug("watch_started", sequence=request.after_sequence)
            WATCH_STREAMS.inc()
            try:
                async for event in self._stream(job_id, watcher, caller, first):
                    yield event
            finally:
                WATCH_STREAMS.dec()
                log.info("watch_ended", sequence=watcher.last_sequence)
        finally:
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
        self, job_id: uuid.UUID, watcher: Watcher, caller: Principal, page: Page
    ) -> AsyncIterator[jobs_pb2.JobEvent]:
        """Replay from ``page`` on until caught up with Postgres, then live events until
        the terminal one; a gap or a nudge replays again."""
        loop = asyncio.get_running_loop()
        while True:
            while True:
                for record in page.events:
                    watcher.last_sequence = record.sequence
                    yield event_to_proto(record)
                if not page.full:
                    break
                page = await read_page(self._pool, job_id, watcher.last_sequence, caller)
            if page.finished(watcher.last_sequence):
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
            page = await read_page(self._pool, job_id, watcher.last_sequence, caller)


@dataclass(frozen=True, slots=True)
class Page:
    """A page of a job's events after a sequence, and the job as it was when they were
    read (the same snapshot)."""

    trace_context: str
    status: JobStatus
    #: The job's newest event's sequence.
    last_sequence: int
    events: list[EventRecord]

    @property
    def full(self) -> bool:
        """Whether more events may follow this page's."""
        return len(self.events) >= REPLAY_PAGE

    def finished(self, delivered: int) -> bool:
        """Whether a watcher that has delivered up to ``delivered`` has nothing left to
        wait for: the job is over and its terminal event delivered (just now, or seen by
        a client resuming at or past the end)."""
        return self.status.terminal and delivered >= self.last_sequence


async def read_page(
    pool: asyncpg.Pool, job_id: uuid.UUID, after_sequence: int, caller: Principal
) -> Page:
    """The events after ``after_sequence`` (at most ``REPLAY_PAGE``) with the job's row, in
    one statement; NotFound unless ``caller`` may see the job."""
    async with wrap_db_errors(), pool.acquire() as conn:
        rows = await conn.fetch(queries.replay_page, job_id, after_sequence, REPLAY_PAGE)
    if not rows or not caller.may_see(rows[0]["owner"]):
        raise NotFound()
    job = rows[0]
    return Page(
        trace_context=job["trace_context"],
        status=JobStatus(job["job_status"]),
        last_sequence=job["job_last_sequence"],
        events=[EventRecord.from_row(r) for r in rows if r["sequence"] is not None],
    )
