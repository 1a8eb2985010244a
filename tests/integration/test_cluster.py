"""The clustered backends, for real: a Postgres primary with a synchronous standby
(``devstack.PostgresPair``) and three routed nats-server nodes (``devstack.NatsCluster``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from devstack import NatsCluster, PostgresPair
from jobkit import bus, db
from jobkit.errors import Unavailable


@pytest.fixture
def pair(tmp_root: Path) -> Iterator[PostgresPair]:
    # Under the session's root, not tmp_path: Postgres runs as another user, which must
    # traverse the parents, and another pytest session may reset pytest's own to 0700.
    servers = PostgresPair(tmp_root / f"pair-{uuid.uuid4().hex[:8]}").start()
    yield servers
    servers.stop()


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    cluster = NatsCluster(tmp_path).start()
    yield cluster
    cluster.stop()


@pytest.fixture
async def pair_pool(pair: PostgresPair) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(pair.url, min_size=2, max_size=4)
    yield pool
    await pool.close()


async def _commit_retrying(pool: asyncpg.Pool, value: int, within_s: float = 30.0) -> int:
    """What a service does: the transaction again, on a fresh connection, until a primary
    takes it. Returns how many tries it took."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    tries = 0
    while True:
        tries += 1
        try:
            async with db.wrap_db_errors(), pool.acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO facts (value) VALUES ($1)", value)
            return tries
        except Unavailable:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_a_failover_loses_no_commit_and_the_pool_follows_the_new_primary(
    pair: PostgresPair, pair_pool: asyncpg.Pool
) -> None:
    await pair_pool.execute("CREATE TABLE facts (value int PRIMARY KEY)")
    for value in range(20):
        await _commit_retrying(pair_pool, value)
    changes: list[bool] = []

    async def record(reachable: bool) -> None:
        changes.append(reachable)

    follower = asyncio.create_task(db.follow_primary(pair_pool, record, interval_s=0.1))
    try:
        await asyncio.sleep(0.3)
        old_port = pair.primary.port
        await asyncio.to_thread(pair.primary.crash)
        for _ in range(50):  # no primary: health goes NOT_SERVING
            if changes:
                break
            await asyncio.sleep(0.1)
        assert changes == [False]
        await asyncio.to_thread(pair.promote_standby)
        assert pair.primary.port != old_port
        # Every connection the pool held was to the dead primary: the next transaction
        # fails over to the promoted standby, and every acknowledged commit is there.
        assert await _commit_retrying(pair_pool, 20) >= 1
        assert await pair_pool.fetchval("SELECT count(*) FROM facts") == 21
        assert await pair_pool.fetchval("SELECT NOT pg_is_in_recovery()")
        for _ in range(50):
            if changes[-1:] == [True]:
                break
            await asyncio.sleep(0.1)
        assert changes == [False, True]
        await asyncio.to_thread(pair.rebuild_standby)
        sync = pair.primary.sql("SELECT sync_state FROM pg_stat_replication")
        assert sync == "sync"
    finally:
        follower.cancel()


async def test_a_connection_cut_mid_transaction_is_dropped_and_the_work_retried(
    pool: asyncpg.Pool,
) -> None:
    await pool.execute("CREATE TABLE facts (value int PRIMARY KEY)")
    killer = await pool.acquire()
    victims: list[int] = []

    async def cut_mid_transaction() -> None:
        async with db.wrap_db_errors(), pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO facts (value) VALUES (1)")
            victims.append(await conn.fetchval("SELECT pg_backend_pid()"))
            await killer.execute("SELECT pg_terminate_backend($1)", victims[0])
            await conn.execute("INSERT INTO facts (value) VALUES (2)")

    try:
        with pytest.raises(Unavailable):
            await cut_mid_transaction()
    finally:
        await pool.release(killer)
    # Nothing of the cut transaction was committed; the retry commits it once, on a new
    # connection (the pool replaced the dead one).
    assert await pool.fetchval("SELECT count(*) FROM facts") == 0
    async with pool.acquire() as conn, conn.transaction():
        assert await conn.fetchval("SELECT pg_backend_pid()") != victims[0]
        await conn.execute("INSERT INTO facts (value) VALUES (1), (2)")
    assert await pool.fetchval("SELECT count(*) FROM facts") == 2


async def test_r3_streams_and_consumers_survive_their_leader(nats_cluster: NatsCluster) -> None:
    nc = await bus.connect(nats_cluster.url, "test")
    try:
        js = nc.jetstream()
        await bus.ensure_streams(js, replicas=3)
        await bus.ensure_streams(js, replicas=3)  # idempotent, no update proposed
        await bus.ensure_consumer(
            js, bus.STEPS_STREAM, bus.worker_consumer_config(ack_wait_s=5, max_deliver=-1)
        )
        consumer = await js.consumer_info(bus.STEPS_STREAM, bus.WORKER_CONSUMER)
        assert consumer.config.num_replicas == 3
        stream = await js.stream_info(bus.STEPS_STREAM)
        assert stream.config.num_replicas == 3
        subject = bus.step_subject("noop", "prepare")
        for i in range(10):
            await js.publish(subject, b"task", headers={"Nats-Msg-Id": f"job:prepare:{i}"})
        assert stream.cluster is not None
        assert stream.cluster.leader
        leader = nats_cluster.node(stream.cluster.leader)
        leader.kill()
        # The publish goes through once a new leader is elected; what was acknowledged
        # before is all there.
        await bus.retry_transient(
            lambda: js.publish(subject, b"task", headers={"Nats-Msg-Id": "job:prepare:10"}),
            "publish",
        )
        info = await bus.retry_transient(lambda: js.stream_info(bus.STEPS_STREAM), "info")
        assert info.state.messages == 11
        assert info.cluster is not None
        assert info.cluster.leader != leader.server_name
        await asyncio.to_thread(leader.start)
    finally:
        await nc.close()
