"""The fair dispatcher: decides whose waiting step attempt the next free worker runs.

JetStream's queue is first in, first out, so while a backlog waits it must stay short: a
window of attempts no worker has taken yet, what the workers take in
``DISPATCH_WINDOW_S`` (and at least ``DISPATCH_WINDOW``). Everything beyond waits in
Postgres's ``ready_steps``, where order can be chosen. Each round, every orchestrator
replica's dispatcher reads how many attempts JetStream holds undelivered, and the one that
takes the dispatch lock (a transaction-level advisory lock) tops the window up: it reads
the ready queue in groups (``ready_queue``: every row counted, or, for a wide or deep
queue, the owners next in turn, a few index probes a group), lets the fair policy pick
(``fairness.pick``: owners in turn, then keys, then priority; caps respected), takes the
picked rows out and publishes them to JetStream before it commits. Nothing is lost: a
failed publish rolls the rows back into the queue, and a crash after the publish only
publishes them again, which ``Nats-Msg-Id`` drops.

While results free worker slots (a job finished, and its worker is free for another), a
round keeps some of its picks for them instead of publishing them: the orchestrator
answers such a result with one (``hand_out``, owner by owner in turn: ``kept``), and
the worker runs it in the same slot, with no JetStream write, delivery or ack, and no
pull. A kept attempt's row stays in the ready queue, hidden (not due) for a lease: the
write that records the first word from its worker deletes it (``JobChange.claimed``),
and if that word never comes the row is due again and released again. Order is kept as
JetStream's window keeps it: while attempts are kept, JetStream gets only what waiting
pull requests may ask for, nothing kept is handed out (and nothing more kept) while
JetStream holds more than a window's worth of earlier picks, or has held some for longer
than the window's time (a slot handed one does not pull them), and a kept attempt no
slot took within twice the window's time goes back to the queue.

The lock holder also says whether writers should hold their step attempts
(``jobkit.dispatch_gate``): *held* from the round JetStream queues ``DISPATCH_HOLD_AT``
attempts (a backlog, not a busy moment, which goes first in, first out at no cost), or
eligible work is left waiting, until the window is half empty and nothing eligible waits.
A cap is exact across replicas because the count under it and the release that follows
are one decision, under the lock, and a capped job's start reaches the workers only this
way.

A round comes when woken on ``jobs.dispatch.wake`` (a batch that ended steps while the
gate holds: slots may be free; a capped job written), at most every 2 ms, and otherwise
every ``DISPATCH_ROUND_S`` while there is work to decide and every
``DISPATCH_IDLE_ROUND_S`` when there is none, when only JetStream is asked. A full window
costs no Postgres round trip either, but the queue's exact depth, read now and then for
job_api's ``MAX_BACKLOG`` and the metrics: every 100 ms, or less often when counting a
deep queue would take more than 5 % of the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from jobkit import bus, metrics, outbox
from jobkit.db import Conn
from jobkit.dispatch_gate import DispatchGate, Word
from jobkit.logging import get_logger
from jobkit.model import OutboxMessage
from jobkit.offers import DEFAULT_STEP_LEASE_S
from jobkit.sql import queries
from services.orchestrator import fairness
from services.orchestrator.config import DispatchSettings
from services.orchestrator.kept import Kept, KeptAttempts
from services.orchestrator.ready_queue import ReadyQueue

log = get_logger(__name__)

#: Owners are shown in metrics only as one of this many hashed buckets.
USER_BUCKETS = 16
#: The lock holder repeats a held word this often, so writers know it still holds and
#: how deep the queue is.
_REPEAT_HELD_S = 0.1
#: The drain rate is averaged over about this long.
_DRAIN_TIME_CONSTANT_S = 5.0
#: The shortest gap between two rounds.
_MIN_GAP_S = 0.002
#: And the rate workers take attempts at, over about this long.
_TAKE_TIME_CONSTANT_S = 1.0
#: Even with no word that rows were written, the ready queue is read this often (rows a
#: writer held just before its wake-up was lost, scheduled rows coming due).
_READ_QUEUE_AT_LEAST_EVERY_S = 1.0
#: The window lasts the workers this many gaps between rounds, so a round that comes
#: late (a busy event loop, a slow commit) does not leave them waiting for attempts.
_ROUNDS_COVERED = 2
#: But never more than this much of the workers' take: a stall (an event loop blocked, a
#: failover) must not open the window to a backlog's worth of first in, first out.
_LONGEST_COVER_S = 0.25
#: Attempts are kept for what results free in this many times what the window covers:
#: the slots a batch frees come together, and one that finds none kept pulls.
_KEEP_COVERS = 2
#: A kept attempt no freed slot took within this many times as long, and at least this
#: long, goes back to the queue.
_KEPT_COVERS = 2
_KEPT_AT_LEAST_S = 0.05
#: The gap between rounds is averaged over about this long.
_GAP_TIME_CONSTANT_S = 1.0
#: A ready queue this many due attempts deep for each group a read in turn would reach,
#: or deeper, is read by its owners next in turn (``ready_groups_in_turn``): finding a
#: group and reading its first rows costs about what counting 40 rows does, so below this
#: depth counting every row is cheaper.
_DEEP_GROUP = 64
#: Exact counts of a deep queue (for ``MAX_BACKLOG`` and the metrics) take at most this
#: share of the time: 100,000 waiting take 23 ms to count, so once in 0.46 s.
_EXACT_COUNT_SHARE = 0.05


@dataclass(frozen=True, slots=True)
class Round:
    """What one round saw and did."""

    #: Attempts JetStream held undelivered at the round's start.
    pending: int
    #: Attempts released from the ready queue to JetStream.
    released: int
    #: Attempts still due and eligible (under their caps) after the release.
    backlog: int
    #: Whether the ready queue had anything due (eligible or not).
    queued: bool
    #: Attempts due in the ready queue after the release, eligible or not: as last counted
    #: exactly, less what rounds released since (a deep queue is counted now and then).
    waiting: int = 0


@dataclass(frozen=True, slots=True)
class _Queued:
    """What a work queue holds for its workers' consumer: attempts undelivered, how many
    the consumer has delivered (``None`` before any worker made it), and the pull
    requests waiting for more."""

    pending: int
    delivered: int | None
    pulling: int


def window_for(taken_per_s: float, round_gap_s: float, settings: DispatchSettings) -> int:
    """Attempts JetStream may hold undelivered: what the workers take in ``window_s``, or
    in ``_ROUNDS_COVERED`` gaps between rounds if that is longer (up to
    ``_LONGEST_COVER_S``), and at least ``window``. The first bounds, in time, the first in,
    first out ahead of a newly released attempt; the second keeps the workers fed between
    two rounds: on a busy 2-core box rounds came every 35-40 ms, a 30 ms window ran dry
    before the next, and a single user's backlog went at 0.8 of the single queue's rate."""
    return max(settings.window, math.ceil(taken_per_s * covered_for(round_gap_s, settings)))


def covered_for(round_gap_s: float, settings: DispatchSettings) -> float:
    """The time a window lasts the workers (``window_for``)."""
    return max(settings.window_s, min(_ROUNDS_COVERED * round_gap_s, _LONGEST_COVER_S))


class _Average:
    """A value measured over each interval between notes, averaged over about
    ``time_constant_s``: an exponentially weighted mean in which an interval weighs by its
    length, so uneven gaps between notes are followed."""

    def __init__(self, time_constant_s: float) -> None:
        self._time_constant_s = time_constant_s
        self._at: float | None = None
        self.mean = 0.0

    def _interval(self, now: float) -> float | None:
        """The time since the last note (``None`` at the first), and the clock restarted."""
        at, self._at = self._at, now
        return None if at is None else now - at

    def _follow(self, elapsed: float, value: float) -> None:
        self.mean += (1 - math.exp(-elapsed / self._time_constant_s)) * (value - self.mean)


class _Rate(_Average):
    """Events a second."""

    def note(self, events: int | None, now: float) -> None:
        """``events`` happened since the last note; ``None`` (the first note, or one that
        cannot tell) only starts the clock again."""
        elapsed = self._interval(now)
        if events is not None and elapsed is not None:
            self._follow(elapsed, events / max(elapsed, 1e-3))

    @property
    def per_s(self) -> float:
        return self.mean


class _Gap(_Average):
    """The time between notes (an arithmetic mean, not the inverse of a rate: a long gap
    among short ones is what runs a window dry)."""

    def note(self, now: float) -> None:
        elapsed = self._interval(now)
        if elapsed is not None:
            self._follow(elapsed, elapsed)

    @property
    def mean_s(self) -> float:
        return self.mean


def user_bucket(owner: str) -> str:
    """The bounded label an owner is counted under in metrics (never the owner)."""
    digest = hashlib.sha256(owner.encode()).digest()
    return f"{int.from_bytes(digest[:4], 'big') % USER_BUCKETS:02d}"


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        nc: NatsClient,
        js: JetStreamContext,
        gate: DispatchGate,
        settings: DispatchSettings,
        *,
        lease_s: float = DEFAULT_STEP_LEASE_S,
    ) -> None:
        self._pool = pool
        self._nc = nc
        self._js = js
        self._gate = gate
        self._settings = settings
        #: How long a kept attempt's row stays hidden (``STEP_LEASE_S``).
        self._lease_s = lease_s
        #: Attempts released to be handed out in results' answers (``hand_out``); their
        #: rows stay in the queue, hidden.
        self._kept = KeptAttempts()
        #: Slots that results freed a second (what ``hand_out`` was asked for).
        self._freed = _Rate(_TAKE_TIME_CONSTANT_S)
        self._freed_since = 0
        #: Whether kept attempts are handed out (JetStream held few earlier ones at the
        #: last round, and not for long), and since when JetStream has held some.
        self._handing = True
        self._jetstream_held_since: float | None = None
        #: Stopping: nothing is kept any more.
        self._stopping = False
        self._queue = ReadyQueue()
        self._woken = asyncio.Event()
        #: Whether the ready queue may hold rows: set by a wake-up or a round that found
        #: some, and every so often regardless.
        self._rows_maybe = True
        self._queue_read_at = float("-inf")
        self._said_held_at = float("-inf")
        #: Deliveries to workers a second, from the consumer's delivered count.
        self._taken = _Rate(_TAKE_TIME_CONSTANT_S)
        self._delivered: int | None = None
        #: Attempts due in the ready queue, as last counted exactly (less what rounds
        #: released since), when that count was made, and how long it took.
        self._last_waiting = 0
        self._counted_at = float("-inf")
        self._count_took_s = 0.0
        #: Newcomers' first steps waiting in the express lane, as last asked.
        self._express_waiting = 0
        #: Groups and owners the last exact count found.
        self._groups = 0
        self._owners = 0
        #: Attempts released a second.
        self._drained = _Rate(_DRAIN_TIME_CONSTANT_S)
        #: How often rounds come.
        self._round_gap = _Gap(_GAP_TIME_CONSTANT_S)

    async def run(self) -> None:
        """Dispatch rounds forever; a failed round (Postgres or NATS away) is tried again."""
        await self._nc.subscribe(bus.DISPATCH_WAKE_SUBJECT, cb=self._on_wake)
        failing: str | None = None
        while True:
            self._woken.clear()
            busy = False
            try:
                done = await self.round()
                busy = done is not None and (done.queued or done.pending > 0)
                failing = None
            except Exception as exc:
                # Once per outage, not once a round.
                if type(exc).__name__ != failing:
                    failing = type(exc).__name__
                    log.warning("dispatch_round_failed", error=failing)
            # The shortest gap between rounds: wake-ups in it are served by one round.
            await asyncio.sleep(_MIN_GAP_S)
            # Then the next round comes with a wake-up (rows were held, a batch committed:
            # slots may have freed), or after a round (busy) or idle interval at the latest.
            wait_s = self._settings.round_s if busy else self._settings.idle_round_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), max(wait_s - _MIN_GAP_S, 0.0))

    def hand_out(self, slots: int) -> list[OutboxMessage]:
        """Attempts for ``slots`` slots that results just freed, fairest first, as far as
        kept ones go (the rest pull from JetStream). No round trip: each one's row stays
        in the ready queue, hidden for a lease, until its worker's first word deletes it
        (or, if that never comes, the row is due and released again)."""
        self._freed_since += slots
        handed: list[OutboxMessage] = []
        if self._handing and not self._stopping:
            handed = [k.message for k in self._kept.take(slots)]
        if handed:
            metrics.HANDED_OUT.inc(len(handed))
        return handed

    def _keep_target(self) -> int:
        """Attempts to keep for freed slots: what results free in ``_KEEP_COVERS`` times
        the time a window covers (none while fewer than one: steps too long to gain)."""
        if self._stopping:
            return 0
        return int(self._freed.per_s * self._covered_s * _KEEP_COVERS)

    async def _let_go(self, now: float, pulling: int) -> int:
        """Kept attempts no freed slot took. While workers' pull requests wait (free
        slots no result's answer will fill), a window's worth for each (``DISPATCH_WINDOW``:
        a request asks for all of its worker's free slots) goes to JetStream, taken as
        hand-outs are (owner by owner in turn), their rows still hidden (the first word
        from whichever worker runs one deletes it). Those kept longer than twice the time
        the window covers go back to the queue, due again in their places, for the policy
        to pick anew: JetStream's first in, first out stays its window's length. Returns
        how many went to JetStream."""
        wanted = pulling * self._settings.window
        sent = self._kept.take(wanted)
        if sent:
            await self._publish([k.message for k in sent])
        too_old = now - max(_KEPT_COVERS * _KEEP_COVERS * self._covered_s, _KEPT_AT_LEAST_S)
        if stale := self._kept.take_older(too_old):
            await self._pool.execute(queries.unhide_ready, [k.row_id for k in stale])
        return len(sent)

    async def drain(self) -> None:
        """On the way out: what is kept goes back to the queue at once, rather than after
        its rows' lease, for another replica's dispatcher."""
        self._stopping = True
        if kept := self._kept.take_all():
            await self._pool.execute(queries.unhide_ready, [k.row_id for k in kept])

    async def _on_wake(self, _msg: Msg) -> None:
        self._rows_maybe = True
        self._woken.set()

    async def round(self) -> Round | None:
        """One round: top the window up from the ready queue, fairest first, and say
        whether writers should hold. ``None`` when another replica held the lock."""
        loop = asyncio.get_running_loop()
        self._round_gap.note(loop.time())
        pending, pulling = await self._undelivered()
        now = loop.time()
        self._freed.note(self._freed_since, now)
        self._freed_since = 0
        # Kept attempts are handed out only while JetStream holds no more than a window's
        # worth released before them, and has not held some for longer than the window's
        # time: a slot handed one does not pull, so while hand-outs filled every slot that
        # freed, what JetStream held would wait as long as they lasted (the fair chaos
        # backlog saw a light user's first step wait 5 s behind the 3 released as NATS
        # came back). Paused, they let the slots that free pull those first.
        if not pending:
            self._jetstream_held_since = None
        elif self._jetstream_held_since is None:
            self._jetstream_held_since = now
        held_s = 0.0 if self._jetstream_held_since is None else now - self._jetstream_held_since
        self._handing = pending <= self._settings.window and held_s <= self._covered_s
        pending += await self._let_go(now, pulling)
        quiet = now - self._queue_read_at < _READ_QUEUE_AT_LEAST_EVERY_S
        if not self._gate.held and not self._rows_maybe and quiet:
            # Nothing can be waiting (writers hold nothing while the gate is open, and none
            # woke us for a capped job): JetStream alone says whether they should hold.
            done = Round(pending, 0, 0, queued=False)
            await self._say(self._held_after(done))
            metrics.DISPATCH_ROUNDS.labels("open").inc()
            return done
        # While results free slots, what is kept for them is the window, and JetStream
        # gets only what the slots waiting on it may ask for (``DISPATCH_WINDOW`` each
        # request), so that it drains and nothing kept waits behind it. Otherwise
        # JetStream's window is topped up.
        keep_target = self._keep_target()
        # But nothing more is kept while none is handed out: picks kept then would only
        # wait (and go stale, and be picked again behind newer ones), where the ready
        # queue would pick them in turn once JetStream has room.
        keep = max(keep_target - len(self._kept), 0) if self._handing else 0
        if keep_target:
            room = max(pulling * self._settings.window - pending, 0)
        else:
            room = max(self.window - pending, 0)
        if not room and not keep and self._gate.held:
            # The window is full and writers hold: nothing to release, nothing to change,
            # but now and then how deep the queue is (job_api's MAX_BACKLOG reads it).
            if self._exact_count_due(now):
                async with self._pool.acquire() as conn:
                    counting = loop.time()
                    waiting, _ = await self._queue.count(conn)
                    took_s = loop.time() - counting
                self._counted_exactly(waiting, picked=0, at=now, took_s=took_s)
            done = Round(pending, 0, 1, queued=True, waiting=self._last_waiting)
            await self._say(True, done.waiting)
            metrics.DISPATCH_ROUNDS.labels("full").inc()
            return done
        self._rows_maybe = False
        self._queue_read_at = now
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(queries.try_dispatch_lock):
                self._rows_maybe = True  # the holder decides; look again next round
                metrics.DISPATCH_ROUNDS.labels("other_replica").inc()
                return None
            # A wide or deep queue is read by its owners next in turn, a few rows a
            # group: what the round can release comes from them, so the policy picks the
            # same (or says it must see further).
            exact = not self._in_turn_cheaper(room + keep) or self._exact_count_due(now)
            decision = None if exact else await self._queue.decide_in_turn(conn, room + keep)
            deciding = loop.time()
            if decision is None:
                exact = True
                decision = await self._queue.decide_exactly(conn, room + keep)
            decided = loop.time()
            picks = decision.picks
            released, kept = await self._release(conn, picks, keep) if picks else (0, [])
        # Handed out only once committed: a rolled back round's rows are not hidden.
        self._kept.add(kept)
        if exact:
            self._counted_exactly(
                decision.waiting, sum(picks.values()), at=now, took_s=decided - deciding
            )
        else:
            self._last_waiting = max(self._last_waiting - released, 0)
        backlog = max(fairness.eligible(decision.waiting, decision.free) - sum(picks.values()), 0)
        if not decision.whole:
            backlog = max(backlog, 1)  # owners past the view may have work that can go
        done = Round(
            pending,
            released,
            backlog,
            queued=bool(decision.waiting) or not decision.whole,
            waiting=self._last_waiting,
        )
        self._drained.note(released, now)
        self._rows_maybe = done.queued
        await self._say(self._held_after(done), done.waiting)
        metrics.DISPATCH_ROUNDS.labels("released" if released else "idle").inc()
        return done

    async def _undelivered(self) -> tuple[int, int]:
        """Step attempts in JetStream no worker has taken yet, and the workers' pull
        requests waiting for more (a worker's free slots ask in one request)."""
        queued = await self._queued(bus.STEPS_STREAM, bus.WORKER_CONSUMER)
        self._note_taken(queued.delivered)
        return queued.pending, queued.pulling

    async def _express_undelivered(self) -> int:
        """Newcomers' first steps in the express lane no worker has taken yet; if JetStream
        cannot say (a leader election), what it said last: the held word must go out."""
        try:
            queued = await self._queued(bus.EXPRESS_STREAM, bus.WORKER_EXPRESS_CONSUMER)
        except (NatsError, TimeoutError):
            return self._express_waiting
        self._express_waiting = queued.pending
        return queued.pending

    async def _queued(self, stream: str, consumer: str) -> _Queued:
        """What a work queue holds for its workers' consumer."""
        try:
            info = await self._js.consumer_info(stream, consumer)
        except NotFoundError:
            # No worker has ever run (they create the consumer): all the stream holds.
            held = await self._js.stream_info(stream)
            return _Queued(held.state.messages, None, 0)
        delivered = info.delivered.consumer_seq if info.delivered else None
        return _Queued(info.num_pending or 0, delivered, info.num_waiting or 0)

    def _note_taken(self, delivered: int | None) -> None:
        """Follow how fast workers take attempts from JetStream (deliveries a second)."""
        if delivered is None:
            return
        previous, self._delivered = self._delivered, delivered
        # A consumer made again counts from 0: that sample is no news.
        taken = delivered - previous if previous is not None and delivered >= previous else None
        self._taken.note(taken, asyncio.get_running_loop().time())

    @property
    def window(self) -> int:
        return window_for(self._taken.per_s, self._round_gap.mean_s, self._settings)

    @property
    def _covered_s(self) -> float:
        return covered_for(self._round_gap.mean_s, self._settings)

    def _exact_count_due(self, now: float) -> bool:
        """Whether the queue is to be counted exactly now: every ``_REPEAT_HELD_S``, or
        less often if counting takes more than ``_EXACT_COUNT_SHARE`` of the time."""
        every_s = max(_REPEAT_HELD_S, self._count_took_s / _EXACT_COUNT_SHARE)
        return now - self._counted_at >= every_s

    def _in_turn_cheaper(self, room: int) -> bool:
        """Whether reading the owners next in turn costs less than counting every due
        row: as last counted, the rows against the groups of the owners a round reads
        (two reads a lane, its next owners and those from the first)."""
        if not self._owners:
            return False
        reached = min(self._groups, math.ceil(self._groups / self._owners * 2 * max(room, 1)))
        return self._last_waiting >= _DEEP_GROUP * reached

    def _counted_exactly(
        self, waiting: dict[fairness.Group, int], picked: int, *, at: float, took_s: float
    ) -> None:
        """Note an exact count, made in the round begun ``at``, ``picked`` of it released
        since."""
        total = sum(waiting.values())
        self._last_waiting = total - picked
        self._counted_at, self._count_took_s = at, took_s
        self._groups, self._owners = len(waiting), len({g.owner for g in waiting})
        self._observe(waiting)

    async def _release(
        self, conn: Conn, picks: dict[fairness.Group, int], keep: int
    ) -> tuple[int, list[Kept]]:
        """Take the picked attempts out of the ready queue and publish them, before the
        commit: if the publish fails, the transaction rolls back and they wait on; if
        the process dies after it, they are published again, and dropped by JetStream as
        repeats. No outbox row in between: two writes an attempt saved. Up to ``keep`` of
        them are kept for freed slots instead (``hand_out``), their rows hidden: returned,
        with how many were released in all."""
        rows = await self._queue.take(conn, picks, keep=keep, lease_s=self._lease_s)
        live = [r for r in rows if r["live"]]
        published: list[OutboxMessage] = []
        kept: list[Kept] = []
        at = asyncio.get_running_loop().time()
        for r in live:
            message = OutboxMessage(
                r["subject"], r["msg_id"], r["payload"], trace_context=r["trace_context"]
            )
            if r["kept"]:
                kept.append(Kept(message, r["id"], r["owner"], at))
            else:
                published.append(message)
        await self._publish(published)
        now = datetime.now(UTC)
        for r in live:
            metrics.READY_WAIT.labels(user_bucket(r["owner"]), str(r["priority"])).observe(
                (now - r["enqueued_at"]).total_seconds()
            )
        return len(live), kept

    async def _publish(self, messages: list[OutboxMessage]) -> None:
        """Into JetStream, together, each in its publish span; raises unless all stored."""
        await outbox.publish(self._js, ((m, outbox.publish_span(m)) for m in messages))

    def _held_after(self, done: Round) -> bool:
        """Hold once JetStream queues ``hold_at`` attempts (a backlog, not a busy moment:
        below it the common case pays nothing) or eligible work is left waiting; then keep
        to the window, until it is half empty and nothing eligible waits."""
        window = self.window
        if self._gate.held:
            full = done.pending + done.released >= window // 2
        else:
            full = done.pending + done.released >= max(self._settings.hold_at, window)
        return done.backlog > 0 or full

    async def _say(self, held: bool, waiting: int = 0) -> None:
        now = asyncio.get_running_loop().time()
        changed = held != self._gate.held
        if changed or (held and now - self._said_held_at >= _REPEAT_HELD_S):
            # Newcomers take the express lane only while it is held (job_api), and only
            # while none wait in it.
            express = await self._express_undelivered() if held else 0
            word = Word(held, waiting, self._drained.per_s, express)
            await self._nc.publish(bus.DISPATCH_MODE_SUBJECT, word.encode())
            # This replica's own writers follow at once, not a NATS round trip later.
            self._gate.heard(word)
            if held:
                self._said_held_at = now
            if changed:
                log.info("dispatch_held" if held else "dispatch_open")
        metrics.DISPATCH_HELD.set(1 if held else 0)

    @staticmethod
    def _observe(waiting: dict[fairness.Group, int]) -> None:
        depth: dict[tuple[str, str], int] = {}
        for g, count in waiting.items():
            label = (user_bucket(g.owner), str(g.priority))
            depth[label] = depth.get(label, 0) + count
        metrics.READY_WAITING.clear()
        for (bucket, priority), count in depth.items():
            metrics.READY_WAITING.labels(bucket, priority).set(count)
