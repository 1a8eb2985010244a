"""The ``openai`` provider against a server process speaking the chat-completions wire
format (``tests/fake_openai.py``), streaming included."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import structlog

from devstack import free_port
from jobtypes.cv_tailoring import steps as cv_steps
from jobtypes.cv_tailoring.spec import SPEC as CV_TAILORING
from stepkit import StepContext
from stepkit.errors import PermanentStepError, RetryableStepError, StepError
from stepkit.privacy import Vault, private_complete
from stepkit.providers import (
    ChatMessage,
    ChatRequest,
    OpenAIProvider,
    StreamItem,
    TextChunk,
    Usage,
    complete,
)
from tests import fake_openai
from tests.fake_openai import FakeServer
from tests.unit.test_cv_tailoring import POSTING, RESUME

API_KEY = "sk-test-4f1c9a7e-do-not-log"
PROMPT_CANARY = "Zebulon Quartermaine-Okonkwo wrote the invoicing pipeline"


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeServer]:
    with fake_openai.running() as server:
        yield server


@pytest.fixture
async def fake(fake_server: FakeServer) -> FakeServer:
    await fake_server.script()
    return fake_server


def provider(fake: FakeServer, **timeouts: float) -> OpenAIProvider:
    return OpenAIProvider(
        base_url=f"{fake.url}/v1",
        api_key=API_KEY,
        model="test-model",
        request_timeout_s=timeouts.get("request_timeout_s", 20.0),
        stall_timeout_s=timeouts.get("stall_timeout_s", 10.0),
    )


@pytest.fixture
async def openai(fake: FakeServer) -> AsyncIterator[OpenAIProvider]:
    chosen = provider(fake)
    yield chosen
    await chosen.aclose()


async def _offline() -> str:
    return "unused offline text"


REQUEST = ChatRequest(
    "test_prompt@1",
    (ChatMessage("system", "Be brief."), ChatMessage("user", f"Rewrite: {PROMPT_CANARY}")),
    _offline,
    max_tokens=64,
)


async def collect(chosen: OpenAIProvider, request: ChatRequest = REQUEST) -> list[StreamItem]:
    return [item async for item in chosen.stream(request)]


async def test_a_streamed_completion_is_assembled_with_its_usage(
    fake: FakeServer, openai: OpenAIProvider
) -> None:
    chunks = ["Led ", "a team", " of four", "."]
    await fake.script({"chunks": chunks, "usage": {"prompt_tokens": 31, "completion_tokens": 5}})
    items = await collect(openai)
    assert [i.text for i in items if isinstance(i, TextChunk)] == chunks
    assert items[-1] == Usage(prompt_tokens=31, completion_tokens=5, model="fake-model-1")
    (sent,) = await fake.requests()
    body = sent["body"]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["model"] == "test-model"
    assert body["max_tokens"] == 64
    assert body["messages"][1] == {"role": "user", "content": f"Rewrite: {PROMPT_CANARY}"}
    assert sent["outcome"] == "completed"
    done = await complete(openai, REQUEST)
    assert done.text == "An engineer who ships reliable, well-tested systems."
    assert done.usage.completion_tokens > 0
    assert not done.usage.estimated


async def test_a_server_without_usage_gets_an_estimate(
    fake: FakeServer, openai: OpenAIProvider
) -> None:
    await fake.script({"chunks": ["x" * 40], "usage": None})
    usage = (await complete(openai, REQUEST)).usage
    assert usage.estimated
    assert usage.completion_tokens == 10
    assert usage.prompt_tokens > 0


async def test_429_is_retryable_after_the_servers_delay(
    fake: FakeServer, openai: OpenAIProvider
) -> None:
    await fake.script(
        {
            "status": 429,
            "headers": {"Retry-After": "7"},
            "body": {"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}},
        }
    )
    with pytest.raises(RetryableStepError) as caught:
        await collect(openai)
    assert caught.value.code == "MODEL_RATE_LIMITED"
    assert caught.value.retry_after_s == 7.0
    assert "rate_limit_exceeded" in caught.value.message
    assert len(await fake.requests()) == 1  # the retry is the orchestrator's, after 7 s


async def test_a_content_policy_refusal_is_permanent(
    fake: FakeServer, openai: OpenAIProvider
) -> None:
    await fake.script(
        {
            "status": 400,
            "body": {
                "error": {
                    # Providers quote the prompt back: none of it may reach the step's message.
                    "message": f"Rejected by our safety system: {PROMPT_CANARY}",
                    "type": "invalid_request_error",
                    "code": "content_policy_violation",
                }
            },
        }
    )
    with pytest.raises(PermanentStepError) as caught:
        await collect(openai)
    assert not caught.value.retryable
    assert caught.value.code == "MODEL_REQUEST_REJECTED"
    assert "content_policy_violation" in caught.value.message
    assert "Zebulon" not in caught.value.message
    assert len(await fake.requests()) == 1


async def test_a_content_filter_finish_is_permanent(
    fake: FakeServer, openai: OpenAIProvider
) -> None:
    await fake.script({"chunks": ["I can"], "finish_reason": "content_filter"})
    with pytest.raises(PermanentStepError) as caught:
        await collect(openai)
    assert caught.value.code == "MODEL_CONTENT_FILTERED"


@pytest.mark.parametrize(
    ("status", "code"), [(500, "MODEL_UNAVAILABLE"), (503, "MODEL_UNAVAILABLE")]
)
async def test_server_errors_are_retryable(
    fake: FakeServer, openai: OpenAIProvider, status: int, code: str
) -> None:
    await fake.script({"status": status, "body": {"error": {"message": "boom"}}})
    with pytest.raises(RetryableStepError) as caught:
        await collect(openai)
    assert caught.value.code == code
    assert caught.value.retry_after_s is None


async def test_an_unreachable_server_is_retryable() -> None:
    nowhere = OpenAIProvider(
        base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="", model="m", stall_timeout_s=2
    )
    try:
        with pytest.raises(RetryableStepError) as caught:
            await collect(nowhere)
        assert caught.value.code == "MODEL_UNAVAILABLE"
    finally:
        await nowhere.aclose()


async def test_a_stream_cut_before_its_end_is_retryable(
    fake: FakeServer, openai: OpenAIProvider
) -> None:
    await fake.script({"chunks": ["Hal"], "finish_reason": None, "done": False})
    with pytest.raises(RetryableStepError) as caught:
        await collect(openai)
    assert caught.value.code == "MODEL_STREAM_BROKEN"


async def test_a_stalled_stream_times_out_as_retryable(fake: FakeServer) -> None:
    await fake.script({"chunks": ["Hel", "lo"], "stall_after": 1, "stall_s": 60})
    stalling = provider(fake, stall_timeout_s=0.5)
    seen: list[StreamItem] = []

    async def read() -> None:
        async for item in stalling.stream(REQUEST):
            seen.append(item)

    started = time.monotonic()
    try:
        with pytest.raises(RetryableStepError) as caught:
            await read()
    finally:
        await stalling.aclose()
    assert caught.value.code == "MODEL_TIMEOUT"
    assert "0.5s" in caught.value.message
    assert seen == [TextChunk("Hel")]
    assert time.monotonic() - started < 5
    await _server_sees_disconnect(fake)


async def test_the_whole_call_has_a_deadline(fake: FakeServer) -> None:
    # A chunk every 0.3 s never stalls, but the call as a whole runs out of time.
    await fake.script({"chunks": ["a"] * 50, "chunk_delay_s": 0.3})
    slow = provider(fake, request_timeout_s=1.0, stall_timeout_s=0.8)
    try:
        with pytest.raises(RetryableStepError) as caught:
            await collect(slow)
    finally:
        await slow.aclose()
    assert caught.value.code == "MODEL_TIMEOUT"
    assert "longer than 1s" in caught.value.message


async def _server_sees_disconnect(fake: FakeServer) -> None:
    deadline = time.monotonic() + 5
    while True:
        requests = await fake.requests()
        if requests and requests[-1]["outcome"] == "disconnected":
            return
        assert time.monotonic() < deadline, f"server saw no disconnect: {requests}"
        await asyncio.sleep(0.05)


async def test_cancelling_mid_stream_closes_the_connection(
    fake: FakeServer, openai: OpenAIProvider
) -> None:
    await fake.script({"chunks": [f"word{i} " for i in range(100)], "chunk_delay_s": 0.1})
    first = asyncio.Event()

    async def step() -> str:
        async def seen(_: str) -> None:
            first.set()

        return (await complete(openai, REQUEST, on_chunk=seen)).text

    task = asyncio.create_task(step())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _server_sees_disconnect(fake)
    # The provider is still usable afterwards: the broken connection was not pooled.
    await fake.script({"chunks": ["ok"]})
    assert (await complete(openai, REQUEST)).text == "ok"


async def test_the_key_goes_in_the_header_and_never_into_a_log(
    fake: FakeServer, openai: OpenAIProvider
) -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = logging.getLogger()
    handler, level = Keep(logging.DEBUG), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # httpx and httpcore too, at their chattiest
    errors: list[StepError] = []
    try:
        with structlog.testing.capture_logs() as events:
            await fake.script(
                {},
                {"status": 429, "headers": {"Retry-After": "1"}},
                {"status": 400, "body": {"error": {"message": PROMPT_CANARY, "code": "x"}}},
                {"chunks": ["a"], "stall_after": 0, "stall_s": 30},
            )
            await complete(openai, REQUEST)
            for chosen in (openai, openai, provider(fake, stall_timeout_s=0.3)):
                try:
                    await complete(chosen, REQUEST)
                except StepError as error:
                    errors.append(error)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert [e.code for e in errors] == [
        "MODEL_RATE_LIMITED",
        "MODEL_REQUEST_REJECTED",
        "MODEL_TIMEOUT",
    ]
    headers = [r["headers"] for r in await fake.requests()]
    assert all(h["authorization"] == f"Bearer {API_KEY}" for h in headers)
    assert any(e["event"] == "model_call_finished" for e in events)
    assert any(e["event"] == "model_call_failed" for e in events)
    logged = json.dumps(events, default=str) + "\n".join(
        f"{r.name} {r.getMessage()} {r.args!r} {r.__dict__!r}" for r in records
    )
    logged += " ".join(f"{e.code} {e.message} {e!r}" for e in errors)
    assert records, "httpx/httpcore logged nothing at DEBUG: the check would prove nothing"
    for secret in (API_KEY, "sk-test", "Zebulon", "invoicing pipeline", "Be brief"):
        assert secret not in logged


CONTACT = {
    "name": "Zebulon Quartermaine-Okonkwo",
    "email": "zeb.qo+cv@mail.example.org",
    "phone": "+44 20 7946 0321",
    "location": "12 Harbour Road, Leith, Edinburgh EH6 6LU",
    "linkedin": "https://www.linkedin.com/in/zeb-qo",
}


@pytest.mark.parametrize("style", ["exact", "lower", "spaced"])
async def test_contact_details_reach_the_model_as_placeholders_and_come_back(
    fake: FakeServer, openai: OpenAIProvider, style: str
) -> None:
    # A model that writes back every placeholder it was given, in three-character chunks.
    await fake.script(default={"echo_placeholders": style})
    summary = (
        f"Backend engineer. Reach me at {CONTACT['email']} or {CONTACT['phone']}; "
        f"more at {CONTACT['linkedin']}."
    )
    job_input = {"resume": {**RESUME, **CONTACT, "summary": summary}, "job_posting": POSTING}
    handlers = cv_steps.handlers(openai)
    checkpoints: dict[str, Any] = {}

    async def progress(percent: int, phase: str = "") -> None:
        del percent, phase

    for step in CV_TAILORING.step_names:
        handler = handlers[step]
        ctx = StepContext("job-1", CV_TAILORING.name, step, 1, job_input, checkpoints, progress)
        checkpoints = {**checkpoints, step: await handler(ctx)}
    result = checkpoints[CV_TAILORING.step_names[-1]]

    requests = await fake.requests()
    assert len(requests) >= 3  # the summary, the bullets, the letter
    sent = json.dumps([r["body"] for r in requests], ensure_ascii=False)
    for detail in (*CONTACT.values(), "Zebulon", "Okonkwo", "7946", "linkedin.com"):
        assert detail not in sent
    assert "[NAME_1]" in sent
    assert "[EMAIL_1]" in sent
    letter = result["cover_letter"]
    for detail in (CONTACT["name"], CONTACT["email"], CONTACT["phone"]):
        assert detail in letter
    cv_summary = result["tailored_cv"]["summary"]
    for detail in (CONTACT["email"], CONTACT["phone"], CONTACT["linkedin"]):
        assert detail in cv_summary
    assert "[" not in cv_summary + letter


async def test_streamed_chunks_are_unmasked_even_when_a_placeholder_is_split(
    fake: FakeServer, openai: OpenAIProvider
) -> None:
    await fake.script({"chunks": ["Sincerely, [na", "me_", "1] (", "[ EMA", "IL_1 ])"]})
    vault = Vault.for_input({"resume": CONTACT})
    request = ChatRequest(
        "test_prompt@1",
        (ChatMessage("user", f"Sign as {CONTACT['name']}, {CONTACT['email']}"),),
        _offline,
    )
    seen: list[str] = []

    async def on_chunk(text: str) -> None:
        seen.append(text)

    done = await private_complete(openai, request, vault, on_chunk)
    expected = f"Sincerely, {CONTACT['name']} ({CONTACT['email']})"
    assert done.text == expected
    assert "".join(seen) == expected
    assert seen[0] == "Sincerely, "
    (sent,) = await fake.requests()
    assert sent["body"]["messages"][0]["content"] == "Sign as [NAME_1], [EMAIL_1]"
