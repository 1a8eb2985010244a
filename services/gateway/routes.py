"""The HTTP routes, read from the protos' ``google.api.http`` annotations (AIP-127).

Nothing here is written per RPC: a new RPC with an annotation is a new route, and a route
cannot drift from the RPC it calls. Pure: descriptors in, bindings out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import (
    Descriptor,
    FieldDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)

from jobkit.gen.jobs.v1 import job_service_pb2, notifier_service_pb2

#: The public services, each behind its own upstream.
JOB_SERVICE = job_service_pb2.DESCRIPTOR.services_by_name["JobService"]
NOTIFIER_SERVICE = notifier_service_pb2.DESCRIPTOR.services_by_name["NotifierService"]
PUBLIC_SERVICES = (JOB_SERVICE, NOTIFIER_SERVICE)

#: A streaming RPC of these is a file download, not an event stream.
HTTP_BODY = "google.api.HttpBody"

_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_VERBS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True, slots=True)
class Binding:
    """One RPC reachable over HTTP: ``verb`` on ``template`` calls ``method``."""

    method: MethodDescriptor
    verb: str
    #: The annotation's path, e.g. ``/v1/jobs/{job_id}:cancel``; Starlette reads the same
    #: ``{name}`` syntax.
    template: str
    #: ``*``: the JSON body is the request message; empty: fields come from the query.
    body: str

    @property
    def service(self) -> str:
        return self.method.containing_service.full_name

    @property
    def grpc_path(self) -> str:
        return f"/{self.service}/{self.method.name}"

    @property
    def streaming(self) -> bool:
        return bool(self.method.server_streaming)

    @property
    def download(self) -> bool:
        """A stream of bytes (``google.api.HttpBody``) rather than of events."""
        return self.streaming and self.method.output_type.full_name == HTTP_BODY

    @property
    def upload(self) -> bool:
        """The request body is a file, streamed as the RPC's stream of pieces."""
        return bool(self.method.client_streaming)

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(_VARIABLE.findall(self.template))

    @property
    def request(self) -> Descriptor:
        return self.method.input_type

    def query_fields(self) -> tuple[FieldDescriptor, ...]:
        """Request fields a client sets in the query string (none when a body maps them)."""
        if self.body == "*":
            return ()
        taken = set(self.path_params)
        return tuple(f for f in self.request.fields if f.name not in taken)


def binding_of(method: MethodDescriptor) -> Binding | None:
    """The method's HTTP binding, or None if it has no annotation."""
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return None
    rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
    pattern = rule.WhichOneof("pattern")
    if pattern not in _VERBS:
        raise ValueError(f"{method.full_name}: unsupported HTTP pattern {pattern!r}")
    template = getattr(rule, pattern)
    binding = Binding(method, pattern.upper(), template, rule.body)
    if rule.body not in ("", "*"):
        raise ValueError(f"{method.full_name}: only body '*' or none is supported")
    if rule.additional_bindings:
        raise ValueError(f"{method.full_name}: additional_bindings are not supported")
    fields = {f.name for f in method.input_type.fields}
    for name in binding.path_params:
        if name not in fields:
            raise ValueError(f"{method.full_name}: {template} names no field {name!r}")
    return binding


def bindings(services: Iterable[ServiceDescriptor] = PUBLIC_SERVICES) -> list[Binding]:
    """Every annotated method of ``services``; literal paths before templated ones, so
    ``/v1/jobs/{job_id}`` never shadows a fixed path."""
    found = [b for s in services for m in s.methods if (b := binding_of(m)) is not None]
    return sorted(found, key=lambda b: (len(b.path_params), b.template, b.verb))
