"""Prose: inside a step, the answers stream as the step's partial output (earlier
answers kept, joined by blank lines) and each call's tokens are recorded with its prompt
id; outside a step, the answer alone."""

from __future__ import annotations

import itertools

import pytest

from stepkit import ChatMessage, Prose, RetryableStepError, StepContext
from stepkit.privacy import Vault
from tests.unit.scripted_provider import ScriptedProvider

MESSAGES = (ChatMessage("user", "write"),)


async def offline() -> str:
    return ""


async def test_a_step_s_answers_stream_as_one_growing_text_and_are_accounted() -> None:
    shown: list[str] = []
    used: list[tuple[str, int, int, str]] = []

    async def report_output(text_so_far: str) -> None:
        shown.append(text_so_far)

    async def report_progress(percent: int, phase: str = "") -> None:
        """Not used here."""

    ctx = StepContext(
        job_id="job-1",
        job_type="cv_tailoring",
        step="tailor_cv",
        attempt=1,
        input={},
        checkpoints={},
        report_progress=report_progress,
        report_output=report_output,
        record_usage=lambda m, p, c, prompt_id="": used.append((m, p, c, prompt_id)),
    )
    answers = iter(["First piece.", "Second one."])
    provider = ScriptedProvider(lambda _: next(answers))
    prose = Prose(provider, Vault(), ctx)
    assert await prose.complete("a@1", MESSAGES, offline, 50) == "First piece."
    assert await prose.complete("b@2", MESSAGES, offline, 50) == "Second one."
    assert shown[0] == "Fir"
    assert shown[-1] == "First piece.\n\nSecond one."
    assert all(b.startswith(a) for a, b in itertools.pairwise(shown))
    assert used == [("scripted-1", 10, 5, "a@1"), ("scripted-1", 10, 5, "b@2")]
    assert ctx.written == ["First piece.", "Second one."]


async def test_outside_a_step_only_the_answer() -> None:
    provider = ScriptedProvider(lambda _: "Just this.")
    assert await Prose(provider, Vault()).complete("a@1", MESSAGES, offline, 50) == "Just this."


async def test_ask_strips_and_refuses_an_empty_answer() -> None:
    answers = iter(["  Padded.  ", " \n "])
    prose = Prose(ScriptedProvider(lambda _: next(answers)), Vault())
    assert await prose.ask("a@1", MESSAGES, offline, 50) == "Padded."
    with pytest.raises(RetryableStepError, match="empty answer"):
        await prose.ask("a@1", MESSAGES, offline, 50)
