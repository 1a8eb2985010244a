"""The ready queue as the fair dispatcher reads it: who has step attempts waiting, and
who goes next (``fairness.pick``), for a round with room for a few.

Two ways to read it. Counting every due attempt by group (``ready_groups``) is exact and
costs a read of every row: 10,000 waiting take 10 ms. A queue of a few owners thousands
deep, or of thousands of owners a few deep, is read by its owners next in turn
(``ready_groups_in_turn``): in each lane, the owners after the last one served, as many as
the round can release, their groups each counted up to one more than it can release.
The pick from that view is the whole queue's (``tests/unit/test_fairness.py`` checks it
on random queues), or, when the owners read cannot take every release (their work
capped, or not due yet), it says so and the read goes further. The dispatcher chooses
between the two by what each would cost, and counts exactly now and then regardless.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from jobkit import metrics
from jobkit.db import Conn
from jobkit.sql import queries
from services.orchestrator import fairness

#: A read in turn takes a lane's next owners, as many as the round can release (times the
#: lane's reach); if the pick needs more (their work capped, or not yet due), it reads this
#: many times as many, at most this many times in a round, and then counts exactly.
_IN_TURN_GROWTH = 4
_IN_TURN_READS = 3
#: A lane's reach grows with each read that fell short, up to this, and halves after a
#: round that needed no more: a run of owners that cannot go, ahead in turn, is read
#: past at once in the rounds after the first that met it.
_MOST_REACH = 64


@dataclass(frozen=True, slots=True)
class Decision:
    """What a round read of the ready queue and picked from it."""

    waiting: dict[fairness.Group, int]
    free: dict[tuple[str, str], int]
    picks: dict[fairness.Group, int]
    #: Whether ``waiting`` is every group with attempts due (else the owners next in turn).
    whole: bool


@dataclass(slots=True)
class ReadyQueue:
    """Reads of the ready queue and the picks from them; ``turns`` is whose turn it is,
    carried from round to round."""

    turns: fairness.Turns = field(default_factory=fairness.Turns)
    #: For each lane, how many times the round's room its reads in turn take.
    reach: dict[bool, int] = field(default_factory=lambda: {True: 1, False: 1})

    async def decide_exactly(self, conn: Conn, room: int) -> Decision:
        """Count every due attempt by group, and pick from them all."""
        waiting, limits = await self.count(conn)
        free = await self.free_under_caps(conn, limits)
        picks = fairness.pick(waiting, room, free, self.turns) if room else {}
        return Decision(waiting, free, picks, whole=True)

    async def decide_in_turn(self, conn: Conn, room: int) -> Decision | None:
        """Read each lane's next owners in turn, as many as the round has room for, and
        pick from them; if the pick needs more (owners whose work cannot go: capped, or
        not yet due), read further. ``None`` if that would read too far: count exactly."""
        grew = False
        for _ in range(_IN_TURN_READS):
            owners = {lane: max(room, 1) * reach for lane, reach in self.reach.items()}
            waiting, limits, complete = await self._read_in_turn(conn, owners, bound=room + 1)
            free = await self.free_under_caps(conn, limits)
            try:
                picks = fairness.pick(waiting, room, free, self.turns, complete) if room else {}
            except fairness.OutOfView as short:
                grew = True
                lane = short.urgent
                self.reach[lane] = min(self.reach[lane] * _IN_TURN_GROWTH, _MOST_REACH)
                continue
            if not grew:
                self.reach = {lane: max(reach // 2, 1) for lane, reach in self.reach.items()}
            return Decision(waiting, free, picks, whole=all(complete.values()))
        return None

    @staticmethod
    async def take(
        conn: Conn, picks: dict[fairness.Group, int], *, keep: int = 0, lease_s: float = 0.0
    ) -> list[asyncpg.Record]:
        """Take the picked attempts, each group's oldest due first, out of the queue: the
        rows, each marked ``live`` unless its job has finished or gone. Up to ``keep`` of
        them, the oldest under no cap, stay in the queue hidden for ``lease_s`` (marked
        ``kept``), to be handed out."""
        groups = list(picks.items())
        rows: list[asyncpg.Record] = await conn.fetch(
            queries.release_ready,
            [g.owner for g, _ in groups],
            [g.key for g, _ in groups],
            [g.priority for g, _ in groups],
            [g.capped for g, _ in groups],
            [n for _, n in groups],
            keep,
            lease_s,
        )
        return rows

    @staticmethod
    async def count(
        conn: Conn,
    ) -> tuple[dict[fairness.Group, int], dict[tuple[str, str], int]]:
        """The due attempts by group, counted exactly, and each capped key's limit."""
        rows = await conn.fetch(queries.ready_groups)
        metrics.DISPATCH_QUEUE_READS.labels("exact").inc()
        waiting: dict[fairness.Group, int] = {}
        limits: dict[tuple[str, str], int] = {}
        for r in rows:
            _add_group(r, waiting, limits)
        return waiting, limits

    async def _read_in_turn(
        self, conn: Conn, owners: dict[bool, int], bound: int
    ) -> tuple[dict[fairness.Group, int], dict[tuple[str, str], int], dict[bool, bool]]:
        """For each lane, the groups of its next ``owners[lane]`` owners in turn (after
        its last served, round the end if need be), each counted up to ``bound``; each
        capped key's limit; and whether each lane's view holds all its owners."""
        reads: list[tuple[bool, str, int]] = []
        for urgent in (True, False):
            last = self.turns.last_owner.get(urgent)
            reads.append((urgent, last or "", owners[urgent]))
            if last is not None:
                reads.append((urgent, "", owners[urgent]))  # round the end
        rows = await conn.fetch(
            queries.ready_groups_in_turn,
            [urgent for urgent, _, _ in reads],
            [after for _, after, _ in reads],
            [n for _, _, n in reads],
            bound,
        )
        metrics.DISPATCH_QUEUE_READS.labels("in_turn").inc()
        found: list[list[asyncpg.Record]] = [[] for _ in reads]
        for r in rows:
            found[r["read"] - 1].append(r)
        waiting: dict[fairness.Group, int] = {}
        limits: dict[tuple[str, str], int] = {}
        complete: dict[bool, bool] = {}
        for urgent in (True, False):
            mine = [i for i, read in enumerate(reads) if read[0] == urgent]
            last = self.turns.last_owner.get(urgent)
            in_order = [_owners_in_order(found[i]) for i in mine]
            seen, complete[urgent] = fairness.in_view(
                in_order[0], in_order[1] if len(in_order) > 1 else [], last, owners[urgent]
            )
            for i in mine:
                for r in found[i]:
                    if r["owner"] in seen and r["waiting"]:
                        _add_group(r, waiting, limits)
        return waiting, limits, complete

    @staticmethod
    async def free_under_caps(
        conn: Conn, limits: dict[tuple[str, str], int]
    ) -> dict[tuple[str, str], int]:
        """For each capped key with a start waiting: how many more of its jobs may start
        now (its limit less its jobs released and unfinished)."""
        if not limits:
            return {}
        keys = sorted(limits)
        rows = await conn.fetch(
            queries.running_under_keys, [o for o, _ in keys], [k for _, k in keys]
        )
        running = {(r["owner"], r["concurrency_key"]): r["running"] for r in rows}
        return {key: limits[key] - running.get(key, 0) for key in keys}


def _add_group(
    row: asyncpg.Record,
    waiting: dict[fairness.Group, int],
    limits: dict[tuple[str, str], int],
) -> None:
    """Note a group read from the ready queue: its count, and a capped key's limit (the
    smallest its starts read carry). When the jobs under one key carry different limits,
    a read that sees only some of its groups (one lane's, or a deep group's first rows)
    may count a larger one than an exact count would; no start is ever released past the
    limit it carries itself."""
    group = fairness.Group(row["owner"], row["concurrency_key"], row["priority"], row["capped"])
    waiting[group] = row["waiting"]
    if group.capped:
        key = (group.owner, group.key)
        limits[key] = min(limits.get(key, row["concurrency_limit"]), row["concurrency_limit"])


def _owners_in_order(rows: list[asyncpg.Record]) -> list[str]:
    """The owners of a read's groups, once each, in the order read."""
    return list(dict.fromkeys(r["owner"] for r in rows))
