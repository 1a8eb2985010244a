"""research: the plan from the local planner or the model (parsed, topped up), one answer
per sub-question announced in order, and the report. (The checks every type passes are in
tests/unit/test_jobtypes.py; the planner's own tests in tests/unit/test_insight_research.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from insight.research import short_question
from jobtypes.research import steps
from jobtypes.research.spec import SPEC
from stepkit.errors import PermanentStepError
from stepkit.providers import ChatRequest
from tests.unit.pipeline import run_steps
from tests.unit.scripted_provider import ScriptedProvider

EXAMPLE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "example.json").read_text(encoding="utf-8")
)["input"]


def test_input_validation_names_the_field() -> None:
    assert SPEC.validate_input(EXAMPLE) == []
    assert SPEC.validate_input({"query": "Is solar worth it?"}) == []
    cases = {
        "": ("input.query", "must not be empty"),
        9: ("input.depth", "must be at most 3"),
        0: ("input.depth", "must be at least 1"),
        2.5: ("input.depth", "must be a whole number"),
    }
    for value, expected in cases.items():
        doc = {"query": value} if value == "" else {"query": "q", "depth": value}
        assert [(v.field, v.description) for v in SPEC.validate_input(doc)] == [expected]


async def test_local_run_announces_each_sub_question_and_writes_the_report() -> None:
    run = await run_steps("research", EXAMPLE)
    plan = run.outputs["plan"]
    assert plan["query_kind"] == "comparison"
    assert len(plan["sub_questions"]) == 5
    assert plan["proposed"] == 5  # the local "model" proposes the planner's own
    assert [p for p in run.progress if p[0] == "investigate"] == [
        ("investigate", n * 20, f"Researching {n + 1} of 5: {short_question(q)}...")
        for n, q in enumerate(plan["sub_questions"])
    ]
    result = run.result
    assert result["sub_questions"] == plan["sub_questions"]
    assert [s["facet"] for s in result["sections"]] == [
        "tradeoffs", "tradeoffs", "cost", "risks", "timeline",
    ]  # fmt: skip
    assert result["sections"][2]["body"].startswith("How to answer it: Add up the whole cost")
    assert result["summary"].startswith(
        'This report looks at "Should we rent or buy a home in Berlin?" through 5 '
        "sub-questions: What are the pros and cons if we rent a home in"
    )
    assert result["conclusion"].startswith("The right choice (rent a home or buy a home in")
    assert result["report_markdown"].count("\n## ") == 7
    assert [u[0] for u in run.usage] == ["plan", *["investigate"] * 5, "write", "write"]


def _model(plan: str) -> ScriptedProvider:
    def reply(request: ChatRequest) -> str:
        return plan if request.prompt_id == steps.PLAN_PROMPT else f"Answer to {request.prompt_id}."

    return ScriptedProvider(reply)


async def test_the_model_s_plan_is_parsed_and_topped_up_from_the_planner() -> None:
    provider = _model("Good question!\n1. What are rents like in Berlin?\n2. What do flats cost?")
    run = await run_steps("research", {**EXAMPLE, "depth": 1}, provider)
    assert run.outputs["plan"]["sub_questions"] == [
        "What are rents like in Berlin?",
        "What do flats cost?",
        "What are the pros and cons if we rent a home in Berlin?",
    ]
    assert run.outputs["plan"]["proposed"] == 2
    assert [r.prompt_id for r in provider.requests] == [
        "research_plan@1",
        *["research_answer@1"] * 3,
        "research_summary@1",
        "research_conclusion@1",
    ]
    assert "Sub-question 2 of 3: What do flats cost?" in provider.requests[2].messages[1].content
    assert run.result["summary"] == "Answer to research_summary@1."
    assert [s["body"] for s in run.result["sections"]] == ["Answer to research_answer@1."] * 3


async def test_a_plan_with_no_questions_falls_back_to_the_planner() -> None:
    run = await run_steps("research", EXAMPLE, _model("I cannot help with that."))
    assert run.outputs["plan"]["proposed"] == 0
    assert run.outputs["plan"]["sub_questions"][0] == (
        "What are the pros and cons if we rent a home in Berlin?"
    )


async def test_a_query_without_words_fails_permanently() -> None:
    with pytest.raises(PermanentStepError) as failed:
        await run_steps("research", {"query": "?!"})
    assert failed.value.code == "EMPTY_QUERY"
