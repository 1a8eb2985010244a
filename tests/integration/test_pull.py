"""PullFeed against a real nats-server -js: backlog, idle arrival, capacity and stop."""

from __future__ import annotations

import asyncio
import time

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from devstack.servers import NatsServer
from jobkit import bus
from jobkit.pull import PullFeed


async def feed_for(nc: NatsClient, capacity: int, expires_s: float = 1.0) -> PullFeed:
    await bus.ensure_consumer(
        nc.jetstream(), bus.STEPS_STREAM, bus.worker_consumer_config(30.0, max_deliver=-1)
    )
    feed = PullFeed(
        nc, bus.STEPS_STREAM, bus.WORKER_CONSUMER, capacity=capacity, expires_s=expires_s
    )
    await feed.start()
    return feed


async def publish(nc: NatsClient, count: int) -> None:
    js = nc.jetstream()
    await asyncio.gather(
        *(js.publish(bus.step_subject("noop", "work"), str(n).encode()) for n in range(count))
    )


async def test_a_backlog_drains_in_order_never_beyond_capacity(nc: NatsClient) -> None:
    await publish(nc, 300)
    feed = await feed_for(nc, capacity=8)
    in_hand: list[Msg] = []
    seen: list[bytes] = []
    most = 0

    async def run(msg: Msg) -> None:
        await asyncio.sleep(0.001)
        await msg.ack()
        in_hand.remove(msg)
        feed.release()

    tasks = []
    while len(seen) < 300:
        msg = await asyncio.wait_for(feed.next(), 5)
        assert msg is not None
        in_hand.append(msg)
        most = max(most, len(in_hand))
        seen.append(msg.data)
        tasks.append(asyncio.create_task(run(msg)))
    await asyncio.gather(*tasks)
    await feed.close()
    assert seen == [str(n).encode() for n in range(300)]  # each once, in stream order
    assert most <= 8
    await nc.flush()
    info = await nc.jetstream().consumer_info(bus.STEPS_STREAM, bus.WORKER_CONSUMER)
    assert info.num_pending == 0


async def test_an_idle_feed_hands_a_new_message_over_at_once(nc: NatsClient) -> None:
    """The outstanding request asks for several messages; the first must not wait for the
    rest (or for the request to expire)."""
    feed = await feed_for(nc, capacity=16, expires_s=3.0)
    await asyncio.sleep(0.2)  # the request is waiting on the server
    started = time.monotonic()
    await publish(nc, 1)
    msg = await asyncio.wait_for(feed.next(), 2)
    assert msg is not None
    assert time.monotonic() - started < 1.0
    await msg.ack()
    feed.release()
    # A freed slot is asked for again: the next message arrives just as quickly.
    await publish(nc, 1)
    assert await asyncio.wait_for(feed.next(), 2) is not None
    await feed.close()


async def test_a_full_feed_asks_for_nothing_until_a_slot_is_released(nc: NatsClient) -> None:
    await publish(nc, 3)
    feed = await feed_for(nc, capacity=2, expires_s=0.5)
    first, second = [await asyncio.wait_for(feed.next(), 2) for _ in range(2)]
    assert first is not None
    assert second is not None
    next_one = asyncio.create_task(feed.next())
    await asyncio.sleep(1.2)  # two request expiries: still nothing asked for
    assert not next_one.done()
    await first.ack()
    feed.release()
    third = await asyncio.wait_for(next_one, 3)
    assert third is not None
    assert third.data == b"2"
    await feed.close()


async def test_after_stop_next_ends_and_late_messages_go_back_once(nc: NatsClient) -> None:
    feed = await feed_for(nc, capacity=4, expires_s=2.0)
    await publish(nc, 1)
    handed = await asyncio.wait_for(feed.next(), 2)
    assert handed is not None
    feed.stop()
    assert await asyncio.wait_for(feed.next(), 1) is None
    # The request for the other three is still on the server: it takes these two, and
    # the message handed over is given back too; all are held until the request is over.
    await publish(nc, 2)
    await feed.give_back(handed)
    await asyncio.sleep(0.3)
    info = await nc.jetstream().consumer_info(bus.STEPS_STREAM, bus.WORKER_CONSUMER)
    assert info.num_ack_pending == 3  # held, not bounced back and forth
    started = time.monotonic()
    await feed.close()
    assert time.monotonic() - started < 3.0
    again = await feed_for(nc, capacity=4)
    got = [await asyncio.wait_for(again.next(), 3) for _ in range(3)]
    assert sorted(m.data for m in got if m is not None) == [b"0", b"0", b"1"]
    # Each went to the stopped feed once, and came back once: nothing kept, lost or
    # bounced (a bounce would count as a delivery each time).
    assert all(m is not None and m.metadata.num_delivered == 2 for m in got)
    await again.close()


async def test_an_idle_feed_asks_again_soon_after_the_server_restarts(
    nats_server: NatsServer, nc: NatsClient
) -> None:
    """A restarted server has forgotten the outstanding request. An idle feed must not
    wait out its expiry: a newcomer's step in the express lane would wait that long."""
    feed = await feed_for(nc, capacity=2, expires_s=6.0)
    await asyncio.sleep(0.2)  # the request is waiting on the server
    nats_server.kill()
    nats_server.start()  # same port and store: the stream and its consumer come back
    deadline = time.monotonic() + 10
    while not nc.is_connected or nc.stats["reconnects"] == 0:
        assert time.monotonic() < deadline, "the client never reconnected"
        await asyncio.sleep(0.05)
    started = time.monotonic()
    await publish(nc, 1)
    msg = await asyncio.wait_for(feed.next(), 10)
    assert msg is not None
    assert time.monotonic() - started < 2.0  # not twice the request's expiry, 12 s
    await msg.ack()
    feed.release()
    await feed.close()


async def test_a_reserve_is_kept_for_offers_until_a_backlog_shows(nc: NatsClient) -> None:
    """Slots kept out of the requests for work that comes another way (a worker's offered
    steps): free for ``take`` while the feed is idle, asked for once a request comes back
    full, and never more in hand than the capacity."""
    await bus.ensure_consumer(
        nc.jetstream(), bus.STEPS_STREAM, bus.worker_consumer_config(30.0, max_deliver=-1)
    )
    feed = PullFeed(nc, bus.STEPS_STREAM, bus.WORKER_CONSUMER, capacity=3, reserve=1)
    await feed.start()
    await asyncio.sleep(0.2)  # the request for two is waiting on the server
    assert feed.take()
    assert not feed.take()  # the other two are owed to the request
    await publish(nc, 4)
    first, second = [await asyncio.wait_for(feed.next(), 2) for _ in range(2)]
    assert first is not None
    assert second is not None
    next_one = asyncio.create_task(feed.next())
    await asyncio.sleep(0.3)
    assert not next_one.done()  # three in hand: the capacity
    feed.release()  # the taken one is done; the backlog asks for every free slot
    third = await asyncio.wait_for(next_one, 2)
    assert third is not None
    assert not feed.take()
    for msg in (first, second, third):
        await msg.ack()
        feed.release()
    fourth = await asyncio.wait_for(feed.next(), 2)
    assert fourth is not None
    assert fourth.data == b"3"
    await fourth.ack()
    feed.release()
    await feed.close()
