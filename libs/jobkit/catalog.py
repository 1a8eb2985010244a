"""The job types this system runs: their steps, phases, progress marks, timeouts, retry
policies and input schemas.

job_api plans jobs from it, the orchestrator drives them by it and ai_worker registers a
handler for each of its steps; keeping it in one place keeps the three in agreement.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobkit.errors import FieldViolation


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential back-off with full jitter, capped; ``max_attempts`` counts the first run."""

    max_attempts: int = 3
    initial_delay_s: float = 0.5
    multiplier: float = 2.0
    max_delay_s: float = 30.0

    def ceiling_s(self, attempt: int) -> float:
        """Upper bound of the delay after failed attempt number ``attempt`` (1-based)."""
        return min(self.max_delay_s, self.initial_delay_s * self.multiplier ** (attempt - 1))

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before the attempt after ``attempt``: uniform in [ceiling/2, ceiling].

        Half-jitter keeps retries of many jobs from stampeding together while still
        guaranteeing a minimum pause.
        """
        ceiling = self.ceiling_s(attempt)
        return ceiling / 2 + (rng or random).random() * ceiling / 2

    def allows_another(self, attempt: int) -> bool:
        return attempt < self.max_attempts


@dataclass(frozen=True, slots=True)
class StepSpec:
    name: str
    #: Shown to users while the step runs, e.g. "Generating cover letter...".
    phase: str
    #: Job progress when the step starts (0-100); the next step's mark is where it ends.
    progress_start: int
    timeout_s: float = 120.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True, slots=True)
class Field:
    """One field of an input schema."""

    kind: type | tuple[type, ...]
    required: bool = False
    #: For lists: the schema of each item (a kind, or a nested object schema).
    items: type | Mapping[str, Field] | None = None
    #: For objects: the nested schema.
    fields: Mapping[str, Field] | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        float: "a number",
        int: "a number",
        bool: "true or false",
        dict: "an object",
        list: "a list",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def validate(
    doc: Mapping[str, Any], schema: Mapping[str, Field], path: str
) -> list[FieldViolation]:
    """Check ``doc`` against ``schema``; returns every violation, each naming its field path."""
    violations: list[FieldViolation] = []
    for name, spec in schema.items():
        where = f"{path}.{name}"
        if name not in doc or doc[name] is None:
            if spec.required:
                violations.append(FieldViolation(where, "is required"))
            continue
        violations.extend(_check(doc[name], spec, where))
    return violations


def _check(value: Any, spec: Field, where: str) -> list[FieldViolation]:
    kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
    # Struct numbers arrive as float; bool is an int subclass and must not pass as a number.
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        return [FieldViolation(where, f"must be {_kind_name(spec.kind)}")]
    if isinstance(value, float | int) and not isinstance(value, bool):
        if spec.minimum is not None and value < spec.minimum:
            return [FieldViolation(where, f"must be at least {spec.minimum:g}")]
        if spec.maximum is not None and value > spec.maximum:
            return [FieldViolation(where, f"must be at most {spec.maximum:g}")]
    if isinstance(value, str) and spec.required and not value.strip():
        return [FieldViolation(where, "must not be empty")]
    if (
        spec.max_length is not None
        and isinstance(value, str | list)
        and len(value) > spec.max_length
    ):
        return [
            FieldViolation(
                where,
                f"must have at most {spec.max_length} entries"
                if isinstance(value, list)
                else f"must be at most {spec.max_length} characters",
            )
        ]
    if isinstance(value, dict) and spec.fields is not None:
        return validate(value, spec.fields, where)
    if isinstance(value, list) and spec.items is not None:
        out: list[FieldViolation] = []
        for i, item in enumerate(value):
            if isinstance(spec.items, Mapping):
                if not isinstance(item, dict):
                    out.append(FieldViolation(f"{where}[{i}]", "must be an object"))
                else:
                    out.extend(validate(item, spec.items, f"{where}[{i}]"))
            elif not isinstance(item, spec.items):
                out.append(FieldViolation(f"{where}[{i}]", f"must be {_kind_name(spec.items)}"))
        return out
    return []


@dataclass(frozen=True, slots=True)
class JobTypeSpec:
    name: str
    description: str
    steps: tuple[StepSpec, ...]
    input_schema: Mapping[str, Field]
    #: Phase text once the job has succeeded.
    done_phase: str = "Done"

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    def step(self, name: str) -> StepSpec:
        for spec in self.steps:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def progress_at(self, step_index: int, percent_of_step: int) -> int:
        """Job progress when step ``step_index`` is ``percent_of_step`` % done."""
        start = self.steps[step_index].progress_start
        end = self.steps[step_index + 1].progress_start if step_index + 1 < len(self.steps) else 100
        percent = max(0, min(100, percent_of_step))
        return min(99, start + (end - start) * percent // 100)

    def validate_input(self, doc: Mapping[str, Any]) -> list[FieldViolation]:
        return validate(doc, self.input_schema, "input")


_TEXT = 20_000
_LINE = 2_000

RESUME_SCHEMA: Mapping[str, Field] = {
    "name": Field(str, required=True, max_length=200),
    "headline": Field(str, max_length=_LINE),
    "email": Field(str, max_length=320),
    "phone": Field(str, max_length=64),
    "location": Field(str, max_length=_LINE),
    "summary": Field(str, max_length=_TEXT),
    "skills": Field(list, items=str, max_length=500),
    "experience": Field(
        list,
        max_length=100,
        items={
            "title": Field(str, required=True, max_length=_LINE),
            "company": Field(str, required=True, max_length=_LINE),
            "start": Field(str, max_length=64),
            "end": Field(str, max_length=64),
            "bullets": Field(list, items=str, max_length=100),
        },
    ),
    "education": Field(
        list,
        max_length=50,
        items={
            "degree": Field(str, required=True, max_length=_LINE),
            "institution": Field(str, required=True, max_length=_LINE),
            "year": Field((str, float, int), max_length=16),
        },
    ),
}

POSTING_SCHEMA: Mapping[str, Field] = {
    "title": Field(str, required=True, max_length=_LINE),
    "company": Field(str, required=True, max_length=_LINE),
    "description": Field(str, required=True, max_length=100_000),
    "requirements": Field(list, items=str, max_length=200),
    "nice_to_have": Field(list, items=str, max_length=200),
}

CV_TAILORING = JobTypeSpec(
    name="cv_tailoring",
    description=(
        "Tailors a résumé to a job posting: match score, matched and missing skills, a "
        "rewritten CV, a cover letter and a Markdown preview. Input: "
        '{"resume": {"name", "skills", "experience", ...}, '
        '"job_posting": {"title", "company", "description", "requirements"}}.'
    ),
    steps=(
        StepSpec("load_profile", "Loading user profile...", 10, timeout_s=30),
        StepSpec("analyze_posting", "Reading the job posting...", 25, timeout_s=60),
        StepSpec("tailor_cv", "Generating tailored CV...", 50, timeout_s=300),
        StepSpec("write_cover_letter", "Generating cover letter...", 75, timeout_s=300),
        StepSpec("render_preview", "Rendering preview...", 95, timeout_s=60),
    ),
    input_schema={
        "resume": Field(dict, required=True, fields=RESUME_SCHEMA),
        "job_posting": Field(dict, required=True, fields=POSTING_SCHEMA),
    },
    done_phase="Preview ready!",
)

#: Steps that only compute: a failure is a bug or a lost worker, so retry soon, briefly.
_COMPUTE_RETRY = RetryPolicy(max_attempts=3, initial_delay_s=0.2, max_delay_s=2.0)
#: Steps that ask a model: rate limits and outages pass in seconds to a minute.
_MODEL_RETRY = RetryPolicy(max_attempts=4, initial_delay_s=1.0, max_delay_s=60.0)

RESUME_IMPROVEMENT = JobTypeSpec(
    name="resume_improvement",
    description=(
        "Suggestions for a résumé, no posting needed: weak verbs, bullets without figures, "
        "length, missing sections and unproven skills, each with a suggested fix, an overview "
        "and a Markdown report. Input: "
        '{"resume": {"name", "skills", "experience", ...}} (as for cv_tailoring).'
    ),
    steps=(
        StepSpec("load_resume", "Reading your résumé...", 10, timeout_s=30, retry=_COMPUTE_RETRY),
        StepSpec(
            "analyze_resume",
            "Checking verbs, figures, length and sections...",
            25,
            timeout_s=60,
            retry=_COMPUTE_RETRY,
        ),
        StepSpec(
            "write_suggestions", "Writing suggestions...", 45, timeout_s=300, retry=_MODEL_RETRY
        ),
        StepSpec("render_report", "Rendering report...", 90, timeout_s=60, retry=_COMPUTE_RETRY),
    ),
    input_schema={"resume": Field(dict, required=True, fields=RESUME_SCHEMA)},
    done_phase="Suggestions ready!",
)

SKILL_GAP_ANALYSIS = JobTypeSpec(
    name="skill_gap_analysis",
    description=(
        "From a résumé and a target role: the role's core and nice-to-have skills, which "
        "the résumé shows, which are missing, and a week-by-week learning plan. Input: "
        '{"resume": {...}, "target_role": "Data Engineer", "target_skills": [...] '
        '(optional, added to the role\'s), "hours_per_week": 6 (optional)}.'
    ),
    steps=(
        StepSpec("load_resume", "Reading your résumé...", 10, timeout_s=30, retry=_COMPUTE_RETRY),
        StepSpec(
            "map_role_skills",
            "Mapping the skills of the target role...",
            20,
            timeout_s=30,
            retry=_COMPUTE_RETRY,
        ),
        StepSpec("find_gaps", "Finding your skill gaps...", 35, timeout_s=60, retry=_COMPUTE_RETRY),
        StepSpec(
            "write_learning_plan",
            "Writing your learning plan...",
            50,
            timeout_s=300,
            retry=_MODEL_RETRY,
        ),
        StepSpec("render_report", "Rendering report...", 90, timeout_s=60, retry=_COMPUTE_RETRY),
    ),
    input_schema={
        "resume": Field(dict, required=True, fields=RESUME_SCHEMA),
        "target_role": Field(str, required=True, max_length=200),
        "target_skills": Field(list, items=str, max_length=100),
        "hours_per_week": Field((float, int), minimum=1, maximum=80),
    },
    done_phase="Learning plan ready!",
)

_NOOP_RETRY = RetryPolicy(max_attempts=5, initial_delay_s=0.05, max_delay_s=2.0)

NOOP = JobTypeSpec(
    name="noop",
    description=(
        "Three steps that do nothing but wait input.sleep_ms milliseconds each and fail "
        "input.fail_attempts times with a retryable error first; with input.write, each step "
        "streams that text word by word over its wait, as a model would; with input.tokens, "
        "each step accounts that many prompt tokens (and half as many completion tokens) "
        "to the model 'noop'. For diagnostics and benchmarks."
    ),
    steps=(
        StepSpec("prepare", "Preparing...", 0, timeout_s=660, retry=_NOOP_RETRY),
        StepSpec("work", "Working...", 33, timeout_s=660, retry=_NOOP_RETRY),
        StepSpec("finish", "Finishing...", 66, timeout_s=660, retry=_NOOP_RETRY),
    ),
    input_schema={
        "sleep_ms": Field((float, int), minimum=0, maximum=600_000),
        "fail_attempts": Field((float, int), minimum=0, maximum=100),
        "write": Field(str, max_length=20_000),
        "tokens": Field((float, int), minimum=0, maximum=1_000_000),
    },
)

JOB_TYPES: Mapping[str, JobTypeSpec] = {
    spec.name: spec for spec in (CV_TAILORING, RESUME_IMPROVEMENT, SKILL_GAP_ANALYSIS, NOOP)
}


def job_type(name: str) -> JobTypeSpec | None:
    return JOB_TYPES.get(name)


def all_job_types() -> Sequence[JobTypeSpec]:
    return tuple(JOB_TYPES.values())
