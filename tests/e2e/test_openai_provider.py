"""A cv_tailoring job end to end with ``AI_PROVIDER=openai``, against the fake
chat-completions server (``tests/fake_openai.py``): the prose comes from the model, a 429
with ``Retry-After`` is retried no sooner than asked, contact details never reach the
model (only placeholders for them, which come back in the result), and neither the API key
nor the prompts reach the worker's log."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.protobuf import json_format

from devstack import Stack
from jobctl.client import JobsClient
from jobkit.gen.jobs.v1 import jobs_pb2
from tests.e2e.conftest import OPENAI_API_KEY
from tests.fake_openai import DEFAULT_REPLY, FakeServer
from tests.unit.test_cv_tailoring import POSTING, RESUME

pytestmark = pytest.mark.e2e

E = jobs_pb2
API_KEY = OPENAI_API_KEY
EMAIL = "dana.okafor.e2e@example.org"
PHONE = "+44 20 7946 0777"


@pytest.fixture
async def client(openai_stack: Stack) -> AsyncIterator[JobsClient]:
    token = openai_stack.token("olu")
    async with JobsClient(openai_stack.job_api_addr, openai_stack.notifier_addr, token) as c:
        yield c


async def test_cv_tailoring_runs_on_the_model(
    client: JobsClient, openai_stack: Stack, fake_server: FakeServer
) -> None:
    # The first model call is rate limited; every later one gets the default reply.
    await fake_server.script({"status": 429, "headers": {"Retry-After": "1.5"}})
    resume: dict[str, Any] = {**RESUME, "email": EMAIL, "phone": PHONE}
    job = await client.create_job("cv_tailoring", {"resume": resume, "job_posting": POSTING})
    events = await asyncio.wait_for(_watch(client, job.job_id), 60)
    assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED, [e.message for e in events]
    (retry,) = [e for e in events if e.type == E.JOB_EVENT_TYPE_STEP_RETRYING]
    # The CV and the letter ask the model at the same time: either may meet the 429.
    assert retry.step in ("tailor_cv", "write_cover_letter")
    assert "MODEL_RATE_LIMITED" in retry.message
    assert retry.retry_delay.ToTimedelta().total_seconds() >= 1.5

    result = json_format.MessageToDict((await client.get_job(job.job_id)).result)
    assert result["tailored_cv"]["summary"] == DEFAULT_REPLY
    assert result["tailored_cv"]["email"] == EMAIL  # kept in the result...
    letter = result["cover_letter"]
    assert letter.startswith("Dear Hiring Team at ")
    assert DEFAULT_REPLY in letter
    assert letter.endswith("Dana Okafor")

    requests = await fake_server.requests()
    assert len(requests) >= 3  # the 429, the summary, bullets, the letter
    assert all(r["headers"]["authorization"] == f"Bearer {API_KEY}" for r in requests)
    assert {r["body"]["model"] for r in requests} == {"fake-model-1"}
    sent = json.dumps([r["body"] for r in requests])
    assert "2M payments a day" in sent  # the prompts carry the résumé's facts...
    for contact in (EMAIL, PHONE, "Okafor"):
        assert contact not in sent  # ...but not its contact details or the name

    worker_log = openai_stack.services["ai_worker"].log_path.read_text(encoding="utf-8")
    assert "model_call_finished" in worker_log
    for secret in (API_KEY, "sk-e2e", "2M payments a day", "Reword this CV bullet"):
        assert secret not in worker_log


async def test_contact_details_reach_the_model_only_as_placeholders(
    client: JobsClient, fake_server: FakeServer
) -> None:
    # Every answer writes back the placeholders of its prompt, spaced and split across
    # chunks, the way a model uses details it was given.
    await fake_server.script(default={"echo_placeholders": "spaced"})
    link = "https://www.linkedin.com/in/dana-okafor-e2e"
    resume: dict[str, Any] = {
        **RESUME,
        "email": EMAIL,
        "phone": PHONE,
        "linkedin": link,
        "summary": f"Backend engineer. Write to {EMAIL}, call {PHONE} or see {link}.",
    }
    job = await client.create_job("cv_tailoring", {"resume": resume, "job_posting": POSTING})
    events = await asyncio.wait_for(_watch(client, job.job_id), 60)
    assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED, [e.message for e in events]

    requests = await fake_server.requests()
    sent = json.dumps([r["body"] for r in requests], ensure_ascii=False)
    assert "[NAME_1]" in sent
    for contact in (EMAIL, PHONE, link, "Dana", "Okafor", "7946", "linkedin.com"):
        assert contact not in sent

    result = json_format.MessageToDict((await client.get_job(job.job_id)).result)
    summary, letter = result["tailored_cv"]["summary"], result["cover_letter"]
    for contact in (EMAIL, PHONE, link):
        assert contact in summary
    for contact in (EMAIL, PHONE, "Dana Okafor"):
        assert contact in letter
    assert "[" not in summary + letter


async def _watch(client: JobsClient, job_id: str) -> list[jobs_pb2.JobEvent]:
    return [e async for e in client.watch(job_id)]


async def test_the_letter_is_watched_as_it_is_written_and_its_tokens_are_on_the_job(
    client: JobsClient, fake_server: FakeServer
) -> None:
    # A model that writes two characters every 40 ms: each piece takes about a second.
    chunks = [DEFAULT_REPLY[i : i + 2] for i in range(0, len(DEFAULT_REPLY), 2)]
    await fake_server.script(
        default={
            "chunks": chunks,
            "chunk_delay_s": 0.04,
            "usage": {"prompt_tokens": 120, "completion_tokens": 30},
        }
    )
    resume: dict[str, Any] = {**RESUME, "email": EMAIL, "phone": PHONE}
    job = await client.create_job("cv_tailoring", {"resume": resume, "job_posting": POSTING})
    events = await asyncio.wait_for(_watch(client, job.job_id), 90)
    assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED, [e.message for e in events]
    letter = [e.partial_output for e in events if e.step == "write_cover_letter"]
    letter = [text for text in letter if text]
    # Several snapshots of the letter being written, each continuing the one before.
    assert len(letter) >= 2
    assert all(b.startswith(a) and len(b) > len(a) for a, b in itertools.pairwise(letter))
    assert DEFAULT_REPLY.startswith(letter[-1])

    final = await client.get_job(job.job_id)
    steps = {s.name: s for s in final.steps}
    for name in ("tailor_cv", "write_cover_letter"):
        (usage,) = steps[name].usage
        assert usage.model == "fake-model-1"
        assert usage.prompt_tokens % 120 == 0
        assert usage.prompt_tokens > 0
        assert usage.completion_tokens == usage.prompt_tokens // 4
    assert list(steps["write_cover_letter"].usage[0].prompts) == ["cv_cover_letter@2"]
    assert "cv_summary@2" in steps["tailor_cv"].usage[0].prompts
    assert not steps["load_profile"].usage  # no model call there
    (total,) = final.usage
    assert total.prompt_tokens == sum(u.prompt_tokens for s in final.steps for u in s.usage)
