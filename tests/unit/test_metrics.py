"""The Prometheus metrics: what feeds them, their labels, and the /metrics endpoint."""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any, cast

import grpc
import pytest
from prometheus_client import REGISTRY

from jobkit import metrics
from jobkit.errors import ConfigError, NotFound
from jobkit.lifecycle import EventType, JobStatus
from jobkit.model import JobChange, NewEvent
from jobkit.rpc import server_streaming, unary
from tests.unit.test_state_machine import new_job


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_observe_changes_counts_finished_jobs_once_and_retries() -> None:
    running = new_job(status=JobStatus.RUNNING)
    succeeded = replace(running, status=JobStatus.SUCCEEDED)
    retrying = NewEvent(EventType.STEP_RETRYING, JobStatus.RUNNING, 10, step="prepare")
    before_done = value("jobs_finished_total", type="noop", status="SUCCEEDED")
    before_retries = value("jobs_step_retries_total", type="noop", step="prepare")
    metrics.observe_changes(
        [
            (running, JobChange(job=succeeded)),
            (running, JobChange(job=running, events=(retrying, retrying))),
            # Already terminal before: not counted again.
            (succeeded, JobChange(job=succeeded)),
        ]
    )
    assert value("jobs_finished_total", type="noop", status="SUCCEEDED") == before_done + 1
    assert value("jobs_step_retries_total", type="noop", step="prepare") == before_retries + 2


@pytest.mark.parametrize("outcome", ["succeeded", "failed", "cancelled", "handed_back"])
def test_observe_step_labels_the_outcome(outcome: metrics.StepOutcome) -> None:
    labels = {"type": "noop", "step": "work", "outcome": outcome}
    before = value("jobs_step_duration_seconds_count", **labels)
    metrics.observe_step("noop", "work", outcome, 0.2)
    assert value("jobs_step_duration_seconds_count", **labels) == before + 1


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("", None),
        ("0", None),
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        (":9464", ("0.0.0.0", 9464)),
        ("[::]:9464", ("::", 9464)),
    ],
)
def test_metrics_addr_parsing(raw: str, parsed: tuple[str, int] | None) -> None:
    assert metrics.parse_addr(raw) == parsed


@pytest.mark.parametrize("raw", ["9464", "host:", "host:http", "host:70000"])
def test_bad_metrics_addr_is_a_config_error(raw: str) -> None:
    with pytest.raises(ConfigError, match="METRICS_ADDR"):
        metrics.parse_addr(raw)


def test_the_endpoint_serves_every_metric() -> None:
    port = metrics.start_metrics_server("127.0.0.1:0")
    assert port
    metrics.JOBS_CREATED.labels("noop").inc()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    for name in (
        "jobs_created_total",
        "jobs_finished_total",
        "jobs_step_duration_seconds",
        "jobs_step_retries_total",
        "jobs_queue_pending_messages",
        "jobs_queue_ack_pending_messages",
        "jobs_outbox_backlog_rows",
        "jobs_outbox_oldest_due_age_seconds",
        "jobs_watch_streams_open",
        "jobs_rpc_duration_seconds",
    ):
        assert f"# TYPE {name} " in text, name
    assert 'jobs_created_total{type="noop"}' in text
    assert "_created{" not in text  # no creation-timestamp series


class FakeContext:
    """Just enough of grpc.aio.ServicerContext for the decorators."""

    def __init__(self, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self.metadata = metadata
        self.status: grpc.StatusCode | None = None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def code(self) -> grpc.StatusCode | None:
        return self.status

    async def abort(self, code: grpc.StatusCode, details: str = "", **_: Any) -> None:
        self.status = code
        raise grpc.aio.AbortError()


class Servicer:
    @unary
    async def GetThing(self, request: str, context: Any) -> str:
        if request == "missing":
            raise NotFound()
        if request == "boom":
            raise RuntimeError("secret detail")
        return request


@pytest.mark.parametrize(
    ("request_", "code"), [("ok", "OK"), ("missing", "NOT_FOUND"), ("boom", "INTERNAL")]
)
async def test_rpc_latency_is_observed_by_method_and_code(request_: str, code: str) -> None:
    labels = {"method": "GetThing", "code": code}
    before = value("jobs_rpc_duration_seconds_count", **labels)
    try:
        await Servicer().GetThing(request_, cast(Any, FakeContext()))
    except grpc.aio.AbortError:
        assert code != "OK"
    assert value("jobs_rpc_duration_seconds_count", **labels) == before + 1


class Streamer:
    @server_streaming
    async def WatchThing(self, request: str, context: Any) -> AsyncIterator[str]:
        while True:
            yield request
            await asyncio.sleep(0)


async def test_a_stream_closed_from_another_task_ends_cleanly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """grpc closes an abandoned stream's generator from a task other than the one that
    ran it: nothing attached to the context may need detaching then."""
    labels = {"method": "WatchThing", "code": "CANCELLED"}
    before = value("jobs_rpc_duration_seconds_count", **labels)
    stream = Streamer().WatchThing("x", cast(Any, FakeContext()))

    async def read_two() -> None:
        assert [await anext(stream), await anext(stream)] == ["x", "x"]

    await asyncio.create_task(read_two())
    with caplog.at_level(logging.DEBUG):
        await asyncio.create_task(stream.aclose())  # type: ignore[attr-defined]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert value("jobs_rpc_duration_seconds_count", **labels) == before + 1
