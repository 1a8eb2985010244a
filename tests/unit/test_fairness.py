"""The dispatcher's fair policy: owners take turns, priority orders an owner's own work,
priority 9 goes ahead without starving anybody, and caps are never exceeded."""

from __future__ import annotations

import copy
import random
from collections import Counter
from collections.abc import Mapping

import pytest

from services.orchestrator.fairness import URGENT, Group, OutOfView, Turns, eligible, in_view, pick

NO_CAPS: dict[tuple[str, str], int] = {}


def g(owner: str, key: str = "", priority: int = 5, *, capped: bool = False) -> Group:
    return Group(owner, key, priority, capped)


def by_owner(taken: Mapping[Group, int]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for group, count in taken.items():
        counts[group.owner] += count
    return dict(counts)


def one_at_a_time(
    waiting: Mapping[Group, int],
    releases: int,
    free: Mapping[tuple[str, str], int] = NO_CAPS,
    turns: Turns | None = None,
) -> list[Group]:
    """``releases`` successive ``pick(n=1)`` calls, as a dispatcher makes them: after each,
    the released attempt leaves ``waiting`` and, if capped, uses up a place in ``free``.
    The groups released, in order."""
    waiting = dict(waiting)
    free = dict(free)
    turns = Turns() if turns is None else turns
    order: list[Group] = []
    for _ in range(releases):
        taken = pick(waiting, 1, free, turns)
        assert sum(taken.values()) <= 1
        for group in taken:
            order.append(group)
            waiting[group] -= 1
            if waiting[group] == 0:
                del waiting[group]
            if group.capped:
                free[(group.owner, group.key)] -= 1
    return order


def remainder(waiting: Mapping[Group, int], taken: Mapping[Group, int]) -> dict[Group, int]:
    left = {group: count - taken.get(group, 0) for group, count in waiting.items()}
    return {group: count for group, count in left.items() if count > 0}


def room_after(
    free: Mapping[tuple[str, str], int], taken: Mapping[Group, int]
) -> dict[tuple[str, str], int]:
    room = dict(free)
    for group, count in taken.items():
        if group.capped:
            room[(group.owner, group.key)] = room.get((group.owner, group.key), 0) - count
    return room


def releasable(waiting: Mapping[Group, int], free: Mapping[tuple[str, str], int]) -> int:
    """How many could go now, counted per cap rather than per group: every uncapped
    attempt, and for each capped (owner, key) its backlog up to its room."""
    uncapped = sum(count for group, count in waiting.items() if not group.capped and count > 0)
    capped: Counter[tuple[str, str]] = Counter()
    for group, count in waiting.items():
        if group.capped and count > 0:
            capped[(group.owner, group.key)] += count
    return uncapped + sum(min(backlog, max(free.get(k, 0), 0)) for k, backlog in capped.items())


def can_go(group: Group, left: Mapping[Group, int], room: Mapping[tuple[str, str], int]) -> bool:
    return left.get(group, 0) > 0 and (
        not group.capped or room.get((group.owner, group.key), 0) > 0
    )


# 1. Owners take turns.


def test_owners_take_turns_one_release_each_whatever_their_backlog() -> None:
    waiting = {g("amy"): 900, g("bob"): 10, g("cat"): 2}
    order = one_at_a_time(waiting, 6)
    assert [group.owner for group in order] == ["amy", "bob", "cat", "amy", "bob", "cat"]
    assert pick(waiting, 6, NO_CAPS, Turns()) == {g("amy"): 2, g("bob"): 2, g("cat"): 2}


def test_an_owner_that_runs_out_drops_out_of_the_rotation() -> None:
    waiting = {g("amy"): 10, g("bob"): 1, g("cat"): 10}
    assert by_owner(pick(waiting, 7, NO_CAPS, Turns())) == {"amy": 3, "bob": 1, "cat": 3}


@pytest.mark.parametrize(
    ("heavy", "light"), [("amy", "bob"), ("bob", "amy"), ("zed", "amy"), ("amy", "zed")]
)
def test_a_light_user_is_not_stuck_behind_a_heavy_one(heavy: str, light: str) -> None:
    waiting = {g(heavy): 5000, g(light): 3}
    order = one_at_a_time(waiting, 6)
    assert [group.owner for group in order].count(light) == 3
    assert [group.owner for group in order].count(heavy) == 3


def test_a_heavy_user_spread_over_many_keys_still_gets_one_release_a_turn() -> None:
    waiting = {g("amy", f"k{i}"): 500 for i in range(10)} | {g("bob"): 3}
    order = one_at_a_time(waiting, 6)
    assert [group.owner for group in order].count("bob") == 3


def test_a_user_arriving_after_a_long_run_is_served_within_one_turn() -> None:
    turns = Turns()
    served_amy = one_at_a_time({g("amy"): 5000}, 100, turns=turns)
    assert len(served_amy) == 100
    order = one_at_a_time({g("amy"): 4900, g("bob"): 3}, 6, turns=turns)
    # Earlier service earns no debt and no credit: from now on they alternate.
    owners = [group.owner for group in order]
    assert owners.count("bob") == 3
    assert owners.count("amy") == 3
    assert "bob" in owners[:2]


def test_an_owner_alone_gets_every_release() -> None:
    assert pick({g("amy"): 100}, 40, NO_CAPS, Turns()) == {g("amy"): 40}
    # Also when the others' work is all capped out: they are not waiting on anything
    # that could go.
    waiting = {g("amy"): 100, g("bob", "k", capped=True): 50}
    assert pick(waiting, 40, {("bob", "k"): 0}, Turns()) == {g("amy"): 40}


def test_the_rotation_starts_after_the_last_owner_served() -> None:
    waiting = {g("amy"): 10, g("bob"): 10, g("cat"): 10}
    turns = Turns(last_owner={False: "bob"})
    assert [x.owner for x in one_at_a_time(waiting, 4, turns=turns)] == [
        "cat",
        "amy",
        "bob",
        "cat",
    ]


def test_the_rotation_survives_the_last_served_owner_leaving() -> None:
    # "bob" was served last and has nothing left: the next after him is still "cat".
    waiting = {g("amy"): 10, g("cat"): 10, g("dan"): 10}
    turns = Turns(last_owner={False: "bob"})
    assert [x.owner for x in one_at_a_time(waiting, 3, turns=turns)] == ["cat", "dan", "amy"]


# 2. Within an owner: its highest priority first, its keys taking turns.


def test_an_owners_highest_priority_goes_first() -> None:
    waiting = {g("amy", priority=3): 10, g("amy", priority=7): 4, g("amy", priority=5): 10}
    order = one_at_a_time(waiting, 7)
    assert [x.priority for x in order] == [7, 7, 7, 7, 5, 5, 5]


def test_priority_orders_an_owners_own_work_not_one_owner_against_another() -> None:
    waiting = {g("amy", priority=8): 10, g("bob", priority=1): 10}
    assert by_owner(pick(waiting, 6, NO_CAPS, Turns())) == {"amy": 3, "bob": 3}


def test_an_owners_keys_take_turns_at_its_top_priority() -> None:
    waiting = {
        g("amy", "x"): 50,
        g("amy", "y"): 2,
        g("amy", "z"): 50,
        g("amy", "w", priority=3): 50,
    }
    order = one_at_a_time(waiting, 7)
    assert [x.key for x in order] == ["x", "y", "z", "x", "y", "z", "x"]


def test_an_owners_keys_rotation_is_kept_between_its_turns() -> None:
    waiting = {g("amy", "x"): 50, g("amy", "y"): 50, g("bob"): 50}
    order = one_at_a_time(waiting, 6)
    assert [(x.owner, x.key) for x in order] == [
        ("amy", "x"),
        ("bob", ""),
        ("amy", "y"),
        ("bob", ""),
        ("amy", "x"),
        ("bob", ""),
    ]


def test_a_keys_uncapped_work_goes_before_its_capped_starts() -> None:
    waiting = {g("amy", "k"): 2, g("amy", "k", capped=True): 5}
    order = one_at_a_time(waiting, 4, free={("amy", "k"): 10})
    assert [x.capped for x in order] == [False, False, True, True]


# 3. Priority 9 is urgent.


def test_urgent_work_overtakes_another_owners_backlog() -> None:
    # bob has been served alone for a while; amy's one urgent job arrives behind his 200.
    turns = Turns()
    first = one_at_a_time({g("bob"): 203}, 3, turns=turns)
    assert {x.owner for x in first} == {"bob"}
    waiting = {g("bob"): 200, g("amy", priority=URGENT): 1}
    assert pick(waiting, 1, NO_CAPS, turns) == {g("amy", priority=URGENT): 1}


def test_an_urgent_job_goes_ahead_of_every_owners_turn() -> None:
    waiting = {g("bob"): 200, g("cat"): 200, g("dan", priority=URGENT): 1}
    turns = Turns(last_owner={False: "bob"})  # cat's turn next
    assert pick(waiting, 1, NO_CAPS, turns) == {g("dan", priority=URGENT): 1}


def test_urgent_and_normal_releases_alternate_while_both_wait() -> None:
    waiting = {g("amy", priority=URGENT): 100, g("bob"): 100}
    order = one_at_a_time(waiting, 8)
    assert [x.priority for x in order] == [9, 5, 9, 5, 9, 5, 9, 5]
    assert pick(waiting, 9, NO_CAPS, Turns()) == {
        g("amy", priority=URGENT): 5,
        g("bob"): 4,
    }


def test_after_an_urgent_release_the_next_goes_to_normal_work() -> None:
    waiting = {g("amy", priority=URGENT): 100, g("bob"): 100}
    order = one_at_a_time(waiting, 4, turns=Turns(urgent_last=True))
    assert [x.priority for x in order] == [5, 9, 5, 9]


def test_alternation_applies_within_one_owner_too() -> None:
    waiting = {g("amy", priority=URGENT): 100, g("amy", priority=5): 100}
    assert pick(waiting, 6, NO_CAPS, Turns()) == {
        g("amy", priority=URGENT): 3,
        g("amy", priority=5): 3,
    }


def test_marking_everything_urgent_cannot_starve_anybody() -> None:
    waiting = {g("amy", f"k{i}", priority=URGENT): 1000 for i in range(5)} | {g("bob"): 5}
    taken = pick(waiting, 10, NO_CAPS, Turns())
    assert taken.get(g("bob"), 0) == 5


def test_urgent_work_goes_unalternated_when_nothing_else_can_go() -> None:
    waiting = {g("amy", priority=URGENT): 100, g("bob"): 2}
    assert pick(waiting, 10, NO_CAPS, Turns()) == {g("amy", priority=URGENT): 8, g("bob"): 2}
    # Capped-out normal work is not waiting on anything that could go.
    waiting = {g("amy", priority=URGENT): 100, g("bob", "k", capped=True): 50}
    assert pick(waiting, 10, {("bob", "k"): 0}, Turns()) == {g("amy", priority=URGENT): 10}


def test_normal_work_goes_unalternated_when_no_urgent_work_waits() -> None:
    waiting = {g("amy", priority=8): 100, g("bob"): 100}
    assert sum(pick(waiting, 10, NO_CAPS, Turns(urgent_last=False)).values()) == 10


def test_urgent_owners_take_turns_among_themselves() -> None:
    waiting = {
        g("amy", priority=URGENT): 10,
        g("bob", priority=URGENT): 10,
        g("cat"): 10,
    }
    order = one_at_a_time(waiting, 6)
    assert [(x.owner, x.priority) for x in order] == [
        ("amy", 9),
        ("cat", 5),
        ("bob", 9),
        ("cat", 5),
        ("amy", 9),
        ("cat", 5),
    ]


def test_urgent_and_normal_rotations_are_kept_apart() -> None:
    # amy's urgent release does not count as her normal turn, nor the other way round.
    waiting = {g("amy", priority=URGENT): 10, g("amy"): 10, g("bob"): 10}
    order = one_at_a_time(waiting, 6)
    assert [(x.owner, x.priority) for x in order] == [
        ("amy", 9),
        ("amy", 5),
        ("amy", 9),
        ("bob", 5),
        ("amy", 9),
        ("amy", 5),
    ]


def test_an_owners_normal_keys_take_turns_while_it_also_has_urgent_work() -> None:
    waiting = {
        g("amy", "", priority=URGENT): 50,
        g("amy", ""): 50,
        g("amy", "k"): 50,
    }
    order = one_at_a_time(waiting, 8)
    normal_keys = Counter(x.key for x in order if x.priority < URGENT)
    assert normal_keys == {"": 2, "k": 2}


def test_an_owners_urgent_keys_take_turns_while_it_also_has_normal_work() -> None:
    waiting = {
        g("amy", "a", priority=URGENT): 50,
        g("amy", "b", priority=URGENT): 50,
        g("amy", "c"): 50,
    }
    order = one_at_a_time(waiting, 8)
    urgent_keys = Counter(x.key for x in order if x.priority >= URGENT)
    assert urgent_keys == {"a": 2, "b": 2}


# 4. Caps.


def test_a_capped_group_gets_no_more_than_its_room() -> None:
    waiting = {g("amy", "k", capped=True): 10, g("amy", "j"): 10}
    taken = pick(waiting, 6, {("amy", "k"): 2}, Turns())
    assert taken == {g("amy", "k", capped=True): 2, g("amy", "j"): 4}


def test_a_capped_group_with_no_room_passes_its_owners_turn_to_its_other_work() -> None:
    waiting = {
        g("amy", "k", priority=8, capped=True): 10,
        g("amy", "j", priority=2): 10,
        g("bob"): 10,
    }
    taken = pick(waiting, 4, {("amy", "k"): 0}, Turns())
    assert taken == {g("amy", "j", priority=2): 2, g("bob"): 2}


def test_a_capped_group_with_no_room_passes_its_owners_turn_to_the_next_owner() -> None:
    waiting = {g("amy", "k", capped=True): 10, g("bob"): 10}
    assert pick(waiting, 3, {("amy", "k"): 0}, Turns()) == {g("bob"): 3}


@pytest.mark.parametrize("free", [{}, {("amy", "k"): 0}, {("amy", "k"): -3}, {("bob", "k"): 5}])
def test_no_room_means_missing_zero_or_negative(free: dict[tuple[str, str], int]) -> None:
    waiting = {g("amy", "k", capped=True): 10}
    assert pick(waiting, 5, free, Turns()) == {}
    assert eligible(waiting, free) == 0


def test_groups_under_one_cap_share_its_room() -> None:
    waiting = {
        g("amy", "k", priority=URGENT, capped=True): 5,
        g("amy", "k", priority=7, capped=True): 5,
        g("amy", "k", priority=3, capped=True): 5,
    }
    taken = pick(waiting, 20, {("amy", "k"): 3}, Turns())
    assert sum(taken.values()) == 3
    assert eligible(waiting, {("amy", "k"): 3}) == 3


def test_caps_are_per_owner_and_key() -> None:
    waiting = {g("amy", "k", capped=True): 10, g("bob", "k", capped=True): 10}
    taken = pick(waiting, 20, {("amy", "k"): 1, ("bob", "k"): 4}, Turns())
    assert taken == {g("amy", "k", capped=True): 1, g("bob", "k", capped=True): 4}


def test_uncapped_work_under_a_capped_key_is_not_counted_against_it() -> None:
    waiting = {g("amy", "k"): 10, g("amy", "k", capped=True): 10}
    taken = pick(waiting, 20, {("amy", "k"): 1}, Turns())
    assert taken == {g("amy", "k"): 10, g("amy", "k", capped=True): 1}


def test_caps_hold_over_many_calls_as_a_dispatcher_recomputes_room() -> None:
    limits = {("amy", "k"): 2, ("bob", "k"): 3}
    waiting = {
        g("amy", "k", capped=True): 30,
        g("amy", "j"): 30,
        g("bob", "k", priority=URGENT, capped=True): 30,
        g("cat"): 30,
    }
    running: Counter[tuple[str, str]] = Counter()
    rng = random.Random(7)
    turns = Turns()
    for _ in range(60):
        free = {cap: limit - running[cap] for cap, limit in limits.items()}
        taken = pick(waiting, 3, free, turns)
        assert sum(taken.values()) == min(3, releasable(waiting, free))
        for group, count in taken.items():
            if group.capped:
                running[(group.owner, group.key)] += count
        assert all(running[cap] <= limit for cap, limit in limits.items()), running
        waiting = remainder(waiting, taken)
        for cap in limits:  # some running jobs finish, freeing room
            if running[cap] and rng.random() < 0.5:
                running[cap] -= 1
    # Every capped job eventually went, one cap's room at a time.
    assert not waiting


# 5. Turns: memory between calls.


def test_a_second_call_continues_where_the_first_stopped() -> None:
    waiting = {g("amy"): 10, g("bob"): 10, g("cat"): 10}
    turns = Turns()
    first = pick(waiting, 2, NO_CAPS, turns)
    assert by_owner(first) == {"amy": 1, "bob": 1}
    second = pick(remainder(waiting, first), 2, NO_CAPS, turns)
    assert by_owner(second) == {"cat": 1, "amy": 1}
    # Without the memory, the second call would start over from amy.
    assert by_owner(pick(remainder(waiting, first), 2, NO_CAPS, Turns())) == {
        "amy": 1,
        "bob": 1,
    }


def test_the_urgent_alternation_carries_across_calls() -> None:
    waiting = {g("amy", priority=URGENT): 100, g("bob"): 100}
    turns = Turns()
    assert pick(waiting, 1, NO_CAPS, turns) == {g("amy", priority=URGENT): 1}
    assert turns.urgent_last
    assert pick(waiting, 1, NO_CAPS, turns) == {g("bob"): 1}
    assert not turns.urgent_last


def test_turns_forget_owners_with_nothing_waiting() -> None:
    turns = Turns(last_key={"gone": "k", "amy": "x"})
    pick({g("amy", "x"): 5, g("amy", "y"): 5, g("bob"): 5}, 2, NO_CAPS, turns)
    assert "gone" not in turns.last_key
    assert set(turns.last_key) <= {"amy", "bob"}


def test_a_forgotten_owner_starts_its_keys_afresh() -> None:
    turns = Turns()
    assert one_at_a_time({g("amy", "a"): 1, g("amy", "b"): 1}, 1, turns=turns) == [g("amy", "a")]
    pick({g("bob"): 1}, 1, NO_CAPS, turns)  # amy has nothing waiting: forgotten
    assert "amy" not in turns.last_key
    assert pick({g("amy", "a"): 1, g("amy", "b"): 1}, 1, NO_CAPS, turns) == {g("amy", "a"): 1}


# 6. Bounds and work conservation.


def test_nothing_is_released_for_n_zero() -> None:
    turns = Turns(last_owner={False: "amy"}, urgent_last=True)
    assert pick({g("amy"): 5, g("bob", priority=URGENT): 5}, 0, NO_CAPS, turns) == {}
    assert turns.last_owner == {False: "amy"}
    assert turns.urgent_last


def test_nothing_waiting_releases_nothing() -> None:
    assert pick({}, 10, NO_CAPS, Turns()) == {}
    assert pick({g("amy"): 0}, 10, NO_CAPS, Turns()) == {}


def test_more_room_than_work_releases_everything_that_can_go() -> None:
    waiting = {
        g("amy"): 3,
        g("amy", "k", capped=True): 4,
        g("bob", priority=URGENT): 2,
        g("cat"): 0,
    }
    taken = pick(waiting, 100, {("amy", "k"): 2}, Turns())
    assert taken == {g("amy"): 3, g("amy", "k", capped=True): 2, g("bob", priority=URGENT): 2}


def test_pick_leaves_its_inputs_alone() -> None:
    waiting = {g("amy"): 3, g("amy", "k", capped=True): 4}
    free = {("amy", "k"): 2}
    pick(waiting, 5, free, Turns())
    assert waiting == {g("amy"): 3, g("amy", "k", capped=True): 4}
    assert free == {("amy", "k"): 2}


def test_eligible_counts_what_the_caps_allow() -> None:
    waiting = {
        g("amy"): 3,
        g("amy", "k", capped=True): 4,
        g("amy", "k", priority=URGENT, capped=True): 4,
        g("bob", "k", capped=True): 4,
        g("cat", "k", capped=True): 4,
        g("cat", "k"): 5,
    }
    free = {("amy", "k"): 6, ("bob", "k"): 10, ("cat", "k"): -1}
    assert eligible(waiting, free) == 3 + 6 + 4 + 0 + 5
    assert eligible({}, free) == 0


# Properties over random queues.

#: Python's order for "Émile" and "zoë" is their code points', as the ready queue's ("C").
OWNERS = ["amy", "bob", "cat", "dan", "eve", "Émile", "zoë"]
KEYS = ["", "k1", "k2", "k3"]
PRIORITIES = [0, 1, 5, 8, URGENT]


def random_queue(
    rng: random.Random,
    *,
    priorities: list[int] = PRIORITIES,
    caps: bool = True,
) -> tuple[dict[Group, int], dict[tuple[str, str], int]]:
    waiting: dict[Group, int] = {}
    owners = rng.sample(OWNERS, rng.randint(1, len(OWNERS)))
    for _ in range(rng.randint(0, 14)):
        group = Group(
            rng.choice(owners),
            rng.choice(KEYS),
            rng.choice(priorities),
            caps and rng.random() < 0.4,
        )
        waiting[group] = rng.choice([0, 1, 1, 2, 3, 5, 8, 40])
    free: dict[tuple[str, str], int] = {}
    for group in waiting:
        if group.capped and rng.random() < 0.85:
            free[(group.owner, group.key)] = rng.randint(-1, 6)
    return waiting, free


def random_turns(rng: random.Random) -> Turns:
    turns = Turns(urgent_last=rng.random() < 0.5)
    for lane in (True, False):
        if rng.random() < 0.7:
            turns.last_owner[lane] = rng.choice([*OWNERS, "aaa", "zzz"])
    for owner in OWNERS:
        if rng.random() < 0.5:
            turns.last_key[owner] = rng.choice(KEYS)
        if rng.random() < 0.3:
            turns.last_urgent_key[owner] = rng.choice(KEYS)
    return turns


@pytest.mark.parametrize("seed", range(400))
def test_random_queues_keep_every_promise_of_one_call(seed: int) -> None:
    rng = random.Random(seed)
    waiting, free = random_queue(rng)
    n = rng.randint(0, 30)
    turns = random_turns(rng)
    urgent_last = turns.urgent_last
    taken = pick(waiting, n, free, turns)
    left = remainder(waiting, taken)
    room = room_after(free, taken)

    # Bounds: n in all, waiting[g] per group, the room of every cap.
    assert all(count > 0 for count in taken.values())
    assert all(taken[group] <= waiting.get(group, 0) for group in taken)
    assert sum(taken.values()) <= n
    for group in taken:
        if group.capped:
            assert room[(group.owner, group.key)] >= 0

    # Work conservation, and eligible() agrees with an independent count.
    assert eligible(waiting, free) == releasable(waiting, free)
    assert sum(taken.values()) == min(n, releasable(waiting, free))

    # An owner's lower priority only goes once its higher ones (same lane) cannot.
    for group in taken:
        for other in waiting:
            if (
                other.owner == group.owner
                and (other.priority >= URGENT) == (group.priority >= URGENT)
                and other.priority > group.priority
            ):
                assert not can_go(other, left, room), (group, other)

    # Owners take turns within each lane: one that could still go at the end could go
    # all along, so it missed no turn, and nobody got two turns ahead of it.
    for lane in (True, False):
        served = Counter[str]()
        for group, count in taken.items():
            if (group.priority >= URGENT) == lane:
                served[group.owner] += count
        still = {
            x.owner for x in waiting if (x.priority >= URGENT) == lane and can_go(x, left, room)
        }
        for patient in still:
            for owner in {x.owner for x in waiting}:
                assert served[owner] <= served[patient] + 1, (lane, owner, patient)

    # Urgent releases alternate with normal ones while both can go.
    urgent = sum(c for x, c in taken.items() if x.priority >= URGENT)
    normal = sum(c for x, c in taken.items() if x.priority < URGENT)
    if any(x.priority < URGENT and can_go(x, left, room) for x in waiting):
        assert urgent <= normal + (0 if urgent_last else 1)
    if any(x.priority >= URGENT and can_go(x, left, room) for x in waiting):
        assert normal <= urgent + (1 if urgent_last else 0)


@pytest.mark.parametrize("seed", range(200))
def test_random_queues_released_in_pieces_as_in_one_call(seed: int) -> None:
    rng = random.Random(seed)
    waiting, free = random_queue(rng)
    start = random_turns(rng)
    total = rng.randint(0, 40)
    pieces: list[int] = []
    while sum(pieces) < total:
        pieces.append(rng.randint(1, total - sum(pieces)))

    whole_turns = Turns(dict(start.last_owner), dict(start.last_key), start.urgent_last)
    whole = pick(waiting, total, free, whole_turns)

    turns = Turns(dict(start.last_owner), dict(start.last_key), start.urgent_last)
    got: Counter[Group] = Counter()
    left, room = dict(waiting), dict(free)
    for piece in pieces:
        taken = pick(left, piece, room, turns)
        got.update(taken)
        left, room = remainder(left, taken), room_after(room, taken)

    assert dict(got) == whole
    assert turns.last_owner == whole_turns.last_owner
    assert turns.urgent_last == whole_turns.urgent_last
    for owner in {x.owner for x in left}:
        assert turns.last_key.get(owner) == whole_turns.last_key.get(owner)


@pytest.mark.parametrize("seed", range(200))
def test_random_queues_give_the_same_answer_in_any_order(seed: int) -> None:
    rng = random.Random(seed)
    waiting, free = random_queue(rng)
    start = random_turns(rng)
    n = rng.randint(0, 30)
    items = list(waiting.items())
    rng.shuffle(items)
    a = Turns(dict(start.last_owner), dict(start.last_key), start.urgent_last)
    b = Turns(dict(start.last_owner), dict(start.last_key), start.urgent_last)
    assert pick(waiting, n, free, a) == pick(dict(items), n, free, b)
    assert a == b


@pytest.mark.parametrize("seed", range(200))
def test_random_single_lane_queues_rotate_an_owners_keys(seed: int) -> None:
    """One priority, one lane: each owner's keys (a key's capped and uncapped work
    together) take turns, as owners do."""
    rng = random.Random(seed)
    waiting, free = random_queue(rng, priorities=[5])
    n = rng.randint(0, 30)
    taken = pick(waiting, n, free, random_turns(rng))
    left, room = remainder(waiting, taken), room_after(free, taken)
    for owner in {x.owner for x in waiting}:
        served = Counter[str]()
        for group, count in taken.items():
            if group.owner == owner:
                served[group.key] += count
        keys = {x.key for x in waiting if x.owner == owner}
        still = {x.key for x in waiting if x.owner == owner and can_go(x, left, room)}
        for patient in still:
            for key in keys:
                assert served[key] <= served[patient] + 1, (owner, key, patient)


@pytest.mark.parametrize("seed", range(300))
def test_counting_each_group_only_past_what_a_call_can_take_changes_nothing(seed: int) -> None:
    """A deep ready queue is counted a group at a time up to one more than a round can
    release (``ready_groups_in_turn``): the picks, the turns after them, and whether
    eligible work is left over (which keeps the writers held) are the same as with
    exact counts."""
    rng = random.Random(seed)
    waiting, free = random_queue(rng)
    start = random_turns(rng)
    n = rng.randint(0, 12)
    bounded = {group: min(count, n + 1) for group, count in waiting.items()}
    exact_turns = Turns(dict(start.last_owner), dict(start.last_key), start.urgent_last)
    bounded_turns = Turns(dict(start.last_owner), dict(start.last_key), start.urgent_last)

    exactly = pick(waiting, n, free, exact_turns)
    assert pick(bounded, n, free, bounded_turns) == exactly
    assert bounded_turns == exact_turns
    picked = sum(exactly.values())
    assert (eligible(bounded, free) > picked) == (eligible(waiting, free) > picked)


def view_in_turn(
    waiting: Mapping[Group, int], turns: Turns, owners: Mapping[bool, int], bound: int
) -> tuple[dict[Group, int], dict[bool, bool]]:
    """What the dispatcher reads of a wide queue (``ready_groups_in_turn``): for each lane,
    the groups of at most ``owners[lane]`` owners after its last served and as many from
    the first (an owner counts if it has a group in the lane, due or not: a count of 0),
    each group counted up to ``bound``."""
    view: dict[Group, int] = {}
    complete: dict[bool, bool] = {}
    for lane in (True, False):
        everyone = sorted({x.owner for x in waiting if (x.priority >= URGENT) == lane})
        last = turns.last_owner.get(lane)
        k = owners[lane]
        after = [o for o in everyone if last is None or o > last][:k]
        seen, complete[lane] = in_view(after, everyone[:k], last, k)
        for group, count in waiting.items():
            if (group.priority >= URGENT) == lane and group.owner in seen:
                view[group] = min(count, bound)
    return view, complete


@pytest.mark.parametrize("seed", range(400))
def test_a_view_of_the_owners_next_in_turn_picks_as_the_whole_queue(seed: int) -> None:
    """A wide queue (thousands of owners) is read a lane's next few owners at a time: the
    pick from that view is the whole queue's, or it says it must see further and leaves
    the turns alone; seeing further, as the dispatcher does, it gets there."""
    rng = random.Random(seed)
    waiting, free = random_queue(rng)
    start = random_turns(rng)
    n = rng.randint(0, 12)
    whole_turns = copy.deepcopy(start)
    whole = pick(waiting, n, free, whole_turns)

    owners = {True: rng.randint(1, 3), False: rng.randint(1, 3)}
    turns = copy.deepcopy(start)
    for _ in range(10):
        view, complete = view_in_turn(waiting, turns, owners, bound=n + 1)
        try:
            taken = pick(view, n, free, turns, complete)
        except OutOfView as short:
            lane = short.urgent
        else:
            break
        assert not complete[lane]
        assert turns == start
        owners[lane] *= 2
    else:
        raise AssertionError("never saw far enough")
    assert taken == whole
    assert turns.last_owner == whole_turns.last_owner
    assert turns.urgent_last == whole_turns.urgent_last
    for owner in {x.owner for x in waiting if x in view}:
        assert turns.last_key.get(owner) == whole_turns.last_key.get(owner)
        assert turns.last_urgent_key.get(owner) == whole_turns.last_urgent_key.get(owner)
    picked = sum(taken.values())
    if all(complete.values()):
        assert (eligible(view, free) > picked) == (eligible(waiting, free) > picked)


def test_a_view_that_holds_every_owner_of_a_lane_is_complete() -> None:
    assert in_view(["cat"], ["amy", "bob"], "bob", 2) == ({"amy", "bob", "cat"}, True)
    assert in_view(["cat"], ["amy", "bob"], "cat", 3) == ({"amy", "bob", "cat"}, True)
    # The first read full: what follows it is unknown, and the second read is not used.
    assert in_view(["cat", "dan"], ["amy", "bob"], "bob", 2) == ({"cat", "dan"}, False)
    # Round the end, the second read full and not past the last: more may lie between.
    assert in_view(["cat"], ["amy", "bob"], "cat", 2) == ({"amy", "bob", "cat"}, False)
    assert in_view([], ["amy"], None, 2) == (set(), True)
    assert in_view(["amy", "bob"], [], None, 2) == ({"amy", "bob"}, False)
