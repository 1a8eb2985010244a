"""``skill_gap_analysis``: the skills a target role needs, the ones a résumé lacks, and a
learning plan."""

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
from resume.schema import RESUME_SCHEMA

LOAD_RESUME = "load_resume"
MAP_ROLE_SKILLS = "map_role_skills"
FIND_GAPS = "find_gaps"
WRITE_LEARNING_PLAN = "write_learning_plan"
RENDER_REPORT = "render_report"

SPEC = JobTypeSpec(
    name="skill_gap_analysis",
    description=(
        "From a résumé and a target role: the role's core and nice-to-have skills, which "
        "the résumé shows, which are missing, and a week-by-week learning plan. Input: "
        '{"resume": {...}, "target_role": "Data Engineer", "target_skills": [...] '
        '(optional, added to the role\'s), "hours_per_week": 6 (optional)}.'
    ),
    steps=(
        StepSpec(LOAD_RESUME, "Reading your résumé...", 10, timeout_s=30, retry=COMPUTE_RETRY),
        StepSpec(
            MAP_ROLE_SKILLS,
            "Mapping the skills of the target role...",
            20,
            timeout_s=30,
            retry=COMPUTE_RETRY,
        ),
        StepSpec(FIND_GAPS, "Finding your skill gaps...", 35, timeout_s=60, retry=COMPUTE_RETRY),
        StepSpec(
            WRITE_LEARNING_PLAN,
            "Writing your learning plan...",
            50,
            timeout_s=300,
            retry=MODEL_RETRY,
        ),
        StepSpec(RENDER_REPORT, "Rendering report...", 90, timeout_s=60, retry=COMPUTE_RETRY),
    ),
    input_schema=obj(
        {
            "resume": RESUME_SCHEMA,
            "target_role": text(200, required=True, description='e.g. "Data Engineer".'),
            "target_skills": texts(100, description="Added to the role's own skills."),
            "hours_per_week": number(1, 80, description="Study time (default 6)."),
        },
        required=("resume", "target_role"),
    ),
    done_phase="Learning plan ready!",
)
