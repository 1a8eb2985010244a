"""trip_generation and itinerary_optimization end to end: created from their example
requests on the real stack, run through every step to SUCCEEDED with their phases (a
per-day one each), on the local provider and on the fake OpenAI-compatible server; bad
dates, places and day lists refused as INVALID_ARGUMENT naming the field."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from devstack import Stack
from jobctl.client import JobsClient
from jobkit.convert import struct_to_dict
from jobkit.gen.jobs.v1 import jobs_pb2
from jobtypes import CATALOG
from tests.e2e.rejections import refused_input
from tests.fake_openai import DEFAULT_REPLY, SLOW_MODEL, FakeServer

pytestmark = pytest.mark.e2e

E = jobs_pb2


def example(name: str) -> dict[str, Any]:
    request: dict[str, Any] = json.loads(Path(f"jobtypes/{name}/example.json").read_text("utf-8"))
    return request


async def run_to_success(
    client: JobsClient, job_type: str, job_input: dict[str, Any]
) -> tuple[list[jobs_pb2.JobEvent], jobs_pb2.Job, dict[str, Any]]:
    job = await client.create_job(job_type, job_input)
    assert [s.name for s in job.steps] == list(CATALOG[job_type].step_names)
    events = await asyncio.wait_for(_watch(client, job.job_id), 90)
    assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED, [e.message for e in events]
    final = await client.get_job(job.job_id)
    assert final.status == E.JOB_STATUS_SUCCEEDED
    assert final.progress == 100
    return events, final, struct_to_dict(final.result)


async def _watch(client: JobsClient, job_id: str) -> list[jobs_pb2.JobEvent]:
    return [e async for e in client.watch(job_id)]


def started_phases(events: list[jobs_pb2.JobEvent]) -> list[tuple[str, str, int]]:
    return [
        (e.step, e.phase, e.progress) for e in events if e.type == E.JOB_EVENT_TYPE_STEP_STARTED
    ]


def phases_of(events: list[jobs_pb2.JobEvent], step: str) -> list[str]:
    """The phases a step's progress events announced, each once, in order (a streamed
    text's events repeat the phase they were written under)."""
    return list(
        dict.fromkeys(
            e.phase for e in events if e.step == step and e.type == E.JOB_EVENT_TYPE_PROGRESS
        )
    )


def usage_models(final: jobs_pb2.Job) -> dict[str, list[str]]:
    return {s.name: [u.model for u in s.usage] for s in final.steps}


def check_trip(result: dict[str, Any], request: dict[str, Any]) -> None:
    """The result's days match the dates, each with three slots, a note and its budget;
    the budget adds up."""
    dates = request["dates"]
    first, last = date.fromisoformat(dates["start"]), date.fromisoformat(dates["end"])
    days = result["days"]
    assert [d["day"] for d in days] == list(range(1, (last - first).days + 2))
    assert [d["date"] for d in days] == [
        date.fromordinal(first.toordinal() + n).isoformat() for n in range(len(days))
    ]
    assert (result["start"], result["end"]) == (dates["start"], dates["end"])
    for day in days:
        assert set(day["slots"]) == {"morning", "afternoon", "evening"}
        assert day["note"]
        assert day["theme"]
    budget = result["budget"]
    assert budget["days"] == len(days)
    assert budget["currency"] == request["preferences"]["budget"]["currency"]
    assert round(sum(d["budget"]["total"] for d in days), 2) == budget["total"]
    assert round(sum(c["planned"] for c in budget["categories"]), 2) == budget["total"]
    assert result["report_markdown"].startswith(f"# {len(days)} days in Barcelona")


def activity_key(activity: dict[str, Any]) -> tuple[str, float, float, float]:
    """An activity as a comparable tuple (numbers come back from a Struct as floats)."""
    where = activity["location"]
    return (
        activity["name"],
        float(where["lat"]),
        float(where["lon"]),
        float(activity.get("duration_min", -1)),
    )


def check_optimised(result: dict[str, Any], request: dict[str, Any]) -> None:
    """Every day holds exactly the activities it was given, its first one first, and the
    goal's measure of travel is never more than the input's."""
    given = request["itinerary"]["days"]
    optimised = result["itinerary"]["days"]
    assert len(optimised) == len(given)
    measure = "cost_eur" if request["goal"] == "budget" else "km"
    for day_in, day_out, summary in zip(given, optimised, result["days"], strict=True):
        assert sorted(map(activity_key, day_out["activities"])) == sorted(
            map(activity_key, day_in["activities"])
        )
        assert day_out["activities"][0] == day_in["activities"][0]
        assert summary["after"][measure] <= summary["before"][measure]
    total = result["total"]
    assert (
        total["after_km" if measure == "km" else "after_cost_eur"]
        <= total["before_km" if measure == "km" else "before_cost_eur"]
    )
    assert result["explanation"]


async def test_trip_generation_runs_to_success(alice: JobsClient) -> None:
    request = example("trip_generation")
    events, final, result = await run_to_success(alice, request["type"], request["input"])
    assert started_phases(events) == [
        ("research_destination", "Researching your destination...", 5),
        ("plan_days", "Planning your days...", 15),
        ("balance_budget", "Balancing the budget...", 70),
        ("write_overview", "Writing your trip overview...", 75),
        ("render_itinerary", "Putting your itinerary together...", 95),
    ]
    assert "Researching Barcelona..." in phases_of(events, "research_destination")
    planning = phases_of(events, "plan_days")
    # The last day's phase rides with the step's result; earlier ones may be overtaken.
    assert "Planning day 7 of 7..." in planning
    assert set(planning) <= {f"Planning day {n} of 7..." for n in range(1, 8)}
    assert events[-1].phase == "Your itinerary is ready!"
    usage = usage_models(final)
    assert usage == {step: [] for step in usage} | {
        "plan_days": ["local-templates"],
        "write_overview": ["local-templates"],
    }
    check_trip(result, request["input"])
    assert result["budget"]["status"] == "scaled"
    assert result["budget"]["total"] == request["input"]["preferences"]["budget"]["amount"]
    assert result["days"][0]["slots"]["morning"].startswith("Arrive in Barcelona")


@pytest.mark.parametrize("goal", ["least_travel", "budget"])
async def test_itinerary_optimization_runs_to_success(alice: JobsClient, goal: str) -> None:
    request = example("itinerary_optimization")
    request["input"]["goal"] = goal
    events, final, result = await run_to_success(alice, request["type"], request["input"])
    assert started_phases(events) == [
        ("measure_itinerary", "Measuring the distances between your stops...", 5),
        ("optimise_days", "Optimising your days...", 20),
        ("explain_changes", "Explaining the changes...", 70),
    ]
    optimising = phases_of(events, "optimise_days")
    assert "Optimising day 3 of 3..." in optimising
    assert set(optimising) <= {f"Optimising day {n} of 3..." for n in range(1, 4)}
    assert events[-1].phase == "Your days are optimised!"
    usage = usage_models(final)
    assert usage == {step: [] for step in usage} | {"explain_changes": ["local-templates"]}
    check_optimised(result, request["input"])
    assert result["goal"] == goal
    if goal == "least_travel":
        assert result["total"]["saved_km"] > 0


@pytest.mark.parametrize(
    ("job_type", "change", "field", "why"),
    [
        (
            "trip_generation",
            lambda i: i["dates"].update(start="2026-05-10", end="2026-05-04"),
            "input.dates.end",
            "must not be before start",
        ),
        (
            "itinerary_optimization",
            lambda i: i["itinerary"]["days"][0]["activities"][1]["location"].update(lat=100),
            "input.itinerary.days[0].activities[1].location.lat",
            "must be at most 90",
        ),
        (
            "itinerary_optimization",
            lambda i: i["itinerary"].update(days=[]),
            "input.itinerary.days",
            "must have at least 1 entry",
        ),
    ],
    ids=["end_before_start", "latitude_100", "no_days"],
)
async def test_bad_input_is_invalid_argument_naming_the_field(
    stack: Stack, job_type: str, change: Any, field: str, why: str
) -> None:
    job_input = copy.deepcopy(example(job_type)["input"])
    change(job_input)
    assert await refused_input(stack, job_type, job_input) == [(field, why)]


# On the model: the prose is the model's, streamed as it is written.


@pytest.fixture
async def model_client(openai_stack: Stack) -> AsyncIterator[JobsClient]:
    token = openai_stack.token("tove")
    async with JobsClient(openai_stack.job_api_addr, openai_stack.notifier_addr, token) as c:
        yield c


def check_streamed(events: list[jobs_pb2.JobEvent], steps: set[str]) -> None:
    """Each prose step's text is watched as it is written: snapshots, each continuing the
    one before; no other step streams."""
    assert {e.step for e in events if e.partial_output} == steps
    for step in steps:
        written = [e.partial_output for e in events if e.step == step and e.partial_output]
        assert len(written) >= 2, step
        assert all(b.startswith(a) and len(b) > len(a) for a, b in itertools.pairwise(written))


async def test_trip_generation_on_the_model(
    model_client: JobsClient, fake_server: FakeServer
) -> None:
    await fake_server.script(default=SLOW_MODEL)
    request = example("trip_generation")
    events, final, result = await run_to_success(model_client, request["type"], request["input"])
    check_streamed(events, {"plan_days", "write_overview"})
    # Each day takes the model a while: every day's phase is seen.
    assert [p for p in phases_of(events, "plan_days") if p.startswith("Planning day")] == [
        f"Planning day {n} of 7..." for n in range(1, 8)
    ]
    requests = await fake_server.requests()
    assert len(requests) == 8  # a note for each of the 7 days, then the overview
    assert "Destination: Barcelona" in requests[0]["body"]["messages"][1]["content"]
    assert "Day 3 (Wednesday 6 May) of 7" in requests[2]["body"]["messages"][1]["content"]
    check_trip(result, request["input"])
    assert [d["note"] for d in result["days"]] == [DEFAULT_REPLY] * 7
    assert result["overview"] == DEFAULT_REPLY
    steps = {s.name: s for s in final.steps}
    (usage,) = steps["plan_days"].usage
    assert (usage.model, usage.prompt_tokens, usage.completion_tokens) == (
        "fake-model-1",
        7 * 120,
        7 * 30,
    )
    assert list(usage.prompts) == ["trip_day_note@1"]
    assert [list(u.prompts) for u in steps["write_overview"].usage] == [["trip_overview@1"]]


async def test_itinerary_optimization_on_the_model(
    model_client: JobsClient, fake_server: FakeServer
) -> None:
    await fake_server.script(default=SLOW_MODEL)
    request = example("itinerary_optimization")
    events, final, result = await run_to_success(model_client, request["type"], request["input"])
    check_streamed(events, {"explain_changes"})
    (sent,) = await fake_server.requests()
    assert "Goal: the least travel" in sent["body"]["messages"][1]["content"]
    check_optimised(result, request["input"])
    assert result["explanation"] == DEFAULT_REPLY
    (usage,) = {s.name: s for s in final.steps}["explain_changes"].usage
    assert (usage.prompt_tokens, usage.completion_tokens, list(usage.prompts)) == (
        120,
        30,
        ["itinerary_explanation@1"],
    )
