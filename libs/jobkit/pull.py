"""Continuous pull from a JetStream consumer, sized to the free slots of the puller.

``PullSubscription.fetch`` does not fit a worker with many slots: ``fetch(1)`` per slot
costs a request round trip per message (a backlog drains at a tenth of what the server
can deliver), and ``fetch(n)`` holds the messages it has until the batch is full or its
timeout passes (an idle worker would sit on a step for that long).

``PullFeed`` keeps one pull request outstanding for as many messages as there are free
slots, and hands each message over the moment it arrives. When the request is filled or
expires it asks again for what is free then. Only one request is outstanding at a time, so
every delivery is counted against it exactly.

A feed with a ``reserve`` leaves that many free slots out of its requests, for work that
comes another way (a worker's offered steps, ``take``), unless its last request came back
full: then a backlog waits in the stream, and every free slot asks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from jobkit.logging import get_logger

log = get_logger(__name__)

_HEARTBEAT = "100"
#: How often an idle feed looks for a reconnect that lost its request.
_RECHECK_S = 0.25


class PullFeed:
    def __init__(
        self,
        nc: NatsClient,
        stream: str,
        consumer: str,
        *,
        capacity: int,
        expires_s: float = 2.0,
        reserve: int = 0,
    ) -> None:
        self._nc = nc
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._capacity = capacity
        self._expires_s = expires_s
        self._reserve = reserve
        #: The last request was filled: more may be waiting, so the reserve asks too.
        self._backlog = False
        self._inbox = nc.new_inbox()
        self._ready: asyncio.Queue[Msg | None] = asyncio.Queue()
        self._changed = asyncio.Event()
        #: Messages handed over and not yet released: the slots in use.
        self._taken = 0
        #: The outstanding request: its reply subject and how many messages it still owes.
        self._request: str | None = None
        self._owed = 0
        self._serial = 0
        self._closed = False
        self._refused = False
        #: Messages to give back once the outstanding request is over (see ``close``).
        self._held: list[Msg] = []
        self._pump: asyncio.Task[None] | None = None
        #: The client's reconnects when the outstanding request was made.
        self._reconnects = 0

    async def start(self) -> None:
        self._subscription = await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_message)
        self._pump = asyncio.get_running_loop().create_task(self._request_forever())

    async def next(self) -> Msg | None:
        """The next message, once one arrives; ``None`` after ``close``."""
        return await self._ready.get()

    def take(self) -> bool:
        """Take a free slot for work that came another way, if one is neither in use nor
        owed to the outstanding request; ``release`` it as a message's."""
        owed = self._owed if self._request is not None else 0
        if self._closed or self._taken + owed >= self._capacity:
            return False
        self._taken += 1
        return True

    def release(self) -> None:
        """A message handed over is done with (acked, nakked or abandoned): its slot is free."""
        self._taken -= 1
        self._changed.set()

    def stop(self) -> None:
        """Stop asking: ``next`` returns ``None`` once the messages already here are taken;
        messages still arriving for the last request are given back by ``close``."""
        if not self._closed:
            self._closed = True
            self._changed.set()
            self._ready.put_nowait(None)

    async def close(self) -> None:
        """``stop``, wait for the outstanding request to end, and drop the subscription.

        A pull request cannot be withdrawn: while it is on the server it takes messages,
        and delivered into an inbox nobody reads, a message would wait out its whole ack
        wait. A message given back (``nak``) meanwhile would come straight back to the
        same request, again and again, each time counted as a delivery. So what arrives
        now, and what the owner gives back, is held until the request is filled or expires
        (at most ``expires_s``), and only then given back, once, for other pullers.
        """
        self.stop()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._expires_s + 0.5
        while self._request is not None and (left := deadline - loop.time()) > 0:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        self._request = None
        held, self._held = self._held, []
        for msg in held:
            with contextlib.suppress(Exception):
                await msg.nak()
        with contextlib.suppress(Exception):
            await self._subscription.unsubscribe()

    async def give_back(self, msg: Msg) -> None:
        """Return a message handed over, for another puller to take at once (``nak``);
        after ``stop`` it is held until this feed's last request is over."""
        if self._closed and self._request is not None:
            self._held.append(msg)
        else:
            await msg.nak()

    async def _request_forever(self) -> None:
        loop = asyncio.get_running_loop()
        asked_at = loop.time()
        while not self._closed:
            free = self._capacity - self._taken
            if not self._backlog and free > self._reserve:
                free -= self._reserve
            if self._request is None and free > 0:
                if self._refused:
                    # The server ended the last request with an error: do not spin on it.
                    self._refused = False
                    await asyncio.sleep(0.5)
                self._serial += 1
                self._request, self._owed = f"{self._inbox}.{self._serial}", free
                try:
                    await self._nc.publish(
                        self._next_subject,
                        json.dumps(
                            {"batch": free, "expires": int(self._expires_s * 1_000_000_000)}
                        ).encode(),
                        reply=self._request,
                    )
                except Exception as exc:
                    log.warning("pull_request_failed", error=type(exc).__name__)
                    self._request = None
                    await asyncio.sleep(0.5)
                    continue
                asked_at = loop.time()
                self._reconnects = self._nc.stats["reconnects"]
            self._changed.clear()
            # Woken by a delivery, a release or the request's end, and every so often to
            # look for a reconnect: a restarted server has forgotten the request, and an
            # idle feed (the express lane's) would otherwise wait out its expiry while
            # steps queue for it. A request never answered otherwise is given up after it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), _RECHECK_S)
            if self._request is not None and (
                self._nc.stats["reconnects"] != self._reconnects
                or loop.time() - asked_at > self._expires_s * 2
            ):
                self._request = None

    async def _on_message(self, msg: Msg) -> None:
        status = msg.headers.get("Status") if msg.headers else None
        if status is not None:
            # 404/408: the request ended unfilled (nothing more, or it expired); 409: the
            # server refused or ended it (e.g. consumer deleted). Either way, ask again.
            if status != _HEARTBEAT and msg.subject == self._request:
                self._backlog = False
                if status not in ("404", "408"):
                    log.warning("pull_request_refused", status=status)
                    self._refused = True
                self._request = None
                self._changed.set()
            return
        self._owed -= 1
        if self._owed <= 0:
            self._request = None
            self._backlog = True
        self._changed.set()
        if self._closed:
            self._held.append(msg)
            return
        self._taken += 1
        self._ready.put_nowait(msg)
