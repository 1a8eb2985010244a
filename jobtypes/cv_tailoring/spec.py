"""``cv_tailoring``: a résumé tailored to a job posting, with a cover letter and a preview."""

from __future__ import annotations

from jobkit.catalog import JobTypeSpec, StepSpec, obj
from resume.schema import POSTING_SCHEMA, RESUME_SCHEMA

LOAD_PROFILE = "load_profile"
ANALYZE_POSTING = "analyze_posting"
TAILOR_CV = "tailor_cv"
WRITE_COVER_LETTER = "write_cover_letter"
RENDER_PREVIEW = "render_preview"

SPEC = JobTypeSpec(
    name="cv_tailoring",
    description=(
        "Tailors a résumé to a job posting: match score, matched and missing skills, a "
        "rewritten CV, a cover letter and a Markdown preview. Input: "
        '{"resume": {"name", "skills", "experience", ...}, '
        '"job_posting": {"title", "company", "description", "requirements"}}.'
    ),
    steps=(
        StepSpec(LOAD_PROFILE, "Loading user profile...", 10, timeout_s=30),
        StepSpec(ANALYZE_POSTING, "Reading the job posting...", 25, timeout_s=60),
        StepSpec(TAILOR_CV, "Generating tailored CV...", 50, timeout_s=300),
        StepSpec(WRITE_COVER_LETTER, "Generating cover letter...", 75, timeout_s=300),
        StepSpec(RENDER_PREVIEW, "Rendering preview...", 95, timeout_s=60),
    ),
    input_schema=obj(
        {"resume": RESUME_SCHEMA, "job_posting": POSTING_SCHEMA},
        required=("resume", "job_posting"),
    ),
    done_phase="Preview ready!",
)
