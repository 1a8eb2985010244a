"""After a commit: tell NATS what was committed (events, notices, outbox rows)."""

from __future__ import annotations

from collections.abc import Sequence

from nats.aio.client import Client as NatsClient

from jobkit.bus import events_subject
from jobkit.convert import event_to_proto
from jobkit.logging import get_logger
from jobkit.model import EventRecord, OutboxMessage

log = get_logger(__name__)


async def publish_events(nc: NatsClient, events: Sequence[EventRecord]) -> None:
    """Best effort: Postgres holds the events; the notifier repairs any gap from there."""
    try:
        for record in events:
            await nc.publish(
                events_subject(str(record.job_id)), event_to_proto(record).SerializeToString()
            )
    except Exception as exc:
        log.warning("event_publish_failed", count=len(events), error=type(exc).__name__)


async def publish_notices(nc: NatsClient, notices: Sequence[OutboxMessage]) -> None:
    try:
        for notice in notices:
            await nc.publish(notice.subject, notice.payload)
    except Exception as exc:
        log.warning("notice_publish_failed", count=len(notices), error=type(exc).__name__)
