"""The provider seam without a network: the local provider, Retry-After, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2

from jobtypes.cv_tailoring.prompts import ModelCvWriter
from resume import (
    LocalCvWriter,
    Match,
    PostingAnalysis,
    Profile,
    TailoredCv,
    analyze_posting,
    load_profile,
    render_preview,
    score_match,
    tailor_cv,
    tailoring_result,
    write_cover_letter,
)
from services.ai_worker.config import Settings, provider_for
from stepkit import Prose
from stepkit.privacy import Vault
from stepkit.providers import (
    ChatMessage,
    ChatRequest,
    LocalProvider,
    OpenAIProvider,
    TextChunk,
    Usage,
    complete,
)
from stepkit.providers.openai import MAX_RETRY_AFTER_S, parse_retry_after
from tests.unit.test_cv_tailoring import POSTING, RESUME

ENV = {"DATABASE_URL": "postgresql://x/y", "NATS_URL": "nats://127.0.0.1:4222"}


def _round_trip(data: dict[str, Any]) -> dict[str, Any]:
    return json_format.MessageToDict(json_format.ParseDict(data, struct_pb2.Struct()))


async def _pipeline(writer: Any) -> dict[str, Any]:
    profile = Profile.from_dict(_round_trip(load_profile(RESUME).to_dict()))
    analysis = PostingAnalysis.from_dict(_round_trip(analyze_posting(POSTING).to_dict()))
    match = Match.from_dict(_round_trip(score_match(profile, analysis).to_dict()))
    cv = await tailor_cv(profile, analysis, match, writer)
    letter = await write_cover_letter(profile, analysis, match, writer)
    cv = TailoredCv.from_dict(_round_trip(cv.to_dict()))
    return tailoring_result(cv, letter, match, render_preview(cv, letter, match, analysis))


async def test_local_provider_gives_the_template_writer_output_byte_for_byte() -> None:
    through_provider = await _pipeline(ModelCvWriter(Prose(LocalProvider(), Vault())))
    assert through_provider == await _pipeline(LocalCvWriter())


async def test_local_provider_streams_chunks_that_join_to_the_text_then_usage() -> None:
    text = "Dear Hiring Team,\n\n  two  spaces\tand a tab. "

    async def offline() -> str:
        return text

    request = ChatRequest("t@1", (ChatMessage("user", "four words of prompt"),), offline)
    items = [item async for item in LocalProvider().stream(request)]
    chunks = [i.text for i in items if isinstance(i, TextChunk)]
    assert len(chunks) > 1
    assert "".join(chunks) == text
    assert items[-1] == Usage(prompt_tokens=4, completion_tokens=8, model="local-templates")
    done = await complete(LocalProvider(), request)
    assert (done.text, done.usage.completion_tokens) == (text, 8)


def test_provider_is_chosen_by_ai_provider() -> None:
    assert provider_for(Settings.from_env(ENV)).name == "local"
    openai = provider_for(Settings.from_env({**ENV, "AI_PROVIDER": "openai"}))
    assert isinstance(openai, OpenAIProvider)


def test_settings_never_show_the_api_key() -> None:
    settings = Settings.from_env(
        {**ENV, "AI_PROVIDER": "openai", "OPENAI_API_KEY": "sk-very-secret", "AI_MODEL": "m"}
    )
    assert settings.openai_api_key == "sk-very-secret"
    assert "sk-very-secret" not in repr(settings)
    provider = provider_for(settings)
    assert "sk-very-secret" not in repr(provider)
    assert (settings.ai_request_timeout_s, settings.ai_stall_timeout_s) == (120.0, 30.0)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "86400"}, MAX_RETRY_AFTER_S),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_forms(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(headers) == seconds


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after({"retry-after": header}, now) == 30.0
