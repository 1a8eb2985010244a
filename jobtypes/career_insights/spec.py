"""``career_insights``: a career field's market, where the user's role sits on its ladder,
the user's skills against the ones in demand, and next steps."""

from __future__ import annotations

from jobkit.catalog import COMPUTE_RETRY, MODEL_RETRY, JobTypeSpec, StepSpec, obj, text, texts

READ_MARKET = "read_market"
MATCH_SKILLS = "match_skills"
ADVISE = "advise"

SPEC = JobTypeSpec(
    name="career_insights",
    description=(
        "A view of a career field: the skills its employers ask for most and the rising "
        "ones, the field's ladder of roles with the next one from the current role (or the "
        "way in, when changing fields), the user's skills matched against the demand (gaps "
        "first), next steps and advice. Input: "
        '{"domain": "Data Engineering", "current_role": "..." (optional), '
        '"skills": [...] (optional)}.'
    ),
    steps=(
        StepSpec(READ_MARKET, "Reading the job market...", 10, timeout_s=30, retry=COMPUTE_RETRY),
        StepSpec(
            MATCH_SKILLS,
            "Matching your skills to the demand...",
            30,
            timeout_s=30,
            retry=COMPUTE_RETRY,
        ),
        StepSpec(ADVISE, "Writing your career advice...", 50, timeout_s=300, retry=MODEL_RETRY),
    ),
    input_schema=obj(
        {
            "domain": text(
                200, required=True, description='The field, e.g. "Data Engineering", "UX".'
            ),
            "current_role": text(200, description='e.g. "Software Engineer".'),
            "skills": texts(200, description='The user\'s skills, e.g. ["Python", "SQL"].'),
        },
        required=("domain",),
    ),
    done_phase="Career insights ready!",
)
