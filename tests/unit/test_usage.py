"""Model usage: the price table, what a result's usage becomes, and how a Job shows it."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from jobkit.convert import job_to_proto
from jobkit.errors import ConfigError
from jobkit.model import StepUsage
from jobkit.pricing import PriceTable
from jobtypes.noop.spec import SPEC as NOOP
from services.ai_worker.progress import AttemptUsage
from services.orchestrator.batching import merge
from services.orchestrator.codec import encode_dispatch
from services.orchestrator.state_machine import Ignored, ReportKind, apply_report, start_job
from tests.unit.test_state_machine import NOW, decided, new_job, report

PRICES = PriceTable.parse('{"gpt-x": {"prompt": 2.5, "completion": 10}}')


def test_the_price_table_prices_per_million_tokens_and_knows_what_it_does_not_know() -> None:
    assert PRICES.cost("gpt-x", 1_000_000, 0) == pytest.approx(2.5)
    assert PRICES.cost("gpt-x", 2_000, 1_000) == pytest.approx(0.005 + 0.01)
    assert PRICES.cost("unpriced", 10_000, 10_000) == 0.0
    assert PriceTable.parse("").cost("gpt-x", 1, 1) == 0.0


@pytest.mark.parametrize(
    "raw",
    ["not json", "[1, 2]", '{"m": {"prompt": 1}}', '{"m": {"prompt": -1, "completion": 1}}'],
)
def test_a_bad_price_table_is_a_config_error(raw: str) -> None:
    with pytest.raises(ConfigError):
        PriceTable.parse(raw)


def test_a_price_table_can_come_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text('{"m": {"prompt": 1, "completion": 2}}')
    assert PriceTable.parse(f"@{path}").cost("m", 1_000_000, 1_000_000) == 3.0


def test_an_attempt_adds_up_its_calls_by_model() -> None:
    usage = AttemptUsage()
    usage.record("gpt-x", 100, 20, "cv_summary@2")
    usage.record("gpt-x", 50, 5, "cv_bullet@2")
    usage.record("gpt-x", 50, 5, "cv_bullet@2")
    usage.record("small", 7, 1)
    assert [
        (u.model, u.prompt_tokens, u.completion_tokens, list(u.prompts)) for u in usage.protos()
    ] == [
        ("gpt-x", 200, 30, ["cv_summary@2", "cv_bullet@2"]),
        ("small", 7, 1, []),
    ]


def test_a_result_brings_its_usage_once_and_the_orchestrator_prices_it() -> None:
    job = decided(start_job(new_job(), NOOP, NOW)).change.job
    spent = (StepUsage("prepare", 1, "gpt-x", 2_000, 1_000),)
    result = report(job, ReportKind.SUCCEEDED, output=b"", usage=spent)
    accepted = decided(apply_report(job, NOOP, result, NOW))
    assert accepted.change.usage == spent
    change = merge([accepted], encode_dispatch, PRICES)
    assert [u.cost_usd for u in change.usage] == [pytest.approx(0.015)]
    # The same result again (a redelivery) is fenced off: no second charge.
    again = apply_report(accepted.change.job, NOOP, result, NOW)
    assert isinstance(again, Ignored)
    # Progress carries no usage.
    progress = decided(apply_report(job, NOOP, report(job, ReportKind.PROGRESS, percent=5), NOW))
    assert progress.change.usage == ()


def test_a_job_shows_usage_per_step_and_in_total_by_model() -> None:
    job = new_job()
    shown = replace(
        job,
        usage=(
            StepUsage("prepare", 0, "gpt-x", 100, 10, 0.5, ("a@1",)),
            StepUsage("work", 0, "gpt-x", 200, 20, 1.0, ("b@2", "a@1")),
            StepUsage("work", 0, "small", 5, 1, 0.0),
        ),
    )
    message = job_to_proto(shown)
    by_step = {s.name: [(u.model, u.prompt_tokens) for u in s.usage] for s in message.steps}
    assert by_step == {
        "prepare": [("gpt-x", 100)],
        "work": [("gpt-x", 200), ("small", 5)],
        "finish": [],
    }
    totals = [(u.model, u.prompt_tokens, u.completion_tokens, u.cost_usd) for u in message.usage]
    assert totals == [("gpt-x", 300, 30, 1.5), ("small", 5, 1, 0.0)]
    assert list(message.usage[0].prompts) == ["a@1", "b@2"]
    assert list(message.steps[1].usage[0].prompts) == ["b@2", "a@1"]
    assert uuid.UUID(message.job_id) == job.id
