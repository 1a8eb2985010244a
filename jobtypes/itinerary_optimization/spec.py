"""``itinerary_optimization``: a trip's days with each day's activities re-ordered to
travel less, or to spend less getting around, and what that saves."""

from __future__ import annotations

from jobkit.catalog import COMPUTE_RETRY, MODEL_RETRY, JobTypeSpec, StepSpec, number, obj, text
from travel.route import GOALS

MEASURE_ITINERARY = "measure_itinerary"
OPTIMISE_DAYS = "optimise_days"
EXPLAIN_CHANGES = "explain_changes"

#: At most this many days, and activities a day.
MAX_DAYS = 30
MAX_ACTIVITIES_PER_DAY = 25

ACTIVITY_SCHEMA = obj(
    {
        "name": text(200, required=True, description='e.g. "Sagrada Família".'),
        "location": obj(
            {
                "lat": number(-90, 90, description="Latitude in degrees, north positive."),
                "lon": number(-180, 180, description="Longitude in degrees, east positive."),
            },
            required=("lat", "lon"),
        ),
        "duration_min": number(
            0,
            24 * 60,
            description="Time spent there, in minutes: kept with the activity; the order "
            "does not depend on it, so it may be left out.",
        ),
    },
    required=("name", "location"),
)

INPUT_SCHEMA = obj(
    {
        "itinerary": obj(
            {
                "days": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_DAYS,
                    "description": "The trip's days in order.",
                    "items": obj(
                        {
                            "label": text(200, description='e.g. "Gaudí and the hills".'),
                            "activities": {
                                "type": "array",
                                "maxItems": MAX_ACTIVITIES_PER_DAY,
                                "items": ACTIVITY_SCHEMA,
                                "description": "The day's activities; the first is where "
                                "the day starts (the hotel, a booked tour) and stays first.",
                            },
                        },
                        required=("activities",),
                    ),
                }
            },
            required=("days",),
        ),
        "goal": {
            "type": "string",
            "enum": list(GOALS),
            "description": "least_travel: the fewest km. budget: the least spent getting "
            "around (walks of up to 1.5 km are free, then a flat public transport fare up "
            "to 12 km, a taxi beyond), the shorter way on a tie.",
        },
    },
    required=("itinerary", "goal"),
)

SPEC = JobTypeSpec(
    name="itinerary_optimization",
    description=(
        "Each day's activities re-ordered (the first stays first) for the least travel or "
        "the least spent on getting around, by nearest neighbour then 2-opt and or-opt on "
        "great-circle distances, with the km and the fares before and after, per day and in "
        "all, and why. Input: "
        '{"itinerary": {"days": [{"label": "..." (optional), "activities": [{"name": "...", '
        '"location": {"lat": 41.40, "lon": 2.17}, "duration_min": 90 (optional)}, ...]}, '
        "...]}, "
        '"goal": "least_travel" | "budget"}.'
    ),
    steps=(
        StepSpec(
            MEASURE_ITINERARY,
            "Measuring the distances between your stops...",
            5,
            timeout_s=30,
            retry=COMPUTE_RETRY,
        ),
        StepSpec(OPTIMISE_DAYS, "Optimising your days...", 20, timeout_s=120, retry=COMPUTE_RETRY),
        StepSpec(
            EXPLAIN_CHANGES, "Explaining the changes...", 70, timeout_s=300, retry=MODEL_RETRY
        ),
    ),
    input_schema=INPUT_SCHEMA,
    done_phase="Your days are optimised!",
)
