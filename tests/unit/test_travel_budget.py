"""travel.budget: a trip's budget by style, fitted to a stated budget, to the cent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from travel.budget import (
    CATEGORIES,
    daily_rates,
    fit,
    money,
    plan_budget,
    price_level,
    spread,
    to_major,
    to_minor,
)


def test_a_week_in_comfort_within_budget_keeps_the_style_and_the_reserve() -> None:
    budget = plan_budget("comfort", 7, "Barcelona, Spain", "EUR", to_minor(1500))
    assert (budget.days, budget.nights, budget.price_level) == (7, 6, 100)
    assert budget.rates == {"lodging": 12000, "food": 5500, "activities": 3500, "transport": 1500}
    # 6 nights of lodging, 7 days of the rest.
    assert budget.planned == {"lodging": 72000, "food": 38500, "activities": 24500,
                              "transport": 10500}  # fmt: skip
    assert (budget.total, budget.difference, budget.status) == (145500, 4500, "within")


def test_a_budget_below_the_estimate_scales_each_category_towards_its_floor() -> None:
    budget = plan_budget("comfort", 7, "Barcelona", "EUR", to_minor(1200))
    # Floor (budget style): 240 + 175 + 105 + 56 = 576 EUR; the estimate is 1,455 EUR.
    # 624 of the 879 above the floor fit: each category keeps 624/879 of its part above
    # its floor (480, 210, 140, 49 EUR); the 2 cents left go to the largest remainders
    # (food .85, activities .57).
    assert budget.planned == {"lodging": 58075, "food": 32408, "activities": 20439,
                              "transport": 9078}  # fmt: skip
    assert (budget.total, budget.difference, budget.status) == (120000, 0, "scaled")
    days = budget.per_day()
    assert days[0] == {"day": 1, "lodging": 9680, "food": 4630, "activities": 2920,
                       "transport": 1297, "total": 18527}  # fmt: skip
    # No night after the last day.
    assert days[6] == {"day": 7, "lodging": 0, "food": 4629, "activities": 2919,
                       "transport": 1296, "total": 8844}  # fmt: skip
    for category in CATEGORIES:
        assert sum(day[category] for day in days) == budget.planned[category]
    assert sum(day["total"] for day in days) == 120000


def test_a_budget_below_even_the_floor_says_how_much_is_missing() -> None:
    budget = plan_budget("luxury", 3, "Zürich", "CHF", to_minor(300))
    assert budget.price_level == 160
    # Luxury at 160 % in CHF (0.95 a euro): 532 a night, 182.40 + 121.60 + 76 a day.
    assert budget.estimate == {"lodging": 106400, "food": 54720, "activities": 36480,
                               "transport": 22800}  # fmt: skip
    # The floor, the budget style: 60.80 a night, 38 + 22.80 + 12.16 a day.
    assert budget.planned == {"lodging": 12160, "food": 11400, "activities": 6840,
                              "transport": 3648}  # fmt: skip
    assert (budget.total, budget.difference, budget.status) == (34048, -4048, "over")


def test_without_a_budget_the_estimate_is_the_plan() -> None:
    budget = plan_budget("budget", 1, "Somewhere unlisted", "USD")
    assert budget.price_level == 100
    # A day trip has no night; 25 + 15 + 8 EUR at 1.08 USD.
    assert budget.planned == {"lodging": 0, "food": 2700, "activities": 1620, "transport": 864}
    assert (budget.stated, budget.difference, budget.status) == (None, None, "estimate")


def test_rates_are_rounded_half_up_per_category() -> None:
    # Lisbon (85 %) in GBP (0.85): 15 EUR of activities is 12.75 EUR, 10.8375 GBP.
    assert daily_rates("budget", 85, "GBP") == {
        "lodging": 2890, "food": 1806, "activities": 1084, "transport": 578,
    }  # fmt: skip
    assert price_level("LISBON") == price_level("Lisbon, Portugal") == 85
    assert price_level("  new   york ") == 150


def test_fit_spends_exactly_the_budget_and_keeps_every_floor() -> None:
    estimate = {"lodging": 1000, "food": 1000, "activities": 1000, "transport": 1000}
    floor = {"lodging": 0, "food": 0, "activities": 0, "transport": 0}
    # A quarter each, and a cent left over goes to the first on a tie.
    assert fit(estimate, floor, 1000) == dict.fromkeys(CATEGORIES, 250)
    assert fit(estimate, floor, 1001) == {"lodging": 251, "food": 250, "activities": 250,
                                          "transport": 250}  # fmt: skip
    assert fit(estimate, estimate, 4000) == estimate
    for stated in range(2000, 4001, 7):
        planned = fit(estimate, dict.fromkeys(CATEGORIES, 500), stated)
        assert sum(planned.values()) == stated
        assert all(500 <= planned[c] <= 1000 for c in CATEGORIES)


def test_spread_and_money() -> None:
    assert spread(1000, 3, 4) == [334, 333, 333, 0]
    assert spread(5, 0, 2) == [0, 0]
    assert [money(m) for m in (0, 5, 123456, -4048)] == ["0.00", "0.05", "1,234.56", "-40.48"]
    assert to_minor(12.345) == 1235
    assert to_minor(Decimal("0.005")) == 1
    assert to_major(1235) == 12.35


@pytest.mark.parametrize("style", ["budget", "comfort", "luxury"])
def test_the_styles_cost_more_in_turn_and_the_floor_is_the_budget_style(style: str) -> None:
    budget = plan_budget(style, 5, "Paris", "EUR", 1)
    assert budget.status == "over"
    assert budget.planned == plan_budget("budget", 5, "Paris").planned
    assert plan_budget("budget", 5, "Paris").total < plan_budget("comfort", 5, "Paris").total
    assert plan_budget("comfort", 5, "Paris").total < plan_budget("luxury", 5, "Paris").total
