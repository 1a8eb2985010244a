"""``cv_tailoring``: a résumé tailored to a job posting, with a cover letter and a preview.

The CV and the cover letter are written at the same time (each needs only the posting's
analysis); with ``input.review: true`` the CV's step, once the CV is drafted, waits for its
owner to approve or edit it, and the preview is rendered from the CV as approved.
"""

from __future__ import annotations

from typing import Any

from jobkit.catalog import JobTypeSpec, StepSpec, obj
from resume.schema import POSTING_SCHEMA, RESUME_SCHEMA

LOAD_PROFILE = "load_profile"
ANALYZE_POSTING = "analyze_posting"
TAILOR_CV = "tailor_cv"
WRITE_COVER_LETTER = "write_cover_letter"
REVIEW_CV = "review_cv"
RENDER_PREVIEW = "render_preview"

DESCRIPTION = (
    "Tailors a résumé to a job posting: match score, matched and missing skills, a "
    "rewritten CV, a cover letter and a Markdown preview. Input: "
    '{"resume": {"name", "skills", "experience", ...}, '
    '"job_posting": {"title", "company", "description", "requirements"}, '
    '"review": false}. With "review": true the job waits (WAITING_INPUT) once the CV is '
    'tailored, for SubmitInput on step tailor_cv: {"approved": true} or '
    '{"tailored_cv": {...only the members edited...}}.'
)

INPUT_SCHEMA = obj(
    {
        "resume": RESUME_SCHEMA,
        "job_posting": POSTING_SCHEMA,
        "review": {
            "type": "boolean",
            "description": "Pause once the CV is tailored, for you to approve or edit it.",
        },
    },
    required=("resume", "job_posting"),
)

#: What the review accepts: an approval, or the CV as its owner edited it: whole, or only
#: the members changed (applied to the draft as a JSON Merge Patch: ``inputs.answered``).
REVIEW_ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "approved": {"const": True, "description": "Use the tailored CV as it is."},
        "tailored_cv": {
            **{k: v for k, v in RESUME_SCHEMA.items() if k != "required"},
            "description": "The tailored CV as edited: the members given replace the draft's.",
        },
    },
    "anyOf": [{"required": ["approved"]}, {"required": ["tailored_cv"]}],
    "additionalProperties": False,
}

#: Each step's phase and timeout, the same in every version: versions differ in the
#: steps' marks and in what each waits for.
_PHASES_AND_TIMEOUTS: dict[str, tuple[str, float]] = {
    LOAD_PROFILE: ("Loading user profile...", 30),
    ANALYZE_POSTING: ("Reading the job posting...", 60),
    TAILOR_CV: ("Generating tailored CV...", 300),
    WRITE_COVER_LETTER: ("Generating cover letter...", 300),
    REVIEW_CV: ("Checking the tailored CV...", 30),
    RENDER_PREVIEW: ("Rendering preview...", 60),
}
_WAITING_FOR_REVIEW = "Waiting for your review of the tailored CV..."


def _step(name: str, mark: int, after: tuple[str, ...] | None = None, **more: Any) -> StepSpec:
    phase, timeout_s = _PHASES_AND_TIMEOUTS[name]
    return StepSpec(name, phase, mark, timeout_s=timeout_s, after=after, **more)


_LOAD = _step(LOAD_PROFILE, 10)
_ANALYZE = _step(ANALYZE_POSTING, 25)

#: Version 1, a straight line: kept while jobs created with it may still run.
V1 = JobTypeSpec(
    name="cv_tailoring",
    description=DESCRIPTION,
    steps=(
        _LOAD,
        _ANALYZE,
        _step(TAILOR_CV, 50),
        _step(WRITE_COVER_LETTER, 75),
        _step(RENDER_PREVIEW, 95),
    ),
    input_schema=INPUT_SCHEMA,
    done_phase="Preview ready!",
)

#: Version 2: the CV and the letter in parallel, then a step of its own for the review.
V2 = JobTypeSpec(
    name="cv_tailoring",
    description=DESCRIPTION,
    steps=(
        _LOAD,
        _ANALYZE,
        _step(TAILOR_CV, 40, after=(ANALYZE_POSTING,)),
        _step(WRITE_COVER_LETTER, 65, after=(ANALYZE_POSTING,)),
        _step(REVIEW_CV, 90, after=(TAILOR_CV,), waiting_phase=_WAITING_FOR_REVIEW),
        _step(RENDER_PREVIEW, 92, after=(REVIEW_CV, WRITE_COVER_LETTER)),
    ),
    input_schema=INPUT_SCHEMA,
    done_phase="Preview ready!",
    version=2,
)

#: The seed's five steps and marks (10, 25, 50, 75, 95 %); the CV and the letter each
#: need only the analysis, so they run in parallel ("Generating tailored CV and cover
#: letter..."), and the preview waits for both. The review, when asked for, is the CV
#: step's own wait, with no step of its own, so the steps read as the seed's.
SPEC = JobTypeSpec(
    name="cv_tailoring",
    description=DESCRIPTION,
    steps=(
        _LOAD,
        _ANALYZE,
        _step(TAILOR_CV, 50, after=(ANALYZE_POSTING,), waiting_phase=_WAITING_FOR_REVIEW),
        _step(WRITE_COVER_LETTER, 75, after=(ANALYZE_POSTING,)),
        _step(RENDER_PREVIEW, 95, after=(TAILOR_CV, WRITE_COVER_LETTER)),
    ),
    input_schema=INPUT_SCHEMA,
    done_phase="Preview ready!",
    version=3,
    previous=(V1, V2),
)
