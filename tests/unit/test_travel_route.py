"""travel.route: the day's order (nearest neighbour, 2-opt, or-opt) against known optima
and every permutation, and the two goals told apart."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from travel.geo import EARTH_RADIUS_KM, Point, distance_matrix
from travel.route import (
    Mode,
    best_order,
    goal_costs,
    leg_cost_eur,
    leg_minutes,
    leg_mode,
    nearest_neighbour,
    optimise_day,
    or_opt,
    path_cost,
    two_opt,
)

KM_PER_DEGREE = 2 * math.pi * EARTH_RADIUS_KM / 360


def on_equator(*km: float) -> list[Point]:
    """Points along the equator, ``km`` east of 0°E: distances are exactly the gaps."""
    return [Point(0.0, x / KM_PER_DEGREE) for x in km]


def city_points(rng: random.Random, n: int) -> list[Point]:
    """``n`` places in a 6 km x 6 km patch of Barcelona."""
    return [Point(41.36 + rng.random() * 0.054, 2.14 + rng.random() * 0.072) for _ in range(n)]


def brute_force(cost: list[list[float]]) -> float:
    """The cheapest open path from place 0, over every order of the rest."""
    rest = range(1, len(cost))
    return min(path_cost((0, *order), cost) for order in itertools.permutations(rest))


def test_points_on_a_line_are_swept_the_short_side_first() -> None:
    # Starting in the middle: the near side (out to 2 km west) before the far side, 8 km
    # either way round the west; the far side first would be 4 + 6 = 10 km.
    points = on_equator(0, 3, -1, 4, -2)
    found = optimise_day(points, "least_travel")
    assert set(found.after.order[1:3]) == {2, 4}
    assert found.after.order[3:] == (1, 3)
    assert found.after.km == pytest.approx(8)
    assert found.before.km == pytest.approx(3 + 4 + 5 + 6)
    # Starting at an end: straight along.
    assert optimise_day(on_equator(0, 3, 1, 4, 2), "least_travel").after.order == (0, 2, 4, 1, 3)


def test_a_square_is_walked_round_its_sides_never_across() -> None:
    side = 1 / KM_PER_DEGREE  # about 1 km at the equator
    corners = [Point(0, 0), Point(side, side), Point(0, side), Point(side, 0)]
    found = optimise_day(corners, "least_travel")
    assert found.after.order in {(0, 2, 1, 3), (0, 3, 1, 2)}
    assert found.after.km == pytest.approx(3.0, rel=1e-3)
    assert found.before.km > found.after.km


@pytest.mark.parametrize("places", [6, 7])
@pytest.mark.parametrize("goal", ["least_travel", "budget"])
def test_small_days_get_the_order_every_permutation_agrees_is_best(places: int, goal: str) -> None:
    # A heuristic: on other 7-place days, about 1 in 200 comes out up to 5 % off the
    # optimum (see travel.route); on these 30 of each size, none does.
    for seed in range(30):
        cost = goal_costs(distance_matrix(city_points(random.Random(seed), places)), goal)
        order = best_order(cost)
        assert order[0] == 0
        assert sorted(order) == list(range(places))
        assert path_cost(order, cost) == pytest.approx(brute_force(cost), abs=1e-9), seed


@pytest.mark.parametrize("seed", range(20))
def test_two_opt_is_never_worse_than_nearest_neighbour(seed: int) -> None:
    rng = random.Random(seed)
    cost = distance_matrix(city_points(rng, rng.randrange(4, 20)))
    start = nearest_neighbour(cost)
    improved = two_opt(start, cost)
    assert path_cost(improved, cost) <= path_cost(start, cost) + 1e-9
    assert improved[0] == 0
    assert sorted(improved) == sorted(start)
    moved = or_opt(improved, cost)
    assert path_cost(moved, cost) <= path_cost(improved, cost) + 1e-9


def test_or_opt_moves_the_place_nearest_neighbour_left_behind() -> None:
    # Nearest neighbour goes east first and leaves the place 1.6 km west for last (7.2
    # km); no reversal helps, moving that place to the front does (6.0 km).
    cost = distance_matrix(on_equator(0, 1.4, 2.8, -1.6))
    assert nearest_neighbour(cost) == [0, 1, 2, 3]
    assert two_opt([0, 1, 2, 3], cost) == [0, 1, 2, 3]
    assert or_opt([0, 1, 2, 3], cost) == [0, 3, 1, 2]


def test_a_day_already_in_its_best_order_is_left_as_it_is() -> None:
    straight = optimise_day(on_equator(0, 1, 2, 3, 4), "least_travel")
    assert not straight.changed
    for seed in range(10):
        points = city_points(random.Random(seed), 6)
        best = optimise_day(points, "least_travel").after.order
        again = optimise_day([points[i] for i in best], "least_travel")
        assert again.after.order == tuple(range(6))


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("goal", ["least_travel", "budget"])
def test_a_day_is_never_made_worse_by_its_goal_s_measure(seed: int, goal: str) -> None:
    rng = random.Random(seed)
    # A wider patch too, so that some legs are taxis.
    points = [Point(41.2 + rng.random() * 0.4, 1.9 + rng.random() * 0.5) for _ in range(9)]
    found = optimise_day(points, goal)
    assert found.after.order[0] == 0
    assert found.after.measure(goal) <= found.before.measure(goal) + 1e-9


def test_the_budget_goal_walks_where_the_shortest_route_pays_fares() -> None:
    # From 0: the shortest way is west first (1.6 km by transit, 3.0 km by transit, 1.4
    # km on foot: 6.0 km, two fares); the cheapest is east along the walkable 1.4 km
    # legs and one ride back west (7.2 km, one fare).
    points = on_equator(0, 1.4, 2.8, -1.6)
    shortest = optimise_day(points, "least_travel").after
    cheapest = optimise_day(points, "budget").after
    assert shortest.order == (0, 3, 1, 2)
    assert (round(shortest.km, 6), shortest.cost_eur) == (6.0, 5.0)
    assert cheapest.order == (0, 1, 2, 3)
    assert (round(cheapest.km, 6), cheapest.cost_eur) == (7.2, 2.5)
    assert [leg.mode for leg in cheapest.legs] == [Mode.WALK, Mode.WALK, Mode.TRANSIT]


def test_legs_are_walked_ridden_or_driven_by_length() -> None:
    assert [leg_mode(km) for km in (0, 1.5, 1.51, 12, 12.1)] == [
        Mode.WALK, Mode.WALK, Mode.TRANSIT, Mode.TRANSIT, Mode.TAXI,
    ]  # fmt: skip
    assert [leg_cost_eur(km) for km in (1.0, 5.0, 20.0)] == [0.0, 2.5, 4.0 + 1.6 * 20]
    assert leg_minutes(4.5) == 8.0 + 4.5 / 20 * 60
    assert leg_minutes(0.9) == pytest.approx(12.0)


def test_tiny_days_and_unknown_goals() -> None:
    assert best_order([]) == []
    assert best_order([[0.0]]) == [0]
    assert best_order([[0.0, 5.0], [5.0, 0.0]]) == [0, 1]
    empty = optimise_day([], "budget")
    assert (empty.after.order, empty.after.km, empty.changed) == ((), 0, False)
    with pytest.raises(ValueError, match="goal"):
        goal_costs([[0.0]], "fastest")
