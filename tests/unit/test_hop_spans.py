"""The spans of a job's hops (``jobkit.tracing.job_span`` and ``child_span``, and the
relay's, orchestrator's, worker's and notifier's uses of them): without an SDK nothing is
parsed, recorded or built; with one, every hop is a span of the job's own trace."""

from __future__ import annotations

import dataclasses
import tracemalloc
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN, NonRecordingSpan, SpanKind

from jobkit import bus, tracing
from jobkit.gen.jobs.internal.v1.events_pb2 import CommittedEvents
from jobkit.gen.jobs.v1 import jobs_pb2
from jobkit.lifecycle import EventType, JobStatus
from jobkit.model import EventRecord, NewEvent, OutboxMessage
from jobkit.outbox import OutboxRelay, publish_span
from jobkit.publish import publish_events
from services.ai_worker.consumer import _Delivery
from services.notifier.fanout import EventHub
from services.orchestrator.consumer import _hop_span
from services.orchestrator.state_machine import ReportKind, StepReport, Submitted
from stepkit import StepContext
from tests.unit.test_worker_attempts import step_msg, worker_with

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
PARENT = f"00-{TRACE_ID}-{PARENT_SPAN}-01"
JOB_ID = uuid.UUID("9b2c4c1e-3f1a-4d2b-9a53-0c6f6a4f2d10")


def message(subject: str = bus.REPORT_SUBJECT, reply: str = "") -> Msg:
    return Msg(
        cast(NatsClient, None),
        subject=subject,
        reply=reply,
        headers={"Nats-Msg-Id": "m", tracing.TRACEPARENT: PARENT},
    )


SUCCEEDED = StepReport(JOB_ID, "work", 1, ReportKind.SUCCEEDED)


def hex_id(value: int, digits: int) -> str:
    return format(value, f"0{digits}x")


class StrictSpan(NonRecordingSpan):
    """A non-recording span that fails if anyone names it or gives it attributes."""

    def set_attribute(self, key: str, value: Any) -> None:
        raise AssertionError(f"attribute {key} built for a span nobody records")

    def set_attributes(self, attributes: Any) -> None:
        raise AssertionError("attributes built for a span nobody records")

    def update_name(self, name: str) -> None:
        raise AssertionError("a name built for a span nobody records")


# --- without an SDK -------------------------------------------------------------------------


def test_without_an_sdk_the_helpers_return_the_no_op_span_before_parsing_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_parsing(*_: object, **__: object) -> None:
        raise AssertionError("a traceparent parsed for a span nobody records")

    monkeypatch.setattr(tracing._propagator, "extract", no_parsing)
    assert not tracing.recording()
    assert tracing.job_span("x", PARENT, kind=SpanKind.CONSUMER) is INVALID_SPAN
    assert tracing.child_span("x") is INVALID_SPAN
    assert publish_span(OutboxMessage("s", "id", b"", trace_context=PARENT)) is INVALID_SPAN
    assert _hop_span(message(), SUCCEEDED, 8, 1) is INVALID_SPAN
    assert not INVALID_SPAN.is_recording()


def test_the_callers_build_no_name_or_attribute_for_a_span_nobody_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    strict = StrictSpan(INVALID_SPAN.get_span_context())
    monkeypatch.setattr(tracing, "job_span", lambda *_, **__: strict)
    monkeypatch.setattr(tracing, "child_span", lambda *_, **__: strict)
    assert publish_span(OutboxMessage("s", "id", b"", trace_context=PARENT)) is strict
    assert _hop_span(message(bus.SUBMITTED_SUBJECT), Submitted(JOB_ID), 1, None) is strict
    assert _hop_span(message(), SUCCEEDED, 8, 1) is strict


async def test_without_an_sdk_a_message_s_spans_allocate_nothing() -> None:
    """What the relay, the orchestrator and the notifier do per message, 10,000 times:
    not a byte kept, and never more than a few hundred in use at once (one dict of
    attributes per call would be more)."""
    msg, item = message(), SUCCEEDED
    outbox_message = OutboxMessage("s", "id", b"", trace_context=PARENT)

    def per_message() -> None:
        with publish_span(outbox_message):
            pass
        hop = _hop_span(msg, item, 8, 1)
        hop.end()
        tracing.child_span("publish events", hop).end()
        with tracing.job_span("fan out event", msg.headers, kind=SpanKind.CONSUMER):
            pass

    per_message()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(10_000):
            per_message()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 256
    assert peak - before < 384


# --- with an SDK ----------------------------------------------------------------------------


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {s.name: s for s in exporter.get_finished_spans()}


def test_job_span_joins_the_message_s_trace_and_never_starts_one(
    recorded: InMemorySpanExporter,
) -> None:
    span = tracing.job_span("hop", {"traceparent": PARENT}, start_time=1_000)
    assert span.is_recording()
    span.end(2_000)
    assert tracing.job_span("hop", None) is INVALID_SPAN
    assert tracing.job_span("hop", "garbage") is INVALID_SPAN
    (hop,) = recorded.get_finished_spans()
    assert hex_id(hop.context.trace_id, 32) == TRACE_ID
    assert hop.parent is not None
    assert hex_id(hop.parent.span_id, 16) == PARENT_SPAN
    assert (hop.start_time, hop.end_time) == (1_000, 2_000)


async def test_relay_orchestrator_worker_and_notifier_spans_share_the_job_s_trace(
    recorded: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The relay: from the hand-over to JetStream's ack.
    published: list[dict[str, str]] = []

    class FakeJetStream:
        async def publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
            published.append(headers)

    relay = OutboxRelay(cast(Any, None), cast(JetStreamContext, FakeJetStream()))
    dispatch = OutboxMessage(bus.step_subject("noop", "work"), "d", b"", trace_context=PARENT)
    await relay._publish([(dispatch, publish_span(dispatch))])
    assert published == [tracing.message_headers("d", PARENT)]

    # The orchestrator: an input from its arrival, then its events' publish.
    hop = _hop_span(message(), SUCCEEDED, 3, arrived_ns=5_000)
    publishing = tracing.child_span("publish events", hop)
    hop.end()
    events_traceparent = tracing.traceparent_of(publishing)
    publishing.end()

    # The worker: the dispatch's wait, the step, the result's request.
    async def handler(ctx: StepContext) -> dict[str, object]:
        return {}

    worker, js = worker_with(handler)
    report_headers: list[dict[str, str]] = []
    send_result = worker._nc.request

    async def keep_headers(subject: str, payload: bytes, **options: Any) -> Msg:
        report_headers.append(options["headers"])
        return await send_result(subject, payload, **options)

    monkeypatch.setattr(worker._nc, "request", keep_headers)
    stored = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    step = step_msg(js)
    step.headers = {"Nats-Msg-Id": "s", tracing.TRACEPARENT: PARENT}
    assert step._metadata is not None
    step._metadata = dataclasses.replace(step._metadata, timestamp=stored)
    await worker._execute(_Delivery.pulled(step))

    # The notifier: one span per event received, whatever the number of watchers.
    hub = EventHub(cast(NatsClient, None), cast(Any, None), buffer=8, resync_after_s=60)
    watchers = [hub.watch(str(JOB_ID)) for _ in range(3)]
    events = [jobs_pb2.JobEvent(job_id=str(JOB_ID), sequence=n) for n in (4, 5)]
    notice = message(bus.events_subject(str(JOB_ID)))
    notice.data = CommittedEvents(events=events).SerializeToString()
    notice.headers = {tracing.TRACEPARENT: events_traceparent}
    await hub._on_event(notice)
    assert all(w.queue.qsize() == 2 for w in watchers)

    spans = by_name(recorded)
    assert set(spans) == {
        "publish jobs.steps.noop.work",
        "orchestrate step_succeeded",
        "publish events",
        "wait for worker",
        "step noop.work",
        "send result",
        "fan out event",
    }
    assert {hex_id(s.context.trace_id, 32) for s in spans.values()} == {TRACE_ID}

    def parent_of(name: str) -> str:
        parent = spans[name].parent
        assert parent is not None
        return hex_id(parent.span_id, 16)

    def span_id(name: str) -> str:
        return hex_id(spans[name].context.span_id, 16)

    assert spans["publish jobs.steps.noop.work"].kind == SpanKind.PRODUCER
    assert parent_of("publish jobs.steps.noop.work") == PARENT_SPAN
    assert spans["orchestrate step_succeeded"].kind == SpanKind.CONSUMER
    assert spans["orchestrate step_succeeded"].start_time == 5_000
    assert dict(spans["orchestrate step_succeeded"].attributes or {}) == {
        "job.id": str(JOB_ID),
        "job.step": "work",
        "orchestrator.batch_size": 3,
    }
    assert parent_of("publish events") == span_id("orchestrate step_succeeded")
    assert spans["wait for worker"].start_time == int(stored.timestamp()) * 1_000_000_000
    assert parent_of("wait for worker") == PARENT_SPAN
    assert parent_of("send result") == span_id("step noop.work")
    assert spans["send result"].kind == SpanKind.PRODUCER
    assert parent_of("fan out event") == span_id("publish events")
    assert (spans["fan out event"].attributes or {})["notifier.watchers"] == 3
    # The report carries the step's context back: the orchestrator's next hop joins it.
    [headers] = report_headers
    carried = tracing.parse(headers[tracing.TRACEPARENT])
    assert carried is not None
    assert (carried.trace_id, hex_id(carried.span_id, 16)) == (
        spans["step noop.work"].context.trace_id,
        span_id("step noop.work"),
    )


async def test_events_carry_their_job_s_trace_only_when_asked() -> None:
    sent: list[dict[str, str] | None] = []

    class FakeNats:
        async def publish(
            self, subject: str, payload: bytes, headers: dict[str, str] | None = None
        ) -> None:
            sent.append(headers)

    record = EventRecord(
        JOB_ID, 1, NewEvent(EventType.CREATED, JobStatus.QUEUED, 0), datetime.now(UTC)
    )
    nc = cast(NatsClient, FakeNats())
    await publish_events(nc, [record])
    await publish_events(nc, [record], {JOB_ID: PARENT})
    await publish_events(nc, [record], {uuid.uuid4(): PARENT})
    assert sent == [None, {tracing.TRACEPARENT: PARENT}, None]


def test_a_recorded_hop_of_a_job_without_trace_context_is_not_a_trace_of_its_own(
    recorded: InMemorySpanExporter,
) -> None:
    untraced = Msg(cast(NatsClient, None), subject=bus.REPORT_SUBJECT, headers={"Nats-Msg-Id": "m"})
    assert _hop_span(untraced, SUCCEEDED, 1, None) is INVALID_SPAN
    assert publish_span(OutboxMessage("s", "id", b"")) is INVALID_SPAN
    assert recorded.get_finished_spans() == ()
