"""An attempt's outcome and the one report it sends: every kind of outcome, each mapped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest
from google.protobuf import json_format

from jobkit import metrics
from jobkit.gen.jobs.internal.v1 import worker_pb2
from services.ai_worker.outcomes import (
    Abandoned,
    Failed,
    HandedBack,
    InputRequired,
    Outcome,
    Succeeded,
    report_for,
    to_report,
)

TASK = worker_pb2.StepTask(job_id="job-1", job_type="noop", step="work", attempt=3)
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
USAGE = (
    worker_pb2.ModelUsage(
        model="gpt", prompt_tokens=10, completion_tokens=5, prompts=["cover_letter@2"]
    ),
)

#: One of each kind, and the oneof field its report sets (``None``: it sends no report).
EXAMPLES: list[tuple[Outcome, str | None]] = [
    (Succeeded({"text": "Dear team", "n": 2}, usage=USAGE), "succeeded"),
    (Failed("MODEL_RATE_LIMITED", "slow down", retry_after_s=1.5, usage=USAGE), "failed"),
    (
        InputRequired("Check it", {"type": "object"}, {"draft": 1}, 60.0, usage=USAGE),
        "input_required",
    ),
    (Abandoned(), None),
    (HandedBack(), None),
]


def test_the_examples_cover_every_kind_of_outcome() -> None:
    assert {type(outcome) for outcome, _ in EXAMPLES} == set(get_args(Outcome))


@pytest.mark.parametrize(("outcome", "field"), EXAMPLES)
def test_each_outcome_maps_to_its_report(outcome: Outcome, field: str | None) -> None:
    report = to_report(TASK, outcome, NOW)
    if field is None:
        assert report is None
        return
    assert report is not None
    assert report.WhichOneof("outcome") == field
    assert (report.job_id, report.step, report.attempt) == ("job-1", "work", 3)
    assert report.reported_at.ToDatetime(UTC) == NOW
    # A result carries the tokens the attempt spent, whether it succeeded or failed.
    assert list(report.usage) == list(USAGE)


def test_each_kind_has_its_own_metric_label() -> None:
    labels = [outcome.label for outcome, _ in EXAMPLES]
    assert sorted(labels) == sorted(get_args(metrics.StepOutcome))


def test_a_success_carries_its_output() -> None:
    output = {"text": "Dear team", "n": 2, "items": [{"a": True}], "none": None}
    report = to_report(TASK, Succeeded(output), NOW)
    assert report is not None
    assert json_format.MessageToDict(report.succeeded.output) == output
    assert list(report.usage) == []


def test_an_empty_output_is_still_a_success() -> None:
    report = to_report(TASK, Succeeded({}), NOW)
    assert report is not None
    assert report.WhichOneof("outcome") == "succeeded"
    assert len(report.succeeded.output) == 0


def test_a_request_for_input_carries_what_it_asks_and_how_long_it_waits() -> None:
    asked = InputRequired("Check the CV", {"type": "object"}, {"cv": {"a": 1}}, 90.0)
    report = to_report(TASK, asked, NOW)
    assert report is not None
    got = report.input_required
    assert got.prompt == "Check the CV"
    assert json_format.MessageToDict(got.schema) == {"type": "object"}
    assert json_format.MessageToDict(got.draft) == {"cv": {"a": 1}}
    assert got.timeout.ToTimedelta() == timedelta(seconds=90)
    bare = to_report(TASK, InputRequired("Go on?", {}), NOW)
    assert bare is not None
    assert not bare.input_required.HasField("draft")
    assert not bare.input_required.HasField("timeout")


def test_a_failure_carries_its_code_message_and_retryability() -> None:
    report = to_report(TASK, Failed("BAD_INPUT", "no résumé", retryable=False), NOW)
    assert report is not None
    assert (report.failed.code, report.failed.message, report.failed.retryable) == (
        "BAD_INPUT",
        "no résumé",
        False,
    )


def test_a_failure_with_default_fields_is_still_a_failure() -> None:
    report = to_report(TASK, Failed("", "", retryable=False), NOW)
    assert report is not None
    assert report.WhichOneof("outcome") == "failed"


@pytest.mark.parametrize(
    ("retryable", "retry_after_s", "expected"),
    [
        (True, 1.5, timedelta(milliseconds=1500)),
        (True, 0.0, timedelta(0)),
        (True, None, None),
        # A permanent failure has no next attempt to delay.
        (False, 7.0, None),
    ],
)
def test_a_retry_after_travels_only_with_a_retryable_failure(
    retryable: bool, retry_after_s: float | None, expected: timedelta | None
) -> None:
    report = to_report(TASK, Failed("X", "y", retryable, retry_after_s), NOW)
    assert report is not None
    if expected is None:
        assert not report.failed.HasField("retry_after")
    else:
        assert report.failed.HasField("retry_after")
        assert report.failed.retry_after.ToTimedelta() == expected


def test_report_for_fences_by_job_step_and_attempt() -> None:
    heartbeat = report_for(TASK)
    assert (heartbeat.job_id, heartbeat.step, heartbeat.attempt) == ("job-1", "work", 3)
    assert heartbeat.WhichOneof("outcome") is None
    assert not heartbeat.HasField("reported_at")
    assert report_for(TASK, NOW).reported_at.ToDatetime(UTC) == NOW
