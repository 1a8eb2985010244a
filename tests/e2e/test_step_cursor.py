"""The in-step cursor end to end: a step saves its place as it goes (``save_cursor``, each
save committed before it returns), and its next attempt, after a failure, starts there."""

from __future__ import annotations

import pytest

from jobctl.client import JobsClient
from jobkit.convert import struct_to_dict
from jobkit.gen.jobs.v1 import jobs_pb2
from tests.e2e.test_job_path import watch_all

pytestmark = pytest.mark.e2e


async def test_a_retried_step_resumes_from_its_saved_cursor(alice: JobsClient) -> None:
    job = await alice.create_job("noop", {"count_to": 7, "fail_attempts": 1})
    events = await watch_all(alice, job.job_id)
    assert events[-1].type == jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED
    retried = [e.step for e in events if e.type == jobs_pb2.JOB_EVENT_TYPE_STEP_RETRYING]
    assert retried == ["prepare", "work", "finish"]
    result = struct_to_dict((await alice.get_job(job.job_id)).result)
    # The last step's second attempt found the whole count saved by its first.
    assert result["attempt"] == 2
    assert result["counted_from"] == 7


async def test_a_first_attempt_starts_with_no_cursor(alice: JobsClient) -> None:
    job = await alice.create_job("noop", {"count_to": 3})
    await watch_all(alice, job.job_id)
    result = struct_to_dict((await alice.get_job(job.job_id)).result)
    assert (result["attempt"], result["counted_from"]) == (1, 0)
