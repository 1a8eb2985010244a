"""``concierge_query``: a traveller's question, understood (what kind of request, what it
names, what the trip adds) and answered."""

from __future__ import annotations

from jobkit.catalog import (
    COMPUTE_RETRY,
    MODEL_RETRY,
    JobTypeSpec,
    StepSpec,
    number,
    obj,
    text,
    texts,
)

UNDERSTAND = "understand"
ANSWER = "answer"

#: The trip a question is asked on: every member optional, others allowed (a client may
#: know more about the trip than this lists), each one checked when given.
CONTEXT_SCHEMA = obj(
    {
        "destination": text(200, description='Where the trip goes, e.g. "Lisbon".'),
        "dates": obj(
            {"start": text(64), "end": text(64)},
            description='The trip\'s dates, e.g. {"start": "2026-05-01", "end": "2026-05-06"}.',
        ),
        "party": obj(
            {
                "adults": number(0, 100),
                "children": number(0, 100),
            },
            description="Who is travelling.",
        ),
        "accommodation": text(500, description="Where the party stays (hotel, area)."),
        "interests": texts(30, description='e.g. ["food", "museums"].'),
        "budget": text(100, description='e.g. "mid-range", "under 50 EUR a head".'),
        "dietary": text(200, description='e.g. "vegetarian", "no nuts".'),
        "mobility": text(200, description='e.g. "wheelchair", "pushchair".'),
        "transport": text(100, description='How the party gets around, e.g. "public transport".'),
        "language": text(64),
        "nationality": text(64),
    },
    description="What is known about the trip; every member is optional.",
)

SPEC = JobTypeSpec(
    name="concierge_query",
    description=(
        "A concierge's answer to a traveller's question: the question classified (booking, "
        "directions, opening hours, recommendation or general), the day, time, party and "
        "places it names and the trip context that matters pulled out, then an answer with "
        "what is still needed to act on it. Input: "
        '{"question": "...", "context": {"destination": ..., "dates": {...}, '
        '"party": {...}, ...} (optional)}.'
    ),
    steps=(
        StepSpec(
            UNDERSTAND, "Understanding your question...", 10, timeout_s=30, retry=COMPUTE_RETRY
        ),
        StepSpec(ANSWER, "Finding an answer...", 30, timeout_s=180, retry=MODEL_RETRY),
    ),
    input_schema=obj(
        {
            "question": text(2_000, required=True, description="The traveller's question."),
            "context": CONTEXT_SCHEMA,
        },
        required=("question",),
    ),
    done_phase="Answer ready!",
)
