"""``research``: a question split into sub-questions, each answered in turn, and a report
with a summary, one section per sub-question and a conclusion."""

from __future__ import annotations

from jobkit.catalog import MODEL_RETRY, JobTypeSpec, StepSpec, obj, text

PLAN = "plan"
INVESTIGATE = "investigate"
WRITE = "write"

#: Sub-questions per depth: 1 -> 3, 2 -> 5 (the default), 3 -> 7 (``insight.research``).
MIN_DEPTH, MAX_DEPTH = 1, 3

SPEC = JobTypeSpec(
    name="research",
    description=(
        "A research report on a question: the question split into sub-questions (each "
        "option of a comparison, each item of a list, then facets such as cost, risks, "
        "timeline and examples), each answered in turn, then a summary, one section per "
        "sub-question and a conclusion, as Markdown and as structured sections. Input: "
        '{"query": "...", "depth": 2 (optional, 1-3: 3, 5 or 7 sub-questions)}.'
    ),
    steps=(
        StepSpec(PLAN, "Planning the research...", 5, timeout_s=120, retry=MODEL_RETRY),
        # One model call per sub-question, up to seven, in sequence.
        StepSpec(
            INVESTIGATE, "Researching the sub-questions...", 15, timeout_s=900, retry=MODEL_RETRY
        ),
        StepSpec(WRITE, "Writing the report...", 85, timeout_s=300, retry=MODEL_RETRY),
    ),
    input_schema=obj(
        {
            "query": text(
                2_000, required=True, description="The question to research, in plain words."
            ),
            "depth": {
                "type": "integer",
                "minimum": MIN_DEPTH,
                "maximum": MAX_DEPTH,
                "description": "How deep: 1, 2 or 3 for 3, 5 or 7 sub-questions (default 2).",
            },
        },
        required=("query",),
    ),
    done_phase="Report ready!",
)
