"""JetStream behaviour the design relies on, against a real nats-server -js."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import RetentionPolicy, StorageType
from nats.js.errors import FetchTimeoutError

from jobkit import bus


async def test_streams_are_durable_work_queues_with_dedup(nc: NatsClient) -> None:
    js = nc.jetstream()
    for stream in (bus.STEPS_STREAM, bus.UPDATES_STREAM):
        info = await js.stream_info(stream)
        assert info.config.storage == StorageType.FILE
        assert info.config.retention == RetentionPolicy.WORK_QUEUE
    await bus.ensure_streams(js)  # idempotent
    subject = bus.step_subject("noop", "prepare")
    for _ in range(3):
        await js.publish(subject, b"task", headers={"Nats-Msg-Id": "job:prepare:1"})
    assert (await js.stream_info(bus.STEPS_STREAM)).state.messages == 1


async def test_an_unacked_step_is_redelivered_and_an_acked_one_is_gone(nc: NatsClient) -> None:
    js = nc.jetstream()
    await js.publish(bus.step_subject("noop", "work"), b"task")
    sub = await js.pull_subscribe(
        "jobs.steps.>",
        durable=bus.WORKER_CONSUMER,
        stream=bus.STEPS_STREAM,
        config=bus.worker_consumer_config(ack_wait_s=1.0, max_deliver=5),
    )
    (first,) = await sub.fetch(1, timeout=2)
    assert first.metadata.num_delivered == 1
    # No ack: a dead worker. JetStream hands it out again after ack_wait.
    await asyncio.sleep(1.2)
    (again,) = await sub.fetch(1, timeout=3)
    assert again.data == b"task"
    assert again.metadata.num_delivered == 2
    await again.ack_sync()
    with pytest.raises((TimeoutError, FetchTimeoutError)):
        await sub.fetch(1, timeout=1.5)
    assert (await js.stream_info(bus.STEPS_STREAM)).state.messages == 0
