"""The steps of ``trip_generation``. Everything but the prose is deterministic; with the
``local`` provider so is the prose.

Steps (see ``spec.py``)::

    research_destination  the place, the trip's days and dates, the destination's price
                          level, and a theme for each day from the interests
    plan_days             day by day ("Planning day 3 of 7..."): morning, afternoon and
                          evening from the day's theme, and the day's note, written
                          through the model
    balance_budget        the style's budget by category and by day, scaled to fit the
                          stated budget, with what is over or under (``travel.budget``)
    write_overview        the trip's overview, through the model
    render_itinerary      the result, with a Markdown itinerary
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from jobtypes.trip_generation.spec import (
    BALANCE_BUDGET,
    PLAN_DAYS,
    RENDER_ITINERARY,
    RESEARCH_DESTINATION,
    WRITE_OVERVIEW,
)
from stepkit import (
    ChatMessage,
    ChatProvider,
    Handler,
    PermanentStepError,
    Prose,
    StepContext,
    listing,
    system,
)
from travel.budget import CATEGORIES, money, plan_budget, to_minor
from travel.dates import date_violations, trip_dates
from travel.days import Theme, day_themes, plan_day, tip_for

#: Prompt ids with their versions; bump a version whenever its prompt's wording changes.
DAY_NOTE_PROMPT = "trip_day_note@1"
OVERVIEW_PROMPT = "trip_overview@1"

#: The longest place name a phase shows ("Researching Barcelona...").
_PHASE_PLACE_CHARS = 40

#: Words of advice on each style's pace, for the offline day notes, one a day in turn.
_PACE = {
    "budget": (
        "Walk between the sights and picnic at lunch: the money goes further on foot.",
        "Many museums are free on some days or evenings: worth checking before you go.",
        "A day or multi-day transport pass pays for itself after a few rides.",
    ),
    "comfort": (
        "Book the morning's sight ahead and keep the afternoon flexible.",
        "A sit-down lunch is the day's break: book one if the place is popular.",
        "Take a taxi back at night rather than a long last walk.",
    ),
    "luxury": (
        "A private guide or driver turns the day's transfers into part of the fun.",
        "Ask the hotel's concierge to book the evening's table.",
        "Early-access or private visits make even the busiest sights calm.",
    ),
}


def place_of(destination: str) -> str:
    """The place as a traveller says it: the destination before its first comma."""
    return " ".join(destination.split(",", 1)[0].split()) or " ".join(destination.split())


def day_label(n: int, day: date | None) -> str:
    """The day's heading: "Day 3", or "Day 3 (Wednesday 6 May)" when the trip has dates."""
    return f"Day {n}" if day is None else f"Day {n} ({day:%A} {day.day} {day:%B})"


async def _research_destination(ctx: StepContext) -> dict[str, Any]:
    destination = str(ctx.input["destination"]).strip()
    place = place_of(destination)
    await ctx.report_progress(50, f"Researching {place[:_PHASE_PLACE_CHARS]}...")
    dates = dict(ctx.input["dates"])
    if date_violations(dates):
        # job_api refuses such dates; a job from before that check cannot be planned.
        raise PermanentStepError("INVALID_DATES", "the trip's dates cannot be planned")
    trip = trip_dates(dates)
    preferences = ctx.input["preferences"]
    interests = [str(i) for i in preferences.get("interests") or ()]
    themes = day_themes(interests, trip.days)
    days = []
    for n, theme in enumerate(themes, 1):
        day = trip.day_date(n)
        days.append({
            "day": n,
            "date": None if day is None else day.isoformat(),
            "label": day_label(n, day),
            "theme_key": theme.key,
        })  # fmt: skip
    return {
        "destination": destination,
        "place": place,
        "days": days,
        "start": None if trip.start is None else trip.start.isoformat(),
        "end": None if trip.end is None else trip.end.isoformat(),
        "style": str(preferences["style"]),
        "interests": interests,
    }


def day_note_template(day: Mapping[str, Any], theme: Theme, days: int, style: str) -> str:
    """The local provider's note for a day: what it is given to, a tip for its theme, the
    first day's arrival and the last day's departure, and a word on the style's pace."""
    n = int(day["day"])
    note = [f"{day['label']} is given to {theme.title.lower()}.", tip_for(theme)]
    if n == 1 and days > 1:
        note.append("The afternoon stays close to your lodging, for a gentle start.")
    if n == days and days > 1:
        note.append("Leave your luggage at the lodging or in a locker for the last hours.")
    note.append(_PACE[style][(n - 1) % len(_PACE[style])])
    return " ".join(note)


def day_note_messages(place: str, day: Mapping[str, Any], style: str, days: int) -> tuple[
    ChatMessage, ...
]:  # fmt: skip
    slots = day["slots"]
    facts = [
        f"Destination: {place}",
        f"{day['label']} of {days}, theme: {day['theme']}",
        f"Travel style: {style}",
        f"Morning: {slots['morning']}",
        f"Afternoon: {slots['afternoon']}",
        f"Evening: {slots['evening']}",
    ]
    return (
        system("You are a travel writer who plans city trips."),
        ChatMessage(
            "user",
            "In two or three sentences, write a note for this day of the trip: what makes "
            "it worth doing in this order, and one practical tip for the travel style. "
            "Name no opening hours, prices or businesses.\n\n" + "\n".join(facts),
        ),
    )


def _plan_days(provider: ChatProvider) -> Handler:
    async def handler(ctx: StepContext) -> dict[str, Any]:
        research = ctx.checkpoint(RESEARCH_DESTINATION)
        place, style = str(research["place"]), str(research["style"])
        themes = {t.key: t for t in day_themes(list(research["interests"]), len(research["days"]))}
        prose = Prose.for_step(provider, ctx)
        total, planned = len(research["days"]), []
        seen: dict[str, int] = {}
        for entry in research["days"]:
            n = int(entry["day"])
            # The last report is the last day's, so it rides with the result: a phase a
            # watcher always sees, however fast the days are planned.
            await ctx.report_progress((n - 1) * 100 // total, f"Planning day {n} of {total}...")
            theme = themes[str(entry["theme_key"])]
            day = {**plan_day(n, total, theme, seen.get(theme.key, 0), place), **entry}
            seen[theme.key] = seen.get(theme.key, 0) + 1

            async def offline(day: dict[str, Any] = day, theme: Theme = theme) -> str:
                return day_note_template(day, theme, total, style)

            day["note"] = await prose.ask(
                DAY_NOTE_PROMPT, day_note_messages(place, day, style, total), offline,
                max_tokens=200,
            )  # fmt: skip
            planned.append(day)
        return {"days": planned}

    return handler


def stated_budget(preferences: Mapping[str, Any]) -> tuple[str, int | None]:
    """The input's budget as a currency and an amount in its minor units (none stated:
    euros, no amount); a bare number is euros."""
    stated = preferences.get("budget")
    if stated is None:
        return "EUR", None
    if isinstance(stated, Mapping):
        return str(stated["currency"]), to_minor(stated["amount"])
    return "EUR", to_minor(stated)


async def _balance_budget(ctx: StepContext) -> dict[str, Any]:
    research = ctx.checkpoint(RESEARCH_DESTINATION)
    currency, amount = stated_budget(ctx.input["preferences"])
    budget = plan_budget(
        str(research["style"]),
        len(research["days"]),
        str(research["destination"]),
        currency,
        amount,
    )
    return {"budget": budget.to_dict()}


def budget_sentence(budget: Mapping[str, Any]) -> str:
    """What the budget comes to, in a sentence."""
    currency, status = budget["currency"], budget["status"]
    total = f"{money(to_minor(budget['total']))} {currency}"
    if status == "estimate":
        return f"In {budget['style']} style it comes to about {total} per traveller."
    stated = f"{money(to_minor(budget['stated']))} {currency}"
    difference = f"{money(abs(to_minor(budget['difference'])))} {currency}"
    if status == "within":
        return (
            f"In {budget['style']} style it comes to about {total}, within your {stated}: "
            f"{difference} is left for the unexpected."
        )
    if status == "scaled":
        estimate = f"{money(to_minor(budget['estimate']))} {currency}"
        return (
            f"{budget['style'].capitalize()} style would cost about {estimate}; the plan is "
            f"scaled to your {stated}, keeping every category above the bare minimum."
        )
    return (
        f"Even at the cheapest (hostels, street food, free sights) it comes to about {total}: "
        f"{difference} more than your {stated}. Fewer days or a cheaper destination would fit."
    )


def overview_template(
    research: Mapping[str, Any], days: Sequence[Mapping[str, Any]], budget: Mapping[str, Any]
) -> str:
    """The local provider's overview: the trip's length and dates, its themes, and what
    it costs."""
    count = len(days)
    length = f"{count} day{'s' if count != 1 else ''} in {research['place']}"
    when = ""
    if research["start"]:
        first, last = date.fromisoformat(research["start"]), date.fromisoformat(research["end"])
        when = f", from {first:%A} {first.day} {first:%B} to {last:%A} {last.day} {last:%B %Y}"
    themes = list(dict.fromkeys(str(d["theme"]).lower() for d in days))
    return (
        f"{length}{when}, planned in {research['style']} style. The days cover "
        f"{listing(themes)}, with a morning, an afternoon and an evening each, so there is "
        f"time to rest between them. {budget_sentence(budget)}"
    )


def overview_messages(
    research: Mapping[str, Any], days: Sequence[Mapping[str, Any]], budget: Mapping[str, Any]
) -> tuple[ChatMessage, ...]:
    facts = [
        f"Destination: {research['place']}",
        f"Days: {len(days)}"
        + (f", from {research['start']} to {research['end']}" if research["start"] else ""),
        f"Travel style: {research['style']}",
        *(f"{d['label']}: {d['theme']}" for d in days),
        f"Budget: {budget_sentence(budget)}",
    ]
    return (
        system("You are a travel writer who plans city trips."),
        ChatMessage(
            "user",
            "In three or four sentences, write the overview of this trip for the traveller: "
            "its rhythm, its highlights and what the budget allows. Keep every figure as "
            "given.\n\n" + "\n".join(facts),
        ),
    )


def _write_overview(provider: ChatProvider) -> Handler:
    async def handler(ctx: StepContext) -> dict[str, Any]:
        research = ctx.checkpoint(RESEARCH_DESTINATION)
        days = list(ctx.checkpoint(PLAN_DAYS)["days"])
        budget = ctx.checkpoint(BALANCE_BUDGET)["budget"]

        async def offline() -> str:
            return overview_template(research, days, budget)

        overview = await Prose.for_step(provider, ctx).ask(
            OVERVIEW_PROMPT, overview_messages(research, days, budget), offline, max_tokens=400
        )
        return {"overview": overview}

    return handler


def render_itinerary(
    research: Mapping[str, Any],
    days: Sequence[Mapping[str, Any]],
    budget: Mapping[str, Any],
    overview: str,
) -> str:
    """The itinerary as Markdown: the overview, each day's slots and note, the budget by
    category and by day."""
    currency = budget["currency"]
    lines = [f"# {len(days)} days in {research['place']}", "", overview, ""]
    for day in days:
        slots = day["slots"]
        lines += [
            f"## {day['label']}: {day['theme']}",
            "",
            f"- **Morning:** {slots['morning']}",
            f"- **Afternoon:** {slots['afternoon']}",
            f"- **Evening:** {slots['evening']}",
            "",
            str(day["note"]),
            "",
        ]
    lines += [f"## Budget ({currency}, per traveller)", ""]
    for row in budget["categories"]:
        count = int(budget["nights"] if row["per"] == "night" else budget["days"])
        line = (
            f"- **{str(row['category']).capitalize()}:** {money(to_minor(row['rate']))} per "
            f"{row['per']} \u00d7 {count} {row['per']}{'' if count == 1 else 's'} = "
            f"{money(to_minor(row['estimate']))}"
        )
        if row["planned"] != row["estimate"]:
            line += f", planned {money(to_minor(row['planned']))}"
        lines.append(line)
    lines += [f"- **Total:** {money(to_minor(budget['total']))}", "", budget_sentence(budget), ""]
    lines += [
        "| day | " + " | ".join(CATEGORIES) + " | total |",
        "|---|" + "---:|" * (len(CATEGORIES) + 1),
    ]
    for row in budget["per_day"]:
        cells = [money(to_minor(row[c])) for c in (*CATEGORIES, "total")]
        lines.append(f"| {int(row['day'])} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


async def _render_itinerary(ctx: StepContext) -> dict[str, Any]:
    research = ctx.checkpoint(RESEARCH_DESTINATION)
    planned = list(ctx.checkpoint(PLAN_DAYS)["days"])
    budget = dict(ctx.checkpoint(BALANCE_BUDGET)["budget"])
    overview = str(ctx.checkpoint(WRITE_OVERVIEW)["overview"])
    per_day = {int(row["day"]): row for row in budget["per_day"]}
    days = [
        {
            "day": int(day["day"]),
            "date": day["date"],
            "theme": day["theme"],
            "slots": dict(day["slots"]),
            "note": day["note"],
            "budget": {k: v for k, v in per_day[int(day["day"])].items() if k != "day"},
        }
        for day in planned
    ]
    # The last step's output is the job's result.
    return {
        "destination": research["destination"],
        "start": research["start"],
        "end": research["end"],
        "style": research["style"],
        "overview": overview,
        "days": days,
        "budget": budget,
        "report_markdown": render_itinerary(research, planned, budget, overview),
    }


def handlers(provider: ChatProvider) -> dict[str, Handler]:
    return {
        RESEARCH_DESTINATION: _research_destination,
        PLAN_DAYS: _plan_days(provider),
        BALANCE_BUDGET: _balance_budget,
        WRITE_OVERVIEW: _write_overview(provider),
        RENDER_ITINERARY: _render_itinerary,
    }
