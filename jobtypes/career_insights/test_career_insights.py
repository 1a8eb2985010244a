"""career_insights: the market read, the skills matched, the advice through the model or
offline, and the report. (The checks every type passes are in tests/unit/test_jobtypes.py;
the market map's own tests in tests/unit/test_insight_career.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobtypes.career_insights import steps
from jobtypes.career_insights.spec import SPEC
from stepkit.errors import PermanentStepError
from tests.unit.pipeline import run_steps
from tests.unit.scripted_provider import ScriptedProvider

EXAMPLE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "example.json").read_text(encoding="utf-8")
)["input"]


def test_input_validation_names_the_field() -> None:
    assert SPEC.validate_input(EXAMPLE) == []
    assert SPEC.validate_input({"domain": "UX"}) == []
    violations = SPEC.validate_input({"domain": "", "skills": ["SQL", 3]})
    assert [(v.field, v.description) for v in violations] == [
        ("input.domain", "must not be empty"),
        ("input.skills[1]", "must be a string"),
    ]


async def test_local_run_reads_the_market_matches_skills_and_advises() -> None:
    run = await run_steps("career_insights", EXAMPLE)
    result = run.result
    assert result["domain"] == "Data Engineering"
    assert result["roles"]["changing_fields"] is True
    assert result["roles"]["next_roles"] == ["Data Engineer"]
    assert result["skills"]["matched"] == ["Python", "SQL", "AWS"]
    assert result["skills"]["gaps"][:3] == ["Apache Spark", "Apache Airflow", "dbt"]
    assert result["skills"]["coverage"] == 30
    assert "Kubernetes" in result["skills"]["transferable"]
    assert result["advice"].startswith(
        "Moving from Software Engineering into Data Engineering, you already bring 3 of the "
        "10 skills its employers ask for most: Python, PostgreSQL and AWS."
    )
    report = result["report_markdown"]
    assert [line for line in report.splitlines() if line.startswith("## ")] == [
        "## The market",
        "## Your skills",
        "## Roles",
        "## Next steps",
        "## Advice",
    ]
    assert "| 2 | SQL | yes (PostgreSQL) |" in report
    assert "| 3 | Apache Spark | not yet |" in report


async def test_the_advice_goes_through_the_model_with_a_versioned_prompt() -> None:
    provider = ScriptedProvider(lambda request: "Learn Spark first.")
    run = await run_steps("career_insights", EXAMPLE, provider)
    assert run.result["advice"] == "Learn Spark first."
    assert [r.prompt_id for r in provider.requests] == [steps.ADVICE_PROMPT]
    prompt = provider.prompts()
    assert "Field: Data Engineering" in prompt
    assert "Changing fields: yes, from Software Engineering" in prompt
    assert "In-demand skills missing: Apache Spark, " in prompt


async def test_an_unknown_field_fails_permanently_without_echoing_it() -> None:
    with pytest.raises(PermanentStepError) as failed:
        await run_steps("career_insights", {"domain": "Pastry arts"})
    assert failed.value.code == "UNKNOWN_DOMAIN"
    assert "Pastry" not in failed.value.message
