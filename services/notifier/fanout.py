"""One NATS subscription per notifier replica, fanned out to every in-process watcher.

Live events are a fast path only: a watcher whose buffer overflows, or that sees a gap in
sequences, or that has heard nothing for a while although Postgres holds newer events
(checked for all idle watchers in one query), is told to resync and replays from
Postgres. So a lost or reordered NATS message delays an event, it never drops one.

When spans are recorded and the event carries its job's trace (``traceparent``), its
fan-out is one span of that trace: one per event received, never one per watcher.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import asyncpg
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from opentelemetry.trace import SpanKind

from jobkit import tracing
from jobkit.bus import EVENTS_PREFIX
from jobkit.gen.jobs.v1 import jobs_pb2
from jobkit.logging import get_logger
from jobkit.publish import committed_events
from jobkit.sql import queries

log = get_logger(__name__)


class Resync:
    """Queue marker: replay from Postgres after the last delivered sequence."""


RESYNC = Resync()


@dataclass(eq=False)
class Watcher:
    job_id: str
    queue: asyncio.Queue[jobs_pb2.JobEvent | Resync]
    #: The last sequence delivered to the client.
    last_sequence: int = 0
    last_activity: float = field(default=0.0)

    def offer(self, item: jobs_pb2.JobEvent | Resync) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # Too slow a client: drop the buffer and replay from Postgres instead.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(RESYNC)


class EventHub:
    def __init__(self, nc: NatsClient, pool: asyncpg.Pool, *, buffer: int, resync_after_s: float):
        self._nc = nc
        self._pool = pool
        self._buffer = buffer
        self._resync_after_s = resync_after_s
        self._watchers: dict[str, set[Watcher]] = {}
        self._subscription: Subscription | None = None

    @property
    def watcher_count(self) -> int:
        return sum(len(ws) for ws in self._watchers.values())

    async def start(self) -> None:
        self._subscription = await self._nc.subscribe(f"{EVENTS_PREFIX}>", cb=self._on_event)

    async def _on_event(self, msg: Msg) -> None:
        watchers = self._watchers.get(msg.subject[len(EVENTS_PREFIX) :])
        if not watchers:
            return
        with tracing.job_span("fan out event", msg.headers, kind=SpanKind.CONSUMER) as span:
            events = committed_events(msg.data)
            for event in events:
                for watcher in watchers:
                    watcher.offer(event)
            if span.is_recording() and events:
                span.set_attributes(
                    {
                        "job.event": jobs_pb2.JobEventType.Name(events[-1].type),
                        "job.event_sequence": events[-1].sequence,
                        "job.events": len(events),
                        "notifier.watchers": len(watchers),
                    }
                )

    def watch(self, job_id: str) -> Watcher:
        watcher = Watcher(
            job_id, asyncio.Queue(self._buffer), last_activity=asyncio.get_running_loop().time()
        )
        self._watchers.setdefault(job_id, set()).add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        watchers = self._watchers.get(watcher.job_id)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[watcher.job_id]

    async def reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self._resync_after_s)
            try:
                await self.reconcile_once()
            except Exception as exc:
                log.warning("reconcile_failed", error=type(exc).__name__)

    async def reconcile_once(self) -> None:
        """Wake idle watchers that are behind Postgres (or whose job is gone)."""
        now = asyncio.get_running_loop().time()
        idle = [
            w
            for ws in self._watchers.values()
            for w in ws
            if now - w.last_activity >= self._resync_after_s and w.queue.empty()
        ]
        if not idle:
            return
        ids = list({uuid.UUID(w.job_id) for w in idle})
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(queries.last_sequences, ids)
        newest = {str(r["id"]): r["last_sequence"] for r in rows}
        for watcher in idle:
            if newest.get(watcher.job_id, -1) != watcher.last_sequence:
                watcher.offer(RESYNC)
            watcher.last_activity = now

    async def close(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
