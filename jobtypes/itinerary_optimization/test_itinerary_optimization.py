"""itinerary_optimization: its input rules, the local pipeline on the example (same
activities, less travel, the reasons), the two goals' different answers, and the
explanation through the model. (The optimiser itself: tests/unit/test_travel_route.py;
the checks every type passes: tests/unit/test_jobtypes.py.)"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

from jobtypes.itinerary_optimization import steps
from jobtypes.itinerary_optimization.spec import SPEC as ITINERARY_OPTIMIZATION
from tests.unit.pipeline import run_steps
from tests.unit.scripted_provider import ScriptedProvider
from travel.geo import EARTH_RADIUS_KM

EXAMPLE = json.loads((Path(__file__).parent / "example.json").read_text(encoding="utf-8"))
INPUT: dict[str, Any] = EXAMPLE["input"]
KM_PER_DEGREE = 2 * math.pi * EARTH_RADIUS_KM / 360


# The example, optimised for the least travel: every day changes.
EXPECTED_CHANGED = [True, True, True]
EXPECTED_ORDER = [
    ["Hotel in the Eixample", "La Pedrera", "Casa Batlló", "Barcelona Cathedral",
     "Picasso Museum", "Barceloneta beach"],
    ["Hotel in the Eixample", "Sagrada Família", "Park Güell", "Joan Miró Foundation",
     "Montjuïc Castle"],
    ["Hotel in the Eixample", "Palau de la Música Catalana", "La Boqueria market"],
]  # fmt: skip
EXPECTED_TOTAL = {
    "before_km": 29.761,
    "after_km": 15.242,
    "saved_km": 14.519,
    "saved_percent": 48.8,
    # Walks up to 1.5 km, 2.50 a ride beyond: 9 rides before, 3 after.
    "before_cost_eur": 22.5,
    "after_cost_eur": 7.5,
    "saved_cost_eur": 15.0,
    "before_travel_min": 181,
    "after_travel_min": 136,
}
EXPECTED_REASONS = [
    "Day 1: 10.7 km \u2192 3.9 km (6.8 km less). The 2.7 km leg from Hotel in the Eixample "
    "to Barceloneta beach is gone.",
    "Day 2: 17.1 km \u2192 9.7 km (7.5 km less). The 5.8 km leg from Park Güell to Montjuïc "
    "Castle is gone.",
    "Day 3: 2.0 km \u2192 1.7 km (0.3 km less). The 1.2 km leg from Hotel in the Eixample to "
    "La Boqueria market is gone.",
]
EXPECTED_HEAD = (
    "Optimised for the least travel: 29.8 km \u2192 15.2 km over the trip (49% less), about 45 "
    "minutes saved. 3 of 3 days changed. Each day still starts at its first stop."
)


def pairs(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(v.field, v.description) for v in ITINERARY_OPTIMIZATION.validate_input(doc)]


def stop(name: str, km_east: float) -> dict[str, Any]:
    """An activity on the equator, ``km_east`` of 0°E."""
    return {"name": name, "location": {"lat": 0, "lon": km_east / KM_PER_DEGREE},
            "duration_min": 60}  # fmt: skip


def names(result: dict[str, Any]) -> list[str]:
    """The first day's activities by name, in their optimised order."""
    return [a["name"] for a in result["itinerary"]["days"][0]["activities"]]


def test_the_schema_names_the_field_of_each_mistake() -> None:
    assert EXAMPLE["type"] == ITINERARY_OPTIMIZATION.name
    assert pairs(INPUT) == []
    assert pairs({}) == [("input.itinerary", "is required"), ("input.goal", "is required")]
    bad = copy.deepcopy(INPUT)
    first = bad["itinerary"]["days"][0]["activities"]
    first[1]["location"]["lat"] = 100
    first[2]["location"]["lon"] = -180.5
    first[3]["duration_min"] = -5
    first[4]["name"] = " "
    bad["goal"] = "fastest"
    assert pairs(bad) == [
        ("input.itinerary.days[0].activities[1].location.lat", "must be at most 90"),
        ("input.itinerary.days[0].activities[2].location.lon", "must be at least -180"),
        ("input.itinerary.days[0].activities[3].duration_min", "must be at least 0"),
        ("input.itinerary.days[0].activities[4].name", "must not be empty"),
        ("input.goal", 'must be one of "least_travel", "budget"'),
    ]
    assert pairs({**INPUT, "itinerary": {"days": []}}) == [
        ("input.itinerary.days", "must have at least 1 entry")
    ]


async def test_the_example_keeps_every_activity_and_travels_less() -> None:
    run = await run_steps("itinerary_optimization", INPUT)
    result = run.result
    assert set(result) == {"goal", "itinerary", "days", "total", "explanation", "report_markdown"}
    given = INPUT["itinerary"]["days"]
    for day_in, day_out, summary in zip(
        given, result["itinerary"]["days"], result["days"], strict=True
    ):
        assert day_out["activities"][0] == day_in["activities"][0]
        assert sorted(a["name"] for a in day_out["activities"]) == sorted(
            a["name"] for a in day_in["activities"]
        )
        assert [day_in["activities"][int(i)] for i in summary["order"]] == day_out["activities"]
        assert summary["after"]["km"] <= summary["before"]["km"]
        assert len(summary["legs"]) == len(day_in["activities"]) - 1
    assert [d["changed"] for d in result["days"]] == EXPECTED_CHANGED
    assert [
        [a["name"] for a in d["activities"]] for d in result["itinerary"]["days"]
    ] == EXPECTED_ORDER
    assert result["total"] == EXPECTED_TOTAL
    assert [d["reason"] for d in result["days"]] == EXPECTED_REASONS
    assert result["explanation"].split("\n\n") == [EXPECTED_HEAD, *EXPECTED_REASONS]
    assert run.progress == [
        ("optimise_days", 0, "Optimising day 1 of 3..."),
        ("optimise_days", 33, "Optimising day 2 of 3..."),
        ("optimise_days", 66, "Optimising day 3 of 3..."),
    ]
    report = result["report_markdown"]
    assert report.startswith("# Optimised itinerary\n\n**Goal:** the least travel")
    assert "## Day 2: Gaudí and the hills\n\n1. Hotel in the Eixample\n" in report
    # The days keep what came with them besides the activities.
    assert [d["label"] for d in result["itinerary"]["days"]] == [d["label"] for d in given]
    assert (await run_steps("itinerary_optimization", INPUT)).outputs == run.outputs


async def test_the_budget_goal_walks_where_least_travel_pays_fares() -> None:
    day = {"activities": [stop("Hotel", 0), stop("East", 1.4), stop("Far east", 2.8),
                          stop("West", -1.6)]}  # fmt: skip
    results = {
        goal: (await run_steps("itinerary_optimization",
                               {"itinerary": {"days": [day]}, "goal": goal})).result
        for goal in ("least_travel", "budget")
    }  # fmt: skip
    shortest, cheapest = results["least_travel"]["days"][0], results["budget"]["days"][0]
    assert names(results["least_travel"]) == ["Hotel", "West", "East", "Far east"]
    assert (shortest["after"]["km"], shortest["after"]["cost_eur"]) == (6.0, 5.0)
    assert names(results["budget"]) == ["Hotel", "East", "Far east", "West"]
    assert (cheapest["after"]["km"], cheapest["after"]["cost_eur"]) == (7.2, 2.5)
    assert not cheapest["changed"]
    assert [leg["mode"] for leg in cheapest["legs"]] == ["walk", "walk", "transit"]
    assert shortest["reason"] == (
        "Day 1: 7.2 km \u2192 6.0 km (1.2 km less). The 4.4 km leg from Far east to West is gone."
    )
    assert cheapest["reason"] == (
        "Day 1: already the best order found for the least spent on getting around; left as it is."
    )
    budget_total = results["budget"]["total"]
    assert (budget_total["before_cost_eur"], budget_total["after_cost_eur"]) == (2.5, 2.5)


async def test_days_too_short_to_reorder_are_left_alone() -> None:
    days = [
        {"activities": []},
        {"activities": [stop("Hotel", 0)]},
        {"activities": [stop("Hotel", 0), stop("Museum", 3)]},
    ]
    result = (
        await run_steps("itinerary_optimization", {"itinerary": {"days": days}, "goal": "budget"})
    ).result
    assert [d["reason"] for d in result["days"]] == [
        "Day 1: 0 stops, nothing to re-order.",
        "Day 2: 1 stop, nothing to re-order.",
        "Day 3: 2 stops, nothing to re-order.",
    ]
    assert result["total"]["saved_km"] == 0
    assert result["itinerary"] == {"days": days}


async def test_the_explanation_comes_from_the_model_with_the_figures() -> None:
    provider = ScriptedProvider(lambda request: "Your days now flow east to west.")
    run = await run_steps("itinerary_optimization", INPUT, provider)
    assert [r.prompt_id for r in provider.requests] == [steps.EXPLAIN_PROMPT]
    assert run.result["explanation"] == "Your days now flow east to west."
    sent = provider.prompts()
    assert "Goal: the least travel" in sent
    for reason in EXPECTED_REASONS:
        assert reason in sent
    assert run.usage == [("explain_changes", "scripted-1", 10, 5)]
