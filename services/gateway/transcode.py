"""HTTP/JSON <-> gRPC messages and statuses: the proto3 JSON mapping, and gRPC codes with
their ``google.rpc`` details as HTTP statuses, headers and a ``google.rpc.Status`` body.

Pure: no sockets, no Starlette. The gateway's transport feeds it what arrived.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from google.rpc import error_details_pb2, status_pb2

from services.gateway.routes import Binding

#: gRPC code -> HTTP status, as google.rpc.Code documents it (and DESIGN.md fixes
#: FAILED_PRECONDITION at 409, like ALREADY_EXISTS and ABORTED).
HTTP_STATUS: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

_DETAILS_KEY = "grpc-status-details-bin"
# The detail types a client may meet; importing them registers them for JSON output.
_KNOWN_DETAILS = (error_details_pb2.BadRequest, error_details_pb2.RetryInfo)


@dataclass(eq=False)
class HttpError(Exception):
    """A request the gateway answers itself, or an upstream's failure, as HTTP."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, code: grpc.StatusCode, message: str, violations: Sequence[tuple[str, str]] = ()
    ) -> HttpError:
        """An error the gateway raises, shaped like an upstream's."""
        status = status_pb2.Status(code=code.value[0], message=message)
        if violations:
            bad = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in violations
                ]
            )
            status.details.add().Pack(bad)
        return cls(HTTP_STATUS[code], _status_json(status))


def _status_json(status: status_pb2.Status) -> dict[str, Any]:
    return json_format.MessageToDict(status, always_print_fields_with_no_presence=True)


def error_from_rpc(
    code: grpc.StatusCode,
    message: str,
    trailing_metadata: Iterable[tuple[str, str | bytes]] | None,
) -> HttpError:
    """An upstream's status as HTTP: its code's status, the ``google.rpc.Status`` with its
    details as JSON, and ``Retry-After`` from a ``RetryInfo``."""
    status = status_pb2.Status(code=code.value[0], message=message or code.name.lower())
    for key, value in trailing_metadata or ():
        if key == _DETAILS_KEY and isinstance(value, bytes):
            rich = status_pb2.Status()
            try:
                rich.ParseFromString(value)
            except DecodeError:
                rich.Clear()  # a malformed trailer loses only the details
            status.details.extend(rich.details)
    headers: dict[str, str] = {}
    for detail in status.details:
        retry = error_details_pb2.RetryInfo()
        if detail.Unpack(retry):
            seconds = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
            headers["Retry-After"] = str(max(1, math.ceil(seconds)))
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        headers.setdefault("Retry-After", "1")
    try:
        body = _status_json(status)
    except json_format.SerializeToJsonError:
        # A detail type this gateway does not know: the code and message still go out.
        body = {"code": status.code, "message": status.message, "details": []}
    return HttpError(HTTP_STATUS.get(code, 500), body, headers)


def error_from_call(error: grpc.aio.AioRpcError) -> HttpError:
    """``error_from_rpc`` of a failed upstream call. Its trailing metadata is a
    ``grpc.aio.Metadata`` (or ``None``), whatever grpc's type stubs declare."""
    trailing: object = error.trailing_metadata()
    return error_from_rpc(
        error.code(),
        error.details() or "",
        trailing if isinstance(trailing, grpc.aio.Metadata) else None,
    )


def to_json(message: Message) -> dict[str, Any]:
    """The proto3 JSON mapping: lowerCamelCase names, enums by name, int64 as strings,
    and every field printed, defaults included, so clients need not know the defaults."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def dumps(document: object) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def build_request(
    binding: Binding,
    path_params: Mapping[str, str],
    query: Sequence[tuple[str, str]],
    body: bytes,
    *,
    reserved: frozenset[str] = frozenset(),
) -> Message:
    """The request message of ``binding`` from the URL and body; ``HttpError`` 400 naming
    the field when something does not fit. ``reserved`` query parameters belong to the
    gateway (``access_token``) and are skipped here."""
    request = GetMessageClass(binding.request)()
    if binding.body == "*":
        document = _parse_body(body)
        _merge(request, document, "body")
    elif body.strip():
        raise HttpError.of(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{binding.verb} {binding.template} takes no request body",
            [("body", "must be empty")],
        )
    fields = {f.name: f for f in binding.query_fields()}
    fields.update({f.json_name: f for f in binding.query_fields()})
    from_query: dict[str, Any] = {}
    for key, value in query:
        if key in reserved:
            continue
        found = fields.get(key)
        if found is None:
            raise HttpError.of(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unknown query parameter {key!r}",
                [(key, "is not a parameter of this route")],
            )
        from_query[found.name] = _query_value(found, value)
    _merge(request, from_query, "query")
    for name in binding.path_params:
        raw = path_params[name]
        set_in_body = request.DESCRIPTOR.fields_by_name[name]
        if binding.body == "*" and getattr(request, name) not in ("", raw):
            raise HttpError.of(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{set_in_body.json_name} in the body differs from the path",
                [(name, "must match the path")],
            )
        setattr(request, name, raw)
    return request


def _parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise HttpError.of(
            grpc.StatusCode.INVALID_ARGUMENT,
            "the request body is not valid JSON",
            [("body", "must be a JSON object")],
        ) from None
    except RecursionError:
        raise HttpError.of(
            grpc.StatusCode.INVALID_ARGUMENT,
            "the request body is nested too deeply",
            [("body", "is nested too deeply")],
        ) from None
    if not isinstance(document, dict):
        raise HttpError.of(
            grpc.StatusCode.INVALID_ARGUMENT,
            "the request body must be a JSON object",
            [("body", "must be a JSON object")],
        )
    return document


_INTEGERS = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
    }
)
_INTEGER = re.compile(r"-?[0-9]{1,20}")


def _query_value(field: FieldDescriptor, raw: str) -> bool | str:
    """A query string value as its JSON form (the proto3 JSON parser converts from there)."""
    if field.type == FieldDescriptor.TYPE_BOOL:
        return raw.lower() in ("true", "1")
    if field.type in _INTEGERS and not _INTEGER.fullmatch(raw):
        raise HttpError.of(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{field.name} must be a whole number",
            [(field.name, "must be a whole number")],
        )
    return raw


#: The field a json_format.ParseError is about, from its wording.
_PARSE_ERROR_FIELD = re.compile(r'(?:no field named "|Failed to parse )([A-Za-z0-9_]+)')


def _merge(request: Message, document: dict[str, Any], where: str) -> None:
    try:
        json_format.ParseDict(document, request)
    except json_format.ParseError as error:
        # The parser's first line names the field ("Failed to parse page_size field: ...",
        # 'no field named "bogus"'); any value it quotes is the caller's own.
        reason = str(error).splitlines()[0]
        named = _PARSE_ERROR_FIELD.search(reason)
        raise HttpError.of(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"invalid {where}: {reason}",
            [(named.group(1) if named else where, reason)],
        ) from None
    except RecursionError:
        raise HttpError.of(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the {where} is nested too deeply",
            [(where, "is nested too deeply")],
        ) from None
