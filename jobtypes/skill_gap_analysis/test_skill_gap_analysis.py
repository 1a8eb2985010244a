"""The skill_gap_analysis job type: its catalogue entry, role map, gap finding, learning
plan, handlers and the deterministic output of the local provider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobtypes.skill_gap_analysis import steps as sga
from jobtypes.skill_gap_analysis.spec import SPEC as SKILL_GAP_ANALYSIS
from resume import VOCABULARY, load_profile
from stepkit.errors import PermanentStepError
from tests.unit.pipeline import run_steps
from tests.unit.scripted_provider import ScriptedProvider

EXAMPLE = json.loads((Path(__file__).parent / "example.json").read_text(encoding="utf-8"))
INPUT: dict[str, Any] = EXAMPLE["input"]
PHONE = "+44 113 496 0000"


def test_input_validation_reports_every_violation_by_path() -> None:
    assert EXAMPLE["type"] == SKILL_GAP_ANALYSIS.name
    assert SKILL_GAP_ANALYSIS.validate_input(INPUT) == []
    assert [v.field for v in SKILL_GAP_ANALYSIS.validate_input({})] == [
        "input.resume",
        "input.target_role",
    ]
    violations = SKILL_GAP_ANALYSIS.validate_input(
        {
            "resume": {"name": "Sam"},
            "target_role": " ",
            "target_skills": "dbt",
            "hours_per_week": 0,
        }
    )
    assert {v.field: v.description for v in violations} == {
        "input.target_role": "must not be empty",
        "input.target_skills": "must be a list",
        "input.hours_per_week": "must be at least 1",
    }
    (violation,) = SKILL_GAP_ANALYSIS.validate_input({**INPUT, "target_skills": ["dbt", 7]})
    assert violation.field == "input.target_skills[1]"


def test_every_role_skill_is_a_canonical_vocabulary_skill() -> None:
    names = [role.name for role in sga.ROLES]
    assert len(names) == len(set(names)) >= 12
    for role in sga.ROLES:
        assert role.core, role.name
        assert role.nice_to_have, role.name
        for req in (*role.core, *role.nice_to_have):
            for skill in req:
                assert skill in VOCABULARY, (role.name, skill)


@pytest.mark.parametrize(
    ("title", "role"),
    [
        ("Senior Data Engineer", "Data Engineer"),
        ("Full-Stack Web Developer", "Full-Stack Engineer"),
        ("SRE", "DevOps Engineer"),
        ("Site Reliability Engineer II", "DevOps Engineer"),
        ("Staff back-end engineer", "Backend Engineer"),
        ("iOS Developer", "Mobile Developer"),
        ("Front End Developer", "Frontend Engineer"),
        ("ML Engineer", "Machine Learning Engineer"),
        ("Engineering Manager, Payments", "Engineering Manager"),
        ("Lead Product Manager", "Product Manager"),
        ("Python developer", "Software Engineer"),
        ("Pastry chef", None),
        ("Backendish wizard", None),
    ],
)
def test_titles_find_the_most_specific_role(title: str, role: str | None) -> None:
    found = sga.find_role(title)
    assert (found.name if found else None) == role


def test_target_skills_join_the_core_and_make_unknown_roles_possible() -> None:
    role = sga.role_skills("Data Engineer", ["dbt", "k8s"])
    assert role.core[-2:] == (("dbt",), ("Kubernetes",))
    assert ("dbt",) not in role.nice_to_have  # promoted, not listed twice
    custom = sga.role_skills("Pastry chef", ["Excel", "Food safety"])
    assert (custom.name, custom.core, custom.nice_to_have) == (
        "Pastry chef",
        (("Excel",), ("Food safety",)),
        (),
    )
    with pytest.raises(PermanentStepError) as failed:
        sga.role_skills("Pastry chef", [])
    assert failed.value.code == "UNKNOWN_ROLE"
    assert "Pastry" not in failed.value.message  # the user's words are not echoed


def test_gaps_distinguish_shown_listed_and_missing() -> None:
    role = sga.RoleSkills(
        "Test role", (), (("SQL", "PostgreSQL"), ("Docker",), ("Go",), ("Food safety",)),
        (("Redis",), ("Kafka",)),
    )  # fmt: skip
    profile = load_profile(
        {
            "name": "Sam",
            "skills": ["Docker", "Redis"],
            "experience": [
                {
                    "title": "Cook",
                    "company": "Diner",
                    "bullets": ["Ran Postgres backups", "Trained 4 staff in food safety"],
                }
            ],
        }
    )
    gaps = sga.find_gaps(role, profile)
    assert gaps == {
        "matched": [
            {"skill": "PostgreSQL", "kind": "core", "evidence": "experience"},
            {"skill": "Docker", "kind": "core", "evidence": "skills list"},
            {"skill": "Food safety", "kind": "core", "evidence": "experience"},
            {"skill": "Redis", "kind": "nice_to_have", "evidence": "skills list"},
        ],
        "missing_core": [{"skill": "Go", "alternatives": []}],
        "missing_nice_to_have": [{"skill": "Kafka", "alternatives": []}],
        "to_strengthen": ["Docker", "Redis"],
        # core 2.5 of 4, nice 0.5 of 2: 85 * 0.625 + 15 * 0.25
        "coverage_score": 57,
    }
    plan = sga.learning_plan(gaps, hours_per_week=10)
    assert [(p["skill"], p["kind"], p["start_week"], p["end_week"]) for p in plan] == [
        ("Go", "core", 1, 4),
        ("Kafka", "nice_to_have", 5, 6),
        ("Docker", "strengthen", 7, 7),
        ("Redis", "strengthen", 8, 8),
    ]


async def test_local_pipeline_result_is_exact_and_deterministic() -> None:
    run = await run_steps("skill_gap_analysis", INPUT)
    result = run.result
    assert set(result) == {
        "target_role",
        "coverage_score",
        "matched_skills",
        "missing_skills",
        "missing_nice_to_have",
        "to_strengthen",
        "learning_plan",
        "plan_text",
        "report_markdown",
    }
    assert result["target_role"] == "Data Engineer"
    assert result["coverage_score"] == 24
    assert result["matched_skills"] == ["Python", "PostgreSQL", "Docker"]
    assert result["missing_skills"] == [
        "ETL",
        "Apache Airflow",
        "Apache Spark",
        "Data Modeling",
        "Snowflake",
        "dbt",
    ]
    assert result["missing_nice_to_have"] == ["Kafka", "AWS", "Data Warehousing", "Terraform"]
    assert result["to_strengthen"] == []
    assert len(result["learning_plan"]) == sga.MAX_PLAN_ITEMS
    assert result["learning_plan"][0] == {
        "skill": "ETL",
        "kind": "core",
        "hours": 40,
        "start_week": 1,
        "end_week": 5,
        "milestone": "Build a small project that uses ETL, then add a résumé bullet saying "
        "what it does and how well.",
    }
    assert result["learning_plan"][-1]["end_week"] == 36
    paragraphs = result["plan_text"].split("\n\n")
    assert paragraphs[:2] == [
        "A plan towards Data Engineer at 8 hours a week, about 36 weeks in all.",
        "You already show 2 of the 8 core skills of a Data Engineer: Python and PostgreSQL.",
    ]
    assert paragraphs[2].splitlines()[0].startswith("Weeks 1\u20135: ETL (core). Build")
    report = result["report_markdown"]
    assert report.startswith("# Skill gaps: Sam Example \u2192 Data Engineer\n\n**Coverage:** 24")
    assert [line for line in report.splitlines() if line.startswith("## ")] == [
        "## Skills you show",
        "## Missing skills",
        "## Learning plan",
    ]
    assert "- Snowflake (core; or BigQuery, Redshift, Databricks)" in report
    assert run.progress == [("find_gaps", 60, "Scheduling what to learn first...")]
    assert run.partial["write_learning_plan"][-1] == result["plan_text"]
    assert (await run_steps("skill_gap_analysis", INPUT)).outputs == run.outputs


async def test_nothing_missing_says_so() -> None:
    resume = {"name": "Kim", "skills": ["Figma"], "summary": "I do UX design, UI design, user "
              "research, prototyping and wireframing in Figma, with design systems, web "
              "accessibility, HTML, CSS and A/B testing."}  # fmt: skip
    result = (await run_steps("skill_gap_analysis", {"resume": resume, "target_role": "UX"})).result
    assert result["coverage_score"] == 100
    assert result["learning_plan"] == []
    assert result["plan_text"].endswith("Nothing is missing: keep each skill visible with a "
                                        "recent bullet that shows it at work.")  # fmt: skip


async def test_an_unknown_role_fails_the_step_permanently() -> None:
    with pytest.raises(PermanentStepError) as failed:
        await run_steps("skill_gap_analysis", {**INPUT, "target_role": "Pastry chef",
                                               "target_skills": []})  # fmt: skip
    assert failed.value.code == "UNKNOWN_ROLE"


async def test_the_plan_goes_through_the_provider_with_a_private_versioned_prompt() -> None:
    provider = ScriptedProvider(lambda request: "Start with ETL, then Airflow.")
    resume = {**INPUT["resume"], "phone": PHONE}
    run = await run_steps("skill_gap_analysis", {**INPUT, "resume": resume}, provider)
    result = run.result
    assert run.usage == [("write_learning_plan", "scripted-1", 10, 5)]
    assert [r.prompt_id for r in provider.requests] == ["skill_gap_plan@1"]
    assert result["plan_text"] == "Start with ETL, then Airflow."
    assert "\nStart with ETL, then Airflow.\n" in result["report_markdown"]
    sent = provider.prompts()
    assert "Target role: Data Engineer" in sent
    assert "Weeks 1\u20135: ETL (core)" in sent
    for private in ("Sam", "Example", "sam@example.com", PHONE, "Leeds"):
        assert private not in sent
