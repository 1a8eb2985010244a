"""A worker slot freed by a finished job, handed a waiting job's step in its result's
answer (``Dispatcher.hand_out``, ``Orchestrator``), against real Postgres and a real
nats-server -js. The fair dispatcher keeps some of a round's picks for the slots that
results free: their rows stay in the ready queue, hidden for a lease, until the first word
from the worker that runs one deletes it; a row whose worker never speaks is due again
once the lease has passed, and released again."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from jobkit import bus, planning, store
from jobkit.dispatch_gate import DispatchGate, Word
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.lifecycle import JobStatus, StepStatus
from jobkit.model import OutboxMessage
from jobkit.outbox import OutboxRelay
from jobtypes import CATALOG
from services.orchestrator import dispatcher as dispatching
from services.orchestrator.config import DispatchSettings, Timing
from services.orchestrator.consumer import Orchestrator
from services.orchestrator.dispatcher import Dispatcher
from tests.integration.test_orchestrator import (
    answering,
    pull_all,
    start_first_step,
    succeeded_result,
)
from tests.integration.test_pull import feed_for

LEASE_S = 30.0


def held_dispatcher(pool: asyncpg.Pool, nc: NatsClient) -> Dispatcher:
    gate = DispatchGate(nc)
    gate.heard(Word(True))
    settings = DispatchSettings(window=1)
    return Dispatcher(pool, nc, nc.jetstream(), gate, settings, lease_s=LEASE_S)


async def queue_first_steps(pool: asyncpg.Pool, owners: list[str]) -> list[uuid.UUID]:
    """Noop jobs as CreateJob commits them while the dispatcher holds: each one's first
    step waits in the ready queue. Their ids, in order."""
    valid = planning.validate(
        planning.CreateRequest("noop", b"", {}, None), CATALOG, max_input_bytes=1024
    )
    ids = []
    for owner in owners:
        now = datetime.now(UTC)
        planned = planning.plan(valid, owner=owner, job_id=uuid.uuid4(), now=now, trace_context="")
        async with pool.acquire() as conn:
            await store.create_jobs(conn, [planned], now, hold_steps=True)
        ids.append(planned.job.id)
    return ids


async def freeing_slots(dispatcher: Dispatcher, slots: int) -> None:
    """Results that free ``slots`` slots and find nothing kept: the dispatcher learns that
    slots free, and keeps attempts for them from its next round on."""
    await dispatcher.round()
    assert dispatcher.hand_out(slots) == []
    await asyncio.sleep(0.02)


async def ours(nc: NatsClient) -> list[Msg]:
    """What JetStream holds for the workers."""
    return await pull_all(nc, bus.STEPS_STREAM, "jobs.steps.>", "w")


async def released_earlier(nc: NatsClient, count: int) -> None:
    """Attempts in JetStream for the workers, released before anything was kept (their
    payload ``b"earlier"``)."""
    for n in range(count):
        await nc.jetstream().publish(
            bus.step_subject("noop", "work"), b"earlier", headers={"Nats-Msg-Id": f"earlier-{n}"}
        )


def waiting(seconds: float) -> dict[str, str]:
    """A result's headers from a worker that waits ``seconds`` more for the answer."""
    return {bus.ANSWER_BY_HEADER: str(int((time.time() + seconds) * 1000))}


def job_of(message: OutboxMessage) -> uuid.UUID:
    return uuid.UUID(worker_pb2.StepTask.FromString(message.payload).job_id)


async def hidden_for(pool: asyncpg.Pool) -> dict[uuid.UUID, float]:
    """The ready queue's rows not due yet, by job: seconds until they are."""
    rows = await pool.fetch(
        "SELECT job_id, extract(epoch FROM not_before - now()) AS wait FROM ready_steps"
        " WHERE not_before > now()"
    )
    return {r["job_id"]: float(r["wait"]) for r in rows}


async def test_a_round_keeps_waiting_attempts_for_freed_slots_their_rows_hidden(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    dispatcher = held_dispatcher(pool, nc)
    await freeing_slots(dispatcher, slots=100)
    queued = await queue_first_steps(pool, ["alice", "alice", "bob", "carol", "dave", "erin"])
    await dispatcher.round()
    handed = dispatcher.hand_out(10)
    assert 1 < len(handed) < len(queued)
    # Whole, as JetStream would have carried them, and in no stream.
    task = worker_pb2.StepTask.FromString(handed[0].payload)
    assert (task.step, task.attempt) == ("prepare", 1)
    assert task.HasField("input")
    assert await ours(nc) == []
    # Each one's row stays, hidden for a lease; the others wait their turn.
    hidden = await hidden_for(pool)
    assert set(hidden) == {job_of(m) for m in handed}
    assert all(LEASE_S - 5 < wait <= LEASE_S for wait in hidden.values())
    due = await pool.fetchval("SELECT count(*) FROM ready_steps WHERE not_before <= now()")
    assert len(handed) + due == len(queued)
    # Handed out once: nothing is kept twice.
    assert dispatcher.hand_out(10) == []


async def test_a_finished_jobs_slot_is_answered_with_a_waiting_step_whose_first_word_claims_it(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    dispatcher = held_dispatcher(pool, nc)
    gate = DispatchGate(nc)
    orchestrator = Orchestrator(
        pool,
        nc,
        js,
        relay,
        batch_size=64,
        timing=Timing(lease_s=LEASE_S),
        gate=gate,
        hand_out=dispatcher.hand_out,
    )
    # The gate opens for the first job's start, then holds while the second waits.
    job, task = await start_first_step(pool, nc, orchestrator, relay)
    gate.heard(Word(True))
    await freeing_slots(dispatcher, slots=100)
    (waiting_job,) = await queue_first_steps(pool, ["bob"])
    await dispatcher.round()
    async with answering(orchestrator, relay):
        steps = []
        answer = worker_pb2.ResultAnswer()
        while True:
            steps.append(task.step)
            reply = await nc.request(
                bus.RESULT_SUBJECT, succeeded_result(task, {}), timeout=10, headers=waiting(5)
            )
            answer = worker_pb2.ResultAnswer.FromString(reply.data)
            if not answer.HasField("next"):
                break
            task = answer.next
        # The job's own steps go on in the same slot; once it has none, the slot takes
        # bob's, in bob's trace.
        assert steps == ["prepare", "work", "finish"]
        assert answer.HasField("waiting")
        assert answer.waiting.job_id == str(waiting_job)
        assert (answer.waiting.step, answer.waiting.attempt) == ("prepare", 1)
        assert list(await hidden_for(pool)) == [waiting_job]
        # The worker's first word on it starts bob's job and deletes the row.
        beat = worker_pb2.StepReport(
            job_id=answer.waiting.job_id, step="prepare", attempt=1, heartbeat={}
        )
        assert (
            await nc.request(bus.RESULT_SUBJECT, beat.SerializeToString(), timeout=10)
        ).data == bus.RESULT_SETTLED
    assert await pool.fetchval("SELECT count(*) FROM ready_steps") == 0
    async with pool.acquire() as conn:
        finished = await store.fetch_job(conn, job.id)
        started = await store.fetch_job(conn, waiting_job)
    assert finished is not None
    assert finished.status is JobStatus.SUCCEEDED
    assert started is not None
    assert started.status is JobStatus.RUNNING
    assert started.steps[0].status is StepStatus.RUNNING
    assert started.steps[0].lease_expires_at is not None
    # Nothing of it went through JetStream.
    assert await ours(nc) == []


async def test_a_worker_that_may_have_stopped_waiting_is_handed_nothing(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    """An answer its worker no longer waits for is lost, and a step handed out with it
    would wait for its lease: a result whose worker stops waiting within the margin, or
    does not say when, frees its slot to pull, and the kept step stays kept."""
    js = nc.jetstream()
    relay = OutboxRelay(pool, js)
    dispatcher = held_dispatcher(pool, nc)
    gate = DispatchGate(nc)
    orchestrator = Orchestrator(
        pool, nc, js, relay, batch_size=64, gate=gate, hand_out=dispatcher.hand_out
    )
    jobs = [await start_first_step(pool, nc, orchestrator, relay) for _ in range(2)]
    gate.heard(Word(True))
    await freeing_slots(dispatcher, slots=100)
    (waiting_job,) = await queue_first_steps(pool, ["bob"])
    await dispatcher.round()
    async with answering(orchestrator, relay):
        for (_, task), headers in zip(jobs, [waiting(0.5), {}], strict=True):
            while True:
                reply = await nc.request(
                    bus.RESULT_SUBJECT, succeeded_result(task, {}), timeout=10, headers=headers
                )
                if reply.data == bus.RESULT_SETTLED:
                    break
                answer = worker_pb2.ResultAnswer.FromString(reply.data)
                assert answer.HasField("next")  # its own job's steps are handed over as ever
                task = answer.next
    (kept,) = dispatcher.hand_out(1)
    assert job_of(kept) == waiting_job


async def test_a_kept_step_no_freed_slot_takes_in_time_waits_its_turn_again(
    pool: asyncpg.Pool, nc: NatsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Due again in its place, for the policy to pick anew: not pushed into JetStream
    with its row hidden, which would make JetStream's first in, first out longer than
    its window."""
    monkeypatch.setattr(dispatching, "_KEPT_COVERS", 0)
    dispatcher = held_dispatcher(pool, nc)
    await freeing_slots(dispatcher, slots=100)
    (waiting_job,) = await queue_first_steps(pool, ["bob"])
    await dispatcher.round()
    assert list(await hidden_for(pool)) == [waiting_job]
    await asyncio.sleep(0.06)
    # Slots stop freeing: it is let go, and the window releases it, row and all.
    monkeypatch.setattr(dispatcher, "_keep_target", lambda: 0)
    await dispatcher.round()
    assert dispatcher.hand_out(1) == []
    (released,) = await ours(nc)
    assert worker_pb2.StepTask.FromString(released.data).job_id == str(waiting_job)
    assert await pool.fetchval("SELECT count(*) FROM ready_steps") == 0


async def test_a_handed_out_step_whose_worker_never_speaks_is_released_after_its_lease(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    dispatcher = held_dispatcher(pool, nc)
    await freeing_slots(dispatcher, slots=100)
    (waiting_job,) = await queue_first_steps(pool, ["bob"])
    await dispatcher.round()
    (handed,) = dispatcher.hand_out(1)
    assert job_of(handed) == waiting_job
    # The worker it went to dies before its first word. Until the lease has passed the
    # row stays hidden, and rounds leave it alone.
    await dispatcher.round()
    assert list(await hidden_for(pool)) == [waiting_job]
    assert dispatcher.hand_out(1) == []
    await pool.execute("UPDATE ready_steps SET not_before = now() - interval '1 second'")
    await dispatcher.round()
    # Released again: kept for the next freed slot, hidden for another lease.
    (again,) = dispatcher.hand_out(1)
    assert (again.msg_id, again.payload) == (handed.msg_id, handed.payload)
    assert list(await hidden_for(pool)) == [waiting_job]
    assert await ours(nc) == []


async def test_nothing_kept_overtakes_what_jetstream_holds_and_idle_slots_get_it_all(
    pool: asyncpg.Pool, nc: NatsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Picks keep their order: while JetStream holds attempts released before the kept
    ones, freed slots find nothing kept (they pull those first); and once a worker's slots
    wait on JetStream (free slots no answer will fill), what is kept goes there at once,
    in the order it would have been handed out."""
    monkeypatch.setattr(dispatching, "_KEPT_AT_LEAST_S", 60.0)
    dispatcher = held_dispatcher(pool, nc)
    await freeing_slots(dispatcher, slots=20)  # one kept at a time
    first, second = await queue_first_steps(pool, ["alice", "bob"])
    await dispatcher.round()
    assert list(await hidden_for(pool)) == [first]
    # Attempts released earlier, more than a window's worth, still in JetStream: nothing
    # is handed out meanwhile.
    await released_earlier(nc, 2)
    await dispatcher.round()
    assert dispatcher.hand_out(1) == []
    # A worker's free slot pulls them, and asks for more: the kept attempt follows them,
    # and the window takes the next one.
    feed = await feed_for(nc, capacity=1)
    try:
        for _ in range(2):
            earlier = await asyncio.wait_for(feed.next(), 5)
            assert earlier is not None
            assert earlier.data == b"earlier"
            await earlier.ack()
            feed.release()
        await asyncio.sleep(0.1)  # its next pull request reaches the server
        await dispatcher.round()
        after = await asyncio.wait_for(feed.next(), 5)
        assert after is not None
        assert worker_pb2.StepTask.FromString(after.data).job_id == str(first)
        # Its row stays hidden until that worker's first word; bob's was kept meanwhile,
        # for the next freed slot, and goes to JetStream as the slot asks again instead.
        assert set(await hidden_for(pool)) == {first, second}
        await after.ack()
        feed.release()
        await asyncio.sleep(0.1)
        await dispatcher.round()
        last = await asyncio.wait_for(feed.next(), 5)
        assert last is not None
        assert worker_pb2.StepTask.FromString(last.data).job_id == str(second)
        await last.ack()
    finally:
        await feed.close()
    assert dispatcher.hand_out(1) == []
    assert set(await hidden_for(pool)) == {first, second}


async def test_a_stopping_dispatcher_gives_back_what_it_kept_at_once(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    dispatcher = held_dispatcher(pool, nc)
    await freeing_slots(dispatcher, slots=100)
    queued = await queue_first_steps(pool, ["alice", "bob"])
    await dispatcher.round()
    assert set(await hidden_for(pool)) == set(queued)
    await dispatcher.drain()
    # Due again for another replica's dispatcher, not after the rows' lease; and this one
    # keeps nothing more.
    assert await hidden_for(pool) == {}
    assert dispatcher.hand_out(2) == []
    await dispatcher.round()
    assert await hidden_for(pool) == {}


async def test_a_light_users_pick_is_handed_out_in_turn_with_a_heavy_users_kept_before_it(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    """Kept attempts are handed out owner by owner in turn, not first in, first out: a
    light user's attempt picked after a heavy user's were kept waits for one of theirs,
    not for all."""
    dispatcher = held_dispatcher(pool, nc)
    await freeing_slots(dispatcher, slots=100)
    heavy = await queue_first_steps(pool, ["heavy"] * 3)
    await dispatcher.round()
    assert set(await hidden_for(pool)) == set(heavy)
    (light,) = await queue_first_steps(pool, ["light"])
    await dispatcher.round()
    assert [job_of(m) for m in dispatcher.hand_out(3)] == [heavy[0], light, heavy[1]]
    assert [job_of(m) for m in dispatcher.hand_out(10)] == [heavy[2]]


async def test_nothing_more_is_kept_while_jetstream_holds_more_than_a_window(
    pool: asyncpg.Pool, nc: NatsClient
) -> None:
    """Kept then, a pick could only wait (and go stale, and be picked again behind newer
    ones): it waits in the ready queue instead, for its turn once JetStream has room."""
    dispatcher = held_dispatcher(pool, nc)
    await freeing_slots(dispatcher, slots=100)
    await released_earlier(nc, 2)
    (waiting_job,) = await queue_first_steps(pool, ["bob"])
    await dispatcher.round()
    assert dispatcher.hand_out(1) == []
    assert await hidden_for(pool) == {}
    assert await pool.fetchval("SELECT job_id FROM ready_steps") == waiting_job
    assert len(await ours(nc)) == 2


async def test_nothing_kept_is_handed_out_while_jetstream_holds_an_earlier_pick_for_long(
    pool: asyncpg.Pool, nc: NatsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slot handed a kept attempt does not pull: were hand-outs to go on while JetStream
    holds even one attempt released before, it would wait as long as they last. So they
    pause once JetStream has held some for longer than the window's time."""
    monkeypatch.setattr(dispatching, "_KEPT_AT_LEAST_S", 60.0)
    dispatcher = held_dispatcher(pool, nc)
    await freeing_slots(dispatcher, slots=100)
    first, second = await queue_first_steps(pool, ["alice", "bob"])
    await dispatcher.round()
    assert set(await hidden_for(pool)) == {first, second}
    # Released earlier (as NATS came back, say): within the window, and just come.
    await released_earlier(nc, 1)
    await dispatcher.round()
    assert [job_of(m) for m in dispatcher.hand_out(1)] == [first]
    # Still there past the window's time: hand-outs pause.
    await asyncio.sleep(dispatching._LONGEST_COVER_S + 0.05)
    await dispatcher.round()
    assert dispatcher.hand_out(1) == []
    # A freed slot pulls it; then they go on.
    feed = await feed_for(nc, capacity=1)
    try:
        earlier = await asyncio.wait_for(feed.next(), 5)
        assert earlier is not None
        assert earlier.data == b"earlier"
        await earlier.ack()
    finally:
        await feed.close()
    await dispatcher.round()
    assert [job_of(m) for m in dispatcher.hand_out(1)] == [second]
