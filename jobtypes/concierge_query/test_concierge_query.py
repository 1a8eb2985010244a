"""concierge_query: the question understood, the answer through the model with the trip's
facts, or the offline answer. (The checks every type passes are in
tests/unit/test_jobtypes.py; the classifier's own tests in tests/unit/test_insight_concierge.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jobtypes.concierge_query import steps
from jobtypes.concierge_query.spec import SPEC
from tests.unit.pipeline import run_steps
from tests.unit.scripted_provider import ScriptedProvider

EXAMPLE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "example.json").read_text(encoding="utf-8")
)["input"]


def test_input_validation_checks_the_context_loosely() -> None:
    assert SPEC.validate_input(EXAMPLE) == []
    assert SPEC.validate_input({"question": "Where can we eat?", "context": {"pets": 1}}) == []
    violations = SPEC.validate_input(
        {"question": " ", "context": {"party": {"adults": "two"}, "interests": "food"}}
    )
    assert [(v.field, v.description) for v in violations] == [
        ("input.question", "must not be empty"),
        ("input.context.party.adults", "must be a number"),
        ("input.context.interests", "must be a list"),
    ]


async def test_local_run_answers_from_the_question_and_the_trip() -> None:
    run = await run_steps("concierge_query", EXAMPLE)
    result = run.result
    assert result["question_kind"] == "booking"
    assert result["kind_label"] == "Booking"
    assert result["also_about"] == ["recommendation"]
    assert result["details"] == {
        "day": "on Friday",
        "time": "at 8pm",
        "party_size": 4,
        "places": [],
        "from": "",
        "to": "",
        "topics": ["restaurant"],
    }
    assert "interests" not in result["context_used"]  # a booking does not need them
    assert result["answer"].startswith(
        "To book a table in Lisbon for 2 adults and 2 children (on Friday at 8pm):"
    )
    assert result["follow_up"] == []
    assert run.partial["answer"][-1] == result["answer"]


async def test_the_model_gets_the_facts_under_a_versioned_prompt() -> None:
    provider = ScriptedProvider(lambda request: "Try Cervejaria Ramiro; I can call them.")
    run = await run_steps("concierge_query", EXAMPLE, provider)
    assert run.result["answer"] == "Try Cervejaria Ramiro; I can call them."
    assert [r.prompt_id for r in provider.requests] == [steps.ANSWER_PROMPT]
    prompt = provider.requests[0].messages[1].content
    assert prompt.startswith(f"Question: {EXAMPLE['question']}")
    assert "Party: 2 adults and 2 children" in prompt
    assert "Dietary needs: one vegetarian" not in prompt  # not a booking's business
    assert run.usage == [("answer", "scripted-1", 10, 5)]
