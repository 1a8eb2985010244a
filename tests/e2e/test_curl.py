"""The README's curl walk-throughs of the gateway, run as written: each block as one shell
script (its variables carry from command to command), against the test stack."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from devstack import Stack

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "## From a browser: HTTP/JSON and Server-Sent Events"
REVIEW_HEADING = "## Parallel steps and waiting for a person"
#: Printed between commands, so each command's output can be told apart.
MARK = "@@@ next command @@@"


def readme_commands(heading: str = HEADING) -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(heading)
    section = text[start : text.find("\n## ", start + len(heading))]
    (block,) = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    joined = block.replace("\\\n", " ")
    return [
        line.strip()
        for line in joined.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def sse_ids(text: str) -> list[int]:
    return [int(line.removeprefix("id: ")) for line in text.splitlines() if line.startswith("id: ")]


def run_walkthrough(heading: str, stack: Stack, tmp_path: Path) -> list[str]:
    """The block's commands as one script; what each printed, stripped."""
    commands = readme_commands(heading)
    assert all("curl " in c for c in commands)
    script = "\n".join(
        f"echo '{MARK}'\n{c.replace('http://127.0.0.1:8080', stack.gateway_url)}" for c in commands
    )
    # Run where the reader would, beside examples/, without writing into the checkout.
    (tmp_path / "examples").symlink_to(README.parent / "examples")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env={**os.environ, "TOKEN": stack.token("readme-curl")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [o.strip() for o in result.stdout.split(MARK)[1:]]


def test_the_readme_curl_walkthrough_runs_as_written(stack: Stack, tmp_path: Path) -> None:
    outputs = run_walkthrough(HEADING, stack, tmp_path)
    (
        types,
        created,
        watched,
        resumed,
        finished,
        token,
        by_token,
        job,
        file_job,
        file_job_over,
        downloaded,
        uploaded,
        import_upload,
        import_job,
        import_over,
        children,
    ) = outputs
    assert "cv_tailoring" in {t["name"] for t in json.loads(types)["jobTypes"]}
    assert created == ""  # captured into $JOB
    ids = sse_ids(watched)
    assert ids == list(range(1, len(ids) + 1))
    assert "JOB_EVENT_TYPE_SUCCEEDED" in watched
    assert watched.endswith(f'event: end\ndata: {{"sequence":{ids[-1]}}}')
    assert sse_ids(resumed) == list(range(5, ids[-1] + 1))
    assert finished == "204"
    assert token == ""  # captured into $WATCH
    assert sse_ids(by_token) == list(range(5, ids[-1] + 1))
    result_doc = json.loads(job)["result"]
    assert {"tailored_cv", "cover_letter", "match_score", "preview_markdown"} <= set(result_doc)
    assert (file_job, file_job_over) == ("", "")  # captured into $FILEJOB; streamed away
    assert downloaded == "200 100000"
    assert (tmp_path / "noop.bin").stat().st_size == 100_000
    upload = json.loads(uploaded)
    assert upload["size"] == len('{"sleep_ms": 1}\n{"sleep_ms": 2}\n')
    assert len(upload["sha256"]) == 64
    assert (import_upload, import_job, import_over) == ("", "", "")  # captured; streamed away
    made = json.loads(children)["jobs"]
    # examples/bulk_import.jsonl: three good rows, two bad ones.
    assert len(made) == 3
    assert {j["type"] for j in made} == {"noop"}
    assert len({j["parentJobId"] for j in made}) == 1


def test_the_readme_review_walkthrough_runs_as_written(stack: Stack, tmp_path: Path) -> None:
    created, waited, prompt, refused, approved, streamed, job = run_walkthrough(
        REVIEW_HEADING, stack, tmp_path
    )
    assert (created, waited, streamed) == ("", "", "")  # captured into $JOB; polled; drained
    assert prompt.startswith("Check the tailored CV")
    error = json.loads(refused)
    assert error["code"] == 3  # INVALID_ARGUMENT, answered as HTTP 400
    assert "input.approved" in error["message"]
    assert json.loads(approved)["status"] in ("JOB_STATUS_RUNNING", "JOB_STATUS_SUCCEEDED")
    done = json.loads(job)
    assert done["status"] == "JOB_STATUS_SUCCEEDED"
    review = {s["name"]: s for s in done["steps"]}["tailor_cv"]
    assert review["status"] == "STEP_STATUS_SUCCEEDED"
    assert "preview_markdown" in done["result"]
