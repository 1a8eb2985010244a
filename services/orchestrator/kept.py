"""Step attempts a dispatcher keeps for the worker slots that results free (``hand_out``),
handed out owner by owner in turn.

Picks reach the pool round after round, each round's in the fair policy's order. Taken
first in, first out across rounds, a light user's attempt picked now would wait behind
every heavy user's attempt kept in earlier rounds: a pool that drains slower than it was
sized for (results arriving at the other replica, a stall) becomes a first in, first out
queue of its own, and one that goes stale and is picked again goes to its back each time.
Taken in turn by owner (an owner new to the pool joins the end of the turn; within an
owner, in the order picked), it waits for at most one hand-out of each other owner with
attempts kept, as in the ready queue's own turn.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from jobkit.model import OutboxMessage


@dataclass(frozen=True, slots=True)
class Kept:
    """An attempt kept for a freed slot: its row in the ready queue, hidden, its owner,
    and when it was kept (the event loop's clock)."""

    message: OutboxMessage
    row_id: int
    owner: str
    at: float


class KeptAttempts:
    def __init__(self) -> None:
        #: Each owner's kept attempts, oldest first; the owners in their turn's order.
        self._by_owner: dict[str, deque[Kept]] = {}

    def __len__(self) -> int:
        return sum(len(attempts) for attempts in self._by_owner.values())

    def add(self, kept: Iterable[Kept]) -> None:
        for k in kept:
            self._by_owner.setdefault(k.owner, deque()).append(k)

    def take(self, n: int) -> list[Kept]:
        """Up to ``n``, owner by owner in turn; an owner served goes to the end of it."""
        taken: list[Kept] = []
        while self._by_owner and len(taken) < n:
            owner = next(iter(self._by_owner))
            attempts = self._by_owner.pop(owner)
            taken.append(attempts.popleft())
            if attempts:
                self._by_owner[owner] = attempts
        return taken

    def take_older(self, than: float) -> list[Kept]:
        """Those kept before ``than``."""
        older: list[Kept] = []
        for owner, attempts in list(self._by_owner.items()):
            while attempts and attempts[0].at < than:
                older.append(attempts.popleft())
            if not attempts:
                del self._by_owner[owner]
        return older

    def take_all(self) -> list[Kept]:
        every = [k for attempts in self._by_owner.values() for k in attempts]
        self._by_owner.clear()
        return every
