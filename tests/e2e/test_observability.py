"""Tracing and metrics on the running stack: a job created with a W3C ``traceparent`` is
one trace in all four services' logs, and every service serves its Prometheus metrics."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from prometheus_client.parser import text_string_to_metric_families

from devstack import Stack
from jobkit.gen.jobs.v1 import (
    job_service_pb2,
    job_service_pb2_grpc,
    jobs_pb2,
    notifier_service_pb2,
    notifier_service_pb2_grpc,
)

pytestmark = pytest.mark.e2e

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
SERVICES = {"job_api", "orchestrator", "ai_worker", "notifier"}


async def run_traced_job(stack: Stack, metadata: tuple[tuple[str, str], ...]) -> str:
    """Create a noop job with the call's trace context and watch it to the end."""
    job_input = struct_pb2.Struct()
    job_input.update({"sleep_ms": 50})
    async with (
        grpc.aio.insecure_channel(stack.job_api_addr) as api_channel,
        grpc.aio.insecure_channel(stack.notifier_addr) as notifier_channel,
    ):
        job = await job_service_pb2_grpc.JobServiceStub(api_channel).CreateJob(
            job_service_pb2.CreateJobRequest(type="noop", input=job_input),
            metadata=metadata,
            timeout=10,
        )
        watch = notifier_service_pb2_grpc.NotifierServiceStub(notifier_channel).WatchJob(
            notifier_service_pb2.WatchJobRequest(job_id=job.job_id),
            metadata=metadata[:1],  # the watcher's call has its own trace, or none
            timeout=30,
        )
        events = [event async for event in watch]
    assert events[-1].status == jobs_pb2.JOB_STATUS_SUCCEEDED
    return str(job.job_id)


def job_lines(stack: Stack, job_id: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for service in stack.services.values():
        for line in service.log_path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record.get("job_id") == job_id:
                found.setdefault(record["service"], []).append(record)
    return found


async def test_one_job_is_one_trace_in_all_four_services_logs(stack: Stack) -> None:
    token = stack.token("tracer")
    metadata = (("authorization", f"Bearer {token}"), ("traceparent", TRACEPARENT))
    job_id = await run_traced_job(stack, metadata)
    lines: dict[str, list[dict[str, Any]]] = {}
    for _ in range(50):  # the notifier logs the stream's end just after the last event
        lines = job_lines(stack, job_id)
        if set(lines) == SERVICES:
            break
        await asyncio.sleep(0.1)
    assert set(lines) == SERVICES
    for service, records in lines.items():
        for record in records:
            assert record.get("trace_id") == TRACE_ID, (service, record)


async def test_a_job_created_without_trace_context_gets_its_own_trace(stack: Stack) -> None:
    metadata = (("authorization", f"Bearer {stack.token('untraced')}"),)
    job_id = await run_traced_job(stack, metadata)
    await asyncio.sleep(0.3)
    lines = job_lines(stack, job_id)
    trace_ids = {r.get("trace_id") for records in lines.values() for r in records}
    (trace_id,) = trace_ids
    assert trace_id is not None
    assert len(trace_id) == 32
    assert trace_id != TRACE_ID


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_every_service_serves_its_metrics(stack: Stack) -> None:
    await run_traced_job(stack, (("authorization", f"Bearer {stack.token('metered')}"),))
    await asyncio.sleep(0.3)
    by_service = {name: scrape(s.metrics_url) for name, s in stack.services.items()}
    api = by_service["job_api"]
    assert sample(api, "jobs_created_total", type="noop") >= 1
    assert sample(api, "jobs_rpc_duration_seconds_count", method="CreateJob", code="OK") >= 1
    orchestrator = by_service["orchestrator"]
    assert sample(orchestrator, "jobs_finished_total", type="noop", status="SUCCEEDED") >= 1
    worker = by_service["ai_worker"]
    assert (
        sample(
            worker,
            "jobs_step_duration_seconds_count",
            type="noop",
            step="prepare",
            outcome="succeeded",
        )
        >= 1
    )
    notifier = by_service["notifier"]
    assert sample(notifier, "jobs_rpc_duration_seconds_count", method="WatchJob", code="OK") >= 1
    assert sample(notifier, "jobs_watch_streams_open") == 0
    # The orchestrator polls queue lag and the outbox (METRICS_POLL_S).
    for _ in range(100):
        orchestrator = scrape(stack.services["orchestrator"].metrics_url)
        if ("jobs_queue_pending_messages", (("consumer", "ai_worker"),)) in orchestrator:
            break
        await asyncio.sleep(0.1)
    for consumer in ("ai_worker", "orchestrator"):
        assert (
            "jobs_queue_ack_pending_messages",
            (("consumer", consumer),),
        ) in orchestrator
    assert ("jobs_outbox_backlog_rows", ()) in orchestrator
