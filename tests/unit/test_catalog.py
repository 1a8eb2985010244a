"""Job-type catalogue: retry schedule, progress marks, input validation."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import pytest

from jobkit.catalog import JobTypeSpec, RetryPolicy, StepSpec, combined_phase, number, obj
from jobkit.errors import FieldViolation
from jobtypes.cv_tailoring.spec import SPEC as CV_TAILORING
from jobtypes.cv_tailoring.spec import V1 as CV_TAILORING_V1
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
    assert CV_TAILORING_V1.progress_at(0, 0) == 10
    assert CV_TAILORING_V1.progress_at(0, 100) == 25
    assert CV_TAILORING_V1.progress_at(2, 50) == 62
    assert CV_TAILORING_V1.progress_at(4, 100) == 99


def test_progress_of_a_straight_line_is_the_running_steps_mark() -> None:
    for index in range(len(CV_TAILORING_V1.steps)):
        for percent in (0, 33, 50, 100):
            percents = [100] * index + [percent] + [0] * (len(CV_TAILORING_V1.steps) - index - 1)
            assert CV_TAILORING_V1.progress_of(percents) == CV_TAILORING_V1.progress_at(
                index, percent
            )


def test_progress_of_parallel_steps_sums_their_shares() -> None:
    # The seed's marks: 10, 25, 50, 75, 95 %; the CV's share is 25 points, the letter's 20.
    assert [s.progress_start for s in CV_TAILORING.steps] == [10, 25, 50, 75, 95]
    # load, analyze done; the CV half done, the letter a fifth.
    assert CV_TAILORING.progress_of([100, 100, 50, 20, 0]) == 50 + 12 + 4
    # Either branch alone moves the bar by its share, and the two together by both.
    alone = CV_TAILORING.progress_of([100, 100, 100, 0, 0])
    both = CV_TAILORING.progress_of([100, 100, 100, 100, 0])
    assert (alone, both) == (75, 95)
    assert CV_TAILORING.progress_of([100] * 5) == 99


def test_the_graph_runs_the_cv_and_the_letter_in_parallel() -> None:
    after = {step.name: CV_TAILORING.after_names(i) for i, step in enumerate(CV_TAILORING.steps)}
    assert after == {
        "load_profile": (),
        "analyze_posting": ("load_profile",),
        "tailor_cv": ("analyze_posting",),
        "write_cover_letter": ("analyze_posting",),
        "render_preview": ("tailor_cv", "write_cover_letter"),
    }
    # Version 2, whose jobs may still run, reviewed in a step of its own.
    v2 = CV_TAILORING.at_version(2)
    assert v2 is not None
    assert [s.name for s in v2.steps][4:] == ["review_cv", "render_preview"]
    # Unless said otherwise, a step runs after the one listed before it.
    assert [NOOP.after(i) for i in range(3)] == [(), (0,), (1,)]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ((StepSpec("a", "A", 0, after=("b",)), StepSpec("b", "B", 50)), "listed before"),
        ((StepSpec("a", "A", 0), StepSpec("a", "A", 50)), "listed twice"),
        ((StepSpec("a", "A", 0, after=("a",)),), "listed before"),
        ((), "no steps"),
    ],
)
def test_a_graph_that_cannot_run_is_refused_at_load(
    steps: tuple[StepSpec, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        JobTypeSpec("broken", "", steps, input_schema=obj({}))


@pytest.mark.parametrize(
    ("phases", "combined"),
    [
        (["Rendering preview..."], "Rendering preview..."),
        (
            ["Generating tailored CV...", "Generating cover letter..."],
            "Generating tailored CV and cover letter...",
        ),
        (
            ["Generating cover letter...", "Checking the tailored CV..."],
            "Generating cover letter and checking the tailored CV...",
        ),
        (["Reading A...", "Writing B...", "CV check..."], "Reading A, writing B and CV check..."),
        (["Waiting...", "Waiting..."], "Waiting..."),
    ],
)
def test_steps_running_together_share_one_phase(phases: list[str], combined: str) -> None:
    assert combined_phase(phases) == combined


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
