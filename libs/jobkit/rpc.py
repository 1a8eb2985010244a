"""gRPC server plumbing shared by job_api and notifier: health, reflection, error mapping,
logging context, trace context, RPC metrics and graceful shutdown."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
import structlog
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from opentelemetry.trace import SpanKind

from jobkit import tracing
from jobkit.auth import Authenticator, Principal
from jobkit.errors import InvalidArgument, JobkitError, ResourceExhausted
from jobkit.logging import get_logger
from jobkit.metrics import RPC_DURATION

log = get_logger(__name__)

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Self = TypeVar("Self")

#: Largest request or response the servers accept: a résumé and a posting fit easily.
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


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
            code=error.grpc_code.value[0], message=error.public_message, details=details
        )
        trailing = (("grpc-status-details-bin", status.SerializeToString()),)
    await context.abort(error.grpc_code, error.public_message, trailing_metadata=trailing)


def _log_failure(error: BaseException) -> None:
    if isinstance(error, JobkitError) and error.grpc_code not in (
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
    ):
        log.info("rpc_rejected", code=error.grpc_code.name)
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
                code = error.grpc_code.name
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
                code = error.grpc_code.name
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


class GrpcServer:
    """A grpc.aio server with health and reflection, and a graceful ``stop``."""

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
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.so_reuseport", 0),
                # Long-lived WatchJob streams through proxies: keep them alive.
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.http2.max_pings_without_data", 0),
                ("grpc.keepalive_permit_without_calls", 1),
            ]
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
        for name in ("", *self._service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("grpc_listening", address=self.address, port=self.port)

    async def stop(self, grace_s: float) -> None:
        """Report NOT_SERVING, refuse new calls, let running ones finish for ``grace_s``."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)

    async def wait(self) -> None:
        await self.server.wait_for_termination()
