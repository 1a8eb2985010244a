"""Every service logs JSON lines with its name, binds job ids, and never logs the job's
personal data — checked on the real log files of the running stack."""

from __future__ import annotations

import asyncio
import json

import pytest

from devstack import Stack
from jobctl.client import JobsClient
from jobctl.http_client import HttpJobsClient
from jobkit.gen.jobs.v1 import jobs_pb2

pytestmark = pytest.mark.e2e

CANARY_NAME = "Zyxwq Canaryson-Ølberg"
CANARY_EMAIL = "zyxwq.canary+jobs@example.org"
CANARY_PHONE = "+44 20 7946 0958"


async def test_logs_are_json_with_context_and_free_of_the_input(stack: Stack) -> None:
    resume = {
        "name": CANARY_NAME,
        "email": CANARY_EMAIL,
        "phone": CANARY_PHONE,
        "skills": ["Python"],
        "experience": [
            {
                "title": "Engineer",
                "company": "Canary Works Ltd",
                "bullets": [f"Reached {CANARY_EMAIL} daily"],
            }
        ],
    }
    posting = {"title": "Engineer", "company": "Acme", "description": "Python role"}
    async with JobsClient(
        stack.job_api_addr, stack.notifier_addr, stack.token("log-check")
    ) as client:
        job = await client.create_job("cv_tailoring", {"resume": resume, "job_posting": posting})
        events = [e async for e in client.watch(job.job_id)]
        assert events[-1].status == jobs_pb2.JOB_STATUS_SUCCEEDED
    # The same input through the gateway, which never logs bodies, URLs or headers.
    async with HttpJobsClient(stack.gateway_url, stack.token("log-check")) as http:
        over_http = await http.create_job(
            "cv_tailoring", {"resume": resume, "job_posting": posting}
        )
        events = [e async for e in http.watch(over_http.job_id)]
        assert events[-1].status == jobs_pb2.JOB_STATUS_SUCCEEDED
    await asyncio.sleep(0.5)  # let the services flush their last lines
    seen_services: set[str] = set()
    job_lines = 0
    for service in stack.services.values():
        text = service.log_path.read_text(encoding="utf-8")
        for needle in (
            CANARY_NAME,
            CANARY_NAME.lower(),
            "Canaryson",
            CANARY_EMAIL,
            "zyxwq.canary",
            "7946 0958",
            "79460958",
            "Canary Works",
        ):
            assert needle not in text, f"{needle!r} leaked into {service.log_path.name}"
        for line in text.splitlines():
            record = json.loads(line)
            assert {"event", "level", "timestamp", "service"} <= set(record)
            seen_services.add(record["service"])
            if record.get("job_id") == job.job_id:
                job_lines += 1
    assert seen_services == {"job_api", "orchestrator", "ai_worker", "notifier", "gateway"}
    assert job_lines >= 5
