"""The gateway's gRPC side: one long-lived channel to job_api and one to notifier, a
callable per bound RPC, and what of the HTTP request travels on as call metadata."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import grpc
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.gateway.routes import JOB_SERVICE, NOTIFIER_SERVICE, Binding
from services.gateway.transcode import HttpError

#: Request headers forwarded to the upstream as metadata: the caller's credentials (the
#: upstream authenticates and authorises; the gateway never does) and W3C trace context.
FORWARDED_HEADERS = ("authorization", "traceparent", "tracestate")

_CHANNEL_OPTIONS = [
    # Reconnect fast when an upstream replica restarts. (Idle streams are kept alive by
    # the servers' own keepalive pings; client pings more often than every 5 minutes
    # would be refused by their default ping policy.)
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
]


#: Longer values are refused here: gRPC's metadata limit (8 KiB in all) would otherwise
#: answer RESOURCE_EXHAUSTED. A JWT is well under 2 KiB.
MAX_METADATA_CHARS = 4096


def forwarded_metadata(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The headers that travel on, refusing values gRPC metadata cannot carry (non-ASCII,
    control characters, oversized) here instead of failing deeper down."""
    metadata = tuple((name, headers[name]) for name in FORWARDED_HEADERS if name in headers)
    for name, value in metadata:
        if not carriable(value):
            if name == "authorization":
                raise HttpError.of(
                    grpc.StatusCode.UNAUTHENTICATED, "missing or invalid credentials"
                )
            raise HttpError.of(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the {name} header is malformed",
                [(name, f"must be printable ASCII, at most {MAX_METADATA_CHARS} characters")],
            )
    return metadata


def carriable(value: str) -> bool:
    """Whether ``value`` can travel as gRPC metadata."""
    return value.isascii() and value.isprintable() and len(value) <= MAX_METADATA_CHARS


class Upstreams:
    """Channels to job_api and notifier (each load-balanced over whatever its address
    resolves to, e.g. a Kubernetes Service), and a multi-callable per binding."""

    def __init__(self, job_api_addr: str, notifier_addr: str) -> None:
        self._channels = {
            JOB_SERVICE.full_name: grpc.aio.insecure_channel(job_api_addr, _CHANNEL_OPTIONS),
            NOTIFIER_SERVICE.full_name: grpc.aio.insecure_channel(notifier_addr, _CHANNEL_OPTIONS),
        }

    def unary(self, binding: Binding) -> grpc.aio.UnaryUnaryMultiCallable[Message, Message]:
        return self._channels[binding.service].unary_unary(
            binding.grpc_path,
            request_serializer=_serialize,
            response_deserializer=GetMessageClass(binding.method.output_type).FromString,
        )

    def stream(self, binding: Binding) -> grpc.aio.UnaryStreamMultiCallable[Message, Message]:
        return self._channels[binding.service].unary_stream(
            binding.grpc_path,
            request_serializer=_serialize,
            response_deserializer=GetMessageClass(binding.method.output_type).FromString,
        )

    def upload(self, binding: Binding) -> grpc.aio.StreamUnaryMultiCallable[Message, Message]:
        return self._channels[binding.service].stream_unary(
            binding.grpc_path,
            request_serializer=_serialize,
            response_deserializer=GetMessageClass(binding.method.output_type).FromString,
        )

    async def ready(self, timeout_s: float = 1.0) -> bool:
        """Whether both upstreams answer SERVING."""

        async def serving(channel: grpc.aio.Channel) -> bool:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=timeout_s
                )
            except grpc.aio.AioRpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

        answers = await asyncio.gather(*(serving(c) for c in self._channels.values()))
        return all(answers)

    async def close(self, grace_s: float | None = None) -> None:
        for channel in self._channels.values():
            await channel.close(grace_s)


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()
