"""The resume_improvement job type: its catalogue entry, analysis, handlers and the
deterministic output of the local provider."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from jobtypes.resume_improvement import steps as ri
from jobtypes.resume_improvement.spec import SPEC as RESUME_IMPROVEMENT
from resume import load_profile
from stepkit.errors import PermanentStepError, RetryableStepError
from stepkit.providers import ChatRequest
from tests.unit.pipeline import run_steps
from tests.unit.scripted_provider import ScriptedProvider

EXAMPLE = json.loads((Path(__file__).parent / "example.json").read_text(encoding="utf-8"))
RESUME: dict[str, Any] = EXAMPLE["input"]["resume"]
PHONE = "+44 113 496 0000"


def test_input_validation_reports_every_violation_by_path() -> None:
    assert RESUME_IMPROVEMENT.validate_input(EXAMPLE["input"]) == []
    assert EXAMPLE["type"] == RESUME_IMPROVEMENT.name
    assert [v.field for v in RESUME_IMPROVEMENT.validate_input({})] == ["input.resume"]
    violations = RESUME_IMPROVEMENT.validate_input(
        {"resume": {"skills": "python", "experience": [{"title": "Dev", "bullets": [3]}]}}
    )
    assert {v.field: v.description for v in violations} == {
        "input.resume.name": "is required",
        "input.resume.skills": "must be a list",
        "input.resume.experience[0].company": "is required",
        "input.resume.experience[0].bullets[0]": "must be a string",
    }
    (violation,) = RESUME_IMPROVEMENT.validate_input({"resume": "my cv"})
    assert (violation.field, violation.description) == ("input.resume", "must be an object")


@pytest.mark.parametrize(
    ("bullet", "opener"),
    [
        ("Responsible for the billing service", "Responsible for"),
        ("I was responsible for   hiring", "was responsible for"),
        ("helped the team ship", "helped"),
        ("Worked on search ranking", "Worked on"),
        ("Used Python to automate reports", "Used"),
        ("Led a team of five", ""),
        ("Helpdesk tooling rebuilt", ""),
        ("Usability study for checkout", ""),
    ],
)
def test_weak_openers_are_whole_words_at_the_start(bullet: str, opener: str) -> None:
    assert ri.weak_opener(bullet) == opener


@pytest.mark.parametrize(
    ("text", "figure"),
    [
        ("Cut latency by 40%", True),
        ("Saved $2M a year", True),
        ("Led a team of four", True),
        ("Doubled sign-ups", True),
        ("Built the billing service", False),
        ("Someone shipped it", False),
    ],
)
def test_figures(text: str, figure: bool) -> None:
    assert ri.has_figure(text) is figure


def test_analysis_of_the_example_is_exact() -> None:
    findings, stats, score = ri.analyze(load_profile(RESUME))
    assert [(f.code, f.severity, f.path) for f in findings] == [
        ("weak_verb", "high", "experience[0].bullets[0]"),
        ("weak_verb", "high", "experience[0].bullets[1]"),
        ("weak_verb", "high", "experience[1].bullets[0]"),
        ("unproven_skills", "medium", "skills"),
        ("no_figure", "medium", "experience[0].bullets[0]"),
        ("no_figure", "medium", "experience[0].bullets[1]"),
        ("no_figure", "medium", "experience[1].bullets[0]"),
        ("no_figure", "medium", "experience[1].bullets[1]"),
    ]
    assert findings[0].where == "Software Engineer at Tailspin Toys, bullet 1"
    assert findings[3].message.startswith(
        "Listed but never shown in your experience: Kubernetes and Redis."
    )
    assert stats == {
        "roles": 2,
        "bullets": 5,
        "bullets_with_figures": 1,
        "weak_openers": 3,
        "words": 78,
    }
    assert score == 45


def test_sections_length_and_repetition() -> None:
    profile = load_profile(
        {
            "name": "Lee",
            "summary": " ".join(["word"] * 90),
            "experience": [
                {
                    "title": "Engineer",
                    "company": "Acme",
                    "bullets": [
                        "Built it",
                        "Built the 3 main services of the platform",
                        "Built 2 more " + " ".join(["things"] * 40),
                        "I shipped 4 releases a month",
                    ],
                },
                {"title": "Intern", "company": "Initech", "start": "2019"},
            ],
        }
    )
    findings, _, _ = ri.analyze(profile)
    assert sorted((f.code, f.path) for f in findings) == sorted(
        [
            ("missing_skills", "skills"),
            ("missing_contact", "email"),
            ("long_summary", "summary"),
            ("missing_headline", "headline"),
            ("missing_education", "education"),
            ("missing_dates", "experience[0]"),
            ("no_figure", "experience[0].bullets[0]"),
            ("short_bullet", "experience[0].bullets[0]"),
            ("long_bullet", "experience[0].bullets[2]"),
            ("first_person", "experience[0].bullets[3]"),
            ("repeated_verb", "experience[0].bullets[0]"),
            ("role_without_bullets", "experience[1]"),
        ]
    )
    empty, _, score = ri.analyze(load_profile({"name": "Nobody"}))
    assert empty[0].code == "missing_experience"
    assert score == 100 - 10 - 5 - 5 - 2 - 5 - 2


async def test_local_pipeline_result_is_exact_and_deterministic() -> None:
    run = await run_steps("resume_improvement", EXAMPLE["input"])
    result = run.result
    assert set(result) == {"score", "stats", "findings", "overview", "rewrites", "report_markdown"}
    assert result["score"] == 45
    assert [r["path"] for r in result["rewrites"]] == [
        "experience[0].bullets[0]",
        "experience[0].bullets[1]",
        "experience[1].bullets[0]",
        "experience[1].bullets[1]",
    ]
    assert result["rewrites"][0] == {
        "path": "experience[0].bullets[0]",
        "original": "Responsible for the checkout service written in Python and Django",
        "suggestion": 'Open with a strong verb such as Owned or Led instead of "Responsible for". '
        "Add a figure: how much, how many or how often (time, money, users, %).",
    }
    assert result["overview"] == (
        "Your résumé scores 45/100 with 8 suggestions across 2 roles and 5 bullets. "
        "Start with these:\n"
        '1. Software Engineer at Tailspin Toys, bullet 1: Opens with "Responsible for": lead '
        "with what you did, e.g. Owned or Led.\n"
        '2. Software Engineer at Tailspin Toys, bullet 2: Opens with "Worked on": lead with '
        "what you did, e.g. Built or Developed.\n"
        '3. Junior Developer at Wide World Importers, bullet 1: Opens with "Helped with": lead '
        "with what you did, e.g. Enabled or Contributed to."
    )
    report = result["report_markdown"]
    assert report.startswith("# Résumé review: Sam Example\n\n**Score:** 45/100")
    headings = [line for line in report.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Overview",
        "## Suggested rewrites",
        "## High priority",
        "## Medium priority",
    ]
    assert run.progress == [
        ("write_suggestions", 0, "Writing suggestion 1 of 4..."),
        ("write_suggestions", 20, "Writing suggestion 2 of 4..."),
        ("write_suggestions", 40, "Writing suggestion 3 of 4..."),
        ("write_suggestions", 60, "Writing suggestion 4 of 4..."),
        ("write_suggestions", 80, "Writing the overview..."),
    ]
    # Partial output: everything the step has written so far, ending with all of it.
    partial = run.partial["write_suggestions"]
    assert partial[-1] == "\n\n".join(
        [*(r["suggestion"] for r in result["rewrites"]), result["overview"]]
    )
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(partial))
    assert (await run_steps("resume_improvement", EXAMPLE["input"])).outputs == run.outputs


async def test_a_resume_without_a_name_fails_permanently() -> None:
    with pytest.raises(PermanentStepError) as failed:
        await run_steps("resume_improvement", {"resume": {"name": "  "}})
    assert failed.value.code == "INVALID_RESUME"


def _model(request: ChatRequest) -> str:
    if request.prompt_id == ri.OVERVIEW_PROMPT:
        return "Lead with verbs and add figures."
    bullet = request.messages[-1].content.split("Bullet: ")[1].splitlines()[0]
    if bullet.startswith("Responsible"):
        return "Owned the checkout service in Python and Django, serving N orders a day."
    if bullet.startswith("Worked on"):
        return "Tuned PostgreSQL and Kafka for the order pages."  # a skill never shown
    if bullet.startswith("Helped"):
        return "Fixed 120 bugs."  # a figure the bullet does not have
    return "Wrote unit tests for the invoicing module, covering N% of its code."


async def test_prose_goes_through_the_provider_with_versioned_private_prompts() -> None:
    provider = ScriptedProvider(_model)
    resume = {**RESUME, "phone": PHONE}
    run = await run_steps("resume_improvement", {"resume": resume}, provider)
    result = run.result
    assert [r.prompt_id for r in provider.requests] == [
        *["resume_bullet_suggestion@1"] * 4,
        "resume_overview@1",
    ]
    suggestions = [r["suggestion"] for r in result["rewrites"]]
    assert suggestions[0] == (
        "Owned the checkout service in Python and Django, serving N orders a day."
    )
    # Rewrites that claim an unshown skill or invent a figure fall back to the advice.
    assert suggestions[1] == ri.bullet_advice(RESUME["experience"][0]["bullets"][1])
    assert suggestions[2] == ri.bullet_advice(RESUME["experience"][1]["bullets"][0])
    assert suggestions[3].endswith("covering N% of its code.")
    assert result["overview"] == "Lead with verbs and add figures."
    assert run.usage == [("write_suggestions", "scripted-1", 10, 5)] * 5
    sent = provider.prompts()
    assert "checkout service" in sent  # the prompts carry the résumé's facts...
    for private in ("Sam", "Example", "sam@example.com", PHONE, "Leeds"):
        assert private not in sent  # ...but no name or contact details


async def test_an_empty_answer_is_retryable() -> None:
    provider = ScriptedProvider(lambda request: "  ")
    with pytest.raises(RetryableStepError) as failed:
        await run_steps("resume_improvement", EXAMPLE["input"], provider)
    assert failed.value.code == "WRITER_OUTPUT_REJECTED"
