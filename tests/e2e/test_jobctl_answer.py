"""``jobctl answer`` as a user runs it, over gRPC and over the HTTP gateway: a cv_tailoring
job with ``review`` waits for its CV to be checked; ``get`` shows what it asks and how to
answer; a refused answer names its fields and changes nothing; an answer ends the job
with it; a second answer is refused as the step waits no more."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from devstack import Stack
from tests.e2e.test_jobctl import EXAMPLE, TRANSPORTS, jobctl

pytestmark = pytest.mark.e2e


def get(stack: Stack, job_id: str, token: str, transport: str) -> dict[str, Any]:
    shown = jobctl(stack, "get", job_id, "-o", "json", token=token, transport=transport)
    assert shown.returncode == 0, shown.stderr
    job: dict[str, Any] = json.loads(shown.stdout)
    return job


def wait_for(
    stack: Stack, job_id: str, token: str, transport: str, status: str, timeout_s: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = get(stack, job_id, token, transport)
        if job["status"] == status:
            return job
        assert time.monotonic() < deadline, f"still {job['status']}, not {status}"
        time.sleep(0.3)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_review_is_answered_with_jobctl(stack: Stack, transport: str, tmp_path: Path) -> None:
    token = stack.token(f"reviewer-{transport}")
    made = jobctl(
        stack,
        "submit",
        "--request",
        f"@{EXAMPLE}",
        "--set",
        "review=true",
        token=token,
        transport=transport,
    )
    assert made.returncode == 0, made.stderr
    job_id = made.stdout.strip()
    waiting = wait_for(stack, job_id, token, transport, "JOB_STATUS_WAITING_INPUT")
    step = next(s for s in waiting["steps"] if s["status"] == "STEP_STATUS_WAITING_INPUT")
    assert step["name"] == "tailor_cv"
    draft = step["input_request"]["draft"]["tailored_cv"]

    shown = jobctl(stack, "get", job_id, token=token, transport=transport)
    assert shown.returncode == 0, shown.stderr
    assert "waiting  tailor_cv asks: Check the tailored CV" in shown.stdout
    assert f"answer   jobctl answer {job_id} --approve" in shown.stdout

    refused = jobctl(
        stack,
        "answer",
        job_id,
        "--input",
        '{"tailored_cv": "not a CV"}',
        token=token,
        transport=transport,
    )
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.splitlines()
    assert lines[0].startswith("jobctl: INVALID_ARGUMENT: ")
    assert any(line.startswith("  input") for line in lines[1:]), refused.stderr
    assert get(stack, job_id, token, transport)["status"] == "JOB_STATUS_WAITING_INPUT"

    edited = {**draft, "summary": f"Checked by a person ({transport}). {draft['summary']}"}
    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps({"tailored_cv": edited}), encoding="utf-8")
    answered = jobctl(
        stack, "answer", job_id, "--input-file", str(answer), token=token, transport=transport
    )
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.startswith("answered tailor_cv\n")

    again = jobctl(stack, "answer", job_id, "--approve", token=token, transport=transport)
    assert again.returncode == 6, again.stderr
    named = jobctl(
        stack,
        "answer",
        job_id,
        "--step",
        "tailor_cv",
        "--approve",
        token=token,
        transport=transport,
    )
    assert named.returncode == 6, named.stderr
    assert "FAILED_PRECONDITION" in named.stderr

    done = wait_for(stack, job_id, token, transport, "JOB_STATUS_SUCCEEDED")
    assert done["result"]["tailored_cv"]["summary"] == edited["summary"]
    # A watch of the whole story shows the question and how it was to be answered.
    replay = jobctl(stack, "watch", job_id, token=token, transport=transport)
    assert replay.returncode == 0, replay.stderr
    assert "INPUT_REQUIRED tailor_cv" in replay.stdout
    assert "  tailor_cv asks: Check the tailored CV" in replay.stdout
    assert f"  answer: jobctl answer {job_id} --approve" in replay.stdout
