"""resume_improvement and skill_gap_analysis end to end with ``AI_PROVIDER=openai``,
against the fake chat-completions server (``tests/fake_openai.py``): the prose comes from
the model as it streams (partial output on the watch), under versioned prompt ids, its
tokens are on the job, and no contact detail reaches the model."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from devstack import Stack
from jobctl.client import JobsClient
from jobkit.convert import struct_to_dict
from jobkit.gen.jobs.v1 import jobs_pb2
from tests.fake_openai import DEFAULT_REPLY, SLOW_MODEL, FakeServer

pytestmark = pytest.mark.e2e

E = jobs_pb2
PHONE = "+44 113 496 0000"


def example(name: str) -> dict[str, Any]:
    request: dict[str, Any] = json.loads(Path(f"jobtypes/{name}/example.json").read_text("utf-8"))
    # A phone number too, so every kind of contact detail is there to leak.
    request["input"]["resume"]["phone"] = PHONE
    return request


@pytest.fixture
async def client(openai_stack: Stack) -> AsyncIterator[JobsClient]:
    token = openai_stack.token("noor")
    async with JobsClient(openai_stack.job_api_addr, openai_stack.notifier_addr, token) as c:
        yield c


async def run(
    client: JobsClient, fake_server: FakeServer, name: str, prose_step: str
) -> tuple[dict[str, Any], list[dict[str, Any]], jobs_pb2.Job]:
    await fake_server.script(default=SLOW_MODEL)
    request = example(name)
    job = await client.create_job(request["type"], request["input"])
    events = [e async for e in client.watch(job.job_id)]
    assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED, [e.message for e in events]
    written = [e.partial_output for e in events if e.step == prose_step and e.partial_output]
    # The prose is watched as it is written: snapshots, each continuing the one before.
    assert len(written) >= 2
    assert all(b.startswith(a) and len(b) > len(a) for a, b in itertools.pairwise(written))
    assert all(e.step == prose_step for e in events if e.partial_output)
    final = await client.get_job(job.job_id)
    requests = await fake_server.requests()
    sent = json.dumps([r["body"] for r in requests])
    resume = request["input"]["resume"]
    for private in (resume["email"], PHONE, "Sam", "Example", resume["location"]):
        assert private not in sent
    return struct_to_dict(final.result), requests, final


async def test_resume_improvement_on_the_model(client: JobsClient, fake_server: FakeServer) -> None:
    result, requests, final = await asyncio.wait_for(
        run(client, fake_server, "resume_improvement", "write_suggestions"), 90
    )
    assert len(requests) == 5  # a suggestion for each of 4 bullets, then the overview
    assert "Tailspin Toys" not in json.dumps(requests[0]["body"])  # facts only, no more
    assert "Responsible for the checkout service" in json.dumps(requests[0]["body"])
    assert [r["suggestion"] for r in result["rewrites"]] == [DEFAULT_REPLY] * 4
    assert result["overview"] == DEFAULT_REPLY
    assert result["score"] == 45  # the analysis does not depend on the model
    steps = {s.name: s for s in final.steps}
    (usage,) = steps["write_suggestions"].usage
    assert (usage.model, usage.prompt_tokens, usage.completion_tokens) == (
        "fake-model-1",
        5 * 120,
        5 * 30,
    )
    assert not steps["analyze_resume"].usage


async def test_skill_gap_analysis_on_the_model(client: JobsClient, fake_server: FakeServer) -> None:
    result, requests, final = await asyncio.wait_for(
        run(client, fake_server, "skill_gap_analysis", "write_learning_plan"), 90
    )
    (request,) = requests
    assert "Target role: Data Engineer" in request["body"]["messages"][1]["content"]
    assert result["plan_text"] == DEFAULT_REPLY
    assert result["missing_skills"][0] == "ETL"
    steps = {s.name: s for s in final.steps}
    (usage,) = steps["write_learning_plan"].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (120, 30)
