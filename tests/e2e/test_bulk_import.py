"""bulk_import end to end: an upload becomes one job per row, exactly once, through a
worker killed mid-way; the children are listed by parent and cancelled with it.

A stack of its own: a short step lease, so a killed worker's attempt comes back in seconds,
and no per-user limits, which thousands of children would reach.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from devstack import SeaweedServer, Stack
from jobctl.client import JobsClient
from jobkit.convert import struct_to_dict
from jobkit.gen.jobs.v1 import jobs_pb2
from tests.e2e.test_grpcurl import grpcurl, json_stream
from tests.e2e.test_jobctl import jobctl

pytestmark = pytest.mark.e2e

E = jobs_pb2
ROWS = 2000
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def import_stack(tmp_root: Path, seaweed_server: SeaweedServer) -> Iterator[Stack]:
    env = {
        "RATE_LIMIT_PER_MINUTE": "0",
        "MAX_RUNNING_JOBS_PER_USER": "0",
        "MAX_WATCHES_PER_USER": "0",
        "STEP_LEASE_S": "2",
        "LEASE_SCAN_S": "0.2",
        "WORKER_HEARTBEAT_S": "0.5",
        **seaweed_server.env(),
    }
    running = Stack(tmp_root / "import-stack", extra_env=env).start()
    yield running
    running.stop()


async def client_of(stack: Stack, user: str) -> JobsClient:
    return JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token(user))


async def upload(client: JobsClient, data: bytes) -> str:
    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]

    stored = await client.upload(pieces(), "application/x-ndjson")
    return stored.upload_id


async def children_of(client: JobsClient, parent: str) -> list[jobs_pb2.Job]:
    found: list[jobs_pb2.Job] = []
    token = ""
    while True:
        page = await client.list_jobs(page_size=500, page_token=token, parent_job_id=parent)
        found += page.jobs
        token = page.next_page_token
        if not token:
            return found


async def finished(client: JobsClient, job_id: str) -> list[jobs_pb2.JobEvent]:
    return [e async for e in client.watch(job_id)]


async def test_a_worker_killed_mid_import_leaves_each_row_imported_exactly_once(
    import_stack: Stack,
) -> None:
    rows = [{"write": f"row-{n}"} for n in range(1, ROWS + 1)]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    async with await client_of(import_stack, "importer") as client:
        job = await client.create_job(
            "bulk_import", {"upload_id": await upload(client, data), "job_type": "noop"}
        )
        worker = import_stack.services["ai_worker"]
        async for event in client.watch(job.job_id):
            if event.phase.startswith("Imported"):
                # The first batch is committed: freeze the worker where it is, then kill it.
                worker.signal(signal.SIGSTOP)
                break
        worker.kill()
        import_stack.start_service("ai_worker")
        events = await asyncio.wait_for(finished(client, job.job_id), 120)
        assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED, events[-1]
        done = await client.get_job(job.job_id)
        result = struct_to_dict(done.result)
        assert (result["rows"], result["imported"], result["failed"]) == (ROWS, ROWS, 0)
        # The kill landed mid-import: a second attempt went on from a committed batch.
        assert done.steps[1].attempt >= 2
        assert 0 < result["resumed_after_row"] < ROWS
        children = await children_of(client, job.job_id)
        assert len(children) == ROWS
        assert {c.parent_job_id for c in children} == {job.job_id}
        assert {c.type for c in children} == {"noop"}
        phases = [e.phase for e in events if e.phase.startswith("Imported")]
        assert phases[-1] == f"Imported {ROWS:,} of {ROWS:,} rows..."


async def test_each_row_s_input_becomes_one_child(import_stack: Stack) -> None:
    texts = [f"line {n}" for n in range(1, 301)]
    lines = [json.dumps({"write": text, "sleep_ms": 0}) for text in texts]
    lines[9] = '{"write": 7}'  # row 10: not a noop input
    data = ("\n".join(lines) + "\n").encode()
    async with await client_of(import_stack, "rows") as client:
        job = await client.create_job(
            "bulk_import", {"upload_id": await upload(client, data), "job_type": "noop"}
        )
        await asyncio.wait_for(finished(client, job.job_id), 60)
        result = struct_to_dict((await client.get_job(job.job_id)).result)
        assert (result["imported"], result["failed"]) == (299, 1)
        assert result["errors"] == [{"row": 10, "error": "row 10 input.write must be a string"}]
        children = await children_of(client, job.job_id)
        inputs: list[str] = []
        for child in children:
            events = await asyncio.wait_for(finished(client, child.job_id), 60)
            assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED
            inputs.append(struct_to_dict((await client.get_job(child.job_id)).result)["written"])
        assert sorted(inputs) == sorted(t for n, t in enumerate(texts, 1) if n != 10)
        # A finished job that created none still cannot be cancelled.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.cancel_job(children[0].job_id)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        # Children are the importer's own jobs, and nobody else's.
        async with await client_of(import_stack, "someone-else") as other:
            assert (await other.list_jobs(parent_job_id=job.job_id)).jobs == []
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await other.get_job(children[0].job_id)
            assert refused.value.code() == grpc.StatusCode.NOT_FOUND


async def test_cancelling_an_import_cancels_the_jobs_it_created(import_stack: Stack) -> None:
    data = b"".join(json.dumps({"sleep_ms": 60_000}).encode() + b"\n" for _ in range(120))
    async with await client_of(import_stack, "canceller") as client:
        job = await client.create_job(
            "bulk_import", {"upload_id": await upload(client, data), "job_type": "noop"}
        )
        await asyncio.wait_for(finished(client, job.job_id), 60)
        assert len(await children_of(client, job.job_id)) == 120
        # The import has finished; its children have not. Cancelling it stops them.
        answer = await client.cancel_job(job.job_id)
        assert answer.status == E.JOB_STATUS_SUCCEEDED
        children = await children_of(client, job.job_id)
        assert {c.status for c in children} == {E.JOB_STATUS_CANCELLED}


async def test_cancelling_a_running_import_stops_it_and_the_jobs_it_made(
    import_stack: Stack,
) -> None:
    """Cancelled mid-way: the rows not imported yet never become jobs (the import's next
    batch is fenced off), and the ones made so far are cancelled with it."""
    data = b"".join(json.dumps({"sleep_ms": 60_000}).encode() + b"\n" for _ in range(ROWS))
    async with await client_of(import_stack, "stopper") as client:
        job = await client.create_job(
            "bulk_import", {"upload_id": await upload(client, data), "job_type": "noop"}
        )
        async for event in client.watch(job.job_id):
            if event.phase.startswith("Imported"):
                break
        answer = await client.cancel_job(job.job_id)
        assert answer.status == E.JOB_STATUS_CANCELLED
        made = await children_of(client, job.job_id)
        assert 0 < len(made) < ROWS
        assert {c.status for c in made} == {E.JOB_STATUS_CANCELLED}
        # Whatever the import's step was doing when it was cancelled creates nothing.
        await asyncio.sleep(2)
        assert len(await children_of(client, job.job_id)) == len(made)


async def test_another_user_s_upload_is_not_found(import_stack: Stack) -> None:
    async with await client_of(import_stack, "owner") as owner:
        theirs = await upload(owner, b'{"sleep_ms": 1}\n')
    async with await client_of(import_stack, "thief") as thief:
        job = await thief.create_job("bulk_import", {"upload_id": theirs, "job_type": "noop"})
        events = await asyncio.wait_for(finished(thief, job.job_id), 60)
        assert events[-1].type == E.JOB_EVENT_TYPE_FAILED
        failed = await thief.get_job(job.job_id)
        assert failed.error.code == "UPLOAD_NOT_FOUND"
        assert (await thief.list_jobs(parent_job_id=job.job_id)).jobs == []


async def test_an_import_of_imports_is_refused(import_stack: Stack) -> None:
    async with await client_of(import_stack, "owner") as client:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.create_job(
                "bulk_import",
                {"upload_id": "7d1c2a52-3a8e-4b7e-9a55-1e1f3f0c2b10", "job_type": "bulk_import"},
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.list_jobs(parent_job_id="not-a-job")
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_jobctl_uploads_imports_and_lists_by_parent(import_stack: Stack, transport: str) -> None:
    token = import_stack.token("cli-importer")
    uploaded = jobctl(
        import_stack,
        "upload",
        str(EXAMPLES / "bulk_import.jsonl"),
        "-o",
        "json",
        token=token,
        transport=transport,
    )
    assert uploaded.returncode == 0, uploaded.stderr
    upload_id = json.loads(uploaded.stdout)["upload_id"]
    submitted = jobctl(
        import_stack,
        "submit",
        "bulk_import",
        "--input",
        json.dumps({"upload_id": upload_id, "job_type": "noop"}),
        "--watch",
        "-o",
        "json",
        token=token,
        transport=transport,
    )
    assert submitted.returncode == 0, submitted.stderr
    import_id = json.loads(submitted.stdout.splitlines()[0])["job_id"]
    listed = jobctl(
        import_stack, "list", "--parent", import_id, "-o", "json", token=token, transport=transport
    )
    assert listed.returncode == 0, listed.stderr
    children = json.loads(listed.stdout)["jobs"]
    assert len(children) == 3  # examples/bulk_import.jsonl: three good rows of five
    shown = jobctl(import_stack, "get", children[0]["job_id"], token=token, transport=transport)
    assert f"parent   {import_id}" in shown.stdout


def test_grpcurl_uploads_a_file_and_imports_it(import_stack: Stack) -> None:
    """As a user with only grpcurl would: the file in CreateUpload's messages (bytes are
    base64 in grpcurl's JSON), then the import, then its children by parent."""
    auth = ["-H", f"authorization: Bearer {import_stack.token('grpcurl-importer')}"]
    data = (EXAMPLES / "bulk_import.jsonl").read_bytes()
    half = len(data) // 2
    messages = [
        {"content_type": "application/x-ndjson", "data": base64.b64encode(data[:half]).decode()},
        {"data": base64.b64encode(data[half:]).decode()},
    ]
    upload = json.loads(
        grpcurl(
            *auth,
            "-d",
            "@",
            import_stack.job_api_addr,
            "jobs.v1.JobService/CreateUpload",
            stdin="\n".join(json.dumps(m) for m in messages),
        )
    )
    assert int(upload["size"]) == len(data)
    request = {
        "type": "bulk_import",
        "input": {"upload_id": upload["upload_id"], "job_type": "noop"},
    }
    job = json.loads(
        grpcurl(
            *auth,
            "-d",
            json.dumps(request),
            import_stack.job_api_addr,
            "jobs.v1.JobService/CreateJob",
        )
    )
    events = json_stream(
        grpcurl(
            *auth,
            "-d",
            json.dumps({"job_id": job["job_id"]}),
            import_stack.notifier_addr,
            "jobs.v1.NotifierService/WatchJob",
        )
    )
    assert events[-1]["type"] == "JOB_EVENT_TYPE_SUCCEEDED"
    listed = json.loads(
        grpcurl(
            *auth,
            "-d",
            json.dumps({"parent_job_id": job["job_id"]}),
            import_stack.job_api_addr,
            "jobs.v1.JobService/ListJobs",
        )
    )
    assert len(listed["jobs"]) == 3
    assert {j["parent_job_id"] for j in listed["jobs"]} == {job["job_id"]}
