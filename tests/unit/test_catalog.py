"""Job-type catalogue: retry schedule, progress marks, input validation."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from jobkit.catalog import JobTypeSpec, RetryPolicy, StepSpec, number, obj
from jobkit.errors import FieldViolation
from jobtypes.cv_tailoring.spec import SPEC as CV_TAILORING
from jobtypes.noop.spec import SPEC as NOOP


def test_backoff_grows_exponentially_with_half_jitter_and_a_cap() -> None:
    policy = RetryPolicy(max_attempts=10, initial_delay_s=1, multiplier=2, max_delay_s=8)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 8), (9, 8)]:
        assert policy.ceiling_s(attempt) == ceiling
        delays = [policy.delay_s(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 10  # jittered, not constant


def test_attempt_budget_counts_the_first_run() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.allows_another(a) for a in (1, 2, 3)] == [True, True, False]


def test_progress_interpolates_within_a_step_and_never_reports_100_early() -> None:
    assert CV_TAILORING.progress_at(0, 0) == 10
    assert CV_TAILORING.progress_at(0, 100) == 25
    assert CV_TAILORING.progress_at(2, 50) == 62
    assert CV_TAILORING.progress_at(4, 100) == 99


def test_noop_input_validation_names_the_field() -> None:
    assert NOOP.validate_input({}) == []
    assert NOOP.validate_input({"sleep_ms": 10, "fail_attempts": 1}) == []
    (violation,) = NOOP.validate_input({"sleep_ms": -1})
    assert violation.field == "input.sleep_ms"
    (violation,) = NOOP.validate_input({"fail_attempts": "two"})
    assert violation.field == "input.fail_attempts"
    assert "number" in violation.description


def test_cv_input_validation_reports_every_missing_or_mistyped_field() -> None:
    violations = CV_TAILORING.validate_input(
        {"resume": {"skills": "python", "experience": [{"title": "Dev"}]}, "job_posting": {}}
    )
    fields = {v.field for v in violations}
    assert fields == {
        "input.resume.name",
        "input.resume.skills",
        "input.resume.experience[0].company",
        "input.job_posting.title",
        "input.job_posting.company",
        "input.job_posting.description",
    }
    assert [v.field for v in CV_TAILORING.validate_input({})] == [
        "input.resume",
        "input.job_posting",
    ]


def test_a_type_s_own_input_check_runs_once_its_schema_is_met() -> None:
    seen: list[Mapping[str, Any]] = []

    def start_before_end(doc: Mapping[str, Any]) -> list[FieldViolation]:
        seen.append(doc)
        if doc["start"] > doc["end"]:
            return [FieldViolation("input.end", "must not be before start")]
        return []

    spec = JobTypeSpec(
        name="span",
        description="a span",
        steps=(StepSpec("one", "One...", 0),),
        input_schema=obj({"start": number(0, 10), "end": number(0, 10)}, required=("start",)),
        check_input=start_before_end,
    )
    assert [v.field for v in spec.validate_input({"end": 3})] == ["input.start"]
    assert seen == []  # the schema failed first: nothing for the check to read
    assert spec.validate_input({"start": 1, "end": 3}) == []
    assert spec.validate_input({"start": 5, "end": 3}) == [
        FieldViolation("input.end", "must not be before start")
    ]
    assert len(seen) == 2
