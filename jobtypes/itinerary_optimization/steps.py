"""The steps of ``itinerary_optimization``. Everything but the explanation's prose is
deterministic (``travel.route``); with the ``local`` provider so is the prose.

Steps (see ``spec.py``)::

    measure_itinerary  each day's legs as given: km (great-circle), how each is travelled,
                       its fare and minutes
    optimise_days      day by day ("Optimising day 2 of 3..."): the order the goal prefers,
                       the first activity first, never worse than the order given
    explain_changes    why each day changed, through the model, and the result: the
                       re-ordered itinerary, the km and fares before and after, per day
                       and in all, and a Markdown report
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jobtypes.itinerary_optimization.spec import (
    EXPLAIN_CHANGES,
    MEASURE_ITINERARY,
    OPTIMISE_DAYS,
)
from stepkit import ChatMessage, ChatProvider, Handler, Prose, StepContext, system
from travel.geo import Point, distance_matrix
from travel.route import Route, optimise_day, route

#: Prompt id with its version; bump the version whenever the prompt's wording changes.
EXPLAIN_PROMPT = "itinerary_explanation@1"

_GOAL_WORDS = {"least_travel": "the least travel", "budget": "the least spent on getting around"}


def _points(day: Mapping[str, Any]) -> list[Point]:
    return [
        Point(float(a["location"]["lat"]), float(a["location"]["lon"])) for a in day["activities"]
    ]


def route_summary(found: Route, names: Sequence[str]) -> dict[str, Any]:
    """A route as a checkpoint and the result show it: km to the metre, fares to the cent,
    minutes whole, and each leg by the activities' names."""
    return {
        "order": list(found.order),
        "km": round(found.km, 3),
        "cost_eur": round(found.cost_eur, 2),
        "travel_min": round(found.minutes),
        "legs": [
            {
                "from": names[leg.start],
                "to": names[leg.end],
                "km": round(leg.km, 3),
                "mode": str(leg.mode),
                "cost_eur": round(leg.cost_eur, 2),
                "minutes": round(leg.minutes),
            }
            for leg in found.legs
        ],
    }


def _names(day: Mapping[str, Any]) -> list[str]:
    return [str(a["name"]) for a in day["activities"]]


async def _measure_itinerary(ctx: StepContext) -> dict[str, Any]:
    days = ctx.input["itinerary"]["days"]
    measured = []
    for day in days:
        given = route(distance_matrix(_points(day)), range(len(day["activities"])))
        measured.append(route_summary(given, _names(day)))
    return {"days": measured}


async def _optimise_days(ctx: StepContext) -> dict[str, Any]:
    days, goal = ctx.input["itinerary"]["days"], str(ctx.input["goal"])
    optimised = []
    for n, day in enumerate(days, 1):
        # The last report is the last day's, so it rides with the result: a phase a
        # watcher always sees, however fast the days go.
        await ctx.report_progress(
            (n - 1) * 100 // len(days), f"Optimising day {n} of {len(days)}..."
        )
        found = optimise_day(_points(day), goal)
        optimised.append(route_summary(found.after, _names(day)))
    return {"days": optimised}


def day_reason(n: int, goal: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """Why day ``n`` changed, or why it did not, in a sentence or two, from its routes."""
    if list(after["order"]) == list(before["order"]):
        stops = len(before["order"])
        if stops < 3:
            return f"Day {n}: {stops} stop{'' if stops == 1 else 's'}, nothing to re-order."
        return f"Day {n}: already the best order found for {_GOAL_WORDS[goal]}; left as it is."
    kept = {(leg["from"], leg["to"]) for leg in after["legs"]}
    kept |= {(b, a) for a, b in kept}
    dropped = [leg for leg in before["legs"] if (leg["from"], leg["to"]) not in kept]
    longest = max(dropped, key=lambda leg: leg["km"]) if dropped else None
    saved_km = before["km"] - after["km"]
    if goal == "budget":
        walks = sum(leg["mode"] == "walk" for leg in after["legs"])
        said = (
            f"Day {n}: {_eur(before['cost_eur'])} \u2192 {_eur(after['cost_eur'])} in fares, "
            f"{walks} of {len(after['legs'])} legs on foot"
        )
        said += f", {_km(abs(saved_km))} {'less' if saved_km >= 0 else 'more'} walking and riding."
    else:
        said = f"Day {n}: {_km(before['km'])} \u2192 {_km(after['km'])} ({_km(saved_km)} less)."
    if longest is not None:
        said += f" The {_km(longest['km'])} leg from {longest['from']} to {longest['to']} is gone."
    return said


def _km(km: float) -> str:
    return f"{km:.1f} km"


def _eur(amount: float) -> str:
    return f"{amount:.2f} EUR"


def totals(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The trip's km, fares and travel minutes before and after, and what was saved."""
    before_km = round(sum(d["km"] for d in before), 3)
    after_km = round(sum(d["km"] for d in after), 3)
    before_cost = round(sum(d["cost_eur"] for d in before), 2)
    after_cost = round(sum(d["cost_eur"] for d in after), 2)
    return {
        "before_km": before_km,
        "after_km": after_km,
        "saved_km": round(before_km - after_km, 3),
        "saved_percent": round(100 * (before_km - after_km) / before_km, 1) if before_km else 0.0,
        "before_cost_eur": before_cost,
        "after_cost_eur": after_cost,
        "saved_cost_eur": round(before_cost - after_cost, 2),
        "before_travel_min": sum(int(d["travel_min"]) for d in before),
        "after_travel_min": sum(int(d["travel_min"]) for d in after),
    }


def explanation_template(
    goal: str, total: Mapping[str, Any], reasons: Sequence[str], changed: int
) -> str:
    """The local provider's explanation: the totals, how many of the days changed, then
    each day's reason."""
    if goal == "budget":
        head = (
            f"Optimised for {_GOAL_WORDS[goal]}: {_eur(total['before_cost_eur'])} \u2192 "
            f"{_eur(total['after_cost_eur'])} in fares over the trip, with legs of up to "
            "1.5 km walked."
        )
    else:
        head = (
            f"Optimised for {_GOAL_WORDS[goal]}: {_km(total['before_km'])} \u2192 "
            f"{_km(total['after_km'])} over the trip ({total['saved_percent']:.0f}% less), "
            f"about {total['before_travel_min'] - total['after_travel_min']} minutes saved."
        )
    days = f"{changed} of {len(reasons)} day{'s' if len(reasons) != 1 else ''} changed."
    return "\n\n".join([f"{head} {days} Each day still starts at its first stop.", *reasons])


def explanation_messages(
    goal: str, total: Mapping[str, Any], reasons: Sequence[str]
) -> tuple[ChatMessage, ...]:
    facts = [
        f"Goal: {_GOAL_WORDS[goal]}",
        f"Whole trip: {_km(total['before_km'])} \u2192 {_km(total['after_km'])}, fares "
        f"{_eur(total['before_cost_eur'])} \u2192 {_eur(total['after_cost_eur'])}, travel "
        f"{total['before_travel_min']} \u2192 {total['after_travel_min']} minutes",
        *reasons,
    ]
    return (
        system("You are a travel planner explaining a re-ordered itinerary."),
        ChatMessage(
            "user",
            "In a short paragraph, explain to the traveller what changed in their days and "
            "why it helps, using the figures below as given.\n\n" + "\n".join(facts),
        ),
    )


def render_report(
    goal: str,
    optimised: Sequence[Mapping[str, Any]],
    days: Sequence[Mapping[str, Any]],
    total: Mapping[str, Any],
    explanation: str,
) -> str:
    """The optimised days as Markdown: the totals, the explanation, each day's stops in
    their new order with its km before and after."""
    lines = [
        "# Optimised itinerary",
        "",
        f"**Goal:** {_GOAL_WORDS[goal]} \u00b7 **Travel:** {_km(total['before_km'])} \u2192 "
        f"{_km(total['after_km'])} \u00b7 **Fares:** {_eur(total['before_cost_eur'])} \u2192 "
        f"{_eur(total['after_cost_eur'])}",
        "",
        explanation,
        "",
    ]
    for day, summary in zip(optimised, days, strict=True):
        label = f": {day['label']}" if day.get("label") else ""
        lines += [f"## Day {summary['day']}{label}", ""]
        lines += [f"{n}. {a['name']}" for n, a in enumerate(day["activities"], 1)]
        lines += [
            "",
            f"{_km(summary['before']['km'])} \u2192 {_km(summary['after']['km'])}",
            "",
        ]
    return "\n".join(lines)


def _explain_changes(provider: ChatProvider) -> Handler:
    async def handler(ctx: StepContext) -> dict[str, Any]:
        goal = str(ctx.input["goal"])
        given = ctx.input["itinerary"]["days"]
        before = list(ctx.checkpoint(MEASURE_ITINERARY)["days"])
        after = list(ctx.checkpoint(OPTIMISE_DAYS)["days"])
        reasons = [
            day_reason(n, goal, b, a) for n, (b, a) in enumerate(zip(before, after, strict=True), 1)
        ]
        total = totals(before, after)

        changed = sum(
            list(a["order"]) != list(b["order"]) for b, a in zip(before, after, strict=True)
        )

        async def offline() -> str:
            return explanation_template(goal, total, reasons, changed)

        explanation = await Prose.for_step(provider, ctx).ask(
            EXPLAIN_PROMPT, explanation_messages(goal, total, reasons), offline, max_tokens=500
        )
        optimised, days = [], []
        for n, (day, b, a) in enumerate(zip(given, before, after, strict=True), 1):
            # The day as given (its label, anything else the client keeps there), re-ordered.
            activities = [dict(day["activities"][int(i)]) for i in a["order"]]
            optimised.append({**day, "activities": activities})
            days.append({
                "day": n,
                "order": [int(i) for i in a["order"]],
                "changed": list(a["order"]) != list(b["order"]),
                "before": {k: b[k] for k in ("km", "cost_eur", "travel_min")},
                "after": {k: a[k] for k in ("km", "cost_eur", "travel_min")},
                "saved_km": round(b["km"] - a["km"], 3),
                "saved_cost_eur": round(b["cost_eur"] - a["cost_eur"], 2),
                "legs": list(a["legs"]),
                "reason": reasons[n - 1],
            })  # fmt: skip
        # The last step's output is the job's result.
        return {
            "goal": goal,
            "itinerary": {"days": optimised},
            "days": days,
            "total": total,
            "explanation": explanation,
            "report_markdown": render_report(goal, optimised, days, total, explanation),
        }

    return handler


def handlers(provider: ChatProvider) -> dict[str, Handler]:
    return {
        MEASURE_ITINERARY: _measure_itinerary,
        OPTIMISE_DAYS: _optimise_days,
        EXPLAIN_CHANGES: _explain_changes(provider),
    }
