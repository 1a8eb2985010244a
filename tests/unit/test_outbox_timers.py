"""The relay's scheduled rows on uvloop, as the services run: a row due in less than a
millisecond (a timer that fired a fraction early re-submits its row so) is published now,
not scheduled through a handle without ``when()`` that broke the next scheduling."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import uvloop

from jobkit.model import OutboxMessage
from jobkit.outbox import OutboxRelay


def test_a_row_due_within_a_millisecond_does_not_break_the_next_schedule() -> None:
    async def main() -> None:
        # No pool or JetStream: nothing is published here, only scheduled or queued.
        relay = OutboxRelay(None, None)  # type: ignore[arg-type]

        def row(n: int, delay_s: float) -> tuple[int, OutboxMessage]:
            due = datetime.now(UTC) + timedelta(seconds=delay_s)
            return n, OutboxMessage(subject="s", msg_id=str(n), payload=b"", not_before=due)

        relay.submit([row(1, 5.0)])
        relay.submit([row(2, 0.0004)])
        relay.submit([row(3, 5.0)])  # prunes the timers: every one must be a timer
        assert len(relay._timers) == 2
        assert [n for n, _, _ in relay._queued] == [2]
        for handle in relay._timers:
            handle.cancel()
        if relay._publisher is not None:
            relay._publisher.cancel()
            await asyncio.gather(relay._publisher, return_exceptions=True)

    uvloop.run(main())
