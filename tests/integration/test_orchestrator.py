"""The orchestrator's batch commit against real Postgres and JetStream: dispatch, advance,
and never commit a checkpoint twice."""

from __future__ import annotations

import asyncpg
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from jobkit import bus, store
from jobkit.convert import dict_to_struct, struct_from_bytes, struct_to_dict
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.lifecycle import JobStatus, StepStatus
from jobkit.outbox import OutboxRelay
from services.orchestrator.consumer import Orchestrator
from tests.integration.helpers import create_job


async def pull_all(nc: NatsClient, stream: str, subject: str, durable: str) -> list[Msg]:
    sub = await nc.jetstream().pull_subscribe(subject, durable=durable, stream=stream)
    try:
        return await sub.fetch(100, timeout=1)
    except TimeoutError:
        return []


def result_report(task: worker_pb2.StepTask, output: dict[str, object]) -> bytes:
    return worker_pb2.StepReport(
        job_id=task.job_id,
        step=task.step,
        attempt=task.attempt,
        succeeded=worker_pb2.StepSucceeded(output=dict_to_struct(output)),
    ).SerializeToString()


async def test_a_job_advances_step_by_step_and_duplicates_are_ignored(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    orchestrator = Orchestrator(pool, nc, js, relay, batch_size=64)
    job, _, rows = await create_job(pool, input={"sleep_ms": 5})
    await relay.publish_committed(rows)

    updates = await pull_all(nc, bus.UPDATES_STREAM, "jobs.updates.>", "t1")
    await orchestrator.process(updates)
    (dispatch,) = await pull_all(nc, bus.STEPS_STREAM, "jobs.steps.>", "w1")
    task = worker_pb2.StepTask.FromString(dispatch.data)
    assert (task.step, task.attempt, task.job_type) == ("prepare", 1, "noop")
    assert struct_to_dict(task.input) == {"sleep_ms": 5}
    await dispatch.ack()

    # The same result delivered twice (a redelivery) in one batch, and once more later.
    for n in range(2):
        await js.publish(
            bus.REPORT_SUBJECT, result_report(task, {"n": 1}), headers={"Nats-Msg-Id": f"r{n}"}
        )
    await orchestrator.process(await pull_all(nc, bus.UPDATES_STREAM, "jobs.updates.>", "t1"))
    await js.publish(bus.REPORT_SUBJECT, result_report(task, {"n": 2}))
    await orchestrator.process(await pull_all(nc, bus.UPDATES_STREAM, "jobs.updates.>", "t1"))

    async with pool.acquire() as conn:
        current = await store.fetch_job(conn, job.id)
        events = await store.fetch_events(conn, job.id, 0)
    assert current is not None
    assert current.status is JobStatus.RUNNING
    prepare, work, _ = current.steps
    assert prepare.status is StepStatus.SUCCEEDED
    assert struct_to_dict(struct_from_bytes(prepare.output)) == {"n": 1}
    assert (work.status, work.attempt) == (StepStatus.RUNNING, 1)
    assert [e.event.type.value for e in events] == [
        "CREATED",
        "STEP_STARTED",
        "STEP_SUCCEEDED",
        "STEP_STARTED",
    ]
    (next_dispatch,) = await pull_all(nc, bus.STEPS_STREAM, "jobs.steps.>", "w1")
    next_task = worker_pb2.StepTask.FromString(next_dispatch.data)
    assert next_task.step == "work"
    assert struct_to_dict(next_task.checkpoints["prepare"]) == {"n": 1}
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
