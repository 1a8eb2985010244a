"""``GET /openapi.json``: an OpenAPI 3.1 document derived from the same bindings and
message descriptors the gateway routes with, so it describes exactly what is served."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from jobkit.catalog import JobTypeSpec
from services.gateway.routes import Binding

_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64"},
    # 64-bit integers are JSON strings in the proto3 mapping (JavaScript numbers lose them).
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
}
#: Well-known types have their own JSON forms.
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": True,
    },
}
_STATUS_SCHEMA = {
    "type": "object",
    "description": "google.rpc.Status: the gRPC code, a message naming the field at fault, "
    "and details such as google.rpc.BadRequest or google.rpc.RetryInfo.",
    "properties": {
        "code": {"type": "integer", "format": "int32"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"$ref": "#/components/schemas/google.protobuf.Any"}},
    },
}


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {
            "google.rpc.Status": _STATUS_SCHEMA,
            "google.protobuf.Any": _WELL_KNOWN["google.protobuf.Any"],
        }

    def ref(self, message: Descriptor) -> dict[str, Any]:
        name = message.full_name
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        if name not in self.components:
            self.components[name] = {}  # placed first: recursive messages end here
            self.components[name] = self._message(message)
        return {"$ref": f"#/components/schemas/{name}"}

    def _message(self, message: Descriptor) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {f.json_name: self.field(f) for f in message.fields},
        }

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._single(value)}
        single = self._single(field)
        if field.is_repeated:
            return {"type": "array", "items": single}
        return single

    def _single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None:
            return self.ref(field.message_type)
        if field.enum_type is not None:
            return self._enum(field.enum_type)
        return dict(_SCALARS[field.type])

    def _enum(self, enum: EnumDescriptor) -> dict[str, Any]:
        name = enum.full_name
        if name not in self.components:
            self.components[name] = {"type": "string", "enum": [v.name for v in enum.values]}
        return {"$ref": f"#/components/schemas/{name}"}


#: The RPC whose ``input`` each job type's schema describes.
_CREATE_JOB = "jobs.v1.JobService.CreateJob"


def document(
    bindings: Sequence[Binding],
    *,
    job_types: Sequence[JobTypeSpec] = (),
    examples: Mapping[str, Any] | None = None,
    version: str = "v1",
) -> dict[str, Any]:
    """The document; each of ``job_types`` adds its input schema as a component
    (``jobs.v1.input.<type>``), and ``examples`` (CreateJob requests by job type) become
    the examples of ``POST /v1/jobs``."""
    schemas = _Schemas()
    for spec in job_types:
        schemas.components[f"jobs.v1.input.{spec.name}"] = {
            **spec.input_schema,
            "description": f"CreateJobRequest.input when type is {spec.name!r}. "
            + spec.description,
        }
    paths: dict[str, dict[str, Any]] = {}
    for binding in bindings:
        operation = _operation(binding, schemas)
        if binding.method.full_name == _CREATE_JOB and examples:
            body = operation["requestBody"]["content"]["application/json"]
            body["examples"] = {name: {"value": value} for name, value in examples.items()}
        paths.setdefault(binding.template, {})[binding.verb.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Durable jobs",
            "version": version,
            "description": "HTTP/JSON and Server-Sent Events for jobs.v1: the same RPCs as "
            "the gRPC API, routed by their google.api.http annotations. Bodies use the "
            "proto3 JSON mapping.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "watchToken": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "access_token",
                    "description": "A watch token from :watchToken, on the events route only.",
                },
            },
        },
    }


def _operation(binding: Binding, schemas: _Schemas) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in binding.path_params
    ]
    parameters += [
        {"name": f.json_name, "in": "query", "required": False, "schema": schemas.field(f)}
        for f in binding.query_fields()
    ]
    operation: dict[str, Any] = {
        "operationId": binding.method.name,
        "tags": [binding.method.containing_service.name],
        "parameters": parameters,
        "responses": {
            "default": {
                "description": "An error: the gRPC status as HTTP.",
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/google.rpc.Status"}
                    }
                },
            }
        },
    }
    if binding.upload:
        operation["requestBody"] = {
            "required": True,
            "description": "The file itself, streamed (its Content-Type is kept).",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    elif binding.body == "*":
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas.ref(binding.request)}},
        }
    if binding.download:
        operation["responses"]["200"] = {
            "description": "The artifact's bytes, streamed, with its Content-Type, "
            "Content-Length and its sha256 as the ETag.",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    elif binding.streaming:
        output = schemas.ref(binding.method.output_type)
        operation["security"] = [{"bearer": []}, {"watchToken": []}]
        operation["parameters"].append(
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
            }
        )
        operation["responses"]["200"] = {
            "description": "Server-Sent Events: one message per event (id: its sequence, "
            "data: the event as JSON), then `event: end`.",
            "content": {"text/event-stream": {"schema": {"type": "string"}, "x-event": output}},
        }
        operation["responses"]["204"] = {"description": "The job is over; nothing to send."}
    else:
        operation["responses"]["200"] = {
            "description": "OK",
            "content": {"application/json": {"schema": schemas.ref(binding.method.output_type)}},
        }
    return operation
