"""The gateway's HTTP <-> gRPC mapping, as pure code: routes taken from the annotations,
requests built from paths, queries and bodies, statuses and details, the OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, duration_pb2, empty_pb2
from google.rpc import error_details_pb2, status_pb2

from jobkit.gen.jobs.v1 import job_service_pb2, jobs_pb2, notifier_service_pb2
from jobtypes import CATALOG
from services.gateway import openapi
from services.gateway.routes import PUBLIC_SERVICES, Binding, bindings
from services.gateway.transcode import (
    HTTP_STATUS,
    HttpError,
    build_request,
    error_from_call,
    error_from_rpc,
    to_json,
)

#: DESIGN.md's route table: the contract the annotations must produce.
CONTRACT = {
    ("POST", "/v1/jobs"): "CreateJob",
    ("GET", "/v1/jobs/{job_id}"): "GetJob",
    ("GET", "/v1/jobs"): "ListJobs",
    ("POST", "/v1/jobs/{job_id}:cancel"): "CancelJob",
    ("POST", "/v1/jobs/{job_id}:retry"): "RetryJob",
    ("POST", "/v1/jobs/{job_id}:fork"): "ForkJob",
    ("POST", "/v1/jobs/{job_id}:submitInput"): "SubmitInput",
    ("POST", "/v1/jobs:bulkRetry"): "BulkRetryJobs",
    ("POST", "/v1/jobs:bulkCancel"): "BulkCancelJobs",
    ("DELETE", "/v1/jobs/{job_id}"): "DeleteJob",
    ("GET", "/v1/jobTypes"): "ListJobTypes",
    ("POST", "/v1/jobs/{job_id}:watchToken"): "CreateWatchToken",
    ("GET", "/v1/jobs/{job_id}/events"): "WatchJob",
    ("GET", "/v1/jobs/{job_id}/artifacts/{name}"): "DownloadArtifact",
    ("POST", "/v1/uploads"): "CreateUpload",
    ("GET", "/v1/jobs/{job_id}/webhookDeliveries"): "ListWebhookDeliveries",
}


def _binding(name: str) -> Binding:
    return next(b for b in bindings() if b.method.name == name)


def test_the_routes_are_the_contracts_and_come_from_the_annotations() -> None:
    found = {(b.verb, b.template): b.method.name for b in bindings()}
    assert found == CONTRACT
    every_rpc = {m.name for s in PUBLIC_SERVICES for m in s.methods}
    assert set(found.values()) == every_rpc  # no RPC without a route
    assert _binding("WatchJob").streaming
    assert not _binding("WatchJob").download
    assert _binding("DownloadArtifact").download
    assert _binding("CreateUpload").upload
    assert not _binding("CreateJob").upload
    assert _binding("CancelJob").grpc_path == "/jobs.v1.JobService/CancelJob"
    assert _binding("GetJob").path_params == ("job_id",)


def test_fixed_paths_are_tried_before_templated_ones() -> None:
    order = [b.template for b in bindings()]
    assert order.index("/v1/jobTypes") < order.index("/v1/jobs/{job_id}")


def _annotated_service(rule: http_pb2.HttpRule) -> Any:
    """A service that exists only in this test, with one annotated RPC."""
    pool = descriptor_pool.DescriptorPool()
    for module in (descriptor_pb2, http_pb2, annotations_pb2, empty_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
    file = descriptor_pb2.FileDescriptorProto(
        name="things.proto",
        package="things.v1",
        syntax="proto3",
        dependency=["google/api/annotations.proto", "google/protobuf/empty.proto"],
    )
    request = file.message_type.add(name="GetThingRequest")
    request.field.add(
        name="thing_id",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        json_name="thingId",
    )
    method = file.service.add(name="Things").method.add(
        name="GetThing",
        input_type=".things.v1.GetThingRequest",
        output_type=".google.protobuf.Empty",
    )
    method.options.Extensions[annotations_pb2.http].CopyFrom(rule)
    pool.Add(file)
    return pool.FindFileByName(file.name).services_by_name["Things"]


def test_a_new_annotated_rpc_is_a_new_route_with_no_code() -> None:
    service = _annotated_service(http_pb2.HttpRule(get="/v1/things/{thing_id}"))
    (binding,) = bindings([service])
    assert (binding.verb, binding.template, binding.grpc_path) == (
        "GET",
        "/v1/things/{thing_id}",
        "/things.v1.Things/GetThing",
    )
    document = openapi.document([binding])
    assert "/v1/things/{thing_id}" in document["paths"]


def test_an_annotation_naming_no_field_is_refused() -> None:
    service = _annotated_service(http_pb2.HttpRule(get="/v1/things/{nope}"))
    with pytest.raises(ValueError, match="names no field 'nope'"):
        bindings([service])


def test_a_body_and_the_path_make_the_request() -> None:
    body = json.dumps({"type": "noop", "input": {"sleep_ms": 5}, "idempotency_key": "k"}).encode()
    request = build_request(_binding("CreateJob"), {}, [], body)
    assert isinstance(request, job_service_pb2.CreateJobRequest)
    assert (request.type, request.idempotency_key) == ("noop", "k")
    assert request.input["sleep_ms"] == 5
    cancel = build_request(_binding("CancelJob"), {"job_id": "abc"}, [], b"{}")
    assert cancel == job_service_pb2.CancelJobRequest(job_id="abc")
    empty_body = build_request(_binding("CancelJob"), {"job_id": "abc"}, [], b"")
    assert empty_body == job_service_pb2.CancelJobRequest(job_id="abc")


def test_a_body_contradicting_the_path_is_refused() -> None:
    with pytest.raises(HttpError) as error:
        build_request(_binding("CancelJob"), {"job_id": "a"}, [], b'{"jobId": "b"}')
    assert error.value.status == 400
    assert error.value.body["details"][0]["fieldViolations"][0]["field"] == "job_id"


def test_query_parameters_take_either_spelling_and_enum_names() -> None:
    query = [("pageSize", "7"), ("page_token", "t"), ("status", "JOB_STATUS_FAILED")]
    request = build_request(_binding("ListJobs"), {}, query, b"")
    assert request == job_service_pb2.ListJobsRequest(
        page_size=7, page_token="t", status=jobs_pb2.JOB_STATUS_FAILED
    )
    watch = build_request(_binding("WatchJob"), {"job_id": "j"}, [("after_sequence", "9")], b"")
    assert watch == notifier_service_pb2.WatchJobRequest(job_id="j", after_sequence=9)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ([("pageSize", "ten")], "page_size"),
        ([("pageSize", "1e3")], "page_size"),
        ([("status", "JOB_STATUS_NOPE")], "status"),
        ([("colour", "red")], "colour"),
        ([("jobId", "x")], "jobId"),  # a path parameter is not also a query parameter
    ],
)
def test_bad_query_parameters_name_the_field(query: list[tuple[str, str]], field: str) -> None:
    binding = _binding("ListJobs") if field != "jobId" else _binding("GetJob")
    with pytest.raises(HttpError) as error:
        build_request(binding, {"job_id": "j"}, query, b"")
    assert error.value.status == 400
    assert error.value.body["details"][0]["fieldViolations"][0]["field"] == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{", "body"),
        (b"\xff\xfe", "body"),
        (b"[]", "body"),
        (b'"x"', "body"),
        (b'{"bogus": 1}', "bogus"),
        (b'{"type": 1}', "type"),
        (b'{"input": []}', "input"),
        (b"[" * 100_000, "body"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(body: bytes, field: str) -> None:
    with pytest.raises(HttpError) as error:
        build_request(_binding("CreateJob"), {}, [], body)
    assert error.value.status == 400
    assert error.value.body["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert error.value.body["details"][0]["fieldViolations"][0]["field"] == field
    assert "Traceback" not in json.dumps(error.value.body)


def test_a_body_where_none_is_taken_is_refused() -> None:
    with pytest.raises(HttpError) as error:
        build_request(_binding("GetJob"), {"job_id": "j"}, [], b'{"x": 1}')
    assert error.value.status == 400


def test_every_grpc_code_has_its_http_status() -> None:
    assert set(HTTP_STATUS) == set(grpc.StatusCode)
    expected = {
        "INVALID_ARGUMENT": 400,
        "UNAUTHENTICATED": 401,
        "PERMISSION_DENIED": 403,
        "NOT_FOUND": 404,
        "ALREADY_EXISTS": 409,
        "FAILED_PRECONDITION": 409,
        "RESOURCE_EXHAUSTED": 429,
        "UNAVAILABLE": 503,
        "INTERNAL": 500,
        "DEADLINE_EXCEEDED": 504,
    }
    assert {c.name: HTTP_STATUS[c] for c in grpc.StatusCode if c.name in expected} == expected


def _trailer(*details: Any) -> tuple[tuple[str, bytes], ...]:
    status = status_pb2.Status(code=3, message="m")
    for detail in details:
        status.details.add().Pack(detail)
    return (("grpc-status-details-bin", status.SerializeToString()),)


def test_bad_request_details_reach_the_body() -> None:
    violation = error_details_pb2.BadRequest.FieldViolation(field="input.resume", description="x")
    error = error_from_rpc(
        grpc.StatusCode.INVALID_ARGUMENT,
        "input.resume is required",
        _trailer(error_details_pb2.BadRequest(field_violations=[violation])),
    )
    assert error.status == 400
    assert error.body["code"] == 3
    assert error.body["message"] == "input.resume is required"
    (detail,) = error.body["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert detail["fieldViolations"][0]["field"] == "input.resume"


def test_retry_info_becomes_retry_after_rounded_up() -> None:
    delay = duration_pb2.Duration(seconds=2, nanos=100_000_000)
    error = error_from_rpc(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "rate limit exceeded",
        _trailer(error_details_pb2.RetryInfo(retry_delay=delay)),
    )
    assert (error.status, error.headers["Retry-After"]) == (429, "3")
    assert error.body["details"][0]["retryDelay"] == "2.100s"
    bare = error_from_rpc(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy", None)
    assert bare.headers["Retry-After"] == "1"


def test_a_failed_calls_trailing_metadata_carries_its_details() -> None:
    retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=4))
    (trailer,) = _trailer(retry)
    failed = grpc.aio.AioRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(trailer),
        "busy",
        None,
    )
    error = error_from_call(failed)
    assert (error.status, error.headers["Retry-After"]) == (429, "4")
    assert error.body["details"][0]["retryDelay"] == "4s"
    missing = grpc.aio.AioRpcError(
        grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), grpc.aio.Metadata(), None, None
    )
    bare = error_from_call(missing)
    assert (bare.status, bare.body["message"], bare.body["details"]) == (404, "not_found", [])


def test_a_malformed_details_trailer_loses_only_the_details() -> None:
    error = error_from_rpc(
        grpc.StatusCode.NOT_FOUND, "job not found", (("grpc-status-details-bin", b"\xff\x00"),)
    )
    assert error.status == 404
    assert error.body == {"code": 5, "message": "job not found", "details": []}


def test_json_output_is_lower_camel_case_with_defaults_printed() -> None:
    event = jobs_pb2.JobEvent(job_id="j", sequence=2**62, type=jobs_pb2.JOB_EVENT_TYPE_PROGRESS)
    document = to_json(event)
    assert document["jobId"] == "j"
    assert document["sequence"] == str(2**62)  # int64 as a string: JavaScript keeps it exact
    assert document["type"] == "JOB_EVENT_TYPE_PROGRESS"
    assert document["progress"] == 0
    assert document["partialOutput"] == ""


def _resolve(document: dict[str, Any], node: Any) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.removeprefix("#/components/schemas/")
            assert name in document["components"]["schemas"], ref
        for value in node.values():
            _resolve(document, value)
    elif isinstance(node, list):
        for value in node:
            _resolve(document, value)


def test_the_openapi_document_covers_every_route_and_resolves() -> None:
    examples = {"noop": {"type": "noop", "input": {"sleep_ms": 1}}}
    document = openapi.document(bindings(), job_types=CATALOG.specs(), examples=examples)
    operations = {
        (verb.upper(), path): op["operationId"]
        for path, item in document["paths"].items()
        for verb, op in item.items()
    }
    assert operations == CONTRACT
    _resolve(document, document)
    job = document["components"]["schemas"]["jobs.v1.Job"]["properties"]
    assert job["jobId"] == {"type": "string"}
    assert job["steps"]["type"] == "array"
    assert job["createdAt"] == {"type": "string", "format": "date-time"}
    event = document["components"]["schemas"]["jobs.v1.JobEvent"]["properties"]
    assert event["sequence"] == {"type": "string", "format": "int64"}
    status = document["components"]["schemas"]["jobs.v1.JobStatus"]
    assert "JOB_STATUS_SUCCEEDED" in status["enum"]
    watch = document["paths"]["/v1/jobs/{job_id}/events"]["get"]
    assert "text/event-stream" in watch["responses"]["200"]["content"]
    assert "204" in watch["responses"]
    # Each job type's input schema is a component; the examples are CreateJob's.
    for spec in CATALOG.values():
        component = document["components"]["schemas"][f"jobs.v1.input.{spec.name}"]
        assert component["properties"] == spec.input_schema["properties"]
    create = document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]
    assert create["examples"] == {"noop": {"value": examples["noop"]}}
    listing = document["paths"]["/v1/jobs"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {
        "pageSize",
        "pageToken",
        "status",
        "type",
        "parentJobId",
    }
