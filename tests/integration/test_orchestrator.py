"""The orchestrator's batch commit against real Postgres and JetStream: dispatch, advance,
and never commit a checkpoint twice."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import NoRespondersError

from jobkit import bus, control, planning, snapshots, store
from jobkit.catalog import Catalog
from jobkit.convert import dict_to_struct, struct_from_bytes, struct_to_dict
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.lifecycle import JobStatus, StepStatus
from jobkit.model import JobRecord, StepUsage
from jobkit.outbox import OutboxRelay
from jobkit.pricing import PriceTable
from jobtypes import CATALOG
from services.orchestrator import codec
from services.orchestrator.config import Timing
from services.orchestrator.consumer import Orchestrator
from services.orchestrator.state_machine import ReportKind, StepReport
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


@contextlib.asynccontextmanager
async def answering(orchestrator: Orchestrator, relay: OutboxRelay) -> AsyncIterator[None]:
    """The orchestrator answering result requests until the block ends."""
    await orchestrator.subscribe_results()
    running = asyncio.create_task(orchestrator.run())
    try:
        yield
    finally:
        await orchestrator.stop()
        await running
        relay.close()


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


async def start_first_step(
    pool: asyncpg.Pool, nc: NatsClient, orchestrator: Orchestrator, relay: OutboxRelay
) -> tuple[JobRecord, worker_pb2.StepTask]:
    job, _, rows = await create_job(pool)
    await relay.publish_committed(rows)
    await orchestrator.process(await pull_all(nc, bus.UPDATES_STREAM, "jobs.updates.>", "t"))
    (dispatch,) = await pull_all(nc, bus.STEPS_STREAM, "jobs.steps.>", "w")
    await dispatch.ack()
    return job, worker_pb2.StepTask.FromString(dispatch.data)


async def test_a_silent_attempt_is_redispatched_when_its_lease_expires(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    orchestrator = Orchestrator(pool, nc, js, relay, batch_size=64, timing=Timing(lease_s=0.2))
    job, task = await start_first_step(pool, nc, orchestrator, relay)
    # Queued work holds no lease: nothing expires however long it waits.
    assert await orchestrator.expire_leases_once() == 0
    heartbeat = worker_pb2.StepReport(
        job_id=task.job_id,
        step=task.step,
        attempt=task.attempt,
        heartbeat=worker_pb2.StepHeartbeat(),
    )
    await js.publish(bus.REPORT_SUBJECT, heartbeat.SerializeToString())
    await orchestrator.process(await pull_all(nc, bus.UPDATES_STREAM, "jobs.updates.>", "t"))
    assert await orchestrator.expire_leases_once() == 0  # the lease is fresh
    await asyncio.sleep(0.3)  # the worker goes silent
    assert await orchestrator.expire_leases_once() == 1
    async with pool.acquire() as conn:
        current = await store.fetch_job(conn, job.id)
        events = await store.fetch_events(conn, job.id, 0)
    assert current is not None
    prepare = current.steps[0]
    assert (prepare.status, prepare.attempt, prepare.error_code) == (
        StepStatus.RETRYING,
        2,
        "STEP_LOST",
    )
    assert events[-1].event.type.value == "STEP_RETRYING"
    await asyncio.sleep(0.2)  # the back-off
    (redispatch,) = await pull_all(nc, bus.STEPS_STREAM, "jobs.steps.>", "w")
    assert worker_pb2.StepTask.FromString(redispatch.data).attempt == 2
    # The old attempt's late result is fenced off.
    await js.publish(bus.REPORT_SUBJECT, result_report(task, {"late": True}))
    await orchestrator.process(await pull_all(nc, bus.UPDATES_STREAM, "jobs.updates.>", "t"))
    async with pool.acquire() as conn:
        after = await store.fetch_job(conn, job.id)
    assert after is not None
    assert after.steps[0].status is StepStatus.RETRYING
    relay.close()


async def test_a_worker_that_can_take_the_next_step_gets_it_in_the_answer(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    """No JetStream message and no outbox row for a step handed over: it is committed as
    running and leased, so if the worker never runs it, the lease brings it back."""
    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    orchestrator = Orchestrator(pool, nc, js, relay, batch_size=64, timing=Timing(lease_s=0.3))
    job, task = await start_first_step(pool, nc, orchestrator, relay)
    async with answering(orchestrator, relay):
        request = worker_pb2.StepReport.FromString(result_report(task, {"n": 1}))
        request.take_next = True
        answer = await nc.request(bus.RESULT_SUBJECT, request.SerializeToString(), timeout=10)
        handed = worker_pb2.ResultAnswer.FromString(answer.data).next
        assert (handed.job_id, handed.step, handed.attempt) == (str(job.id), "work", 1)
        # The worker has the input and the checkpoints (its own result the newest).
        assert not handed.HasField("input")
        assert not handed.checkpoints
        assert await pull_all(nc, bus.STEPS_STREAM, "jobs.steps.>", "w") == []
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
        async with pool.acquire() as conn:
            current = await store.fetch_job(conn, job.id)
        assert current is not None
        assert current.steps[1].status is StepStatus.RUNNING
        assert current.steps[1].lease_expires_at is not None

        # The answer is lost; the worker sends its result again: the same step comes back.
        repeated = await nc.request(bus.RESULT_SUBJECT, request.SerializeToString(), timeout=10)
        again = worker_pb2.ResultAnswer.FromString(repeated.data).next
        assert (again.step, again.attempt) == ("work", 1)
        async with pool.acquire() as conn:
            events = await store.fetch_events(conn, job.id, 0)
        assert [e.event.type.value for e in events].count("STEP_SUCCEEDED") == 1

        # The worker dies with it: the lease runs out and the next attempt is queued.
        await asyncio.sleep(0.4)
        assert await orchestrator.expire_leases_once() == 1
        await asyncio.sleep(0.3)  # its back-off
        (redispatch,) = await pull_all(nc, bus.STEPS_STREAM, "jobs.steps.>", "w")
        retried = worker_pb2.StepTask.FromString(redispatch.data)
        assert (retried.step, retried.attempt) == ("work", 2)


def succeeded_result(task: worker_pb2.StepTask, output: dict[str, object]) -> bytes:
    request = worker_pb2.StepReport.FromString(result_report(task, output))
    request.take_next = True
    return request.SerializeToString()


async def test_a_handed_step_s_result_comes_back_to_the_replica_that_remembers_the_job(
    pool: asyncpg.Pool, nc: NatsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer names the replica's own subject; a result sent there is decided from the
    job as that replica last wrote it, without reading Postgres first."""
    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    orchestrator = Orchestrator(pool, nc, js, relay, batch_size=64)
    # Another replica started the job: this one has never written it.
    other = Orchestrator(pool, nc, js, relay, batch_size=64)
    job, task = await start_first_step(pool, nc, other, relay)
    reads: list[int] = []
    fetch_jobs = store.fetch_jobs

    async def counted(*args: Any, **kwargs: Any) -> dict[uuid.UUID, JobRecord]:
        reads.append(1)
        return await fetch_jobs(*args, **kwargs)

    monkeypatch.setattr(store, "fetch_jobs", counted)
    async with answering(orchestrator, relay):
        first = await nc.request(bus.RESULT_SUBJECT, succeeded_result(task, {"n": 1}), timeout=10)
        handed = worker_pb2.ResultAnswer.FromString(first.data)
        assert handed.result_subject == orchestrator.result_subject
        assert len(reads) == 1  # this replica had not written the job yet
        second = await nc.request(
            handed.result_subject, succeeded_result(handed.next, {"n": 2}), timeout=10
        )
        last = worker_pb2.ResultAnswer.FromString(second.data).next
        assert last.step == "finish"
        assert len(reads) == 1  # decided from memory
        async with pool.acquire() as conn:
            current = await store.fetch_job(conn, job.id)
        assert current is not None
        assert struct_to_dict(struct_from_bytes(current.steps[1].output)) == {"n": 2}
        assert [s.status for s in current.steps] == [
            StepStatus.SUCCEEDED,
            StepStatus.SUCCEEDED,
            StepStatus.RUNNING,
        ]


async def test_a_result_memory_would_ignore_is_decided_again_from_postgres(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    """Another replica retried the handed step: the new attempt's result looks stale to
    this replica's memory, so it is decided again from Postgres, not settled unwritten."""
    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    orchestrator = Orchestrator(pool, nc, js, relay, batch_size=64, timing=Timing(lease_s=0.1))
    other = Orchestrator(pool, nc, js, relay, batch_size=64)
    async with answering(orchestrator, relay):
        # Another replica retries the handed step; its attempt 2's result comes here.
        _, task = await start_first_step(pool, nc, orchestrator, relay)
        answer = await nc.request(bus.RESULT_SUBJECT, succeeded_result(task, {"n": 1}), timeout=10)
        handed = worker_pb2.ResultAnswer.FromString(answer.data).next
        await asyncio.sleep(0.15)  # past the handed step's lease
        await other.commit(
            [StepReport(uuid.UUID(handed.job_id), "work", 1, ReportKind.LEASE_EXPIRED)]
        )
        retried = worker_pb2.StepTask()
        retried.CopyFrom(handed)
        retried.attempt = 2
        await nc.request(
            orchestrator.result_subject, succeeded_result(retried, {"n": 2}), timeout=10
        )
        async with pool.acquire() as conn:
            current = await store.fetch_job(conn, uuid.UUID(handed.job_id))
        assert current is not None
        work = current.steps[1]
        assert (work.status, work.attempt) == (StepStatus.SUCCEEDED, 2)
        assert struct_to_dict(struct_from_bytes(work.output)) == {"n": 2}


async def cancel_as_job_api(pool: asyncpg.Pool, job_id: uuid.UUID) -> None:
    """CancelJob's write: under the job's lock, behind every orchestrator's back."""
    async with pool.acquire() as conn, conn.transaction():
        locked = await store.fetch_job(conn, job_id, lock=True)
        assert locked is not None
        change = control.cancel(locked, datetime.now(UTC))
        assert change is not None
        await store.apply_changes(conn, [(locked, change)], datetime.now(UTC))


async def test_a_cancel_makes_memory_stale_and_the_write_fails_on_the_version(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    orchestrator = Orchestrator(pool, nc, js, relay, batch_size=64)
    async with answering(orchestrator, relay):
        # job_api cancels a job this replica remembers: the late result changes nothing.
        cancelled_job, task = await start_first_step(pool, nc, orchestrator, relay)
        answer = await nc.request(bus.RESULT_SUBJECT, succeeded_result(task, {"n": 1}), timeout=10)
        handed = worker_pb2.ResultAnswer.FromString(answer.data).next
        await cancel_as_job_api(pool, cancelled_job.id)
        settled = await nc.request(
            orchestrator.result_subject, succeeded_result(handed, {"n": 2}), timeout=10
        )
        assert settled.data == bus.RESULT_SETTLED
        async with pool.acquire() as conn:
            after = await store.fetch_job(conn, cancelled_job.id)
        assert after is not None
        assert after.status is JobStatus.CANCELLED
        assert after.steps[1].output is None


async def test_a_job_changed_under_an_unlocked_batch_is_decided_again(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    """The orchestrator reads without locks; a cancel committed between its read and its
    write must win, and the step's late result must not resurrect the job."""
    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    orchestrator = Orchestrator(pool, nc, js, relay, batch_size=64)
    job, task = await start_first_step(pool, nc, orchestrator, relay)
    succeeded = StepReport(
        uuid.UUID(task.job_id),
        task.step,
        task.attempt,
        ReportKind.SUCCEEDED,
        output=dict_to_struct({"n": 1}).SerializeToString(),
    )
    async with pool.acquire() as canceller, canceller.transaction():
        locked = await store.fetch_job(canceller, job.id, lock=True)
        assert locked is not None
        # The orchestrator reads the RUNNING job, decides, and blocks on the row lock.
        commit = asyncio.create_task(orchestrator.commit([succeeded]))
        await asyncio.sleep(0.3)
        assert not commit.done()
        now = datetime.now(UTC)
        cancelled = control.cancel(locked, now)
        assert cancelled is not None
        await store.apply_changes(canceller, [(locked, cancelled)], now)
    await asyncio.wait_for(commit, 5)
    async with pool.acquire() as conn:
        final = await store.fetch_job(conn, job.id)
        events = await store.fetch_events(conn, job.id, 0)
    assert final is not None
    assert final.status is JobStatus.CANCELLED
    assert final.steps[0].status is not StepStatus.SUCCEEDED
    assert final.steps[0].output is None
    assert [e.event.type.value for e in events][-1] == "CANCELLED"
    relay.close()


async def test_a_result_s_model_usage_is_priced_stored_once_and_shown(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    prices = PriceTable.parse('{"gpt-x": {"prompt": 1, "completion": 4}}')
    orchestrator = Orchestrator(pool, nc, js, relay, batch_size=64, prices=prices)
    job, task = await start_first_step(pool, nc, orchestrator, relay)
    result = worker_pb2.StepReport(
        job_id=task.job_id,
        step=task.step,
        attempt=task.attempt,
        succeeded=worker_pb2.StepSucceeded(output=dict_to_struct({"ok": True})),
        usage=[
            worker_pb2.ModelUsage(
                model="gpt-x", prompt_tokens=1000, completion_tokens=500, prompts=["p@3"]
            )
        ],
    ).SerializeToString()
    # Delivered twice (a redelivery after a crash): charged once.
    for n in range(2):
        await js.publish(bus.REPORT_SUBJECT, result, headers={"Nats-Msg-Id": f"u{n}"})
        await orchestrator.process(await pull_all(nc, bus.UPDATES_STREAM, "jobs.updates.>", "t"))
    async with pool.acquire() as conn:
        stored = await store.fetch_job(conn, job.id)
        assert stored is not None
        (current,) = await store.with_usage(conn, [stored])
        used, oldest = await store.tokens_used_since(
            conn, job.owner, datetime.now(UTC) - timedelta(hours=1)
        )
    assert current.usage == (StepUsage("prepare", 0, "gpt-x", 1000, 500, 0.003, ("p@3",)),)
    assert used == 1500
    assert oldest is not None
    relay.close()


async def test_a_result_request_is_answered_only_once_committed_and_a_repeat_is_settled_too(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    """The worker acks its dispatch on the answer, so the answer must mean "in Postgres";
    a repeat (an answer lost, a dispatch run twice) is answered the same, changing nothing."""
    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    orchestrator = Orchestrator(pool, nc, js, relay, batch_size=64)
    job, task = await start_first_step(pool, nc, orchestrator, relay)
    async with answering(orchestrator, relay):
        answer = await nc.request(bus.RESULT_SUBJECT, result_report(task, {"n": 1}), timeout=10)
        assert answer.data == bus.RESULT_SETTLED
        async with pool.acquire() as conn:
            after_first = await store.fetch_job(conn, job.id)
        assert after_first is not None
        assert after_first.steps[0].status is StepStatus.SUCCEEDED
        assert struct_to_dict(struct_from_bytes(after_first.steps[0].output)) == {"n": 1}

        again = await nc.request(bus.RESULT_SUBJECT, result_report(task, {"n": 2}), timeout=10)
        assert again.data == bus.RESULT_SETTLED
        async with pool.acquire() as conn:
            after_second = await store.fetch_job(conn, job.id)
            events = await store.fetch_events(conn, job.id, 0)
        assert after_second is not None
        assert after_second.steps[0].output == after_first.steps[0].output
        assert [e.event.type.value for e in events].count("STEP_SUCCEEDED") == 1


async def test_heartbeats_and_progress_as_requests_are_answered_once_committed(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    """The way a worker sends them first: no JetStream write; the answer means the lease
    is renewed and the progress event is in Postgres."""
    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    orchestrator = Orchestrator(pool, nc, js, relay, batch_size=64)
    job, task = await start_first_step(pool, nc, orchestrator, relay)

    def report(**outcome: Any) -> bytes:
        return worker_pb2.StepReport(
            job_id=task.job_id, step=task.step, attempt=task.attempt, **outcome
        ).SerializeToString()

    async with answering(orchestrator, relay):
        beat = await nc.request(
            bus.RESULT_SUBJECT, report(heartbeat=worker_pb2.StepHeartbeat()), timeout=10
        )
        assert beat.data == bus.RESULT_SETTLED
        async with pool.acquire() as conn:
            beaten = await store.fetch_job(conn, job.id)
        assert beaten is not None
        leased_until = beaten.steps[0].lease_expires_at
        assert leased_until is not None
        assert leased_until > datetime.now(UTC)

        progress = worker_pb2.StepProgress(percent=50, phase="Halfway there...")
        answer = await nc.request(bus.RESULT_SUBJECT, report(progress=progress), timeout=10)
        assert answer.data == bus.RESULT_SETTLED
        async with pool.acquire() as conn:
            events = await store.fetch_events(conn, job.id, 0)
    assert [e.event.type.value for e in events][-1] == "PROGRESS"
    assert events[-1].event.phase == "Halfway there..."
    assert await pull_all(nc, bus.UPDATES_STREAM, "jobs.updates.>", "t") == []


async def test_a_report_nobody_listens_for_fails_at_once(nc: NatsClient) -> None:
    """What tells a worker to send its heartbeat or progress through JetStream instead:
    no orchestrator subscribed, and the server says so at once, not after a timeout."""
    with pytest.raises(NoRespondersError):
        await nc.request(bus.direct_result_subject("gone"), b"", timeout=10)


async def test_a_job_whose_type_version_is_gone_fails_cleanly(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    """A deploy dropped the version of noop a queued job was created with: the orchestrator
    that takes it fails it with JOB_TYPE_VERSION_GONE, committed like any decision, and
    goes on with the next input (it does not crash or loop)."""
    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    newer = Catalog(
        [replace(spec, version=2) if spec.name == "noop" else spec for spec in CATALOG.values()]
    )
    orchestrator = Orchestrator(pool, nc, js, relay, batch_size=64, catalog=newer)
    job, _, rows = await create_job(pool, input={"sleep_ms": 5})
    assert job.type_version == 1
    await relay.publish_committed(rows)
    updates = await pull_all(nc, bus.UPDATES_STREAM, "jobs.updates.>", "gone1")
    await orchestrator.process(updates)
    async with pool.acquire() as conn:
        stored = await store.fetch_job(conn, job.id)
        events = await store.fetch_events(conn, job.id, 0)
    assert stored is not None
    assert stored.status is JobStatus.FAILED
    assert stored.error_code == control.JOB_TYPE_VERSION_GONE
    assert stored.error_message == (
        "version 1 of job type noop is no longer deployed: "
        "create a new job to run the current version"
    )
    assert [e.event.type.value for e in events] == ["CREATED", "FAILED"]
    assert [e.sequence for e in events] == [1, 2]
    relay.close()


async def test_an_express_result_is_decided_while_the_main_queue_s_batch_waits(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    """The results of a job that came by the express lane go in batches of their own: a
    newcomer's result is committed while the flood's batch is still on its way (here it
    waits for a row lock), not after it."""
    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    orchestrator = Orchestrator(pool, nc, js, relay, batch_size=64)
    flooded, flooded_task = await start_first_step(pool, nc, orchestrator, relay)
    _, newcomer_task = await start_first_step(pool, nc, orchestrator, relay)
    async with answering(orchestrator, relay), pool.acquire() as locker:
        holding = locker.transaction()
        await holding.start()
        await locker.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", flooded.id)
        stuck = asyncio.create_task(
            nc.request(bus.RESULT_SUBJECT, result_report(flooded_task, {"n": 1}), timeout=20)
        )
        await asyncio.sleep(0.3)  # its batch now waits for the lock
        alive_at = orchestrator.last_progress
        answer = await nc.request(
            bus.RESULT_SUBJECT,
            result_report(newcomer_task, {"n": 1}),
            timeout=3,
            headers={bus.LANE_HEADER: bus.EXPRESS_LANE},
        )
        assert answer.data == bus.RESULT_SETTLED
        assert not stuck.done()
        # The main loop is stuck: the express lane's commit must not make it look alive.
        assert orchestrator.last_progress == alive_at
        await holding.rollback()
        assert (await stuck).data == bus.RESULT_SETTLED


async def test_a_main_batch_lets_an_express_result_read_with_it_go_first(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    """A flood's result and a newcomer's, queued at the same moment (read from NATS in one
    go): the main lane's loop was woken first, but gives the express lane's batch its
    turn before it decides, so the newcomer's is decided first. (Without that turn the
    main batch ran to its commit before the express lane's loop even woke.)"""
    decided: list[uuid.UUID] = []

    class NotingOrder(Orchestrator):
        async def _decide_and_write(self, *args: Any, **kwargs: Any) -> Any:
            decided.extend(i.job_id for i in args[2])
            return await super()._decide_and_write(*args, **kwargs)

    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    orchestrator = NotingOrder(pool, nc, js, relay, batch_size=64)
    flooded, flooded_task = await start_first_step(pool, nc, orchestrator, relay)
    newcomer, newcomer_task = await start_first_step(pool, nc, orchestrator, relay)
    decided.clear()  # the first steps' own decisions
    answers: dict[str, asyncio.Future[Msg]] = {}

    async def answered(msg: Msg) -> None:
        answers[msg.subject].set_result(msg)

    async with answering(orchestrator, relay):
        for name in ("flooded", "newcomer"):
            answers[f"answers.{name}"] = asyncio.get_running_loop().create_future()
            await nc.subscribe(f"answers.{name}", cb=answered)
        await nc.flush()
        # As the result subscription hands them over: one after the other, no turn between.
        await orchestrator._enqueue(
            Msg(nc, bus.RESULT_SUBJECT, "answers.flooded", result_report(flooded_task, {}))
        )
        await orchestrator._enqueue(
            Msg(
                nc,
                bus.RESULT_SUBJECT,
                "answers.newcomer",
                result_report(newcomer_task, {}),
                {bus.LANE_HEADER: bus.EXPRESS_LANE},
            )
        )
        for future in answers.values():
            assert (await asyncio.wait_for(future, 5)).data == bus.RESULT_SETTLED
    assert decided == [newcomer.id, flooded.id]


async def created_by_job_api(pool: asyncpg.Pool) -> tuple[JobRecord, worker_pb2.StepTask]:
    """A noop job planned and committed as CreateJob does, its first step dispatched with
    it: the job as created, and the first step's task (the worker's, once offered)."""
    now = datetime.now(UTC)
    request = planning.CreateRequest("noop", dict_to_struct({}).SerializeToString(), {}, None)
    planned = planning.plan(
        planning.validate(request, CATALOG, max_input_bytes=1024),
        owner="alice",
        job_id=uuid.uuid4(),
        now=now,
        trace_context="",
    )
    async with pool.acquire() as conn:
        await store.create_jobs(conn, [planned], now)
    (first,) = planned.change.outbox
    return store.as_created(planned, now), worker_pb2.StepTask.FromString(first.payload)


async def test_a_new_job_s_first_result_is_decided_from_the_job_job_api_sent(
    pool: asyncpg.Pool, nc: NatsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """job_api sends every orchestrator the job it created (``jobkit.snapshots``): the
    first result on it is decided without reading it from Postgres."""
    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    orchestrator = Orchestrator(pool, nc, js, relay, batch_size=64)
    reads: list[list[uuid.UUID]] = []
    fetch_jobs = store.fetch_jobs

    async def counted(conn: Any, job_ids: list[uuid.UUID], **kwargs: Any) -> Any:
        reads.append(list(job_ids))
        return await fetch_jobs(conn, job_ids, **kwargs)

    monkeypatch.setattr(store, "fetch_jobs", counted)
    async with answering(orchestrator, relay):
        job, task = await created_by_job_api(pool)
        unannounced, unannounced_task = await created_by_job_api(pool)
        await snapshots.announce(nc, job)
        await nc.flush()
        await asyncio.sleep(0.2)  # the snapshot's delivery
        answer = await nc.request(bus.RESULT_SUBJECT, succeeded_result(task, {"n": 1}), timeout=10)
        assert worker_pb2.ResultAnswer.FromString(answer.data).next.step == "work"
        assert reads == []
        # Without one, the job is read, as before.
        await nc.request(
            bus.RESULT_SUBJECT, succeeded_result(unannounced_task, {"n": 1}), timeout=10
        )
        assert reads == [[unannounced.id]]
    async with pool.acquire() as conn:
        current = await store.fetch_job(conn, job.id)
        events = await store.fetch_events(conn, job.id, 0)
    assert current is not None
    assert (current.status, current.version) == (JobStatus.RUNNING, 2)
    assert [s.status for s in current.steps] == [
        StepStatus.SUCCEEDED,
        StepStatus.RUNNING,
        StepStatus.PENDING,
    ]
    assert [e.event.type.value for e in events] == [
        "CREATED",
        "STEP_STARTED",
        "STEP_SUCCEEDED",
        "STEP_STARTED",
    ]


async def test_a_snapshot_made_stale_by_a_cancel_loses_to_the_version(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    """The job was cancelled after job_api sent it: the first result, decided from the
    snapshot, fails its write on the version and is decided again from Postgres; the job
    stays cancelled."""
    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    orchestrator = Orchestrator(pool, nc, js, relay, batch_size=64)
    async with answering(orchestrator, relay):
        job, task = await created_by_job_api(pool)
        await snapshots.announce(nc, job)
        await nc.flush()
        await asyncio.sleep(0.2)
        await cancel_as_job_api(pool, job.id)
        settled = await nc.request(bus.RESULT_SUBJECT, succeeded_result(task, {"n": 1}), timeout=10)
        assert settled.data == bus.RESULT_SETTLED
    async with pool.acquire() as conn:
        after = await store.fetch_job(conn, job.id)
    assert after is not None
    assert after.status is JobStatus.CANCELLED
    assert after.steps[0].output is None


async def test_a_result_is_decided_while_another_batch_waits_for_its_write_but_never_beside_its_own_job(  # noqa: E501
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    """Two batches in hand at once: job A's result is held up in its write; job B's,
    arriving meanwhile, is decided and committed before it; A's heartbeat, arriving
    meanwhile too, waits for A's batch to finish and is decided after it."""
    trace: list[tuple[str, str]] = []
    names_of: dict[uuid.UUID, str] = {}
    a_waiting, release = asyncio.Event(), asyncio.Event()

    class SlowWriteForA(Orchestrator):
        async def _decide_and_write(self, *args: Any, **kwargs: Any) -> Any:
            inputs = args[2]
            names = ",".join(sorted(f"{names_of.get(i.job_id)}:{kind(i)}" for i in inputs))
            trace.append(("start", names))
            if any(names_of.get(i.job_id) == "A" for i in inputs) and not release.is_set():
                a_waiting.set()
                await release.wait()
            try:
                return await super()._decide_and_write(*args, **kwargs)
            finally:
                trace.append(("end", names))

    def kind(item: Any) -> str:
        return "heartbeat" if getattr(item, "kind", None) is ReportKind.HEARTBEAT else "result"

    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    orchestrator = SlowWriteForA(pool, nc, js, relay, batch_size=64)
    a, a_task = await start_first_step(pool, nc, orchestrator, relay)
    b, b_task = await start_first_step(pool, nc, orchestrator, relay)
    names_of.update({a.id: "A", b.id: "B"})
    trace.clear()  # the first steps' own decisions
    answers: dict[str, asyncio.Future[Msg]] = {}

    async def answered(msg: Msg) -> None:
        answers[msg.subject].set_result(msg)

    heartbeat = worker_pb2.StepReport(
        job_id=a_task.job_id,
        step=a_task.step,
        attempt=a_task.attempt,
        heartbeat=worker_pb2.StepHeartbeat(),
    ).SerializeToString()
    async with answering(orchestrator, relay):
        # However the assertions go, A's batch ends, so the orchestrator can stop.
        unblocking = asyncio.get_running_loop().call_later(10, release.set)
        for name in ("a", "b", "a_heartbeat"):
            answers[f"answers.{name}"] = asyncio.get_running_loop().create_future()
            await nc.subscribe(f"answers.{name}", cb=answered)
        await nc.flush()
        await orchestrator._enqueue(
            Msg(nc, bus.RESULT_SUBJECT, "answers.a", result_report(a_task, {}))
        )
        await asyncio.wait_for(a_waiting.wait(), 5)  # A's batch is in hand, in its write
        await orchestrator._enqueue(Msg(nc, bus.RESULT_SUBJECT, "answers.a_heartbeat", heartbeat))
        await orchestrator._enqueue(
            Msg(nc, bus.RESULT_SUBJECT, "answers.b", result_report(b_task, {}))
        )
        assert (await asyncio.wait_for(answers["answers.b"], 5)).data == bus.RESULT_SETTLED
        assert not answers["answers.a_heartbeat"].done()
        release.set()
        unblocking.cancel()
        for future in answers.values():
            assert (await asyncio.wait_for(future, 5)).data == bus.RESULT_SETTLED
    assert trace == [
        ("start", "A:result"),
        ("start", "B:result"),
        ("end", "B:result"),
        ("end", "A:result"),
        ("start", "A:heartbeat"),
        ("end", "A:heartbeat"),
    ]
    async with pool.acquire() as conn:
        for job in (a, b):
            (step, *_) = (await store.fetch_jobs(conn, [job.id]))[job.id].steps
            assert step.status is StepStatus.SUCCEEDED


async def test_bytes_that_are_no_message_are_settled_and_the_lane_goes_on(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    """A result request whose bytes are no report is answered as settled (its worker stops
    sending it) and logged; the result read with it commits, and so does the next."""
    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    orchestrator = Orchestrator(pool, nc, js, relay, batch_size=64)
    first, first_task = await start_first_step(pool, nc, orchestrator, relay)
    second, second_task = await start_first_step(pool, nc, orchestrator, relay)
    answers: dict[str, asyncio.Future[Msg]] = {}

    async def answered(msg: Msg) -> None:
        answers[msg.subject].set_result(msg)

    async with answering(orchestrator, relay):
        for name in ("garbage", "first", "second"):
            answers[f"answers.{name}"] = asyncio.get_running_loop().create_future()
            await nc.subscribe(f"answers.{name}", cb=answered)
        await nc.flush()
        await orchestrator._enqueue(Msg(nc, bus.RESULT_SUBJECT, "answers.garbage", b"\xff\xff\xff"))
        await orchestrator._enqueue(
            Msg(nc, bus.RESULT_SUBJECT, "answers.first", result_report(first_task, {}))
        )
        for name in ("garbage", "first"):
            assert (await asyncio.wait_for(answers[f"answers.{name}"], 5)).data == (
                bus.RESULT_SETTLED
            )
        await orchestrator._enqueue(
            Msg(nc, bus.RESULT_SUBJECT, "answers.second", result_report(second_task, {}))
        )
        assert (await asyncio.wait_for(answers["answers.second"], 5)).data == bus.RESULT_SETTLED
    async with pool.acquire() as conn:
        for job in (first, second):
            (step, *_) = (await store.fetch_jobs(conn, [job.id]))[job.id].steps
            assert step.status is StepStatus.SUCCEEDED


async def test_an_input_that_fails_to_be_read_comes_back_and_the_lane_goes_on(
    pool: asyncpg.Pool, nc: NatsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading an input raising anything but ``ValueError`` (a bug, not malformed input):
    it is answered "again", as a failed batch's inputs are, and the lane reads on."""
    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    orchestrator = Orchestrator(pool, nc, js, relay, batch_size=64)
    job, task = await start_first_step(pool, nc, orchestrator, relay)
    failures = iter([RuntimeError("a bug")])

    def decode_failing_once(subject: str, data: bytes) -> Any:
        if (failure := next(failures, None)) is not None:
            raise failure
        return codec.decode(subject, data)

    monkeypatch.setattr("services.orchestrator.consumer.decode", decode_failing_once)
    answers: asyncio.Queue[Msg] = asyncio.Queue()

    async with answering(orchestrator, relay):
        await nc.subscribe("answers.result", cb=answers.put)
        await nc.flush()
        for expected in (bus.RESULT_AGAIN, bus.RESULT_SETTLED):
            await orchestrator._enqueue(
                Msg(nc, bus.RESULT_SUBJECT, "answers.result", result_report(task, {}))
            )
            assert (await asyncio.wait_for(answers.get(), 5)).data == expected
    async with pool.acquire() as conn:
        (step, *_) = (await store.fetch_jobs(conn, [job.id]))[job.id].steps
    assert step.status is StepStatus.SUCCEEDED
