"""Who runs next when workers are saturated: the fair policy, as a pure function.

Waiting step attempts are counted in groups (``Group``): an owner, a concurrency key
(``""`` for none), a priority, and whether the group starts capped jobs. ``pick`` chooses
which groups the next ``n`` releases come from:

1. **Owners take turns.** Round-robin over the owners with work waiting, from the one
   after the last served: deficit round-robin with a unit cost and an equal quantum, so a
   backlog of thousands earns its owner one release a turn, as does a single job. An owner
   alone is served every time: nothing caps a share while others are idle.
2. **Within an owner, its highest priority first,** and its keys take turns at that
   priority. Priority orders one owner's work, not one owner against another: everybody
   would mark their work 8.
3. **Priority 9 is urgent** and goes ahead of every owner's turn, the owners with urgent
   work taking turns among themselves; but while other work waits, at most every other
   release is urgent, so marking everything 9 cannot starve anybody.
4. **A cap** (``free``: releases left under a key's concurrency limit) is never exceeded:
   a capped group with no room is passed over, and its owner's turn goes to its other
   work, or to the next owner.

``Turns`` is the memory between calls (whose turn it is); the dispatcher keeps one.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

URGENT = 9


@dataclass(frozen=True, slots=True)
class Group:
    owner: str
    key: str
    priority: int
    #: Starts of jobs with a concurrency limit: counted against ``free``.
    capped: bool = False


@dataclass(slots=True)
class Turns:
    """Whose turn it is: the last owner served in each lane (urgent, not), each owner's
    last key in each lane, and whether the last release was urgent."""

    last_owner: dict[bool, str] = field(default_factory=dict)
    last_key: dict[str, str] = field(default_factory=dict)
    urgent_last: bool = False
    #: ``last_key`` of the urgent lane: the lanes alternate, and one memory for both
    #: would send each lane back to the same key every time.
    last_urgent_key: dict[str, str] = field(default_factory=dict)

    def keys(self, urgent: bool) -> dict[str, str]:
        return self.last_urgent_key if urgent else self.last_key


def pick(
    waiting: Mapping[Group, int],
    n: int,
    free: Mapping[tuple[str, str], int],
    turns: Turns,
    complete: Mapping[bool, bool] | None = None,
) -> dict[Group, int]:
    """How many of the next ``n`` releases come from each group (at most ``waiting[g]``),
    updating ``turns``. ``free``: for each capped (owner, key), how many more of its jobs
    may start.

    ``complete``: for each lane (urgent or not), whether ``waiting`` holds every owner with
    work in it (the default), or only those next in turn: the first few after the lane's
    last owner served, in order, with all their groups. Then a pick that would need the
    owner after those raises ``OutOfView`` and changes nothing: the caller reads further
    and asks again. What it returns is what the whole queue would have given."""
    queue = _Queue(waiting, free, turns, complete or {})
    taken: dict[Group, int] = {}
    served_owner: dict[bool, str] = {}
    served_key: dict[bool, dict[str, str]] = {True: {}, False: {}}
    urgent_last = turns.urgent_last
    for _ in range(n):
        # The lanes alternate while both have work: the other lane is looked at only
        # when this one has none (so a view need not reach into it).
        urgent = not urgent_last
        owner = queue.peek(urgent)
        if owner is None:
            urgent = not urgent
            owner = queue.peek(urgent)
            if owner is None:
                break
        keys = served_key[urgent]
        group = queue.next_group(owner, urgent, keys.get(owner, turns.keys(urgent).get(owner)))
        queue.take(group, urgent)
        taken[group] = taken.get(group, 0) + 1
        served_owner[urgent] = owner
        keys[owner] = group.key
        urgent_last = urgent
    turns.last_owner.update(served_owner)
    for urgent, keys in served_key.items():
        turns.keys(urgent).update(keys)
    turns.urgent_last = urgent_last
    if all((complete or {}).get(urgent, True) for urgent in (True, False)):
        # Forget owners with nothing waiting, so the memory stays the size of the queue.
        present = {g.owner for g in waiting}
        for memory in (turns.last_key, turns.last_urgent_key):
            for gone in memory.keys() - present:
                del memory[gone]
    return taken


def in_view(
    after_last: Sequence[str], from_first: Sequence[str], last: str | None, owners: int
) -> tuple[set[str], bool]:
    """The owners a lane's view holds, and whether they are all the lane's, from two reads
    of its owners in order, at most ``owners`` each: those after ``last`` (the lane's last
    owner served; from the first when ``None``), and those from the first (unused then).
    The view is the lane's turn order from ``last`` on, without a gap: past a full first
    read, the second one's owners would leave one."""
    if last is None or len(after_last) >= owners:
        return set(after_last), len(after_last) < owners
    round_the_end = {owner for owner in from_first if owner <= last}
    # Complete once the second read ran out, or reached the last owner served.
    complete = len(from_first) < owners or from_first[-1] >= last
    return set(after_last) | round_the_end, complete


def eligible(waiting: Mapping[Group, int], free: Mapping[tuple[str, str], int]) -> int:
    """How many waiting attempts could be released now (their caps allow): the backlog
    that keeps the gate held."""
    room = dict(free)
    total = 0
    for g, count in waiting.items():
        if g.capped:
            count = min(count, max(room.get((g.owner, g.key), 0), 0))
            room[(g.owner, g.key)] = room.get((g.owner, g.key), 0) - count
        total += count
    return total


class OutOfView(Exception):
    """A pick needed an owner past those read for a lane: read further and pick again."""

    def __init__(self, urgent: bool) -> None:
        super().__init__(f"more owners needed in the {'urgent' if urgent else 'normal'} lane")
        self.urgent = urgent


class _Queue:
    """What is left to release in one ``pick``, indexed by owner and lane."""

    def __init__(
        self,
        waiting: Mapping[Group, int],
        free: Mapping[tuple[str, str], int],
        turns: Turns,
        complete: Mapping[bool, bool],
    ) -> None:
        self.left = {g: count for g, count in waiting.items() if count > 0}
        self.room = dict(free)
        self.by_owner: dict[str, list[Group]] = {}
        in_lane: dict[bool, set[str]] = {True: set(), False: set()}
        for g in self.left:
            self.by_owner.setdefault(g.owner, []).append(g)
            in_lane[_lane(g)].add(g.owner)
        self.rings = {
            urgent: _Ring(
                in_lane[urgent], turns.last_owner.get(urgent), complete.get(urgent, True), urgent
            )
            for urgent in (True, False)
        }

    def usable(self, owner: str, urgent: bool) -> list[Group]:
        return [
            g
            for g in self.by_owner.get(owner, ())
            if g in self.left
            and _lane(g) == urgent
            and (not g.capped or self.room.get((g.owner, g.key), 0) > 0)
        ]

    def peek(self, urgent: bool) -> str | None:
        """The owner whose turn is next in a lane; ``None`` when nobody in it can go."""
        return self.rings[urgent].peek(partial(self.has_work, urgent=urgent))

    def has_work(self, owner: str, *, urgent: bool) -> bool:
        return bool(self.usable(owner, urgent))

    def next_group(self, owner: str, urgent: bool, last_key: str | None) -> Group:
        """The owner's next group: its highest priority, then the key after its last one
        (a key's uncapped work before its capped starts)."""
        mine = self.usable(owner, urgent)
        top = max(g.priority for g in mine)
        at_top: dict[str, Group] = {}
        for g in sorted(mine, key=lambda g: g.capped):
            if g.priority == top:
                at_top.setdefault(g.key, g)
        return at_top[_in_turn(at_top, last_key)[0]]

    def take(self, group: Group, urgent: bool) -> None:
        """One release from ``group``, its owner's turn in the lane served."""
        self.left[group] -= 1
        if self.left[group] == 0:
            del self.left[group]
        if group.capped:
            self.room[(group.owner, group.key)] -= 1
        self.rings[urgent].served()


def _lane(group: Group) -> bool:
    """Whether a group is urgent work."""
    return group.priority >= URGENT


def _in_turn(names: Iterable[str], last: str | None) -> list[str]:
    """``names`` in turn order: sorted, from the one after ``last``, round the end."""
    ordered = sorted(names)
    start = bisect.bisect_right(ordered, last) if last is not None else 0
    return ordered[start:] + ordered[:start]


class _Ring:
    """Owners in turn order, the one after the last served first. ``complete``: these are
    all the lane's owners, so turns go round; otherwise only the first few in turn are
    known, and needing one past them is ``OutOfView``."""

    def __init__(
        self, names: Iterable[str], last: str | None, complete: bool, urgent: bool
    ) -> None:
        self._turn = deque(_in_turn(names, last))
        self._complete = complete
        self._urgent = urgent

    def peek(self, can_go: Callable[[str], bool]) -> str | None:
        turn = self._turn
        # An owner that cannot go stays so for the rest of the pick (what is left and
        # the caps' room only shrink): dropped for good.
        while turn and not can_go(turn[0]):
            turn.popleft()
        if turn:
            return turn[0]
        if self._complete:
            return None
        raise OutOfView(self._urgent)

    def served(self) -> None:
        owner = self._turn.popleft()
        if self._complete:
            self._turn.append(owner)
