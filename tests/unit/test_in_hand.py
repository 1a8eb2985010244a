"""Batches in hand at once never share a job, and a job's inputs keep their order."""

from __future__ import annotations

import random
import uuid

from services.orchestrator.in_hand import InHand

J, K, L = (uuid.UUID(int=n) for n in (1, 2, 3))

Input = tuple[uuid.UUID | None, int]  # (job, arrival number)


def job_of(item: Input) -> uuid.UUID | None:
    return item[0]


def formed(in_hand: InHand[Input], *arriving: Input) -> list[Input]:
    batch = in_hand.begin()
    for item in arriving:
        in_hand.admit(batch, item)
    return batch


def test_an_input_on_a_job_in_hand_waits_for_that_batch_then_goes_first() -> None:
    in_hand: InHand[Input] = InHand(job_of, batch_size=10)
    first = formed(in_hand, (J, 1), (K, 2))
    jobs = in_hand.start(first)
    second = formed(in_hand, (J, 3), (L, 4), (J, 5))
    assert second == [(L, 4)]
    in_hand.start(second)
    assert in_hand.begin() == []  # J is still in hand
    in_hand.done(jobs)
    assert formed(in_hand, (K, 6)) == [(J, 3), (J, 5), (K, 6)]


def test_a_later_input_stays_behind_a_held_one_after_its_job_is_free() -> None:
    # J's batch ends while the next one is being formed: J's held input has not gone yet,
    # so J's later input must not go ahead of it.
    in_hand: InHand[Input] = InHand(job_of, batch_size=10)
    jobs = in_hand.start(formed(in_hand, (J, 1)))
    batch = formed(in_hand, (J, 2))
    in_hand.done(jobs)
    in_hand.admit(batch, (J, 3))
    assert batch == []
    assert in_hand.begin() == [(J, 2), (J, 3)]


def test_held_inputs_past_the_batch_size_wait_in_order() -> None:
    in_hand: InHand[Input] = InHand(job_of, batch_size=2)
    jobs = in_hand.start(formed(in_hand, (J, 1), (K, 2)))
    assert formed(in_hand, (J, 3), (K, 4), (J, 5)) == []
    in_hand.done(jobs)
    assert in_hand.begin() == [(J, 3), (K, 4)]
    assert in_hand.begin() == [(J, 5)]


def test_an_unreadable_input_holds_no_job() -> None:
    in_hand: InHand[Input] = InHand(job_of, batch_size=10)
    in_hand.start(formed(in_hand, (J, 1), (None, 2)))
    assert formed(in_hand, (None, 3)) == [(None, 3)]


def test_stopping_gives_back_every_held_input() -> None:
    in_hand: InHand[Input] = InHand(job_of, batch_size=10)
    in_hand.start(formed(in_hand, (J, 1)))
    formed(in_hand, (J, 2), (J, 3))
    assert in_hand.holding
    assert in_hand.held() == [(J, 2), (J, 3)]
    assert not in_hand.holding


def test_random_arrivals_two_batches_at_a_time() -> None:
    """Whatever the interleaving: no job in two batches in hand, every input decided
    once, and each job's inputs decided in the order they came."""
    rng = random.Random(7)
    jobs = [uuid.UUID(int=n) for n in range(1, 6)]
    for _ in range(200):
        in_hand: InHand[Input] = InHand(job_of, batch_size=rng.randint(1, 4))
        arrivals = [(rng.choice(jobs), n) for n in range(40)]
        pending = list(arrivals)
        hand: list[tuple[list[Input], frozenset[uuid.UUID]]] = []
        decided: list[Input] = []
        while pending or hand or in_hand.holding:
            if hand and (len(hand) == 2 or rng.random() < 0.4 or not pending):
                batch, batch_jobs = hand.pop(rng.randrange(len(hand)))
                decided += batch
                in_hand.done(batch_jobs)
                continue
            batch = in_hand.begin()
            for _ in range(rng.randint(0, 3)):
                if pending:
                    in_hand.admit(batch, pending.pop(0))
            if batch:
                held_jobs = set().union(*(j for _, j in hand)) if hand else set()
                assert not held_jobs & {job_of(i) for i in batch}
                hand.append((batch, in_hand.start(batch)))
        assert sorted(decided, key=lambda i: i[1]) == arrivals
        for job in jobs:
            assert [n for j, n in decided if j == job] == [n for j, n in arrivals if j == job]
