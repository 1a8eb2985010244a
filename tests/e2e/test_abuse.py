"""The abuse suite: every RPC against bad credentials, other users' jobs, bad ids and bad
input, each with the exact status code expected; limits with RetryInfo; and a healthy
system afterwards. Nothing here may produce INTERNAL."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.protobuf import struct_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack import Stack
from jobctl.client import JobsClient
from jobkit.gen.jobs.v1 import (
    job_service_pb2,
    job_service_pb2_grpc,
    jobs_pb2,
    notifier_service_pb2,
    notifier_service_pb2_grpc,
)
from tests.e2e.conftest import AUDIENCE, ISSUER, RSA_KID

pytestmark = pytest.mark.e2e

Code = grpc.StatusCode
RPCS = [
    "CreateJob",
    "GetJob",
    "ListJobs",
    "CancelJob",
    "RetryJob",
    "DeleteJob",
    "ListJobTypes",
    "WatchJob",
]
JOB_RPCS = ["GetJob", "CancelJob", "RetryJob", "DeleteJob", "WatchJob"]


class Api:
    """Raw stubs: every call with exactly the metadata the test gives."""

    def __init__(self, stack: Stack) -> None:
        self.api = grpc.aio.insecure_channel(stack.job_api_addr)
        self.notifier = grpc.aio.insecure_channel(stack.notifier_addr)
        self.jobs = job_service_pb2_grpc.JobServiceStub(self.api)
        self.watch = notifier_service_pb2_grpc.NotifierServiceStub(self.notifier)

    async def close(self) -> None:
        await self.api.close(None)
        await self.notifier.close(None)

    async def call(self, rpc: str, token: str | None, job_id: str = "", **fields: Any) -> Any:
        metadata = () if token is None else (("authorization", f"Bearer {token}"),)
        request: Any
        if rpc == "WatchJob":
            request = notifier_service_pb2.WatchJobRequest(job_id=job_id, **fields)
            return [e async for e in self.watch.WatchJob(request, metadata=metadata, timeout=10)]
        if rpc == "CreateJob":
            request = job_service_pb2.CreateJobRequest(type=fields.pop("type", "noop"), **fields)
        elif rpc == "ListJobs":
            request = job_service_pb2.ListJobsRequest(**fields)
        elif rpc == "ListJobTypes":
            request = job_service_pb2.ListJobTypesRequest()
        else:
            request = getattr(job_service_pb2, f"{rpc}Request")(job_id=job_id)
        return await getattr(self.jobs, rpc)(request, metadata=metadata, timeout=10)

    async def status_of(self, rpc: str, token: str | None, job_id: str = "", **fields: Any) -> Code:
        error: grpc.aio.AioRpcError | None = None
        try:
            await self.call(rpc, token, job_id, **fields)
        except grpc.aio.AioRpcError as raised:
            error = raised
        if error is None:
            return Code.OK
        assert error.code() != Code.INTERNAL, error.details()
        assert "Traceback" not in (error.details() or "")
        return error.code()


@pytest.fixture
async def api(stack: Stack) -> Any:
    client = Api(stack)
    yield client
    await client.close()


def _b64(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "mallory",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def _confusion(rsa_key: rsa.RSAPrivateKey) -> str:
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': RSA_KID})}.{_b64(_claims())}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


def bad_tokens(stack: Stack, rsa_key: rsa.RSAPrivateKey) -> dict[str, Callable[[], str | None]]:
    secret = stack.jwt_secret
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "no token": lambda: None,
        "empty bearer": lambda: "",
        "malformed": lambda: "abc.def",
        "alg none": lambda: f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.",
        "HS/RS confusion": lambda: _confusion(rsa_key),
        "attacker's RSA key": lambda: jwt.encode(
            _claims(), attacker, "RS256", headers={"kid": RSA_KID}
        ),
        "expired": lambda: jwt.encode(_claims(exp=int(time.time()) - 300), secret, "HS256"),
        "not yet valid": lambda: jwt.encode(_claims(nbf=int(time.time()) + 300), secret, "HS256"),
        "wrong issuer": lambda: jwt.encode(_claims(iss="https://evil.test"), secret, "HS256"),
        "wrong audience": lambda: jwt.encode(_claims(aud="other"), secret, "HS256"),
        "unknown kid": lambda: jwt.encode(_claims(), rsa_key, "RS256", headers={"kid": "nope"}),
        "no sub": lambda: jwt.encode(_claims(sub=None), secret, "HS256"),
        # Validly signed, but no user id: Postgres text cannot hold NUL, UTF-8 no lone surrogate.
        "NUL in sub": lambda: jwt.encode(_claims(sub="mal\x00lory"), secret, "HS256"),
        "control character in sub": lambda: jwt.encode(_claims(sub="mal\x1b"), secret, "HS256"),
        "lone surrogate in sub": lambda: jwt.encode(_claims(sub="\ud800"), secret, "HS256"),
    }


async def test_every_rpc_refuses_every_bad_token(
    api: Api, stack: Stack, rsa_key: rsa.RSAPrivateKey
) -> None:
    job_id = str(uuid.uuid4())
    table = []
    for case, make in bad_tokens(stack, rsa_key).items():
        token = make()
        for rpc in RPCS:
            code = await api.status_of(rpc, token, job_id)
            table.append((case, rpc, code))
    wrong = [(case, rpc, code) for case, rpc, code in table if code != Code.UNAUTHENTICATED]
    assert not wrong
    assert len(table) == 15 * 8


async def test_valid_rs256_and_hs256_tokens_both_work(
    api: Api, stack: Stack, rsa_key: rsa.RSAPrivateKey
) -> None:
    rs = jwt.encode(_claims(sub="rs-user"), rsa_key, "RS256", headers={"kid": RSA_KID})
    assert await api.status_of("ListJobTypes", rs) == Code.OK
    assert await api.status_of("ListJobTypes", stack.token("hs-user")) == Code.OK


async def test_another_users_job_answers_like_a_missing_one(api: Api, stack: Stack) -> None:
    owner = stack.token("owner-1")
    created = await api.call("CreateJob", owner, input=struct_pb2.Struct())
    missing = str(uuid.uuid4())
    intruder = stack.token("intruder-1")
    for rpc in JOB_RPCS:
        foreign = await api.status_of(rpc, intruder, created.job_id)
        absent = await api.status_of(rpc, intruder, missing)
        assert (rpc, foreign) == (rpc, Code.NOT_FOUND)
        assert (rpc, absent) == (rpc, Code.NOT_FOUND)
    # The owner's job is untouched by all of that.
    assert (await api.call("GetJob", owner, created.job_id)).job_id == created.job_id


async def test_an_admin_sees_every_job(api: Api, stack: Stack) -> None:
    created = await api.call("CreateJob", stack.token("owner-2"), input=struct_pb2.Struct())
    admin = stack.token("operator", scopes=("jobs:admin",))
    assert (await api.call("GetJob", admin, created.job_id)).job_id == created.job_id
    events = await api.call("WatchJob", admin, created.job_id)
    assert events[0].type == jobs_pb2.JOB_EVENT_TYPE_CREATED


@pytest.mark.parametrize("job_id", ["", "1", "not-a-uuid", "' OR 1=1 --", "x" * 5000])
async def test_malformed_ids_are_invalid_argument(api: Api, stack: Stack, job_id: str) -> None:
    token = stack.token("id-checker")
    for rpc in JOB_RPCS:
        assert (rpc, await api.status_of(rpc, token, job_id)) == (rpc, Code.INVALID_ARGUMENT)


def _bad_request_fields(error: grpc.aio.AioRpcError) -> set[str]:
    trailers: dict[str, Any] = dict(error.trailing_metadata() or ())  # type: ignore[arg-type]
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    details = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(details)
    return {v.field for v in details.field_violations}


async def test_bad_input_is_invalid_argument_naming_the_field(api: Api, stack: Stack) -> None:
    token = stack.token("validator")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"type": "cv_tailoring", "input": {}}, "input.resume"),
        (
            {"type": "cv_tailoring", "input": {"resume": {"name": "A"}, "job_posting": "x"}},
            "input.job_posting",
        ),
        ({"type": "noop", "input": {"sleep_ms": -5}}, "input.sleep_ms"),
        ({"type": "noop", "input": {"fail_attempts": True}}, "input.fail_attempts"),
        ({"type": "unknown-type", "input": {}}, "type"),
        ({"type": "noop", "input": {}, "idempotency_key": "k" * 500}, "idempotency_key"),
        ({"type": "noop", "input": {"blob": "x" * (1024 * 1024 + 10)}}, "input"),
        ({"type": "noop", "input": {"sleep_ms": float("nan")}}, "input"),
    ]
    for fields, field in cases:
        payload = struct_pb2.Struct()
        payload.update(fields.pop("input"))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await api.call("CreateJob", token, input=payload, **fields)
        assert caught.value.code() == Code.INVALID_ARGUMENT, field
        assert field in _bad_request_fields(caught.value)
        # The message names the field and never echoes the value sent.
        assert field in (caught.value.details() or "")
        assert "xxxx" not in (caught.value.details() or "")
    listings: list[tuple[dict[str, Any], str]] = [
        ({"page_size": -1}, "page_size"),
        ({"page_token": "forged"}, "page_token"),
        ({"status": 99}, "status"),
    ]
    for listing, field in listings:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await api.call("ListJobs", token, **listing)
        assert caught.value.code() == Code.INVALID_ARGUMENT
        assert field in _bad_request_fields(caught.value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.call("WatchJob", token, str(uuid.uuid4()), after_sequence=-1)
    assert caught.value.code() == Code.INVALID_ARGUMENT
    # Nothing was created by any of it.
    assert len((await api.call("ListJobs", token)).jobs) == 0


def _bad_utf8(request: Message) -> bytes:
    """``request`` serialised, its string ``"@@"`` turned into bytes that are not UTF-8, as a
    gateway passing a browser's input straight through might send it."""
    return request.SerializeToString().replace(b"@@", b"\xff\xfe")


#: Not protobuf at all: a tag with no end.
MALFORMED = b"\xff\xff\xff\xff"


def _nested_input(depth: int) -> bytes:
    """A CreateJobRequest whose input nests ``depth`` Structs (protobuf parses 100 levels of
    messages, some 33 Structs, at most).

    Built in place: copying or parsing it would already hit the limit."""
    request = job_service_pb2.CreateJobRequest(type="noop")
    level = request.input
    for _ in range(depth):
        level = level.fields["a"].struct_value
    return request.SerializeToString()


def _assert_plain(error: grpc.aio.AioRpcError) -> None:
    details = error.details() or ""
    for leak in ("class", "Traceback", "DecodeError", "Error parsing"):
        assert leak not in details, details


async def _raw_error(address: str, method: str, raw: bytes, token: str) -> grpc.aio.AioRpcError:
    """The status a call of ``method`` with exactly ``raw`` as its request ends with."""
    metadata = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            if method.endswith("/WatchJob"):
                async for _ in channel.unary_stream(
                    method, request_serializer=None, response_deserializer=None
                )(raw, metadata=metadata, timeout=10):
                    pass
            else:
                await channel.unary_unary(
                    method, request_serializer=None, response_deserializer=None
                )(raw, metadata=metadata, timeout=10)
        except grpc.aio.AioRpcError as error:
            return error
    raise AssertionError(f"{method} accepted {raw!r}")


async def test_undecodable_requests_are_invalid_argument_without_internals(
    stack: Stack,
) -> None:
    token = stack.token("byte-crafter")
    requests = {
        "CreateJob": job_service_pb2.CreateJobRequest(type="@@"),
        "GetJob": job_service_pb2.GetJobRequest(job_id="@@"),
        "ListJobs": job_service_pb2.ListJobsRequest(page_token="@@"),
        "CancelJob": job_service_pb2.CancelJobRequest(job_id="@@"),
        "DeleteJob": job_service_pb2.DeleteJobRequest(job_id="@@"),
    }
    calls = [
        (stack.job_api_addr, f"/jobs.v1.JobService/{rpc}", raw)
        for rpc, request in requests.items()
        for raw in (_bad_utf8(request), MALFORMED)
    ]
    watch = notifier_service_pb2.WatchJobRequest(job_id="@@")
    calls += [
        (stack.notifier_addr, "/jobs.v1.NotifierService/WatchJob", raw)
        for raw in (_bad_utf8(watch), MALFORMED)
    ]
    calls += [
        (
            address,
            "/grpc.health.v1.Health/Check",
            _bad_utf8(health_pb2.HealthCheckRequest(service="@@")),
        )
        for address in (stack.job_api_addr, stack.notifier_addr)
    ]
    calls.append((stack.job_api_addr, "/jobs.v1.JobService/CreateJob", _nested_input(200)))
    for address, method, raw in calls:
        error = await _raw_error(address, method, raw, token)
        assert (method, error.code()) == (method, Code.INVALID_ARGUMENT)
        assert error.details() == "request could not be decoded"
        _assert_plain(error)
    # Nesting protobuf can parse (some 30 levels of JSON objects) is no problem.
    async with grpc.aio.insecure_channel(stack.job_api_addr) as channel:
        reply = await channel.unary_unary(
            "/jobs.v1.JobService/CreateJob", request_serializer=None, response_deserializer=None
        )(_nested_input(20), metadata=(("authorization", f"Bearer {token}"),), timeout=10)
    assert jobs_pb2.Job.FromString(reply).status == jobs_pb2.JOB_STATUS_QUEUED


async def test_a_nul_in_any_string_is_invalid_argument_naming_the_field(
    api: Api, stack: Stack
) -> None:
    token = stack.token("nul-sender")
    noted = struct_pb2.Struct()
    noted.update({"note": {"text": "a\x00b"}})
    creations: list[tuple[dict[str, Any], str]] = [
        ({"idempotency_key": "key\x00"}, "idempotency_key"),
        ({"type": "no\x00op"}, "type"),
        ({"input": noted}, "input.note.text"),
    ]
    calls: list[tuple[str, str, dict[str, Any], str]] = [
        ("CreateJob", "", fields, field) for fields, field in creations
    ]
    calls += [(rpc, "\x00", {}, "job_id") for rpc in JOB_RPCS]
    calls.append(("ListJobs", "", {"page_token": "\x00"}, "page_token"))
    for rpc, job_id, fields, field in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await api.call(rpc, token, job_id, **fields)
        assert (rpc, caught.value.code()) == (rpc, Code.INVALID_ARGUMENT)
        assert caught.value.details() == f"{field} must not contain NUL characters"
        assert _bad_request_fields(caught.value) == {field}
        _assert_plain(caught.value)
    # Nothing was created by any of it.
    assert len((await api.call("ListJobs", token)).jobs) == 0


async def test_a_message_over_the_grpc_limit_is_refused(api: Api, stack: Stack) -> None:
    payload = struct_pb2.Struct()
    payload.update({"blob": "x" * (3 * 1024 * 1024)})
    code = await api.status_of("CreateJob", stack.token("big"), input=payload)
    assert code == Code.RESOURCE_EXHAUSTED


async def test_idempotency_conflict_is_already_exists(api: Api, stack: Stack) -> None:
    token = stack.token("idem")
    one, two = struct_pb2.Struct(), struct_pb2.Struct()
    one.update({"sleep_ms": 1})
    two.update({"sleep_ms": 2})
    first = await api.call("CreateJob", token, input=one, idempotency_key="same")
    again = await api.call("CreateJob", token, input=one, idempotency_key="same")
    assert again.job_id == first.job_id
    assert await api.status_of("CreateJob", token, input=two, idempotency_key="same") == (
        Code.ALREADY_EXISTS
    )
    # Keys are per user: another user may use the same key for their own job.
    other = await api.call("CreateJob", stack.token("idem-2"), input=two, idempotency_key="same")
    assert other.job_id != first.job_id


def retry_delay_s(error: grpc.aio.AioRpcError) -> float:
    trailers: dict[str, Any] = dict(error.trailing_metadata() or ())  # type: ignore[arg-type]
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info)
    return float(info.retry_delay.ToTimedelta().total_seconds())


async def _create_and_cancel(api: Api, token: str) -> None:
    """One creation that counts against the rate limit but not the running-jobs quota
    (its job is cancelled at once): on a busy machine forty noop jobs need not finish
    before the twenty-first is created."""
    job = await api.call("CreateJob", token, input=struct_pb2.Struct())
    await api.status_of("CancelJob", token, job_id=job.job_id)  # done already: fine too


async def test_rate_limit_answers_resource_exhausted_with_retry_info(
    api: Api, stack: Stack
) -> None:
    token = stack.token("hasty")
    limit = int(stack.extra_env["RATE_LIMIT_PER_MINUTE"])
    for _ in range(limit):
        await _create_and_cancel(api, token)
    # The minute may roll over mid-test; the count then starts again, so allow a second
    # window's worth before the refusal must come.
    refusal: grpc.aio.AioRpcError | None = None
    for _ in range(limit + 1):
        try:
            await _create_and_cancel(api, token)
        except grpc.aio.AioRpcError as error:
            refusal = error
            break
    assert refusal is not None
    assert refusal.code() == Code.RESOURCE_EXHAUSTED
    assert "a minute" in (refusal.details() or "")
    assert 0 < retry_delay_s(refusal) <= 60
    # Another user is not affected.
    assert (
        await api.status_of("CreateJob", stack.token("patient"), input=struct_pb2.Struct())
        == Code.OK
    )


async def test_running_jobs_and_open_streams_are_capped_per_user(api: Api, stack: Stack) -> None:
    token = stack.token("busy")
    slow = struct_pb2.Struct()
    slow.update({"sleep_ms": 20_000})
    running = int(stack.extra_env["MAX_RUNNING_JOBS_PER_USER"])
    jobs = [await api.call("CreateJob", token, input=slow) for _ in range(running)]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.call("CreateJob", token, input=slow)
    assert caught.value.code() == Code.RESOURCE_EXHAUSTED
    assert retry_delay_s(caught.value) > 0

    watches = int(stack.extra_env["MAX_WATCHES_PER_USER"])
    async with JobsClient(stack.job_api_addr, stack.notifier_addr, token) as client:
        streams = [client.watch(j.job_id) for j in jobs[:watches]]
        firsts = [await anext(s) for s in streams]  # each stream is open now
        assert all(f.sequence == 1 for f in firsts)
        assert await api.status_of("WatchJob", token, jobs[-1].job_id) == Code.RESOURCE_EXHAUSTED
        for job in jobs:
            await client.cancel_job(job.job_id)
        for stream in streams:
            async for _ in stream:
                pass
    await asyncio.sleep(0.5)  # closed streams free their slots
    assert len(await api.call("WatchJob", token, jobs[0].job_id)) > 0
    assert (await api.call("CreateJob", token, input=slow)).status == jobs_pb2.JOB_STATUS_QUEUED


async def test_the_system_is_healthy_after_the_abuse(api: Api, stack: Stack) -> None:
    for address in (stack.job_api_addr, stack.notifier_addr):
        async with grpc.aio.insecure_channel(address) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    async with JobsClient(
        stack.job_api_addr, stack.notifier_addr, stack.token("after-abuse")
    ) as client:
        job = await client.create_job("noop", {})
        events = [e async for e in client.watch(job.job_id)]
        assert events[-1].type == jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED
    for service in stack.services.values():
        assert service.alive(), service.name
