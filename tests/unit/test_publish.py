"""What a commit's events look like on NATS: one message per job, its events in order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import cast

import pytest
from google.protobuf.message import DecodeError
from nats.aio.client import Client as NatsClient

from jobkit import bus
from jobkit.gen.jobs.v1 import jobs_pb2
from jobkit.lifecycle import EventType, JobStatus
from jobkit.model import EventRecord, NewEvent
from jobkit.publish import committed_events, publish_events

FIRST, SECOND = uuid.uuid4(), uuid.uuid4()


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def publish(
        self, subject: str, payload: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.sent.append((subject, payload))


def record(job_id: uuid.UUID, sequence: int, kind: EventType) -> EventRecord:
    return EventRecord(job_id, sequence, NewEvent(kind, JobStatus.RUNNING, 0), datetime.now(UTC))


async def test_a_commit_s_events_go_out_as_one_message_per_job_in_sequence_order() -> None:
    nats = Recorder()
    await publish_events(
        cast(NatsClient, nats),
        [
            record(FIRST, 5, EventType.STEP_SUCCEEDED),
            record(SECOND, 2, EventType.PROGRESS),
            record(FIRST, 6, EventType.STEP_STARTED),
        ],
    )
    assert [subject for subject, _ in nats.sent] == [
        bus.events_subject(str(FIRST)),
        bus.events_subject(str(SECOND)),
    ]
    decoded = [[(e.job_id, e.sequence, e.type) for e in committed_events(p)] for _, p in nats.sent]
    assert decoded == [
        [
            (str(FIRST), 5, jobs_pb2.JOB_EVENT_TYPE_STEP_SUCCEEDED),
            (str(FIRST), 6, jobs_pb2.JOB_EVENT_TYPE_STEP_STARTED),
        ],
        [(str(SECOND), 2, jobs_pb2.JOB_EVENT_TYPE_PROGRESS)],
    ]


async def test_nothing_committed_publishes_nothing() -> None:
    nats = Recorder()
    await publish_events(cast(NatsClient, nats), [])
    assert nats.sent == []


def test_a_lone_event_of_an_earlier_release_is_refused_not_misread() -> None:
    # During a rolling upgrade a writer of the earlier release sends one JobEvent per
    # message; read as a batch it must fail (the notifier then repairs from Postgres),
    # never pass as some other event.
    lone = jobs_pb2.JobEvent(job_id=str(FIRST), sequence=3).SerializeToString()
    with pytest.raises(DecodeError):
        committed_events(lone)
