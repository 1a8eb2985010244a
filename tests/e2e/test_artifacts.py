"""Artifacts end to end: a step streams one to the object store (SeaweedFS), the job's
result lists it, and its owner, and only its owner, downloads it over gRPC, through the
gateway and with jobctl, checked against its sha256."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest

from devstack import Stack
from jobctl.client import JobsClient
from jobkit.artifacts import ObjectStoreSettings, job_prefix, upload_prefix
from jobkit.convert import struct_to_dict
from jobkit.gen.jobs.v1 import job_service_pb2, jobs_pb2
from jobtypes.noop.steps import noop_bytes
from tests.e2e.conftest import GATEWAY_MAX_UPLOAD_BYTES
from tests.e2e.test_job_path import watch_all
from tests.e2e.test_jobctl import TRANSPORTS, jobctl

pytestmark = pytest.mark.e2e

#: Several pieces of the worker's stream and of the store's multipart upload.
SIZE = 3 * 1024 * 1024 + 12345


async def expected_digest(size: int) -> str:
    hasher = hashlib.sha256()
    async for piece in noop_bytes(size):
        hasher.update(piece)
    return hasher.hexdigest()


async def job_with_artifact(client: JobsClient, size: int = SIZE) -> jobs_pb2.Job:
    job = await client.create_job("noop", {"artifact_bytes": size})
    events = await watch_all(client, job.job_id)
    assert events[-1].type == jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED
    return await client.get_job(job.job_id)


async def test_the_result_lists_the_artifact_and_its_owner_downloads_it_whole(
    alice: JobsClient,
) -> None:
    job = await job_with_artifact(alice)
    (listed,) = struct_to_dict(job.result)["artifacts"]
    digest = await expected_digest(SIZE)
    assert listed == {
        "name": "noop.bin",
        "content_type": "application/octet-stream",
        "size": SIZE,
        "sha256": digest,
    }
    artifact, pieces = await alice.download(job.job_id, "noop.bin")
    assert (artifact.size, artifact.sha256) == (SIZE, digest)
    hasher, count, received = hashlib.sha256(), 0, 0
    async for piece in pieces:
        hasher.update(piece)
        received += len(piece)
        count += 1
    assert received == SIZE
    assert hasher.hexdigest() == digest
    assert count > 1  # streamed, not sent whole


async def test_another_user_and_a_wrong_name_are_not_found(
    alice: JobsClient, bob: JobsClient
) -> None:
    job = await job_with_artifact(alice, 1000)
    for client, job_id, name in (
        (bob, job.job_id, "noop.bin"),
        (alice, job.job_id, "other.bin"),
        (alice, "00000000-0000-4000-8000-000000000000", "noop.bin"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.download(job_id, name)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_gateway_streams_it_with_its_length_type_and_digest(stack: Stack) -> None:
    async with JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token("alice")) as c:
        job = await job_with_artifact(c)
    url = f"{stack.gateway_url}/v1/jobs/{job.job_id}/artifacts/noop.bin"
    digest = await expected_digest(SIZE)
    async with httpx.AsyncClient(timeout=30) as http:
        mine = {"Authorization": f"Bearer {stack.token('alice')}"}
        async with http.stream("GET", url, headers=mine) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/octet-stream"
            assert response.headers["content-length"] == str(SIZE)
            assert response.headers["etag"] == f'"{digest}"'
            assert "attachment" in response.headers["content-disposition"]
            hasher = hashlib.sha256()
            async for piece in response.aiter_bytes():
                hasher.update(piece)
        assert hasher.hexdigest() == digest
        theirs = await http.get(url, headers={"Authorization": f"Bearer {stack.token('bob')}"})
        assert theirs.status_code == 404
        nobody = await http.get(url)
        assert nobody.status_code == 401


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_jobctl_saves_it_verified(stack: Stack, transport: str, tmp_path: Path) -> None:
    token = stack.token("alice")
    submitted = jobctl(
        stack, "submit", "noop", "--set", "artifact_bytes=70000", "--watch", "-o", "json",
        token=token, transport=transport,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    job_id = next(
        line.split('"')[3] for line in submitted.stdout.splitlines() if '"job_id"' in line
    )
    target = tmp_path / "saved.bin"
    saved = jobctl(
        stack, "download", job_id, "noop.bin", "--to", str(target),
        token=token, transport=transport,
    )  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    assert "sha256 verified" in saved.stdout
    assert target.stat().st_size == 70000
    assert not (tmp_path / "saved.bin.part").exists()
    missing = jobctl(stack, "download", job_id, "nope.bin", token=token, transport=transport)
    assert missing.returncode == 3


async def test_the_bytes_sit_under_the_owner_and_job_prefix(
    alice: JobsClient, stack: Stack
) -> None:
    job = await job_with_artifact(alice, 2048)
    settings = ObjectStoreSettings.from_env(stack.extra_env)
    assert settings is not None
    names = await settings.open().names(job_prefix("alice", job.job_id))
    assert names == [job_prefix("alice", job.job_id) + await expected_digest(2048)]


async def test_deleting_the_job_deletes_its_objects(alice: JobsClient, stack: Stack) -> None:
    job = await job_with_artifact(alice, 4096)
    settings = ObjectStoreSettings.from_env(stack.extra_env)
    assert settings is not None
    store = settings.open()
    prefix = job_prefix("alice", job.job_id)
    assert len(await store.names(prefix)) == 1
    await alice.delete_job(job.job_id)
    deadline = asyncio.get_running_loop().time() + 15
    while await store.names(prefix):
        assert asyncio.get_running_loop().time() < deadline, "the objects outlived their job"
        await asyncio.sleep(0.2)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await alice.download(job.job_id, "noop.bin")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def upload_over_grpc(client: JobsClient, pieces: list[bytes], content_type: str) -> object:
    async def requests() -> AsyncIterator[job_service_pb2.CreateUploadRequest]:
        for n, piece in enumerate(pieces):
            yield job_service_pb2.CreateUploadRequest(
                content_type=content_type if n == 0 else "", data=piece
            )

    return await client.jobs.CreateUpload(requests(), metadata=client._metadata)


async def test_an_upload_is_stored_under_its_owner_and_answered_with_its_digest(
    stack: Stack,
) -> None:
    lines = b"".join(b'{"sleep_ms": %d}\n' % n for n in range(20_000))  # ~360 KB
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            f"{stack.gateway_url}/v1/uploads",
            content=lines,
            headers={
                "Authorization": f"Bearer {stack.token('alice')}",
                "Content-Type": "application/x-ndjson",
            },
        )
    assert answer.status_code == 200, answer.text
    upload = answer.json()
    assert upload["size"] == len(lines)
    assert upload["sha256"] == hashlib.sha256(lines).hexdigest()
    assert upload["contentType"] == "application/x-ndjson"
    settings = ObjectStoreSettings.from_env(stack.extra_env)
    assert settings is not None
    prefix = upload_prefix("alice", upload["uploadId"])
    assert await settings.open().names(prefix) == [prefix + upload["sha256"]]


async def test_an_upload_over_grpc_in_pieces_is_one_file(alice: JobsClient) -> None:
    pieces = [b"a" * 100_000, b"b" * 5, b"", b"c" * 70_000]
    upload = await upload_over_grpc(alice, pieces, "text/plain")
    assert isinstance(upload, job_service_pb2.Upload)
    assert upload.size == sum(map(len, pieces))
    assert upload.sha256 == hashlib.sha256(b"".join(pieces)).hexdigest()
    assert upload.content_type == "text/plain"


async def test_an_upload_past_the_gateway_s_limit_is_413_and_needs_a_token(stack: Stack) -> None:
    url = f"{stack.gateway_url}/v1/uploads"
    async with httpx.AsyncClient(timeout=30) as http:
        nobody = await http.post(url, content=b"{}\n")
        assert nobody.status_code == 401
        too_big = await http.post(
            url,
            content=b"x" * (GATEWAY_MAX_UPLOAD_BYTES + 1),
            headers={"Authorization": f"Bearer {stack.token('alice')}"},
        )
        assert too_big.status_code == 413


async def test_a_form_s_file_part_is_the_upload(stack: Stack) -> None:
    rows = b"".join(b'{"row": %d}\n' % n for n in range(5_000))
    headers = {"Authorization": f"Bearer {stack.token('alice')}"}
    url = f"{stack.gateway_url}/v1/uploads"
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            url,
            headers=headers,
            data={"note": "before the file"},
            files={"file": ("rows.jsonl", rows, "application/x-ndjson")},
        )
        assert answer.status_code == 200, answer.text
        upload = answer.json()
        assert upload["size"] == len(rows)
        assert upload["sha256"] == hashlib.sha256(rows).hexdigest()
        assert upload["contentType"] == "application/x-ndjson"
        no_file = await http.post(
            url, headers=headers, files={"other": ("x.txt", b"x", "text/plain")}
        )
        assert no_file.status_code == 400
        (violation,) = no_file.json()["details"][0]["fieldViolations"]
        assert (violation["field"], violation["description"]) == ("file", "is missing")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_jobctl_uploads_a_file(stack: Stack, transport: str, tmp_path: Path) -> None:
    rows = b"".join(b'{"sleep_ms": %d}\n' % n for n in range(3_000))
    source = tmp_path / "rows.jsonl"
    source.write_bytes(rows)
    stored = jobctl(
        stack, "upload", str(source), "-o", "json", token=stack.token("alice"), transport=transport
    )
    assert stored.returncode == 0, stored.stderr
    upload = json.loads(stored.stdout)
    assert int(upload["size"]) == len(rows)
    assert upload["sha256"] == hashlib.sha256(rows).hexdigest()
    assert upload["content_type"] == "application/x-ndjson"
