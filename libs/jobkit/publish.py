"""After a commit: tell NATS what was committed (events, notices, outbox rows).

A commit's events for one job go out as one message (``CommittedEvents``): a step's
success and the next step's start are one publish and one delivery, not two.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from nats.aio.client import Client as NatsClient

from jobkit.bus import events_subject
from jobkit.convert import event_to_proto
from jobkit.gen.jobs.internal.v1.events_pb2 import CommittedEvents
from jobkit.gen.jobs.v1.jobs_pb2 import JobEvent
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
    by_job: dict[uuid.UUID, list[JobEvent]] = {}
    for record in events:
        by_job.setdefault(record.job_id, []).append(event_to_proto(record))
    try:
        for job_id, protos in by_job.items():
            trace = traces.get(job_id, "") if traces else ""
            await nc.publish(
                events_subject(str(job_id)),
                CommittedEvents(events=protos).SerializeToString(),
                headers=trace_headers(trace),
            )
    except Exception as exc:
        log.warning("event_publish_failed", count=len(events), error=type(exc).__name__)


def committed_events(payload: bytes) -> Sequence[JobEvent]:
    """The events of one message on ``jobs.events.<job_id>``, in sequence order.
    Raises ``google.protobuf.message.DecodeError`` on a payload that is not one."""
    return CommittedEvents.FromString(payload).events


async def publish_notices(nc: NatsClient, notices: Sequence[OutboxMessage]) -> None:
    try:
        for notice in notices:
            await nc.publish(notice.subject, notice.payload)
    except Exception as exc:
        log.warning("notice_publish_failed", count=len(notices), error=type(exc).__name__)
