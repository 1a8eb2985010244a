"""Two orchestrators and two workers share the load without double work.

The workers share one JetStream pull consumer; the orchestrators share one queue-grouped
push consumer and write optimistically against each job's version, so a job touched by
both (a cancel from job_api racing a step result) is decided once. Every step of every
job must run exactly once, each replica must have done part of the work, and every job's
event log must be the one a single replica would have written.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import Stack
from jobctl.client import JobsClient
from jobkit.gen.jobs.v1 import jobs_pb2

pytestmark = pytest.mark.e2e

QUICK_JOBS = 150
CANCELLED_JOBS = 20


@pytest.fixture(scope="module")
def replicated_stack(tmp_root: Path) -> Iterator[Stack]:
    env = {
        "RATE_LIMIT_PER_MINUTE": "0",
        "MAX_RUNNING_JOBS_PER_USER": "0",
        "MAX_WATCHES_PER_USER": "0",
    }
    running = Stack(tmp_root / "scale-out-stack", extra_env=env, workers=2, orchestrators=2).start()
    yield running
    running.stop()


def log_lines(stack: Stack, prefix: str) -> dict[str, list[dict[str, object]]]:
    """Each replica's JSON log lines, by replica name."""
    lines: dict[str, list[dict[str, object]]] = {}
    for name, service in stack.services.items():
        if name.split("#")[0] == prefix:
            text = service.log_path.read_text(encoding="utf-8")
            lines[name] = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return lines


async def finish(client: JobsClient, job_id: str) -> list[jobs_pb2.JobEvent]:
    return [event async for event in client.watch(job_id)]


async def test_two_of_each_share_the_work_and_never_double_it(replicated_stack: Stack) -> None:
    stack = replicated_stack
    async with JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token()) as client:
        gate = asyncio.Semaphore(32)

        async def create(input: dict[str, object]) -> jobs_pb2.Job:
            async with gate:
                return await client.create_job("noop", input)

        quick = await asyncio.gather(*(create({}) for _ in range(QUICK_JOBS)))
        slow = await asyncio.gather(*(create({"sleep_ms": 400}) for _ in range(CANCELLED_JOBS)))
        await asyncio.sleep(0.3)
        await asyncio.gather(*(client.cancel_job(job.job_id) for job in slow))
        quick_events = await asyncio.gather(*(finish(client, j.job_id) for j in quick))
        slow_events = await asyncio.gather(*(finish(client, j.job_id) for j in slow))

    expected = ["CREATED"] + ["STEP_STARTED", "STEP_SUCCEEDED"] * 3 + ["SUCCEEDED"]
    for events in quick_events:
        assert [jobs_pb2.JobEventType.Name(e.type)[15:] for e in events] == expected
        assert [e.sequence for e in events] == list(range(1, len(expected) + 1))
    for events in slow_events:
        assert events[-1].status == jobs_pb2.JOB_STATUS_CANCELLED
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        kinds = [jobs_pb2.JobEventType.Name(e.type)[15:] for e in events]
        assert kinds.count("CANCELLED") == 1
        assert "SUCCEEDED" not in kinds

    # Every step of every quick job succeeded on exactly one worker, at its first attempt.
    workers = log_lines(stack, "ai_worker")
    assert len(workers) == 2
    runs = Counter(
        (line["job_id"], line["step"], line["attempt"])
        for replica in workers.values()
        for line in replica
        if line.get("event") == "step_succeeded"
    )
    quick_ids = {job.job_id for job in quick}
    quick_runs = {key: n for key, n in runs.items() if key[0] in quick_ids}
    assert len(quick_runs) == QUICK_JOBS * 3
    assert set(quick_runs.values()) == {1}
    assert {key[2] for key in quick_runs} == {1}
    for name, replica in workers.items():
        assert any(line.get("event") == "step_succeeded" for line in replica), name

    # Every job finished once, and both orchestrators finished some.
    orchestrators = log_lines(stack, "orchestrator")
    assert len(orchestrators) == 2
    finished = Counter(
        line["job_id"]
        for replica in orchestrators.values()
        for line in replica
        if line.get("event") == "job_finished"
    )
    assert set(finished) >= quick_ids
    assert set(finished.values()) == {1}
    for name, replica in orchestrators.items():
        assert any(line.get("event") == "job_finished" for line in replica), name
