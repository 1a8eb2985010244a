"""W3C trace context across the services: one job is one trace.

job_api continues the caller's trace (gRPC metadata ``traceparent``) or starts one for each
RPC, and stores the CreateJob span's context with the job (``jobs.trace_context``). Every
message sent for the job carries it as the NATS header ``traceparent`` (the outbox stores it
per row); a worker continues the trace while it runs a step and sends its own context back
on its reports. ``trace_id`` is bound to every log line written inside a span, and the
services that handle many jobs at once (orchestrator, notifier) log each job's own.

Spans go through the OpenTelemetry API. By default no SDK is configured and nothing is
recorded or exported, but the ids still exist and propagate: where a new trace starts and
the API's no-op tracer has no parent to continue, a root context with random ids is made
here. With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set and the ``tracing`` extra installed
(``opentelemetry-sdk``, ``opentelemetry-exporter-otlp-proto-grpc``), spans are recorded
and exported over OTLP (``configure_tracing``).

Besides the RPC and step spans, each hop of a job's path is a span of the job's trace when
recorded (``job_span``, ``child_span``): the relay's publish, the orchestrator's handling
of each input and its events' publish, the dispatch's wait for a worker, the report's
publish, the notifier's fan-out. Without an SDK those helpers return the API's no-op span
before parsing anything (a flag test), and their callers build names and attributes only
``if span.is_recording()``, so the hops cost next to nothing per message. The spans that
are always made, one per RPC and one per step, skip the API's machinery without an SDK
too: the parent's ``traceparent`` is read here, by the W3C propagator's own rules, and
the span made current directly (7 µs a step span instead of 16).
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    INVALID_SPAN,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    TraceFlags,
    format_trace_id,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from jobkit.logging import get_logger

log = get_logger(__name__)

#: The W3C header (gRPC metadata key, NATS header) that carries the trace context.
TRACEPARENT = "traceparent"

#: Where a trace context can come from: a ``traceparent`` value, NATS headers, gRPC metadata.
Carrier = str | Mapping[str, str] | Iterable[tuple[str, object]] | None

_propagator = TraceContextTextMapPropagator()
#: The W3C form the propagator accepts: version, trace id, span id, flags, and after a
#: version other than 00, more fields.
_TRACEPARENT_FORMAT = re.compile(
    r"^[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:(-.*)|[ \t]*)$"
)
#: Longer values the propagator refuses outright.
_TRACEPARENT_MAX_LENGTH = 512
# A proxy: it uses whatever provider configure_tracing installs, even if that is later.
_tracer = trace.get_tracer("jobkit")
#: Whether this process records spans (``configure_tracing`` installed an SDK).
_sdk = False


def configure_tracing(service: str, otlp_endpoint: str) -> bool:
    """Record and export spans over OTLP when an endpoint is configured and the SDK is
    installed; otherwise keep the API's non-recording tracer. Returns whether spans export.
    """
    if not otlp_endpoint:
        return False
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("tracing_sdk_missing", reason="pip install 'durable-jobs[tracing]'")
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    # The exporter reads the endpoint, headers and TLS settings from OTEL_EXPORTER_OTLP_*.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    global _sdk
    _sdk = True
    log.info("tracing_exporting", kind="otlp")
    return True


def _carrier(source: Carrier) -> dict[str, str]:
    if not source:
        return {}
    if isinstance(source, str):
        return {TRACEPARENT: source}
    items = source.items() if isinstance(source, Mapping) else source
    # gRPC metadata is a sequence of (key, value) pairs; values of -bin keys are bytes.
    return {k.lower(): v for k, v in items if isinstance(v, str)}


def _random_root() -> SpanContext:
    trace_id = secrets.randbits(128) or 1
    span_id = secrets.randbits(64) or 1
    return SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(0))


def parse(traceparent: str | None) -> SpanContext | None:
    """The span context in a ``traceparent`` value, or ``None`` if it is missing or invalid:
    what the W3C propagator would extract from it (``tests/unit/test_tracing.py`` compares
    the two), read without building a context, since it is asked for on every step."""
    if not traceparent or len(traceparent) > _TRACEPARENT_MAX_LENGTH:
        return None
    match = _TRACEPARENT_FORMAT.match(traceparent)
    if match is None:
        return None
    version, trace_id, span_id, flags, more = match.groups()
    if version == "ff" or (version == "00" and more):
        return None
    context = SpanContext(
        int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(int(flags, 16))
    )
    return context if context.is_valid else None


def trace_id_of(traceparent: str | None) -> str | None:
    """The 32-hex-digit trace id of a ``traceparent`` value, as logged in ``trace_id``."""
    span_context = parse(traceparent)
    return format_trace_id(span_context.trace_id) if span_context else None


def traceparent_of(span: Span) -> str:
    """The ``traceparent`` value that makes a receiver's spans children of ``span``: the
    W3C format the propagator writes, formatted here, since it is asked for on every step
    and every result (the propagator's round through a context costs eight times more)."""
    context = span.get_span_context()
    if not context.is_valid:
        return ""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def current_traceparent() -> str:
    """The ``traceparent`` of the current span (``""`` outside any span)."""
    return traceparent_of(trace.get_current_span())


def trace_headers(traceparent: str) -> dict[str, str] | None:
    """NATS headers carrying ``traceparent`` to a core NATS receiver; none without one."""
    return {TRACEPARENT: traceparent} if traceparent else None


def message_headers(msg_id: str, traceparent: str = "") -> dict[str, str]:
    """NATS headers for a JetStream publish: de-duplication id and trace context."""
    if traceparent:
        return {"Nats-Msg-Id": msg_id, TRACEPARENT: traceparent}
    return {"Nats-Msg-Id": msg_id}


@contextlib.contextmanager
def span(
    name: str,
    parent: Carrier = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Iterator[Span]:
    """A span continuing ``parent`` (a ``traceparent`` value, NATS headers or gRPC
    metadata), or a new trace if it has none; current for the block, with ``trace_id``
    bound to every log line written inside it."""
    current = _start(name, parent, kind)
    trace_id = format_trace_id(current.get_span_context().trace_id)
    if not _sdk:
        # What use_span and bound_contextvars do for a span that records nothing, without
        # their context managers: make it current, bind its trace id, undo both after.
        token = otel_context.attach(trace.set_span_in_context(current))
        bound = structlog.contextvars.bind_contextvars(trace_id=trace_id)
        try:
            yield current
        finally:
            structlog.contextvars.reset_contextvars(**bound)
            otel_context.detach(token)
        return
    with (
        trace.use_span(current, end_on_exit=True),
        structlog.contextvars.bound_contextvars(trace_id=trace_id),
    ):
        yield current


@contextlib.contextmanager
def stream_span(
    name: str, parent: Carrier = None, *, kind: SpanKind = SpanKind.SERVER
) -> Iterator[Span]:
    """``span`` for the body of an async generator (a server-streaming RPC): the span is
    not made current, because a generator may be closed from another task, and a context
    attached in one task cannot be detached in another. ``trace_id`` is bound for the
    rest of the task (gRPC runs each call in its own)."""
    current = _start(name, parent, kind)
    structlog.contextvars.bind_contextvars(
        trace_id=format_trace_id(current.get_span_context().trace_id)
    )
    try:
        yield current
    finally:
        current.end()


def _start(name: str, parent: Carrier, kind: SpanKind) -> Span:
    if not _sdk:
        # The API's no-op tracer would return the parent's context as the span's own.
        remote = parse(_carrier(parent).get(TRACEPARENT))
        return NonRecordingSpan(remote if remote is not None else _random_root())
    parent_ctx = _propagator.extract(_carrier(parent))
    current = _tracer.start_span(name, context=parent_ctx, kind=kind)
    if not current.get_span_context().is_valid:
        # No SDK and no parent: the no-op tracer has no ids to give; make a root.
        current = NonRecordingSpan(_random_root())
    return current


def recording() -> bool:
    """Whether this process records spans: what a caller checks before it builds anything
    only a recorded span would use (a start time it must compute, a header)."""
    return _sdk


def job_span(
    name: str,
    parent: Carrier,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    start_time: int | None = None,
) -> Span:
    """A span of the job whose trace ``parent`` carries (a message's NATS headers, a
    ``traceparent`` value), started at ``start_time`` (ns since the epoch) or now. It is
    not made current; the caller ends it (``span.end()``, or ``with span:``).

    Without an SDK, or if ``parent`` holds no trace to join, this is the API's no-op span,
    returned before anything is parsed: set names and attributes only
    ``if span.is_recording()``."""
    if not _sdk or not parent:
        return INVALID_SPAN
    context = _propagator.extract(_carrier(parent))
    if not trace.get_current_span(context).get_span_context().is_valid:
        return INVALID_SPAN  # a hop is part of a job's trace, never a trace of its own
    return _tracer.start_span(name, context=context, kind=kind, start_time=start_time)


def child_span(
    name: str,
    parent: Span | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    start_time: int | None = None,
) -> Span:
    """A span under ``parent`` (by default the current span), like ``job_span``: not
    current, the no-op span without an SDK or without a parent."""
    if not _sdk:
        return INVALID_SPAN
    parent = parent if parent is not None else trace.get_current_span()
    if not parent.get_span_context().is_valid:
        return INVALID_SPAN
    context = trace.set_span_in_context(parent)
    return _tracer.start_span(name, context=context, kind=kind, start_time=start_time)


def bind_job_trace(traceparent: str) -> None:
    """Log the rest of this call under the job's own trace: every line about one job, from
    every service, carries the same ``trace_id`` (jobs created before tracing have none)."""
    trace_id = trace_id_of(traceparent)
    if trace_id is not None:
        structlog.contextvars.bind_contextvars(trace_id=trace_id)


def job_log_fields(traceparent: str) -> dict[str, str]:
    """``trace_id=...`` for a log line about one job written outside its span."""
    trace_id = trace_id_of(traceparent)
    return {"trace_id": trace_id} if trace_id is not None else {}
