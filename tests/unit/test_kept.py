"""The pool of attempts a dispatcher keeps for freed slots: handed out owner by owner in
turn, each owner's in the order picked."""

from __future__ import annotations

from jobkit.model import OutboxMessage
from services.orchestrator.kept import Kept, KeptAttempts


def kept(owner: str, n: int, at: float = 0.0) -> Kept:
    return Kept(OutboxMessage("jobs.steps.noop.prepare", f"{owner}-{n}", b""), n, owner, at)


def names(taken: list[Kept]) -> list[str]:
    return [k.message.msg_id for k in taken]


def test_owners_take_turns_each_in_the_order_picked() -> None:
    pool = KeptAttempts()
    pool.add([kept("heavy", n) for n in range(4)])
    pool.add([kept("light", 0), kept("other", 0)])
    assert len(pool) == 6
    assert names(pool.take(4)) == ["heavy-0", "light-0", "other-0", "heavy-1"]
    assert names(pool.take(10)) == ["heavy-2", "heavy-3"]
    assert len(pool) == 0
    assert pool.take(1) == []


def test_an_owner_new_to_the_pool_joins_the_end_of_the_turn() -> None:
    pool = KeptAttempts()
    pool.add([kept("a", 0), kept("a", 1), kept("b", 0), kept("b", 1)])
    assert names(pool.take(1)) == ["a-0"]
    pool.add([kept("c", 0)])
    assert names(pool.take(4)) == ["b-0", "a-1", "c-0", "b-1"]


def test_those_kept_too_long_are_taken_out_whoever_owns_them() -> None:
    pool = KeptAttempts()
    pool.add([kept("a", 0, at=1.0), kept("a", 1, at=3.0), kept("b", 0, at=2.0)])
    assert sorted(names(pool.take_older(2.5))) == ["a-0", "b-0"]
    assert len(pool) == 1
    assert names(pool.take_all()) == ["a-1"]
    assert len(pool) == 0
    assert pool.take_older(10.0) == []
