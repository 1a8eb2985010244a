"""data_export end to end: a user's jobs, holding personal data, exported by the real
pipeline (job_api's ExportService reading Postgres, the worker streaming into SeaweedFS),
downloaded over gRPC and through the gateway, and compared with what the API shows of each
job; nobody but the export step may call ExportService; and no log line holds the data."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from devstack import Stack
from jobctl.client import JobsClient
from jobkit.convert import struct_to_dict
from jobkit.gen.jobs.internal.v1 import export_pb2, export_pb2_grpc
from jobkit.gen.jobs.v1 import jobs_pb2
from jobkit.step_tokens import StepTokens
from services.gateway.transcode import to_json
from tests.e2e.test_job_path import watch_all
from tests.e2e.test_jobctl import jobctl

pytestmark = pytest.mark.e2e

NAME = "Quillon Exportwright-Ødegård"
EMAIL = "quillon.exportwright+export@example.org"
OTHER_NAME = "Marisol Notmine-Vance"
OTHER_EMAIL = "marisol.notmine@example.net"
#: Small jobs: more than one batch of job_api's cursor (32).
SMALL_JOBS = 34
#: Two jobs with inputs large enough that the export spans several pieces (256 KiB each).
BIG_BYTES = 300_000


async def finished(client: JobsClient, job_type: str, doc: dict[str, Any]) -> jobs_pb2.Job:
    job = await client.create_job(job_type, doc)
    events = await asyncio.wait_for(watch_all(client, job.job_id), 60)
    assert events[-1].type == jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED, events[-1]
    return job


async def download(client: JobsClient, job_id: str, name: str) -> tuple[jobs_pb2.Artifact, bytes]:
    artifact, pieces = await client.download(job_id, name)
    return artifact, b"".join([piece async for piece in pieces])


@pytest.fixture(scope="module")
def exporter() -> str:
    return f"exporter-{uuid.uuid4().hex[:8]}"


async def test_an_export_holds_exactly_the_user_s_jobs_with_inputs_results_and_events(
    stack: Stack, exporter: str
) -> None:
    other = f"other-{uuid.uuid4().hex[:8]}"
    async with (
        JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token(exporter)) as me,
        JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token(other)) as them,
    ):
        inputs: dict[str, dict[str, Any]] = {}
        for n in range(SMALL_JOBS):
            doc = {"sleep_ms": 0, "name": NAME, "email": EMAIL, "n": n}
            if n == 1:
                doc["fail_attempts"] = 1  # a retry in its events
            inputs[(await finished(me, "noop", doc)).job_id] = doc
        for n in range(2):
            doc = {"sleep_ms": 0, "name": NAME, "notes": f"{n} {EMAIL} " + "x" * BIG_BYTES}
            inputs[(await finished(me, "noop", doc)).job_id] = doc
        theirs = await finished(them, "noop", {"name": OTHER_NAME, "email": OTHER_EMAIL})

        export = await me.create_job("data_export", {})
        export_events = await asyncio.wait_for(watch_all(me, export.job_id), 60)
        assert export_events[-1].type == jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED, export_events[-1]
        total = len(inputs)
        # Progress as jobs counted (the last report may ride on the result instead).
        assert any(e.phase.startswith("Exported ") for e in export_events)
        result = struct_to_dict((await me.get_job(export.job_id)).result)
        (entry,) = result["artifacts"]
        assert result["jobs"] == total
        assert entry["name"] == "export.jsonl"
        assert entry["content_type"] == "application/x-ndjson"

        artifact, data = await download(me, export.job_id, "export.jsonl")
        assert (artifact.size, artifact.sha256) == (entry["size"], entry["sha256"])
        assert len(data) == artifact.size > 2 * BIG_BYTES
        lines = data.splitlines()
        assert len(lines) == total
        documents = [json.loads(line) for line in lines]
        # Oldest first: the order they were created in; not the export, not another user's.
        assert [d["job"]["jobId"] for d in documents] == list(inputs)
        assert OTHER_EMAIL.encode() not in data
        assert OTHER_NAME.encode() not in data
        assert theirs.job_id.encode() not in data
        assert export.job_id.encode() not in data
        for document in documents:
            job_id = document["job"]["jobId"]
            assert document["job"] == to_json(await me.get_job(job_id))
            assert document["input"] == inputs[job_id]
            events = await watch_all(me, job_id)
            assert document["events"] == [to_json(e) for e in events]
        retried = documents[1]["events"]
        assert "JOB_EVENT_TYPE_STEP_RETRYING" in [e["type"] for e in retried]

    # The same bytes through the gateway, to their owner only.
    url = f"{stack.gateway_url}/v1/jobs/{export.job_id}/artifacts/export.jsonl"
    async with httpx.AsyncClient(timeout=30) as http:
        mine = await http.get(url, headers={"Authorization": f"Bearer {stack.token(exporter)}"})
        assert mine.status_code == 200
        assert mine.headers["content-type"] == "application/x-ndjson"
        assert mine.content == data
        not_mine = await http.get(url, headers={"Authorization": f"Bearer {stack.token(other)}"})
        assert not_mine.status_code == 404


async def export_call(stack: Stack, job_id: str, token: str | None) -> list[Any]:
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else None
    async with grpc.aio.insecure_channel(stack.job_api_addr) as channel:
        stub = export_pb2_grpc.ExportServiceStub(channel)
        call = stub.ExportJobs(
            export_pb2.ExportJobsRequest(job_id=job_id), metadata=metadata, timeout=10
        )
        return [response async for response in call]


async def refused(stack: Stack, job_id: str, token: str | None) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await export_call(stack, job_id, token)
    code: grpc.StatusCode = caught.value.code()
    return code


async def test_export_jobs_answers_the_export_step_and_nobody_else(
    stack: Stack, exporter: str
) -> None:
    async with JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token(exporter)) as me:
        done = await finished(me, "data_export", {})
        noop = await finished(me, "noop", {"sleep_ms": 0})
        watch_token = (await me.create_watch_token(done.job_id)).token
    unauthenticated = grpc.StatusCode.UNAUTHENTICATED
    denied = grpc.StatusCode.PERMISSION_DENIED
    # No token, the user's own JWT, a watch token for the very job, and a step token
    # forged with another secret.
    forged = StepTokens("not-the-deployment-s-secret", job_types=["data_export"]).issue(
        exporter, done.job_id, "export_jobs", 1, timeout_s=60
    )
    for token in (None, stack.token(exporter), watch_token, forged):
        assert await refused(stack, done.job_id, token) == unauthenticated
    # Well signed (the deployment's secret, as only job_api and the orchestrator hold it),
    # but the job is over, or is not an export, or is someone else's, or the token names
    # another job than the request: Postgres has the last word.
    real = StepTokens(stack.jwt_secret, job_types=["data_export"])
    for token, job_id in (
        (real.issue(exporter, done.job_id, "export_jobs", 1, timeout_s=60), done.job_id),
        (real.issue(exporter, noop.job_id, "prepare", 1, timeout_s=60), noop.job_id),
        (real.issue("mallory", done.job_id, "export_jobs", 1, timeout_s=60), done.job_id),
        (real.issue(exporter, done.job_id, "export_jobs", 1, timeout_s=60), noop.job_id),
    ):
        assert await refused(stack, job_id, token) == denied


async def test_the_services_logged_none_of_the_exported_personal_data(
    stack: Stack, exporter: str
) -> None:
    """After the export above: its rows went to the user's artifact, never to a log."""
    await asyncio.sleep(0.5)  # let the services flush their last lines
    for service in stack.services.values():
        text = service.log_path.read_text(encoding="utf-8")
        for needle in (NAME, NAME.lower(), "Exportwright", EMAIL, OTHER_EMAIL, "xxxxxxxxxxxx"):
            assert needle not in text, f"{service.name} logged {needle!r}"
    job_api = stack.services["job_api"].log_path.read_text(encoding="utf-8")
    started = [json.loads(line) for line in job_api.splitlines() if "export_started" in line]
    assert started, "job_api logged no export"
    assert all(set(line) >= {"job_id", "jobs"} for line in started)


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_jobctl_exports_and_downloads_the_file(
    stack: Stack, transport: str, tmp_path: Path
) -> None:
    """As a user at a terminal would: submit the export, wait for it, save the file."""
    token = stack.token(f"cli-exporter-{transport}")
    made = jobctl(
        stack,
        "submit",
        "noop",
        "--set",
        "sleep_ms=1",
        "--watch",
        "-o",
        "json",
        token=token,
        transport=transport,
    )
    assert made.returncode == 0, made.stderr
    made_id = json.loads(made.stdout.splitlines()[0])["job_id"]
    exported = jobctl(
        stack, "submit", "data_export", "--watch", "-o", "json", token=token, transport=transport
    )
    assert exported.returncode == 0, exported.stderr
    export_id = json.loads(exported.stdout.splitlines()[0])["job_id"]
    target = tmp_path / "export.jsonl"
    saved = jobctl(
        stack,
        "download",
        export_id,
        "export.jsonl",
        "--to",
        str(target),
        token=token,
        transport=transport,
    )
    assert saved.returncode == 0, saved.stderr
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [line["job"]["jobId"] for line in lines] == [made_id]
    assert lines[0]["input"] == {"sleep_ms": 1}
