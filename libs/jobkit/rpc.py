"""gRPC server plumbing shared by job_api and notifier: health, reflection, request
decoding, error mapping, logging context, trace context, RPC metrics and graceful shutdown."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import grpc
import structlog
from google.protobuf import any_pb2, duration_pb2, struct_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from opentelemetry.trace import SpanKind

from jobkit import tracing
from jobkit.auth import Authenticator, Principal
from jobkit.errors import (
    AlreadyExists,
    DataLoss,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    JobkitError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from jobkit.logging import get_logger
from jobkit.metrics import RPC_DURATION

log = get_logger(__name__)

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Self = TypeVar("Self")

#: Largest request or response the servers accept: a résumé and a posting fit easily.
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


#: The one table from domain errors to gRPC status codes; any other error is INTERNAL,
#: answered with a generic message (the detail goes to the redacted log only).
STATUS_CODES: Mapping[type[JobkitError], grpc.StatusCode] = {
    NotFound: grpc.StatusCode.NOT_FOUND,
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    DataLoss: grpc.StatusCode.DATA_LOSS,
}


def status_code(error: JobkitError) -> grpc.StatusCode:
    """The gRPC status of a domain error (subclasses take their nearest listed base's)."""
    for kind in type(error).__mro__:
        code = STATUS_CODES.get(kind)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def _status_details(error: JobkitError) -> list[any_pb2.Any]:
    details: list[any_pb2.Any] = []
    if isinstance(error, InvalidArgument) and error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in error.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        details.append(packed)
    if isinstance(error, ResourceExhausted):
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(int(error.retry_after_s * 1000))
        packed = any_pb2.Any()
        packed.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        details.append(packed)
    return details


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], error: JobkitError) -> None:
    """End the call with the error's status code, public message and rich details."""
    details = _status_details(error)
    trailing: tuple[tuple[str, str | bytes], ...] = ()
    if details:
        status = status_pb2.Status(
            code=status_code(error).value[0], message=error.public_message, details=details
        )
        trailing = (("grpc-status-details-bin", status.SerializeToString()),)
    await context.abort(status_code(error), error.public_message, trailing_metadata=trailing)


def _log_failure(error: BaseException) -> None:
    if isinstance(error, JobkitError) and status_code(error) not in (
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
    ):
        log.info("rpc_rejected", code=status_code(error).name)
    else:
        log.error("rpc_failed", exc_info=error)


def _aborted_code(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The status a method set before aborting the call itself."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    for known in grpc.StatusCode:
        if known.value[0] == code:
            return known.name
    return grpc.StatusCode.UNKNOWN.name


def unary(
    method: Callable[[Self, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]],
) -> Callable[[Self, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]]:
    """Wrap a unary servicer method: logging context, a server span continuing the caller's
    ``traceparent``, error-to-status mapping and the ``jobs_rpc_duration_seconds`` metric."""
    name = method.__name__

    @functools.wraps(method)
    async def wrapper(
        self: Self, request: Req, context: grpc.aio.ServicerContext[Req, Resp]
    ) -> Resp:
        started = time.perf_counter()
        code = grpc.StatusCode.OK.name
        with (
            tracing.span(name, context.invocation_metadata(), kind=SpanKind.SERVER),
            structlog.contextvars.bound_contextvars(rpc=name),
        ):
            log.debug("rpc_received")
            try:
                return await method(self, request, context)
            except JobkitError as error:
                code = status_code(error).name
                _log_failure(error)
                await abort_with(context, error)
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED.name
                raise
            except Exception as error:
                if isinstance(error, grpc.aio.AbortError):
                    code = _aborted_code(context)
                    raise
                code = grpc.StatusCode.INTERNAL.name
                _log_failure(error)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            finally:
                RPC_DURATION.labels(name, code).observe(time.perf_counter() - started)
            raise AssertionError("unreachable: abort raises")

    return wrapper


def server_streaming(
    method: Callable[[Self, Req, grpc.aio.ServicerContext[Req, Resp]], AsyncIterator[Resp]],
) -> Callable[[Self, Req, grpc.aio.ServicerContext[Req, Resp]], AsyncIterator[Resp]]:
    """Wrap a server-streaming servicer method like ``unary`` does; the call's duration is
    observed when the stream ends."""
    name = method.__name__

    @functools.wraps(method)
    async def wrapper(
        self: Self, request: Req, context: grpc.aio.ServicerContext[Req, Resp]
    ) -> AsyncIterator[Resp]:
        started = time.perf_counter()
        code = grpc.StatusCode.OK.name
        # Nothing here may attach to the context and detach later (``tracing.span``,
        # ``bound_contextvars``): grpc closes an abandoned stream's generator from
        # another task, where the detach fails.
        structlog.contextvars.bind_contextvars(rpc=name)
        with tracing.stream_span(name, context.invocation_metadata()):
            try:
                async for item in method(self, request, context):
                    yield item
            except JobkitError as error:
                code = status_code(error).name
                _log_failure(error)
                await abort_with(context, error)
            except (asyncio.CancelledError, GeneratorExit):
                code = grpc.StatusCode.CANCELLED.name
                raise
            except Exception as error:
                if isinstance(error, grpc.aio.AbortError):
                    code = _aborted_code(context)
                    raise
                code = grpc.StatusCode.INTERNAL.name
                _log_failure(error)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            finally:
                RPC_DURATION.labels(name, code).observe(time.perf_counter() - started)

    return wrapper


def authenticate(auth: Authenticator, context: grpc.aio.ServicerContext[Any, Any]) -> Principal:
    """The caller of this RPC; binds a one-way hash of the user to the call's log lines."""
    return bind_caller(auth.authenticate(context.invocation_metadata()))


def bind_caller(principal: Principal) -> Principal:
    """Bind a one-way hash of the user to the call's log lines; returns ``principal``."""
    structlog.contextvars.bind_contextvars(
        user=hashlib.sha256(principal.subject.encode()).hexdigest()[:12]
    )
    return principal


#: Said for a request whose bytes are not a message of the method's type: malformed wire
#: data, invalid UTF-8 in a string, nesting past protobuf's recursion limit.
UNDECODABLE = "request could not be decoded"

#: A map key (a Struct's, say) shown as it is in a field path; any other key shows as ``*``,
#: so a path never echoes free text (or the NUL it is being rejected for).
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def decode_request(deserializer: Callable[[bytes], Req], raw: bytes) -> Req:
    """``raw`` decoded by ``deserializer`` (a message type's ``FromString``), or
    ``InvalidArgument``.

    Any decoding failure (``DecodeError``, ``RecursionError``, anything else) is
    INVALID_ARGUMENT with the plain ``UNDECODABLE`` message. A string anywhere in the
    message, Struct values and keys included, that holds a NUL character is INVALID_ARGUMENT
    naming its field: Postgres text and jsonb cannot store NUL, and such a request would
    otherwise fail as INTERNAL deep in a service, or later in a job.
    """
    try:
        message = deserializer(raw)
    except Exception as exc:
        raise InvalidArgument(UNDECODABLE) from exc
    # A NUL in a string is a zero byte on the wire: a request with no zero byte skips the walk.
    if b"\0" in raw and isinstance(message, Message):
        try:
            path = nul_field(message)
        except RecursionError as exc:
            raise InvalidArgument(UNDECODABLE) from exc
        if path is not None:
            description = "must not contain NUL characters"
            raise InvalidArgument(f"{path} {description}", [FieldViolation(path, description)])
    return message


def nul_field(message: Message) -> str | None:
    """The path (``idempotency_key``, ``input.resume.name``, ``steps[2].name``) of the first
    string in ``message`` holding a NUL character, or None. Struct, Value and ListValue are
    walked as the JSON they stand for; a NUL in a map key is reported as ``<map>.*``."""
    found = _nul_in_message(message)
    return None if found is None else "".join(reversed(found)).lstrip(".")


# The walk below runs for every request with a zero byte (any double in a Struct has some),
# so it builds no path on the way down: a hit returns its segments, innermost first.


def _nul_in_message(message: Message) -> list[str] | None:
    if isinstance(message, struct_pb2.Struct):
        return _nul_in_struct(message)
    if isinstance(message, struct_pb2.Value):
        return _nul_in_value(message)
    if isinstance(message, struct_pb2.ListValue):
        return _nul_in_list(message)
    for field, value in message.ListFields():
        found = _nul_in_field(field, value)
        if found is not None:
            found.append(f".{field.name}")
            return found
    return None


def _nul_in_field(field: FieldDescriptor, value: Any) -> list[str] | None:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        value_field = field.message_type.fields_by_name["value"]
        for key, item in value.items():
            if isinstance(key, str) and "\0" in key:
                return [".*"]
            found = _nul_in_item(value_field, item)
            if found is not None:
                found.append(_key_segment(key))
                return found
        return None
    if field.is_repeated:
        for index, item in enumerate(value):
            found = _nul_in_item(field, item)
            if found is not None:
                found.append(f"[{index}]")
                return found
        return None
    return _nul_in_item(field, value)


def _nul_in_item(field: FieldDescriptor, value: Any) -> list[str] | None:
    if field.type == FieldDescriptor.TYPE_STRING:
        return [] if "\0" in value else None
    if field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
        return _nul_in_message(value)
    return None


def _key_segment(key: object) -> str:
    return f".{key}" if _PLAIN_KEY.fullmatch(str(key)) else ".*"


def _nul_in_struct(struct: struct_pb2.Struct) -> list[str] | None:
    fields = struct.fields
    for key in fields:  # not ``.items()``: its iterator is Python code, this is upb's
        if "\0" in key:
            return [".*"]
        found = _nul_in_value(fields[key])
        if found is not None:
            found.append(_key_segment(key))
            return found
    return None


def _nul_in_list(values: struct_pb2.ListValue) -> list[str] | None:
    for index, value in enumerate(values.values):
        found = _nul_in_value(value)
        if found is not None:
            found.append(f"[{index}]")
            return found
    return None


def _nul_in_value(value: struct_pb2.Value) -> list[str] | None:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return [] if "\0" in value.string_value else None
    if kind == "struct_value":
        return _nul_in_struct(value.struct_value)
    if kind == "list_value":
        return _nul_in_list(value.list_value)
    return None


if TYPE_CHECKING:
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
    _Handler = grpc.RpcMethodHandler[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor
    _Handler = grpc.RpcMethodHandler

_Behaviour = Callable[..., Any]


class DecodeRequests(_ServerInterceptor):
    """Every request of every method is decoded here, by ``decode_request``, before the
    method sees it.

    Left to grpc, a request that does not decode ends the call as UNKNOWN with
    ``Unexpected <class 'google.protobuf.message.DecodeError'>: ...`` shown to the client.
    Here each method's handler is re-registered with ``request_deserializer=None`` (grpc then
    passes the raw bytes through) and a behaviour that decodes them itself, so a bad request
    is INVALID_ARGUMENT with a plain message, and a NUL in any string is INVALID_ARGUMENT
    naming the field, for every RPC, health and reflection included. Behaviours keep their
    kind (coroutine or async generator), which is how grpc.aio tells how to drive them; a
    synchronous behaviour is left as it was registered.
    """

    def __init__(self) -> None:
        #: method -> (handler grpc found, the decoding handler made for it).
        self._handlers: dict[str, tuple[_Handler, _Handler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler:
        handler = await continuation(handler_call_details)
        if handler is None:  # an unknown method: grpc answers UNIMPLEMENTED
            return handler
        method = handler_call_details.method
        known = self._handlers.get(method)
        if known is None or known[0] is not handler:
            known = (handler, decoding_handler(handler, method))
            self._handlers[method] = known
        return known[1]


def decoding_handler(handler: _Handler, method: str) -> _Handler:
    """``handler`` with its requests decoded by ``decode_request`` (see ``DecodeRequests``)."""
    deserializer = handler.request_deserializer
    if deserializer is None:
        return handler
    rpc = method.rpartition("/")[2]
    kinds: list[tuple[_Behaviour | None, Callable[..., _Handler]]] = [
        (handler.unary_unary, grpc.unary_unary_rpc_method_handler),
        (handler.unary_stream, grpc.unary_stream_rpc_method_handler),
        (handler.stream_unary, grpc.stream_unary_rpc_method_handler),
        (handler.stream_stream, grpc.stream_stream_rpc_method_handler),
    ]
    for behaviour, make in kinds:
        if behaviour is None:
            continue
        wrapped = _decoding(behaviour, deserializer, rpc, handler.request_streaming)
        if wrapped is None:
            return handler
        return make(
            wrapped, request_deserializer=None, response_serializer=handler.response_serializer
        )
    return handler


def _decoding(
    behaviour: _Behaviour, deserializer: Callable[[bytes], Any], rpc: str, request_streaming: bool
) -> _Behaviour | None:
    async def request_of(raw: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if request_streaming:
            return _decoded_stream(raw, deserializer, rpc, context)
        try:
            return decode_request(deserializer, raw)
        except InvalidArgument as error:
            await _reject(context, rpc, error)

    if inspect.isasyncgenfunction(behaviour):

        async def generator(raw: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            responses = behaviour(await request_of(raw, context), context)
            try:
                async for response in responses:
                    yield response
            finally:
                # Closed with this generator, not later by the event loop's finaliser.
                await responses.aclose()

        return generator
    if inspect.iscoroutinefunction(behaviour):

        async def coroutine(raw: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            return await behaviour(await request_of(raw, context), context)

        return coroutine
    return None


async def _decoded_stream(
    raws: AsyncIterator[bytes],
    deserializer: Callable[[bytes], Any],
    rpc: str,
    context: grpc.aio.ServicerContext[Any, Any],
) -> AsyncIterator[Any]:
    async for raw in raws:
        try:
            request = decode_request(deserializer, raw)
        except InvalidArgument as error:
            await _reject(context, rpc, error)
        yield request


async def _reject(
    context: grpc.aio.ServicerContext[Any, Any], rpc: str, error: InvalidArgument
) -> NoReturn:
    cause = error.__cause__
    reason = type(cause).__name__ if cause is not None else "nul_character"
    code = status_code(error).name
    log.info("rpc_rejected", rpc=rpc, code=code, reason=reason)
    # Refused before the method ran: counted, with no time of its own to speak of.
    RPC_DURATION.labels(rpc, code).observe(0.0)
    await abort_with(context, error)
    raise AssertionError("unreachable: abort raises")


#: Initial metadata of a WatchJob stream with nothing to replay and a job still running:
#: the stream is open and waits for live events. The gateway opens its event stream on it
#: at once; without it, the stream's first event, or its end (nothing left: 204), follows
#: the headers.
WATCH_LIVE_HEADER = "jobs-watch-live"

#: The health service the liveness probe asks: SERVING from start to shutdown, whatever the
#: dependencies do. The overall health ("") and each RPC service's follow the database too
#: (``set_serving``): they are what readiness, the gateway and the dev stack ask.
LIVENESS_SERVICE = "liveness"


def _status(serving: bool) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
    return (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )


class GrpcServer:
    """A grpc.aio server with health and reflection, requests decoded by ``DecodeRequests``,
    and a graceful ``stop``."""

    def __init__(
        self,
        address: str,
        service_names: Sequence[str],
        register: Callable[[grpc.aio.Server], None],
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.address = address
        self._service_names = tuple(service_names)
        self.health = HealthServicer()
        self.server = grpc.aio.server(
            interceptors=[DecodeRequests()],
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.so_reuseport", 0),
                # Long-lived WatchJob streams through proxies: keep them alive.
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.http2.max_pings_without_data", 0),
                ("grpc.keepalive_permit_without_calls", 1),
            ],
        )
        register(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (
                *self._service_names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            self.server,
        )
        self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"cannot listen on {address}")

    async def start(self) -> None:
        await self.server.start()
        for name in ("", LIVENESS_SERVICE, *self._service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("grpc_listening", address=self.address, port=self.port)

    async def set_serving(self, serving: bool) -> None:
        """Readiness: NOT_SERVING while a dependency (the Postgres primary) is out of reach,
        SERVING again once it is back; liveness stays SERVING. No effect once stopping."""
        for name in ("", *self._service_names):
            await self.health.set(name, _status(serving))

    async def set_alive(self, alive: bool) -> None:
        """Liveness, for a service whose health is its own loops' (``Service.serve_health``):
        NOT_SERVING once they are stuck for good, which restarts the process."""
        await self.health.set(LIVENESS_SERVICE, _status(alive))

    async def stop(self, grace_s: float) -> None:
        """Report NOT_SERVING, refuse new calls, let running ones finish for ``grace_s``."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)

    async def wait(self) -> None:
        await self.server.wait_for_termination()
