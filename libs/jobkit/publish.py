"""After a commit: tell NATS what was committed (events, notices, outbox rows)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from nats.aio.client import Client as NatsClient

from jobkit.bus import events_subject
from jobkit.convert import event_to_proto
from jobkit.logging import get_logger
from jobkit.model import EventRecord, OutboxMessage
from jobkit.tracing import trace_headers

log = get_logger(__name__)


async def publish_events(
    nc: NatsClient,
    events: Sequence[EventRecord],
    traces: Mapping[uuid.UUID, str] | None = None,
) -> None:
    """Best effort: Postgres holds the events; the notifier repairs any gap from there.

    ``traces``: a ``traceparent`` per job, sent as a header with its events, when spans
    are recorded (the notifier's fan-out joins the job's trace); none otherwise."""
    try:
        for record in events:
            trace = traces.get(record.job_id, "") if traces else ""
            await nc.publish(
                events_subject(str(record.job_id)),
                event_to_proto(record).SerializeToString(),
                headers=trace_headers(trace),
            )
    except Exception as exc:
        log.warning("event_publish_failed", count=len(events), error=type(exc).__name__)


async def publish_notices(nc: NatsClient, notices: Sequence[OutboxMessage]) -> None:
    try:
        for notice in notices:
            await nc.publish(notice.subject, notice.payload)
    except Exception as exc:
        log.warning("notice_publish_failed", count=len(notices), error=type(exc).__name__)
