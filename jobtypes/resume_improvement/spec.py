"""``resume_improvement``: suggestions for a résumé, no posting needed."""

from __future__ import annotations

from jobkit.catalog import COMPUTE_RETRY, MODEL_RETRY, JobTypeSpec, StepSpec, obj
from resume.schema import RESUME_SCHEMA

LOAD_RESUME = "load_resume"
ANALYZE_RESUME = "analyze_resume"
WRITE_SUGGESTIONS = "write_suggestions"
RENDER_REPORT = "render_report"

SPEC = JobTypeSpec(
    name="resume_improvement",
    description=(
        "Suggestions for a résumé, no posting needed: weak verbs, bullets without figures, "
        "length, missing sections and unproven skills, each with a suggested fix, an overview "
        "and a Markdown report. Input: "
        '{"resume": {"name", "skills", "experience", ...}} (as for cv_tailoring).'
    ),
    steps=(
        StepSpec(LOAD_RESUME, "Reading your résumé...", 10, timeout_s=30, retry=COMPUTE_RETRY),
        StepSpec(
            ANALYZE_RESUME,
            "Checking verbs, figures, length and sections...",
            25,
            timeout_s=60,
            retry=COMPUTE_RETRY,
        ),
        StepSpec(WRITE_SUGGESTIONS, "Writing suggestions...", 45, timeout_s=300, retry=MODEL_RETRY),
        StepSpec(RENDER_REPORT, "Rendering report...", 90, timeout_s=60, retry=COMPUTE_RETRY),
    ),
    input_schema=obj({"resume": RESUME_SCHEMA}, required=("resume",)),
    done_phase="Suggestions ready!",
)
