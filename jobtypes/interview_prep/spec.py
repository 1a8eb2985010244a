"""``interview_prep``: the questions a posting's interviewers are likely to ask, and how to
prepare, from a résumé and the posting."""

from __future__ import annotations

from jobkit.catalog import COMPUTE_RETRY, MODEL_RETRY, JobTypeSpec, StepSpec, number, obj
from resume.schema import POSTING_SCHEMA, RESUME_SCHEMA

LOAD_RESUME = "load_resume"
READ_POSTING = "read_posting"
WRITE_QUESTIONS = "write_questions"

SPEC = JobTypeSpec(
    name="interview_prep",
    description=(
        "Interview questions for a job posting, one per skill it asks for, most important "
        "first: evidence questions for the skills the résumé shows, gap questions for the "
        "rest, with advice on how to prepare. Input: "
        '{"resume": {...}, "job_posting": {...}, "questions": 5 (optional, 1-10)}.'
    ),
    steps=(
        StepSpec(LOAD_RESUME, "Reading your résumé...", 10, timeout_s=30, retry=COMPUTE_RETRY),
        StepSpec(READ_POSTING, "Reading the job posting...", 30, timeout_s=60, retry=COMPUTE_RETRY),
        StepSpec(
            WRITE_QUESTIONS, "Writing interview questions...", 50, timeout_s=300, retry=MODEL_RETRY
        ),
    ),
    input_schema=obj(
        {
            "resume": RESUME_SCHEMA,
            "job_posting": POSTING_SCHEMA,
            "questions": number(1, 10, description="How many questions (default 5)."),
        },
        required=("resume", "job_posting"),
    ),
    done_phase="Questions ready!",
)
