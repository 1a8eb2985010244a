"""job_api's ExportService on real Postgres, over a real gRPC server: the export is one
snapshot (a job created while it streams is not in it), its pieces are bounded whatever the
history, its first message brings the total, and the lines arrive oldest first."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest

from devstack import free_port
from jobkit.gen.jobs.internal.v1 import export_pb2, export_pb2_grpc
from jobkit.rpc import GrpcServer
from jobkit.step_tokens import StepTokens
from services.job_api.export import ExportServicer
from tests.integration.helpers import create_job

SECRET = "integration-step-token-secret-0123456789"


@pytest.fixture
async def server(pool: asyncpg.Pool) -> AsyncIterator[str]:
    tokens = StepTokens(SECRET, job_types=["data_export"])
    # Small pieces and batches: a few jobs are many of each.
    servicer = ExportServicer(pool, tokens, piece_bytes=1000, batch_jobs=3)
    address = f"127.0.0.1:{free_port()}"
    grpc_server = GrpcServer(
        address,
        [],
        lambda s: export_pb2_grpc.add_ExportServiceServicer_to_server(servicer, s),
    )
    await grpc_server.start()
    yield address
    await grpc_server.stop(0)


async def test_the_export_is_one_snapshot_in_bounded_pieces(
    pool: asyncpg.Pool, server: str
) -> None:
    mine = [
        (await create_job(pool, owner="dana", input={"n": n, "pad": "p" * 50_000}))[0]
        for n in range(12)
    ]
    await create_job(pool, owner="erin", input={"n": 99})
    export, _, _ = await create_job(pool, "data_export", owner="dana")
    token = StepTokens(SECRET, job_types=["data_export"]).issue(
        "dana", str(export.id), "export_jobs", 1, timeout_s=60
    )
    # A small, fixed flow-control window: job_api cannot run ahead of this reader by much.
    options = [("grpc.http2.bdp_probe", 0)]
    async with grpc.aio.insecure_channel(server, options=options) as channel:
        call = export_pb2_grpc.ExportServiceStub(channel).ExportJobs(
            export_pb2.ExportJobsRequest(job_id=str(export.id)),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=30,
        )
        responses = aiter(call)
        first = await anext(responses)
        assert first.total_jobs == len(mine)
        # While it streams, the newest job is deleted and another one created: the
        # export's snapshot still has the one and not the other.
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM jobs WHERE id = $1", mine[-1].id)
        late, _, _ = await create_job(pool, owner="dana", input={"late": True})
        rest = [r async for r in responses]
    assert all(0 < len(r.data) <= 1000 for r in rest)
    done = [r.jobs_done for r in rest]
    assert done == sorted(done)
    assert done[-1] == len(mine)
    lines = b"".join(r.data for r in rest).splitlines()
    ids = [json.loads(line)["job"]["jobId"] for line in lines]
    assert ids == [str(j.id) for j in mine]  # oldest first; not erin's, not the export
    assert str(late.id) not in ids
    assert [json.loads(line)["input"]["n"] for line in lines] == list(range(12))
    assert all(json.loads(line)["events"][0]["type"] == "JOB_EVENT_TYPE_CREATED" for line in lines)


async def test_a_token_of_another_owner_or_a_stale_attempt_is_refused(
    pool: asyncpg.Pool, server: str
) -> None:
    export, _, _ = await create_job(pool, "data_export", owner="dana")
    async with pool.acquire() as conn:
        await conn.execute("UPDATE job_steps SET attempt = 2 WHERE job_id = $1", export.id)
    tokens = StepTokens(SECRET, job_types=["data_export"])
    async with grpc.aio.insecure_channel(server) as channel:
        stub = export_pb2_grpc.ExportServiceStub(channel)
        for token in (
            tokens.issue("erin", str(export.id), "export_jobs", 2, timeout_s=60),
            tokens.issue("dana", str(export.id), "export_jobs", 1, timeout_s=60),
        ):
            call = stub.ExportJobs(
                export_pb2.ExportJobsRequest(job_id=str(export.id)),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=10,
            )
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                [r async for r in call]
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        good = tokens.issue("dana", str(export.id), "export_jobs", 2, timeout_s=60)
        call = stub.ExportJobs(
            export_pb2.ExportJobsRequest(job_id=str(export.id)),
            metadata=(("authorization", f"Bearer {good}"),),
            timeout=10,
        )
        assert [r.total_jobs async for r in call] == [0]
