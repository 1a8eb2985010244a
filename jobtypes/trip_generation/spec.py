"""``trip_generation``: a day-by-day itinerary for a destination, its dates and the
traveller's style, interests and budget, with the budget broken down and balanced."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobkit.catalog import COMPUTE_RETRY, MODEL_RETRY, JobTypeSpec, StepSpec, number, obj, text
from jobkit.errors import FieldViolation
from jobkit.schema import NON_BLANK
from travel.budget import EUR_TO_CURRENCY, STYLES
from travel.dates import MAX_DAYS, date_violations

RESEARCH_DESTINATION = "research_destination"
PLAN_DAYS = "plan_days"
BALANCE_BUDGET = "balance_budget"
WRITE_OVERVIEW = "write_overview"
RENDER_ITINERARY = "render_itinerary"

#: An ISO date: the pattern fixes its start and the length its end (a "$" would read
#: differently in the schema gate; see jobkit.schema). Whether it is on the calendar (no
#: 30 February) is checked with the dates' order.
_ISO_DATE = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"


def _iso_date(description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "pattern": _ISO_DATE,
        "maxLength": 10,
        "format": "date",
        "description": description,
    }


INPUT_SCHEMA = obj(
    {
        "destination": text(200, required=True, description='e.g. "Barcelona, Spain".'),
        "dates": obj(
            {
                "start": _iso_date("First day, YYYY-MM-DD (with end)."),
                "end": _iso_date(
                    f"Last day, YYYY-MM-DD: on or after start, at most {MAX_DAYS} days in all."
                ),
                "duration": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_DAYS,
                    "description": "A number of days, instead of start and end.",
                },
            },
            description="Either {start, end} or {duration}.",
        ),
        "preferences": obj(
            {
                "style": {
                    "type": "string",
                    "enum": list(STYLES),
                    "description": "budget (hostels, street food, free sights), comfort "
                    "(mid-range hotels and restaurants) or luxury.",
                },
                # A plain number (the seed apps' ``budget: 5000``) is an amount in euros.
                "budget": {
                    "type": ["number", "object"],
                    "minimum": 1,
                    "maximum": 10_000_000,
                    "properties": {
                        "amount": number(
                            1, 10_000_000, description="The whole trip, per traveller."
                        ),
                        "currency": {
                            "type": "string",
                            "enum": list(EUR_TO_CURRENCY),
                            "description": "ISO 4217 code.",
                        },
                    },
                    "required": ["amount", "currency"],
                    "description": "What the trip may cost in all, per traveller: "
                    '{"amount": 1500, "currency": "EUR"}, or a number of euros.',
                },
                "interests": {
                    "type": "array",
                    "maxItems": 8,
                    "items": {
                        "type": "string",
                        "minLength": 1,
                        "pattern": NON_BLANK,
                        "maxLength": 60,
                    },
                    "description": 'Short words, e.g. ["food", "architecture"]: each themes '
                    "some of the days.",
                },
            },
            required=("style",),
        ),
    },
    required=("destination", "dates", "preferences"),
)


def check_dates(doc: Mapping[str, Any]) -> list[FieldViolation]:
    """What a JSON Schema cannot say about the dates: start and end or a duration, real
    calendar days, their order and span."""
    dates = doc.get("dates")
    if not isinstance(dates, Mapping):
        return []
    return [
        FieldViolation(f"input.dates.{name}" if name else "input.dates", why)
        for name, why in date_violations(dates)
    ]


SPEC = JobTypeSpec(
    name="trip_generation",
    description=(
        "A day-by-day itinerary: each day themed by your interests, with a morning, an "
        "afternoon and an evening, notes for each day and an overview, and a budget by "
        "category and by day, scaled to fit your budget if you give one. Input: "
        '{"destination": "Barcelona, Spain", "dates": {"start": "2026-05-04", '
        '"end": "2026-05-10"} or {"duration": 5}, "preferences": {"style": "budget" | '
        '"comfort" | "luxury", "budget": {"amount": 1500, "currency": "EUR"} or 1500 '
        '(euros; optional), "interests": ["food", "architecture"] (optional)}}.'
    ),
    steps=(
        StepSpec(
            RESEARCH_DESTINATION,
            "Researching your destination...",
            5,
            timeout_s=30,
            retry=COMPUTE_RETRY,
        ),
        StepSpec(PLAN_DAYS, "Planning your days...", 15, timeout_s=600, retry=MODEL_RETRY),
        StepSpec(BALANCE_BUDGET, "Balancing the budget...", 70, timeout_s=30, retry=COMPUTE_RETRY),
        StepSpec(
            WRITE_OVERVIEW, "Writing your trip overview...", 75, timeout_s=300, retry=MODEL_RETRY
        ),
        StepSpec(
            RENDER_ITINERARY,
            "Putting your itinerary together...",
            95,
            timeout_s=30,
            retry=COMPUTE_RETRY,
        ),
    ),
    input_schema=INPUT_SCHEMA,
    done_phase="Your itinerary is ready!",
    check_input=check_dates,
)
