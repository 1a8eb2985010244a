"""W3C trace context helpers: one job is one trace, with or without an SDK."""

from __future__ import annotations

from dataclasses import replace

import pytest
import structlog
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from jobkit import control, tracing
from services.orchestrator.codec import encode_dispatch
from services.orchestrator.state_machine import Dispatch
from tests.unit.test_state_machine import new_job

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def bound_trace_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("trace_id")
    return None if value is None else str(value)


def test_a_span_continues_the_callers_trace_and_binds_it_to_log_lines() -> None:
    with tracing.span("CreateJob", PARENT, kind=SpanKind.SERVER):
        assert bound_trace_id() == TRACE_ID
        assert tracing.trace_id_of(tracing.current_traceparent()) == TRACE_ID
    assert bound_trace_id() is None
    assert tracing.current_traceparent() == ""


def test_without_a_parent_or_an_sdk_a_new_trace_still_has_ids() -> None:
    with tracing.span("CreateJob") as outer:
        traceparent = tracing.current_traceparent()
        trace_id = tracing.trace_id_of(traceparent)
        assert trace_id is not None
        assert trace_id != "0" * 32
        assert bound_trace_id() == trace_id
        assert not outer.is_recording()
        # Continued from the stored value, as the worker does from the NATS header.
        with tracing.span("step", {"Nats-Msg-Id": "x", "traceparent": traceparent}):
            assert bound_trace_id() == trace_id
    with tracing.span("CreateJob"):
        assert bound_trace_id() != trace_id  # each new trace has its own id


def test_grpc_metadata_is_a_carrier_and_binary_values_are_skipped() -> None:
    metadata = (("authorization", "Bearer x"), ("trace-bin", b"\x00"), ("traceparent", PARENT))
    with tracing.span("GetJob", metadata):
        assert bound_trace_id() == TRACE_ID


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # all-zero trace id is invalid
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero span id is invalid
        f"00-{TRACE_ID}-00f067aa0ba902b7",
    ],
)
def test_invalid_trace_context_is_ignored_and_a_new_trace_starts(value: str) -> None:
    assert tracing.trace_id_of(value) is None
    with tracing.span("CreateJob", value):
        new = bound_trace_id()
        assert new is not None
        assert new != TRACE_ID


def test_message_headers_carry_the_trace_context_only_when_there_is_one() -> None:
    assert tracing.message_headers("a:b:1") == {"Nats-Msg-Id": "a:b:1"}
    assert tracing.message_headers("a:b:1", PARENT) == {
        "Nats-Msg-Id": "a:b:1",
        "traceparent": PARENT,
    }


def test_job_log_fields_and_binding_use_the_jobs_own_trace() -> None:
    assert tracing.job_log_fields(PARENT) == {"trace_id": TRACE_ID}
    assert tracing.job_log_fields("") == {}
    with tracing.span("CancelJob"):
        tracing.bind_job_trace(PARENT)
        assert bound_trace_id() == TRACE_ID
    assert bound_trace_id() is None


def test_every_message_for_a_job_carries_its_trace_context() -> None:
    job = replace(new_job(), trace_context=PARENT)
    assert control.submitted_message(job).trace_context == PARENT
    dispatch = encode_dispatch(job, Dispatch(job.id, "prepare", 1, timeout_s=30.0))
    assert dispatch.trace_context == PARENT


def test_with_an_sdk_spans_are_recorded_as_one_trace(recorded: InMemorySpanExporter) -> None:
    with tracing.span("CreateJob", PARENT, kind=SpanKind.SERVER) as api_span:
        stored = tracing.current_traceparent()  # what job_api keeps with the job
        assert api_span.is_recording()
    headers = tracing.message_headers("job:step:1", stored)  # the dispatch
    with tracing.span("step noop.prepare", headers, kind=SpanKind.CONSUMER):
        report_headers = tracing.message_headers("job:step:1:result", tracing.current_traceparent())
    assert tracing.trace_id_of(report_headers["traceparent"]) == TRACE_ID
    api, step = recorded.get_finished_spans()
    assert {format(s.context.trace_id, "032x") for s in (api, step)} == {TRACE_ID}
    assert api.parent is not None
    assert format(api.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert step.parent is not None
    assert step.parent.span_id == api.context.span_id


def test_with_an_sdk_a_new_trace_is_a_recorded_root(recorded: InMemorySpanExporter) -> None:
    with tracing.span("CreateJob"):
        assert tracing.trace_id_of(tracing.current_traceparent()) is not None
    (root,) = recorded.get_finished_spans()
    assert root.parent is None


def test_configure_tracing_is_off_without_an_endpoint() -> None:
    assert tracing.configure_tracing("job_api", "") is False


def test_a_traceparent_is_written_as_the_w3c_propagator_writes_it() -> None:
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    def by_propagator(span: trace.Span) -> str:
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier, trace.set_span_in_context(span))
        return carrier.get("traceparent", "")

    unsampled = PARENT[:-2] + "00"
    for parent in (PARENT, unsampled, None):
        with tracing.span("step", parent) as span:
            assert tracing.traceparent_of(span) == by_propagator(span) != ""
            assert tracing.current_traceparent() == by_propagator(span)
    assert tracing.traceparent_of(trace.INVALID_SPAN) == by_propagator(trace.INVALID_SPAN) == ""


@pytest.mark.parametrize(
    "value",
    [
        PARENT,
        PARENT[:-2] + "00",  # not sampled
        f"  {PARENT}\t",  # blanks around it
        f"01-{TRACE_ID}-00f067aa0ba902b7-01-future-field",  # a later version may add fields
        f"00-{TRACE_ID}-00f067aa0ba902b7-01-extra",  # version 00 may not
        f"ff-{TRACE_ID}-00f067aa0ba902b7-01",  # version ff is invalid
        f"00-{TRACE_ID.upper()}-00f067aa0ba902b7-01",  # upper-case hex is invalid
        f"00-{'0' * 32}-00f067aa0ba902b7-01",
        f"00-{TRACE_ID}-{'0' * 16}-01",
        f"00-{TRACE_ID}-00f067aa0ba902b7",
        f"00-{TRACE_ID}-00f067aa0ba902b7-01" + "-x" * 300,  # longer than the limit
        "",
        "garbage",
    ],
)
def test_a_traceparent_is_read_as_the_w3c_propagator_reads_it(value: str) -> None:
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    extracted = trace.get_current_span(
        TraceContextTextMapPropagator().extract({"traceparent": value})
    ).get_span_context()
    expected = extracted if extracted.is_valid else None
    assert tracing.parse(value) == expected


def test_a_span_without_an_sdk_is_left_as_it_was_entered_when_its_block_raises() -> None:
    def failing_step() -> None:
        with tracing.span("step", PARENT):
            assert bound_trace_id() == TRACE_ID
            raise RuntimeError("the step failed")

    with pytest.raises(RuntimeError):
        failing_step()
    assert bound_trace_id() is None
    assert tracing.current_traceparent() == ""
