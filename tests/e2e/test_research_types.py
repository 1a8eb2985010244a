"""research, concierge_query and career_insights end to end: created from their example
requests, run through every step to SUCCEEDED on the local provider and on the fake
OpenAI-compatible server, with their phases, the research job's progress phase per
sub-question, the documented result fields, and bad input refused by field."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from devstack import Stack
from insight.research import short_question
from jobctl.client import JobsClient
from jobkit.convert import struct_to_dict
from jobkit.gen.jobs.v1 import jobs_pb2
from jobtypes import CATALOG
from tests.e2e.rejections import refused_input
from tests.fake_openai import DEFAULT_REPLY, FakeServer, streaming_reply

pytestmark = pytest.mark.e2e

E = jobs_pb2
#: A model that writes a few characters every 20 ms.
SLOW_MODEL = streaming_reply(chars=4, delay_s=0.02, prompt_tokens=100, completion_tokens=20)
RESEARCH_RESULT = {
    "query",
    "query_kind",
    "sub_questions",
    "summary",
    "sections",
    "conclusion",
    "report_markdown",
}
CONCIERGE_RESULT = {
    "question_kind",
    "kind_label",
    "also_about",
    "answer",
    "details",
    "context_used",
    "follow_up",
}
CAREER_RESULT = {
    "domain",
    "market",
    "roles",
    "skills",
    "next_steps",
    "advice",
    "report_markdown",
}


def example(name: str) -> dict[str, Any]:
    request: dict[str, Any] = json.loads(Path(f"jobtypes/{name}/example.json").read_text("utf-8"))
    return request


async def run(
    client: JobsClient, job_type: str, job_input: dict[str, Any]
) -> tuple[list[jobs_pb2.JobEvent], dict[str, Any], jobs_pb2.Job]:
    job = await client.create_job(job_type, job_input)
    assert [s.name for s in job.steps] == list(CATALOG[job_type].step_names)
    events = await asyncio.wait_for(_watch(client, job.job_id), 90)
    assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED, [e.message for e in events]
    assert events[-1].phase == CATALOG[job_type].done_phase
    final = await client.get_job(job.job_id)
    assert final.status == E.JOB_STATUS_SUCCEEDED
    assert final.progress == 100
    return events, struct_to_dict(final.result), final


async def _watch(client: JobsClient, job_id: str) -> list[jobs_pb2.JobEvent]:
    return [e async for e in client.watch(job_id)]


def started_phases(events: list[jobs_pb2.JobEvent]) -> list[tuple[str, str]]:
    return [(e.step, e.phase) for e in events if e.type == E.JOB_EVENT_TYPE_STEP_STARTED]


def progress_phases(events: list[jobs_pb2.JobEvent], step: str) -> list[str]:
    """The phases a step announced, in order, each once (text snapshots repeat them)."""
    phases: list[str] = []
    for event in events:
        announced = event.type == E.JOB_EVENT_TYPE_PROGRESS and event.step == step
        if announced and event.phase and (not phases or phases[-1] != event.phase):
            phases.append(event.phase)
    return phases


def assert_research_result(result: dict[str, Any], count: int) -> None:
    assert set(result) == RESEARCH_RESULT
    assert len(result["sub_questions"]) == count
    assert [s["question"] for s in result["sections"]] == result["sub_questions"]
    for number, section in enumerate(result["sections"], 1):
        assert set(section) == {"heading", "question", "facet", "body"}
        assert section["heading"] == f"{number}. {section['question']}"
        assert section["body"]
    report = result["report_markdown"]
    assert report.startswith(f"# Research: {result['query']}\n\n## Summary\n")
    headings = [line for line in report.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Summary",
        *(f"## {s['heading']}" for s in result["sections"]),
        "## Conclusion",
    ]


# --- the local provider ------------------------------------------------------------------


async def test_research_runs_to_success(alice: JobsClient) -> None:
    request = example("research")
    events, result, final = await run(alice, "research", request["input"])
    assert started_phases(events) == [
        ("plan", "Planning the research..."),
        ("investigate", "Researching the sub-questions..."),
        ("write", "Writing the report..."),
    ]
    assert_research_result(result, 5)
    assert result["query_kind"] == "comparison"
    assert result["sub_questions"][:2] == [
        "What are the pros and cons if we rent a home in Berlin?",
        "What are the pros and cons if we buy a home in Berlin?",
    ]
    # One phase per sub-question, in order. The local provider answers in microseconds,
    # and a report that reaches the orchestrator after its step's result is dropped (the
    # last one rides with the result): every phase that arrived is in order, the last
    # always arrives. The model run below, as slow as a model, sees every one.
    phases = progress_phases(events, "investigate")
    prefixes = [f"Researching {n} of 5: " for n in range(1, 6)]
    seen = [next(i for i, p in enumerate(prefixes) if phase.startswith(p)) for phase in phases]
    assert seen == sorted(set(seen)), phases
    assert seen[-1] == 4, phases
    assert phases[-1] == f"Researching 5 of 5: {short_question(result['sub_questions'][4])}..."
    usage = {s.name: [u.model for u in s.usage] for s in final.steps}
    assert usage == {
        "plan": ["local-templates"],
        "investigate": ["local-templates"],
        "write": ["local-templates"],
    }


async def test_concierge_query_runs_to_success(alice: JobsClient) -> None:
    request = example("concierge_query")
    events, result, _ = await run(alice, "concierge_query", request["input"])
    assert started_phases(events) == [
        ("understand", "Understanding your question..."),
        ("answer", "Finding an answer..."),
    ]
    assert set(result) == CONCIERGE_RESULT
    assert result["question_kind"] == "booking"
    assert result["also_about"] == ["recommendation"]
    assert result["details"]["party_size"] == 4
    assert result["details"]["day"] == "on Friday"
    assert result["context_used"]["destination"] == "Lisbon"
    assert result["answer"].startswith("To book a table in Lisbon for 2 adults and 2")
    assert result["follow_up"] == []


async def test_career_insights_runs_to_success(alice: JobsClient) -> None:
    request = example("career_insights")
    events, result, _ = await run(alice, "career_insights", request["input"])
    assert started_phases(events) == [
        ("read_market", "Reading the job market..."),
        ("match_skills", "Matching your skills to the demand..."),
        ("advise", "Writing your career advice..."),
    ]
    assert set(result) == CAREER_RESULT
    assert result["domain"] == "Data Engineering"
    assert result["roles"]["changing_fields"] is True
    assert result["roles"]["next_roles"] == ["Data Engineer"]
    assert result["skills"]["matched"][:2] == ["Python", "SQL"]
    assert result["skills"]["gaps"][0] == "Apache Spark"
    assert result["next_steps"][0].startswith("Learn Apache Spark")
    assert result["report_markdown"].startswith("# Career insights: Data Engineering")


WHOLE = "must be a whole number"
AT_MOST_3 = "must be at most 3"
PARTY = {"party": {"adults": "2"}}
ADULTS = "input.context.party.adults"


@pytest.mark.parametrize(
    ("job_type", "job_input", "field", "why"),
    [
        ("research", {"query": "   "}, "input.query", "must not be empty"),
        ("research", {"query": "Is solar worth it?", "depth": 9}, "input.depth", AT_MOST_3),
        ("research", {"query": "Is solar worth it?", "depth": 1.5}, "input.depth", WHOLE),
        ("concierge_query", {"question": ""}, "input.question", "must not be empty"),
        ("concierge_query", {"question": "Where?", "context": PARTY}, ADULTS, "must be a number"),
        ("career_insights", {"domain": "UX", "skills": "Figma"}, "input.skills", "must be a list"),
    ],
)
async def test_bad_input_is_invalid_argument_naming_the_field(
    stack: Stack, job_type: str, job_input: dict[str, Any], field: str, why: str
) -> None:
    assert await refused_input(stack, job_type, job_input) == [(field, why)]


# --- the fake OpenAI-compatible server ---------------------------------------------------


@pytest.fixture
async def model_client(openai_stack: Stack) -> AsyncIterator[JobsClient]:
    token = openai_stack.token("noor")
    async with JobsClient(openai_stack.job_api_addr, openai_stack.notifier_addr, token) as c:
        yield c


async def test_research_on_the_model(model_client: JobsClient, fake_server: FakeServer) -> None:
    proposed = [
        "How do rents in Berlin compare with mortgage payments?",
        "What does buying cost on top of the price?",
        "How secure is a rental contract in Berlin?",
    ]
    plan_reply = "Here are the sub-questions:\n" + "\n".join(
        f"{n}. {q}" for n, q in enumerate(proposed, 1)
    )
    await fake_server.script({"chunks": [plan_reply]}, default=SLOW_MODEL)
    job_input = {**example("research")["input"], "depth": 1}
    events, result, final = await run(model_client, "research", job_input)
    assert_research_result(result, 3)
    assert result["sub_questions"] == proposed
    assert [s["body"] for s in result["sections"]] == [DEFAULT_REPLY] * 3
    assert result["summary"] == result["conclusion"] == DEFAULT_REPLY
    # Each sub-question is announced before it is answered, in order.
    assert progress_phases(events, "investigate") == [
        f"Researching {n} of 3: {short_question(q)}..." for n, q in enumerate(proposed, 1)
    ]
    requests = await fake_server.requests()
    assert len(requests) == 1 + 3 + 2  # the plan, an answer each, summary and conclusion
    asked = [r["body"]["messages"][1]["content"] for r in requests]
    assert "Write exactly 3 sub-questions" in asked[0]
    assert [f"Sub-question {n} of 3: {q}" in asked[n] for n, q in enumerate(proposed, 1)] == [
        True
    ] * 3
    steps = {s.name: s for s in final.steps}
    (usage,) = steps["investigate"].usage
    assert (usage.model, usage.prompt_tokens, usage.completion_tokens) == (
        "fake-model-1",
        300,
        60,
    )


async def test_concierge_query_on_the_model(
    model_client: JobsClient, fake_server: FakeServer
) -> None:
    await fake_server.script(default=SLOW_MODEL)
    _, result, _ = await run(model_client, "concierge_query", example("concierge_query")["input"])
    assert set(result) == CONCIERGE_RESULT
    assert result["question_kind"] == "booking"
    assert result["answer"] == DEFAULT_REPLY
    (request,) = await fake_server.requests()
    prompt = request["body"]["messages"][1]["content"]
    assert "Kind of question: Booking" in prompt
    assert "Destination: Lisbon" in prompt


async def test_career_insights_on_the_model(
    model_client: JobsClient, fake_server: FakeServer
) -> None:
    await fake_server.script(default=SLOW_MODEL)
    _, result, _ = await run(model_client, "career_insights", example("career_insights")["input"])
    assert set(result) == CAREER_RESULT
    assert result["advice"] == DEFAULT_REPLY
    assert result["skills"]["gaps"][0] == "Apache Spark"
    (request,) = await fake_server.requests()
    assert "Field: Data Engineering" in request["body"]["messages"][1]["content"]
