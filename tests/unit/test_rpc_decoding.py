"""Request decoding in one place (``jobkit.rpc.DecodeRequests``): a request that does not
decode, or holds a NUL in any string, is INVALID_ARGUMENT for every method, and the methods
only ever see decoded, NUL-free messages.

The second half runs a real grpc.aio server on loopback, built by ``GrpcServer`` as the
services build theirs, with fake servicers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from jobkit.errors import InvalidArgument
from jobkit.gen.jobs.v1 import (
    job_service_pb2,
    job_service_pb2_grpc,
    jobs_pb2,
    notifier_service_pb2,
    notifier_service_pb2_grpc,
)
from jobkit.rpc import UNDECODABLE, GrpcServer, decode_request, server_streaming, unary

CreateJobRequest = job_service_pb2.CreateJobRequest
#: ``CreateJobRequest.type`` (field 1, length 2) holding bytes that are not UTF-8.
BAD_UTF8 = b"\x0a\x02\xff\xfe"


def deeply_nested(depth: int = 200) -> bytes:
    """A CreateJobRequest whose input nests ``depth`` Structs, past protobuf's limit of 100.

    Built in place: copying or parsing it would already hit the limit."""
    request = CreateJobRequest(type="noop")
    level = request.input
    for _ in range(depth):
        level = level.fields["a"].struct_value
    return request.SerializeToString()


def with_input(value: dict[str, Any], **fields: Any) -> bytes:
    request = CreateJobRequest(type="noop", **fields)
    request.input.update(value)
    return request.SerializeToString()


def rejection(raw: bytes, deserializer: Any = CreateJobRequest.FromString) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        decode_request(deserializer, raw)
    return caught.value


@pytest.mark.parametrize(
    "raw",
    [BAD_UTF8, deeply_nested(), b"\x0a\x05ab", b"\xff\xff\xff", b"\x12\x03\x0a\x01\xff"],
    ids=["invalid utf-8", "nested 200 deep", "truncated", "bad tag", "bad utf-8 in input"],
)
def test_undecodable_bytes_are_invalid_argument_with_a_plain_message(raw: bytes) -> None:
    error = rejection(raw)
    assert error.public_message == UNDECODABLE == "request could not be decoded"
    assert error.violations == ()


def test_any_failure_of_a_deserializer_is_undecodable() -> None:
    def recursing(raw: bytes) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    assert rejection(b"", recursing).public_message == UNDECODABLE


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (CreateJobRequest(idempotency_key="k\x00").SerializeToString(), "idempotency_key"),
        (CreateJobRequest(type="no\x00op").SerializeToString(), "type"),
        (with_input({"resume": {"name": "A\x00B"}}), "input.resume.name"),
        (with_input({"items": ["ok", "b\x00d"]}), "input.items[1]"),
        (with_input({"deep": {"list": [{"x": 1.0}, {"y": "\x00"}]}}), "input.deep.list[1].y"),
        (with_input({"ke\x00y": "value"}), "input.*"),
        (with_input({"not a plain key": {"v": "\x00"}}), "input.*.v"),
        (
            jobs_pb2.JobType(name="t", steps=["a", "b\x00"]).SerializeToString(),
            "steps[1]",
        ),
        (
            jobs_pb2.Job(
                steps=[jobs_pb2.JobStep(name="ok"), jobs_pb2.JobStep(name="\x00")]
            ).SerializeToString(),
            "steps[1].name",
        ),
        (
            error_details_pb2.ErrorInfo(metadata={"plain": "v\x00"}).SerializeToString(),
            "metadata.plain",
        ),
        (error_details_pb2.ErrorInfo(metadata={"k\x00": "v"}).SerializeToString(), "metadata.*"),
    ],
)
def test_a_nul_in_any_string_is_invalid_argument_naming_the_field(raw: bytes, field: str) -> None:
    types = {
        "steps[1]": jobs_pb2.JobType,
        "steps[1].name": jobs_pb2.Job,
        "metadata.plain": error_details_pb2.ErrorInfo,
        "metadata.*": error_details_pb2.ErrorInfo,
    }
    error = rejection(raw, types.get(field, CreateJobRequest).FromString)
    assert error.public_message == f"{field} must not contain NUL characters"
    assert [(v.field, v.description) for v in error.violations] == [
        (field, "must not contain NUL characters")
    ]


def test_good_requests_decode_whatever_zero_bytes_they_hold() -> None:
    raw = with_input({"sleep_ms": 0.0, "n": 5.0, "text": "line\nbreak\ttab"}, idempotency_key="k")
    assert b"\0" in raw  # doubles: the walk runs and finds nothing
    assert decode_request(CreateJobRequest.FromString, raw) == CreateJobRequest.FromString(raw)
    assert decode_request(lambda b: b.decode(), b"a\x00b") == "a\x00b"  # not a message


# --- the interceptor, on a real server ---------------------------------------------------


class FakeJobs(job_service_pb2_grpc.JobServiceServicer):
    def __init__(self) -> None:
        self.requests: list[Any] = []

    @unary
    async def CreateJob(self, request: Any, context: Any) -> jobs_pb2.Job:
        self.requests.append(request)
        return jobs_pb2.Job(job_id="j-1", type=request.type)


class FakeNotifier(notifier_service_pb2_grpc.NotifierServiceServicer):
    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.open_streams = 0

    @server_streaming
    async def WatchJob(self, request: Any, context: Any) -> AsyncIterator[jobs_pb2.JobEvent]:
        self.requests.append(request)
        self.open_streams += 1
        try:
            for sequence in range(1, 1000):
                yield jobs_pb2.JobEvent(job_id=request.job_id, sequence=sequence)
                if sequence >= request.after_sequence:
                    await asyncio.sleep(3600)  # a live stream: waits for events
        finally:
            self.open_streams -= 1


class Servers:
    def __init__(self) -> None:
        # Only the methods under test; the base classes answer the rest UNIMPLEMENTED.
        self.jobs = FakeJobs()  # type: ignore[abstract]
        self.notifier = FakeNotifier()

        def register(server: grpc.aio.Server) -> None:
            job_service_pb2_grpc.add_JobServiceServicer_to_server(self.jobs, server)
            notifier_service_pb2_grpc.add_NotifierServiceServicer_to_server(self.notifier, server)

        names = [
            job_service_pb2.DESCRIPTOR.services_by_name["JobService"].full_name,
            notifier_service_pb2.DESCRIPTOR.services_by_name["NotifierService"].full_name,
        ]
        self.server = GrpcServer("127.0.0.1:0", names, register)
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.server.port}")


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    running = Servers()
    await running.server.start()
    yield running
    await running.channel.close(None)
    await running.server.stop(0)


#: How each method is called (the rest are unary).
CALL_KINDS = {
    "/jobs.v1.NotifierService/WatchJob": "unary_stream",
    "/grpc.health.v1.Health/Watch": "unary_stream",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": "stream_stream",
}


async def raw_call(servers: Servers, method: str, raw: bytes) -> grpc.aio.AioRpcError:
    """Send ``raw`` as the request of ``method`` and return the error it ends with."""
    kind = CALL_KINDS.get(method, "unary_unary")
    call = getattr(servers.channel, kind)(
        method, request_serializer=None, response_deserializer=None
    )
    try:
        if kind == "unary_unary":
            await call(raw, timeout=5)
        else:
            async for _ in call(iter([raw]) if kind == "stream_stream" else raw, timeout=5):
                pass
    except grpc.aio.AioRpcError as error:
        return error
    raise AssertionError(f"{method} accepted {raw!r}")


def assert_plain(error: grpc.aio.AioRpcError) -> None:
    details = error.details() or ""
    for leak in ("class", "Traceback", "DecodeError", "Error parsing", "upb"):
        assert leak not in details, details


METHODS = [
    "/jobs.v1.JobService/CreateJob",
    "/jobs.v1.NotifierService/WatchJob",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
]


# Field 1 is a string in every request type here; only CreateJobRequest holds a Struct.
UNDECODABLE_CALLS = [
    *((method, raw) for method in METHODS for raw in (BAD_UTF8, b"\xff\xff\xff")),
    ("/jobs.v1.JobService/CreateJob", deeply_nested()),
]


@pytest.mark.parametrize(("method", "raw"), UNDECODABLE_CALLS)
async def test_every_method_answers_undecodable_bytes_with_invalid_argument(
    servers: Servers, method: str, raw: bytes
) -> None:
    error = await raw_call(servers, method, raw)
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, UNDECODABLE)
    assert_plain(error)
    assert servers.jobs.requests == servers.notifier.requests == []


async def test_a_nul_reaches_no_method_and_is_named_in_bad_request(servers: Servers) -> None:
    jobs = job_service_pb2_grpc.JobServiceStub(servers.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await jobs.CreateJob(CreateJobRequest(type="noop", idempotency_key="a\x00b"), timeout=5)
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "idempotency_key must not contain NUL characters"
    trailers: dict[str, Any] = dict(error.trailing_metadata() or ())  # type: ignore[arg-type]
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert [v.field for v in bad_request.field_violations] == ["idempotency_key"]

    watch = notifier_service_pb2_grpc.NotifierServiceStub(servers.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in watch.WatchJob(notifier_service_pb2.WatchJobRequest(job_id="\x00")):
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "job_id must not contain NUL characters"
    assert servers.jobs.requests == servers.notifier.requests == []


async def test_good_requests_reach_the_methods_decoded(servers: Servers) -> None:
    jobs = job_service_pb2_grpc.JobServiceStub(servers.channel)
    payload = struct_pb2.Struct()
    payload.update({"sleep_ms": 0, "text": "fine"})
    job = await jobs.CreateJob(CreateJobRequest(type="noop", input=payload), timeout=5)
    assert job.type == "noop"
    assert servers.jobs.requests == [CreateJobRequest(type="noop", input=payload)]

    watch = notifier_service_pb2_grpc.NotifierServiceStub(servers.channel)
    request = notifier_service_pb2.WatchJobRequest(job_id="j-1", after_sequence=3)
    stream = watch.WatchJob(request)
    events = [await anext(aiter(stream)) for _ in range(3)]
    assert [e.sequence for e in events] == [1, 2, 3]
    assert servers.notifier.requests == [request]
    assert servers.notifier.open_streams == 1
    # A stream the client drops ends the method's generator too, at once.
    stream.cancel()
    for _ in range(100):
        if servers.notifier.open_streams == 0:
            break
        await asyncio.sleep(0.01)
    assert servers.notifier.open_streams == 0


async def test_health_and_reflection_still_work(servers: Servers) -> None:
    health = health_pb2_grpc.HealthStub(servers.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    watching = health.Watch(health_pb2.HealthCheckRequest(service="jobs.v1.JobService"))
    assert (await anext(aiter(watching))).status == health_pb2.HealthCheckResponse.SERVING
    watching.cancel()

    reflection = reflection_pb2_grpc.ServerReflectionStub(servers.channel)
    replies = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    names = {s.name async for r in replies for s in r.list_services_response.service}
    assert "jobs.v1.JobService" in names
    assert "grpc.health.v1.Health" in names


async def test_an_unknown_method_is_still_unimplemented(servers: Servers) -> None:
    error = await raw_call(servers, "/jobs.v1.JobService/NoSuchMethod", b"")
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
