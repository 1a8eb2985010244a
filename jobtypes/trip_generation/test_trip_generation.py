"""trip_generation: its input rules, the local pipeline's deterministic itinerary and
budget, the per-day phases, and the prose through the model with versioned prompts.
(The checks every type passes are in tests/unit/test_jobtypes.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobtypes.trip_generation import steps
from jobtypes.trip_generation.spec import SPEC as TRIP_GENERATION
from tests.unit.pipeline import run_steps
from tests.unit.scripted_provider import ScriptedProvider

EXAMPLE = json.loads((Path(__file__).parent / "example.json").read_text(encoding="utf-8"))
INPUT: dict[str, Any] = EXAMPLE["input"]


def with_dates(**dates: Any) -> dict[str, Any]:
    return {**INPUT, "dates": dates}


def pairs(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(v.field, v.description) for v in TRIP_GENERATION.validate_input(doc)]


def test_the_schema_checks_shapes_and_the_spec_checks_the_dates() -> None:
    assert EXAMPLE["type"] == TRIP_GENERATION.name
    assert pairs(INPUT) == []
    assert pairs({}) == [
        ("input.destination", "is required"),
        ("input.dates", "is required"),
        ("input.preferences", "is required"),
    ]
    assert pairs(with_dates(start="2026-05-10", end="2026-05-04")) == [
        ("input.dates.end", "must not be before start")
    ]
    assert pairs(with_dates(start="2026-05-01", end="2026-06-30")) == [
        ("input.dates.end", "must be within 30 days of start (both days count)")
    ]
    assert pairs(with_dates(start="2026-02-29", end="2026-03-02")) == [
        ("input.dates.start", "must be a calendar date (YYYY-MM-DD)")
    ]
    assert pairs(with_dates(start="4 May", end="2026-05-10")) == [
        ("input.dates.start", "must match the pattern " + TRIP_GENERATION.input_schema[
            "properties"]["dates"]["properties"]["start"]["pattern"])
    ]  # fmt: skip
    assert pairs(with_dates(duration=31)) == [("input.dates.duration", "must be at most 30")]
    assert pairs(with_dates(duration=2.5)) == [("input.dates.duration", "must be a whole number")]
    assert pairs(with_dates()) == [("input.dates", "must have start and end, or duration")]
    assert pairs(with_dates(duration=3)) == []
    preferences = {"style": "cheap", "budget": {"amount": 0}, "interests": ["food", " "]}
    assert pairs({**INPUT, "preferences": preferences}) == [
        ("input.preferences.style", 'must be one of "budget", "comfort", "luxury"'),
        ("input.preferences.budget.amount", "must be at least 1"),
        ("input.preferences.budget.currency", "is required"),
        ("input.preferences.interests[1]", "must not be empty"),
    ]


def test_a_budget_may_be_a_plain_number_of_euros_as_the_seed_apps_send_it() -> None:
    seed: dict[str, Any] = {
        "destination": "Barcelona",
        "dates": {"start": "2025-06-01", "end": "2025-06-07"},
        "preferences": {"style": "luxury", "budget": 5000},
    }
    assert pairs(seed) == []
    assert steps.stated_budget(seed["preferences"]) == ("EUR", 500_000)
    assert steps.stated_budget({"budget": {"amount": 12.5, "currency": "USD"}}) == ("USD", 1250)
    assert steps.stated_budget({"style": "budget"}) == ("EUR", None)
    for budget, why in [(0, "must be at least 1"), ("5000", "must be a number or an object")]:
        preferences = {"style": "luxury", "budget": budget}
        assert pairs({**seed, "preferences": preferences}) == [("input.preferences.budget", why)]


async def test_the_local_pipeline_plans_every_day_and_balances_the_budget() -> None:
    run = await run_steps("trip_generation", INPUT)
    result = run.result
    assert set(result) == {
        "destination", "start", "end", "style", "overview", "days", "budget", "report_markdown",
    }  # fmt: skip
    assert (result["start"], result["end"], result["style"]) == ("2026-05-04", "2026-05-10",
                                                                 "comfort")  # fmt: skip
    days = result["days"]
    assert [d["date"] for d in days] == [f"2026-05-{n:02d}" for n in range(4, 11)]
    assert [d["theme"] for d in days] == [
        "Food and markets", "Architecture", "Landmarks", "Sea and beaches",
        "Food and markets", "Neighbourhoods", "Architecture",
    ]  # fmt: skip
    assert days[0]["slots"]["morning"] == (
        "Arrive in Barcelona, check in and get your bearings around your lodging"
    )
    assert days[1]["note"] == (
        "Day 2 (Tuesday 5 May) is given to architecture. Façades look best in the low light "
        "of morning and late afternoon; interiors fill up around midday. A sit-down lunch is "
        "the day's break: book one if the place is popular."
    )
    assert days[-1]["note"].endswith(
        "Leave your luggage at the lodging or in a locker for the last hours. Book the "
        "morning's sight ahead and keep the afternoon flexible."
    )
    # 1,200 EUR against an estimate of 1,455: scaled (see tests/unit/test_travel_budget.py).
    budget = result["budget"]
    assert (budget["status"], budget["total"], budget["estimate"], budget["difference"]) == (
        "scaled", 1200, 1455, 0,
    )  # fmt: skip
    assert [c["planned"] for c in budget["categories"]] == [580.75, 324.08, 204.39, 90.78]
    assert days[0]["budget"] == {"lodging": 96.8, "food": 46.3, "activities": 29.2,
                                 "transport": 12.97, "total": 185.27}  # fmt: skip
    assert result["overview"].startswith(
        "7 days in Barcelona, from Monday 4 May to Sunday 10 May 2026, planned in comfort style."
    )
    assert "scaled to your 1,200.00 EUR" in result["overview"]
    report = result["report_markdown"]
    assert report.startswith("# 7 days in Barcelona\n\n" + result["overview"])
    assert "## Day 3 (Wednesday 6 May): Landmarks" in report
    assert "- **Lodging:** 120.00 per night \u00d7 6 nights = 720.00, planned 580.75" in report
    assert "| 7 | 0.00 | 46.29 | 29.19 | 12.96 | 88.44 |" in report
    assert run.progress == [
        ("research_destination", 50, "Researching Barcelona..."),
        *(("plan_days", (n - 1) * 100 // 7, f"Planning day {n} of 7...") for n in range(1, 8)),
    ]
    # Each day's note is streamed after the ones before it.
    assert run.partial["plan_days"][-1] == "\n\n".join(d["note"] for d in days)
    assert (await run_steps("trip_generation", INPUT)).outputs == run.outputs


@pytest.mark.parametrize(
    ("preferences", "status", "sentence"),
    [
        ({"style": "budget"}, "estimate",
         "In budget style it comes to about 179.20 EUR per traveller."),
        ({"style": "luxury", "budget": {"amount": 100, "currency": "USD"}}, "over",
         "Even at the cheapest (hostels, street food, free sights) it comes to about 193.53 "
         "USD: 93.53 USD more than your 100.00 USD."),
        ({"style": "budget", "budget": {"amount": 5000, "currency": "EUR"}}, "within",
         "In budget style it comes to about 179.20 EUR, within your 5,000.00 EUR: 4,820.80 "
         "EUR is left for the unexpected."),
        ({"style": "budget", "budget": 5000}, "within",
         "In budget style it comes to about 179.20 EUR, within your 5,000.00 EUR: 4,820.80 "
         "EUR is left for the unexpected."),
    ],
)  # fmt: skip
async def test_a_duration_plans_numbered_days_and_the_budget_says_where_it_stands(
    preferences: dict[str, Any], status: str, sentence: str
) -> None:
    job_input = {"destination": "Porto", "dates": {"duration": 3}, "preferences": preferences}
    result = (await run_steps("trip_generation", job_input)).result
    assert [(d["day"], d["date"]) for d in result["days"]] == [(1, None), (2, None), (3, None)]
    assert (result["start"], result["end"]) == (None, None)
    assert result["budget"]["status"] == status
    assert sentence in result["overview"]
    assert result["report_markdown"].startswith("# 3 days in Porto")


async def test_the_model_writes_the_notes_and_the_overview() -> None:
    provider = ScriptedProvider(lambda request: f"Prose for {request.prompt_id}.")
    run = await run_steps("trip_generation", INPUT, provider)
    assert [r.prompt_id for r in provider.requests] == [steps.DAY_NOTE_PROMPT] * 7 + [
        steps.OVERVIEW_PROMPT
    ]
    result = run.result
    assert {d["note"] for d in result["days"]} == {"Prose for trip_day_note@1."}
    assert result["overview"] == "Prose for trip_overview@1."
    assert run.usage == [("plan_days", "scripted-1", 10, 5)] * 7 + [
        ("write_overview", "scripted-1", 10, 5)
    ]
    third_day = provider.requests[2].messages[1].content
    assert "Day 3 (Wednesday 6 May) of 7, theme: Landmarks" in third_day
    assert "Morning: The one sight Barcelona is famous for, booked for opening time" in third_day
    overview = provider.requests[-1].messages[1].content
    assert "Budget: Comfort style would cost about 1,455.00 EUR" in overview
