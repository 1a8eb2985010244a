"""interview_prep: one question per skill the posting asks for, and advice written through
the model with private prompts. (The checks every type passes are in
tests/unit/test_jobtypes.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jobtypes.interview_prep import steps
from tests.unit.pipeline import run_steps
from tests.unit.scripted_provider import ScriptedProvider

EXAMPLE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "example.json").read_text(encoding="utf-8")
)["input"]


def posting(required: list[str], nice: list[str], shown: list[str]) -> dict[str, Any]:
    return {
        "analysis": {"required_skills": required, "nice_to_have_skills": nice},
        "match": {
            "matched_skills": [s for s in required if s in shown],
            "matched_nice_to_have": [s for s in nice if s in shown],
        },
    }


def test_shown_skills_ask_for_evidence_and_missing_ones_for_a_plan() -> None:
    asked = steps.questions(posting(["Python", "Kafka"], ["Rust"], shown=["Python", "Rust"]), 5)
    assert [(q["skill"], q["shown"]) for q in asked] == [
        ("Python", True),
        ("Kafka", False),
        ("Rust", True),
    ]
    assert "a time you used Python" in asked[0]["question"]
    assert "get up to speed" in asked[1]["question"]


def test_required_skills_come_first_and_the_count_is_capped() -> None:
    asked = steps.questions(posting(["A", "B", "C"], ["D"], shown=[]), 2)
    assert [q["skill"] for q in asked] == ["A", "B"]


async def test_the_model_writes_the_advice_without_seeing_the_candidate() -> None:
    provider = ScriptedProvider(lambda request: "Prepare stories, [NAME_1].")
    run = await run_steps("interview_prep", {**EXAMPLE, "questions": 3}, provider)
    result = run.result
    assert len(result["questions"]) == 3
    # The placeholder comes back as the name; the name itself never left.
    assert result["advice"] == f"Prepare stories, {EXAMPLE['resume']['name']}."
    assert EXAMPLE["resume"]["name"] not in provider.prompts()
    assert [r.prompt_id for r in provider.requests] == [steps.ADVICE_PROMPT]
    assert run.usage == [("write_questions", "scripted-1", 10, 5)]
    report = result["report_markdown"]
    assert report.startswith(f"# Interview prep: {result['role']}")
    assert report.count("\n1. **") == 1
    assert result["advice"] in report
