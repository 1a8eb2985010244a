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

_LOAD = StepSpec(LOAD_PROFILE, "Loading user profile...", 10, timeout_s=30)
_ANALYZE = StepSpec(ANALYZE_POSTING, "Reading the job posting...", 25, timeout_s=60)

#: Version 1, a straight line: kept while jobs created with it may still run.
V1 = JobTypeSpec(
    name="cv_tailoring",
    description=DESCRIPTION,
    steps=(
        _LOAD,
        _ANALYZE,
        StepSpec(TAILOR_CV, "Generating tailored CV...", 50, timeout_s=300),
        StepSpec(WRITE_COVER_LETTER, "Generating cover letter...", 75, timeout_s=300),
        StepSpec(RENDER_PREVIEW, "Rendering preview...", 95, timeout_s=60),
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
        StepSpec(
            TAILOR_CV, "Generating tailored CV...", 40, timeout_s=300, after=(ANALYZE_POSTING,)
        ),
        StepSpec(
            WRITE_COVER_LETTER,
            "Generating cover letter...",
            65,
            timeout_s=300,
            after=(ANALYZE_POSTING,),
        ),
        StepSpec(
            REVIEW_CV,
            "Checking the tailored CV...",
            90,
            timeout_s=30,
            after=(TAILOR_CV,),
            waiting_phase="Waiting for your review of the tailored CV...",
        ),
        StepSpec(
            RENDER_PREVIEW,
            "Rendering preview...",
            92,
            timeout_s=60,
            after=(REVIEW_CV, WRITE_COVER_LETTER),
        ),
    ),
    input_schema=INPUT_SCHEMA,
    done_phase="Preview ready!",
    version=2,
)

#: The seed's five steps and marks (10, 25, 50, 75, 95 %); the CV and the letter each
#: need only the analysis, so they run in parallel ("Generating tailored CV and cover
#: letter..."), and the preview waits for both. The review, when asked for, is the CV
#: step's own wait: no step of its own, so every version's steps read as the seed's.
SPEC = JobTypeSpec(
    name="cv_tailoring",
    description=DESCRIPTION,
    steps=(
        _LOAD,
        _ANALYZE,
        StepSpec(
            TAILOR_CV,
            "Generating tailored CV...",
            50,
            timeout_s=300,
            after=(ANALYZE_POSTING,),
            waiting_phase="Waiting for your review of the tailored CV...",
        ),
        StepSpec(
            WRITE_COVER_LETTER,
            "Generating cover letter...",
            75,
            timeout_s=300,
            after=(ANALYZE_POSTING,),
        ),
        StepSpec(
            RENDER_PREVIEW,
            "Rendering preview...",
            95,
            timeout_s=60,
            after=(TAILOR_CV, WRITE_COVER_LETTER),
        ),
    ),
    input_schema=INPUT_SCHEMA,
    done_phase="Preview ready!",
    version=3,
    previous=(V1, V2),
)
