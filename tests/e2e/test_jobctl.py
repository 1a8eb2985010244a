"""jobctl as a user runs it: a subprocess with a token in the environment, over gRPC and
over the HTTP gateway (``--http``; the gRPC addresses then point nowhere)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack import Stack

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cv_tailoring.json"


TRANSPORTS = ["grpc", "http"]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def jobctl(
    stack: Stack, *args: str, token: str | None = None, transport: str = "grpc"
) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        **stack.extra_env,
        JOBS_API_ADDR=stack.job_api_addr,
        JOBS_NOTIFIER_ADDR=stack.notifier_addr,
        JWT_SECRET=stack.jwt_secret,
    )
    # Output to a pipe is plain lines, unless these make rich draw a live display anyway.
    for forcing in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(forcing, None)
    if transport == "http":
        env.update(
            JOBS_HTTP=stack.gateway_url,
            JOBS_API_ADDR="127.0.0.1:1",
            JOBS_NOTIFIER_ADDR="127.0.0.1:1",
        )
    if token is not None:
        env["JOBS_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "jobctl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_token_submit_watch_get_list(stack: Stack, transport: str) -> None:
    minted = jobctl(stack, "token", "--sub", f"carol-{transport}")
    assert minted.returncode == 0
    token = minted.stdout.strip()

    watched = jobctl(
        stack, "submit", "--request", f"@{EXAMPLE}", "--watch", token=token, transport=transport
    )
    assert watched.returncode == 0, watched.stderr
    assert "Generating cover letter..." in watched.stdout
    assert "SUCCEEDED" in watched.stdout

    created = jobctl(
        stack,
        "submit",
        "noop",
        "--set",
        "sleep_ms=1",
        "-o",
        "json",
        token=token,
        transport=transport,
    )
    job = json.loads(created.stdout)
    assert job["status"] == "JOB_STATUS_QUEUED"
    events = jobctl(stack, "watch", job["job_id"], "-o", "json", token=token, transport=transport)
    lines = [json.loads(line) for line in events.stdout.splitlines()]
    assert [int(e["sequence"]) for e in lines] == list(range(1, len(lines) + 1))
    assert lines[-1]["type"] == "JOB_EVENT_TYPE_SUCCEEDED"

    got = json.loads(
        jobctl(stack, "get", job["job_id"], "-o", "json", token=token, transport=transport).stdout
    )
    assert got["status"] == "JOB_STATUS_SUCCEEDED"
    listing = json.loads(
        jobctl(
            stack, "-o", "json", "list", "--type", "noop", token=token, transport=transport
        ).stdout
    )
    assert [j["job_id"] for j in listing["jobs"]] == [job["job_id"]]


def test_exit_codes_a_script_can_rely_on(stack: Stack, transport: str) -> None:
    token = stack.token(f"dave-{transport}")
    missing = jobctl(
        stack, "get", "00000000-0000-0000-0000-000000000000", token=token, transport=transport
    )
    assert missing.returncode == 3
    assert "NOT_FOUND" in missing.stderr
    assert jobctl(stack, "get", "not-a-uuid", token=token, transport=transport).returncode == 2
    assert jobctl(stack, "types", token="bad", transport=transport).returncode == 4
    failing = jobctl(
        stack,
        "submit",
        "noop",
        "--set",
        "fail_attempts=9",
        "--watch",
        token=token,
        transport=transport,
    )
    assert failing.returncode == 1
    assert "NOOP_INJECTED_FAILURE" in failing.stdout
