"""The transactional outbox: messages committed with a state change reach JetStream
at least once, and exactly once in effect (``Nats-Msg-Id`` de-duplication).

The process that committed the rows publishes them straight after the commit (the fast
path, no polling delay), or when their ``not_before`` comes for scheduled retries. A
sweeper in every relay picks up rows nobody published in time — their writer crashed or
NATS was down — claiming them with ``FOR UPDATE SKIP LOCKED`` so replicas never collide.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
from nats.js import JetStreamContext

from jobkit.logging import get_logger
from jobkit.model import OutboxMessage

log = get_logger(__name__)


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        js: JetStreamContext,
        *,
        sweep_interval_s: float = 1.0,
        stale_after_s: float = 2.0,
        batch_size: int = 500,
    ) -> None:
        self._pool = pool
        self._js = js
        self._sweep_interval_s = sweep_interval_s
        self._stale_after_s = stale_after_s
        self._batch_size = batch_size
        self._timers: set[asyncio.TimerHandle] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def publish_committed(self, rows: Sequence[tuple[int, OutboxMessage]]) -> None:
        """Publish rows the caller has just committed: due ones now, scheduled ones later."""
        now = datetime.now(UTC)
        due = [r for r in rows if r[1].not_before is None or r[1].not_before <= now]
        loop = asyncio.get_running_loop()
        for row in rows:
            when = row[1].not_before
            if when is not None and when > now:
                handle = loop.call_later((when - now).total_seconds(), self._spawn, [row])
                self._timers.add(handle)
        if due:
            await self._publish_and_delete(due)

    def _spawn(self, rows: list[tuple[int, OutboxMessage]]) -> None:
        task = asyncio.get_running_loop().create_task(self._publish_and_delete(rows))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_and_delete(self, rows: Sequence[tuple[int, OutboxMessage]]) -> None:
        try:
            await self._publish(m for _, m in rows)
            async with self._pool.acquire() as conn:
                await conn.execute(
                    "DELETE FROM outbox WHERE id = ANY($1::bigint[])", [i for i, _ in rows]
                )
        except Exception as exc:
            # The sweeper publishes them once they are stale.
            log.warning("outbox_fast_path_failed", count=len(rows), error=type(exc).__name__)

    async def _publish(self, messages: object) -> None:
        await asyncio.gather(
            *(
                self._js.publish(m.subject, m.payload, headers={"Nats-Msg-Id": m.msg_id})
                for m in messages  # type: ignore[attr-defined]
            )
        )

    async def sweep_once(self) -> int:
        """Publish and delete one batch of stale due rows; returns how many."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT id, subject, msg_id, payload FROM outbox
                   WHERE not_before <= now() - make_interval(secs => $1)
                   ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED""",
                self._stale_after_s,
                self._batch_size,
            )
            if not rows:
                return 0
            await self._publish(
                OutboxMessage(r["subject"], r["msg_id"], r["payload"]) for r in rows
            )
            await conn.execute(
                "DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
        log.info("outbox_swept", count=len(rows))
        return len(rows)

    async def run(self) -> None:
        """Sweep forever; a failed sweep (Postgres or NATS down) is retried next round."""
        try:
            while True:
                try:
                    while await self.sweep_once() == self._batch_size:
                        pass
                except Exception as exc:
                    log.warning("outbox_sweep_failed", error=type(exc).__name__)
                await asyncio.sleep(self._sweep_interval_s)
        finally:
            self.close()

    def close(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            self._tasks.clear()
