"""What a refused call says: the gRPC status details a client reads (``BadRequest`` field
violations), and CreateJob refused for its input."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from devstack import Stack
from jobkit.gen.jobs.v1 import job_service_pb2, job_service_pb2_grpc


def field_violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs of the error's ``BadRequest`` detail."""
    trailers: dict[str, Any] = dict(error.trailing_metadata() or ())  # type: ignore[arg-type]
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    return [(v.field, v.description) for v in bad_request.field_violations]


async def refused_input(
    stack: Stack, job_type: str, job_input: dict[str, Any], user: str = "alice"
) -> list[tuple[str, str]]:
    """CreateJob with ``job_input``, which must be INVALID_ARGUMENT: its field violations."""
    async with grpc.aio.insecure_channel(stack.job_api_addr) as channel:
        stub = job_service_pb2_grpc.JobServiceStub(channel)
        metadata = (("authorization", f"Bearer {stack.token(user)}"),)
        request = job_service_pb2.CreateJobRequest(type=job_type)
        request.input.update(job_input)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateJob(request, metadata=metadata)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return field_violations(caught.value)
