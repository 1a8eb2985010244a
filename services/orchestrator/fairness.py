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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
) -> dict[Group, int]:
    """How many of the next ``n`` releases come from each group (at most ``waiting[g]``),
    updating ``turns``. ``free``: for each capped (owner, key), how many more of its jobs
    may start."""
    queue = _Queue(waiting, free)
    taken: dict[Group, int] = {}
    for _ in range(n):
        lanes = [urgent for urgent in (True, False) if queue.any_in(urgent)]
        if not lanes:
            break
        urgent = lanes[0] if len(lanes) == 1 else not turns.urgent_last
        owner = queue.owners[urgent].next_after(
            turns.last_owner.get(urgent), partial(queue.has_work, urgent=urgent)
        )
        assert owner is not None  # the lane has work
        group = queue.next_group(owner, urgent, turns.keys(urgent).get(owner))
        queue.take(group)
        taken[group] = taken.get(group, 0) + 1
        turns.last_owner[urgent] = owner
        turns.keys(urgent)[owner] = group.key
        turns.urgent_last = urgent
    # Forget owners with nothing waiting, so the memory stays the size of the queue.
    present = {g.owner for g in waiting}
    for keys in (turns.last_key, turns.last_urgent_key):
        for gone in keys.keys() - present:
            del keys[gone]
    return taken


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


class _Queue:
    """What is left to release in one ``pick``, indexed by owner and lane."""

    def __init__(self, waiting: Mapping[Group, int], free: Mapping[tuple[str, str], int]) -> None:
        self.left = {g: count for g, count in waiting.items() if count > 0}
        self.room = dict(free)
        self.by_owner: dict[str, list[Group]] = {}
        for g in self.left:
            self.by_owner.setdefault(g.owner, []).append(g)
        self.owners = {
            urgent: _Ring(g.owner for g in self.left if _lane(g) == urgent)
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

    def has_work(self, owner: str, *, urgent: bool) -> bool:
        return bool(self.usable(owner, urgent))

    def any_in(self, urgent: bool) -> bool:
        return any(self.usable(owner, urgent) for owner in self.owners[urgent])

    def next_group(self, owner: str, urgent: bool, last_key: str | None) -> Group:
        """The owner's next group: its highest priority, then the key after its last one
        (a key's uncapped work before its capped starts)."""
        mine = self.usable(owner, urgent)
        top = max(g.priority for g in mine)
        at_top: dict[str, Group] = {}
        for g in sorted(mine, key=lambda g: g.capped):
            if g.priority == top:
                at_top.setdefault(g.key, g)
        key = _Ring(at_top).next_after(last_key, lambda _: True)
        assert key is not None
        return at_top[key]

    def take(self, group: Group) -> None:
        self.left[group] -= 1
        if self.left[group] == 0:
            del self.left[group]
        if group.capped:
            self.room[(group.owner, group.key)] -= 1


def _lane(group: Group) -> bool:
    """Whether a group is urgent work."""
    return group.priority >= URGENT


class _Ring:
    """Names in a fixed order, served round-robin from the one after the last served."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names: Sequence[str] = sorted(set(names))

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def next_after(self, last: str | None, ok: Callable[[str], bool]) -> str | None:
        names = self._names
        start = bisect.bisect_right(names, last) if last is not None else 0
        for i in range(len(names)):
            name = names[(start + i) % len(names)]
            if ok(name):
                return name
        return None
