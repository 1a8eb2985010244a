"""The worker's NATS adapter with fakes for NATS and JetStream: each way an attempt ends,
what it reports and how its message is settled (the result settled by an orchestrator
before the ack, sent again until it is, nothing reported for a cancelled job, a nak when
handed back)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from nats import errors as nats_errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.js import JetStreamContext

from jobkit import bus
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.pull import PullFeed
from jobtypes import CATALOG
from services.ai_worker import consumer
from services.ai_worker.consumer import Worker, _Delivery
from services.ai_worker.registry import Registry
from stepkit import StepContext
from stepkit.errors import RetryableStepError

Events = list[str]
HandlerFn = Callable[[StepContext], Awaitable[dict[str, object]]]


class FakeMsg(Msg):
    def __init__(self, events: Events, data: bytes, deliveries: int = 1, subject: str = "") -> None:
        super().__init__(
            _client=cast(NatsClient, None),
            subject=subject or bus.step_subject("noop", "work"),
            data=data,
            _metadata=Msg.Metadata(
                sequence=Msg.Metadata.SequencePair(consumer=1, stream=1),
                num_pending=0,
                num_delivered=deliveries,
                timestamp=datetime.now(UTC),
                stream="STEPS",
                consumer="workers",
            ),
        )
        self.events = events

    async def ack(self) -> None:
        self.events.append("ack")

    async def nak(self, delay: float | None = None) -> None:
        self.events.append("nak")

    async def in_progress(self) -> None:
        self.events.append("in_progress")

    async def term(self, delay: float | None = None) -> None:
        self.events.append("term")


class FakeJetStream:
    def __init__(self, events: Events) -> None:
        self.events = events
        self.reports: list[worker_pb2.StepReport] = []
        #: What went through JetStream (progress, heartbeats), with its Nats-Msg-Id.
        self.updates: list[tuple[worker_pb2.StepReport, str | None]] = []

    async def publish(self, subject: str, payload: bytes, **options: object) -> None:
        if subject.startswith("jobs.steps."):
            task = worker_pb2.StepTask.FromString(payload)
            headers = cast(dict[str, str], options["headers"])
            self.events.append(
                f"dispatch {task.step}:{task.attempt} {headers['Nats-Msg-Id']} "
                f"input={dict(task.input)} checkpoints={sorted(task.checkpoints)}"
            )
            return
        report = worker_pb2.StepReport.FromString(payload)
        self.reports.append(report)
        headers = cast(dict[str, str], options.get("headers") or {})
        self.updates.append((report, headers.get("Nats-Msg-Id")))
        self.events.append(f"publish {report.WhichOneof('outcome')}")


class FakeNats:
    """Answers result requests from a script (``RESULT_SETTLED`` once it runs out); an
    exception in the script is raised instead, as a timeout would be."""

    def __init__(self, js: FakeJetStream, answers: list[bytes | Exception] | None = None) -> None:
        self.js = js
        self.answers = answers or []
        self.subjects: list[str] = []
        #: Each request's headers.
        self.headers: list[dict[str, str]] = []
        self.worker: Worker | None = None
        #: Stop the worker as the next answer arrives.
        self.stop_on_answer = False

    async def request(self, subject: str, payload: bytes, **options: object) -> Msg:
        assert bus.is_result(subject)
        self.subjects.append(subject)
        self.headers.append(cast(dict[str, str], options.get("headers") or {}))
        report = worker_pb2.StepReport.FromString(payload)
        self.js.reports.append(report)
        self.js.events.append(f"result {report.WhichOneof('outcome')}")
        answer = self.answers.pop(0) if self.answers else bus.RESULT_SETTLED
        if isinstance(answer, StopsTheWorker):
            assert self.worker is not None
            self.worker.stop()
        if isinstance(answer, Exception):
            raise answer
        if self.stop_on_answer:
            assert self.worker is not None
            self.worker.stop()
        return Msg(_client=cast(NatsClient, None), data=answer)


class FakeFeed:
    def __init__(self) -> None:
        self.stopped = False
        self.released = 0

    def release(self) -> None:
        self.released += 1

    async def give_back(self, msg: Msg) -> None:
        await msg.nak()

    def stop(self) -> None:
        self.stopped = True


def worker_with(
    handler: HandlerFn,
    max_step_deliveries: int = 5,
    answers: list[bytes | Exception] | None = None,
    heartbeat_s: float = 60,
) -> tuple[Worker, FakeJetStream]:
    registry = Registry(CATALOG)

    async def step(ctx: StepContext) -> dict[str, object]:
        return await handler(ctx)

    registry.register("noop", "work", step)
    registry.register("noop", "finish", step)
    events: Events = []
    js = FakeJetStream(events)
    nats = FakeNats(js, answers)
    worker = Worker(
        cast(NatsClient, nats),
        cast(JetStreamContext, js),
        registry,
        concurrency=1,
        ack_wait_s=30,
        heartbeat_s=heartbeat_s,
        max_step_deliveries=max_step_deliveries,
    )
    worker._feed = cast(PullFeed, FakeFeed())
    nats.worker = worker
    return worker, js


def step_msg(
    js: FakeJetStream,
    deliveries: int = 1,
    input: dict[str, Any] | None = None,
    subject: str = "",
    type_version: int = 0,
) -> FakeMsg:
    task = worker_pb2.StepTask(
        job_id="job-1", job_type="noop", step="work", attempt=2, type_version=type_version
    )
    task.timeout.FromSeconds(30)
    task.input.update(input or {})
    return FakeMsg(js.events, task.SerializeToString(), deliveries, subject)


def cancel_notice(js: FakeJetStream) -> Msg:
    notice = worker_pb2.CancelStep(job_id="job-1", step="work", attempt=2)
    return FakeMsg(js.events, notice.SerializeToString())


async def test_a_success_is_settled_before_the_ack_with_its_usage() -> None:
    async def handler(ctx: StepContext) -> dict[str, object]:
        ctx.record_usage("gpt", 10, 4, "p@1")
        return {"done": True}

    worker, js = worker_with(handler)
    await worker._execute(_Delivery.pulled(step_msg(js)))
    assert js.events == ["result succeeded", "ack"]
    [report] = js.reports
    assert (report.job_id, report.step, report.attempt) == ("job-1", "work", 2)
    assert dict(report.succeeded.output) == {"done": True}
    assert [(u.model, u.prompt_tokens, u.completion_tokens) for u in report.usage] == [
        ("gpt", 10, 4)
    ]


async def test_the_handler_is_told_its_jobs_type_version() -> None:
    seen: list[int] = []

    async def handler(ctx: StepContext) -> dict[str, object]:
        seen.append(ctx.type_version)
        return {}

    worker, js = worker_with(handler)
    await worker._execute(_Delivery.pulled(step_msg(js, type_version=3)))
    await worker._execute(_Delivery.pulled(step_msg(js)))  # from a release that sent none
    assert seen == [3, 0]


async def test_a_step_error_is_a_failure_that_keeps_its_usage() -> None:
    async def handler(ctx: StepContext) -> dict[str, object]:
        ctx.record_usage("gpt", 3, 0)
        raise RetryableStepError("MODEL_RATE_LIMITED", "slow down", retry_after_s=2)

    worker, js = worker_with(handler)
    await worker._execute(_Delivery.pulled(step_msg(js)))
    assert js.events == ["result failed", "ack"]
    failed = js.reports[0].failed
    assert (failed.code, failed.retryable, failed.retry_after.seconds) == (
        "MODEL_RATE_LIMITED",
        True,
        2,
    )
    assert [u.prompt_tokens for u in js.reports[0].usage] == [3]


async def test_a_crash_is_a_retryable_failure_without_its_text() -> None:
    async def handler(ctx: StepContext) -> dict[str, object]:
        raise ValueError("secret input")

    worker, js = worker_with(handler)
    await worker._execute(_Delivery.pulled(step_msg(js)))
    failed = js.reports[0].failed
    assert (failed.code, failed.retryable) == ("STEP_CRASHED", True)
    assert "secret" not in failed.message


async def test_an_attempt_whose_workers_keep_dying_fails_without_running() -> None:
    ran = False

    async def handler(ctx: StepContext) -> dict[str, object]:
        nonlocal ran
        ran = True
        return {}

    worker, js = worker_with(handler, max_step_deliveries=3)
    await worker._execute(_Delivery.pulled(step_msg(js, deliveries=4)))
    assert not ran
    assert js.events == ["result failed", "ack"]
    assert js.reports[0].failed.code == "STEP_KEEPS_CRASHING"


async def blocked(ctx: StepContext) -> dict[str, object]:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def started(worker: Worker, msg: Msg) -> asyncio.Task[_Delivery | None]:
    attempt = asyncio.create_task(worker._execute(_Delivery.pulled(msg)))
    await asyncio.sleep(0.01)
    return attempt


async def test_a_cancel_notice_abandons_the_attempt_unreported_and_acks() -> None:
    worker, js = worker_with(blocked)
    attempt = await started(worker, step_msg(js))
    await worker._on_cancel(cancel_notice(js))
    await attempt
    assert js.events == ["ack"]
    assert worker._running == {}


async def test_stopping_hands_the_attempt_back_unreported() -> None:
    worker, js = worker_with(blocked)
    attempt = await started(worker, step_msg(js))
    worker.stop()
    await attempt
    assert js.events == ["nak"]
    assert worker._running == {}


async def test_a_cancelled_job_outranks_a_stopping_worker() -> None:
    # Cancelled and then stopped, or the other way round: nobody should run it again.
    for first_cancel in (True, False):
        worker, js = worker_with(blocked)
        attempt = await started(worker, step_msg(js))
        if first_cancel:
            await worker._on_cancel(cancel_notice(js))
            worker.stop()
        else:
            worker.stop()
            await worker._on_cancel(cancel_notice(js))
        await attempt
        assert js.events == ["ack"], first_cancel


async def test_a_notice_for_another_attempt_changes_nothing() -> None:
    worker, js = worker_with(blocked)
    attempt = await started(worker, step_msg(js))
    other = worker_pb2.CancelStep(job_id="job-1", step="work", attempt=1)
    await worker._on_cancel(FakeMsg(js.events, other.SerializeToString()))
    await asyncio.sleep(0.01)
    assert not attempt.done()
    worker.stop()
    await attempt
    assert js.events == ["nak"]


async def test_a_result_is_sent_again_until_an_orchestrator_settles_it() -> None:
    async def handler(ctx: StepContext) -> dict[str, object]:
        return {"done": True}

    # Not committed (a failed batch), then no answer in time, then settled.
    worker, js = worker_with(handler, answers=[bus.RESULT_AGAIN, TimeoutError()])
    await worker._execute(_Delivery.pulled(step_msg(js)))
    # The dispatch is kept from redelivery between tries, and acked only at the end.
    assert js.events == [
        "result succeeded",
        "in_progress",
        "result succeeded",
        "in_progress",
        "result succeeded",
        "ack",
    ]


class StopsTheWorker(TimeoutError):
    """No answer, and meanwhile the worker was told to stop."""


async def test_a_stopping_worker_hands_back_a_result_nobody_settled() -> None:
    async def handler(ctx: StepContext) -> dict[str, object]:
        return {"done": True}

    worker, js = worker_with(handler, answers=[StopsTheWorker()])
    await worker._execute(_Delivery.pulled(step_msg(js)))
    # Not acked: the dispatch comes back, and whoever runs it reports again.
    assert js.events == ["result succeeded", "nak"]


def handing_over(step: str, result_subject: str = "") -> bytes:
    """An answer that settles the result and hands the worker ``step`` of the same job
    (without its input and checkpoints: the worker has them)."""
    task = worker_pb2.StepTask(job_id="job-1", job_type="noop", step=step, attempt=1)
    answer = worker_pb2.ResultAnswer(next=task, result_subject=result_subject)
    return answer.SerializeToString()


async def test_a_step_handed_over_with_the_answer_runs_in_the_same_slot() -> None:
    ran: list[tuple[str, int, object, object]] = []

    async def handler(ctx: StepContext) -> dict[str, object]:
        ran.append((ctx.step, ctx.attempt, dict(ctx.input), dict(ctx.checkpoints)))
        cast(dict[str, object], ctx.input)["sleep_ms"] = -1  # a handler's copy is its own
        return {"step": ctx.step, "n": 1}

    worker, js = worker_with(handler, answers=[handing_over("finish")])
    await worker._run_one(step_msg(js, input={"sleep_ms": 1}))
    # The same input, and the step before's output as committed (a Struct's numbers).
    assert ran == [
        ("work", 2, {"sleep_ms": 1.0}, {}),
        ("finish", 1, {"sleep_ms": 1.0}, {"work": {"step": "work", "n": 1.0}}),
    ]
    # The pulled dispatch is acked once its own result is settled; the handed step has no
    # message, and its result is settled like any other. One slot, released once.
    assert js.events == ["result succeeded", "ack", "result succeeded"]
    assert [(r.step, r.take_next) for r in js.reports] == [("work", True), ("finish", True)]
    assert cast(FakeFeed, worker._feed).released == 1


async def test_a_handed_step_first_beats_a_full_interval_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pulled attempt says it started within the first second (its job still shows the
    step waiting); a handed one was committed as started and leased when handed over, so
    a beat that soon would only renew a lease just begun."""
    monkeypatch.setattr(consumer, "FIRST_BEAT_S", 0.05)

    async def handler(ctx: StepContext) -> dict[str, object]:
        await asyncio.sleep(0.15)
        return {}

    answers: list[bytes | Exception] = [bus.RESULT_SETTLED, handing_over("finish")]
    worker, js = worker_with(handler, answers=answers, heartbeat_s=0.3)
    await worker._run_one(step_msg(js))
    assert js.events == [
        "in_progress",
        "result heartbeat",
        "result succeeded",
        "ack",
        "result succeeded",
    ]


def handing_out(job_id: str, step: str) -> bytes:
    """An answer that settles the result and hands the worker another job's waiting step,
    whole (``ResultAnswer.waiting``), as JetStream would have carried it."""
    task = worker_pb2.StepTask(job_id=job_id, job_type="noop", step=step, attempt=1)
    task.input.update({"for": job_id})
    return worker_pb2.ResultAnswer(waiting=task).SerializeToString()


async def test_another_jobs_step_handed_out_with_the_answer_runs_in_the_same_slot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Handed out, it is in no queue and not started in its job's record: like a pulled
    attempt, it beats within the first second (that first word deletes the ready-queue row
    it waited in), and its result goes to any orchestrator."""
    monkeypatch.setattr(consumer, "FIRST_BEAT_S", 0.05)
    ran: list[tuple[str, str, object, object]] = []

    async def handler(ctx: StepContext) -> dict[str, object]:
        ran.append((ctx.job_id, ctx.step, dict(ctx.input), dict(ctx.checkpoints)))
        if ctx.job_id == "job-2":
            await asyncio.sleep(0.15)
        return {}

    answers: list[bytes | Exception] = [handing_out("job-2", "work"), bus.RESULT_SETTLED]
    worker, js = worker_with(handler, answers=answers, heartbeat_s=0.3)
    await worker._run_one(step_msg(js, input={"sleep_ms": 1}))
    # Its own input, none of the first job's checkpoints.
    assert ran == [
        ("job-1", "work", {"sleep_ms": 1.0}, {}),
        ("job-2", "work", {"for": "job-2"}, {}),
    ]
    assert js.events == ["result succeeded", "ack", "result heartbeat", "result succeeded"]
    assert [(r.job_id, r.step) for r in js.reports] == [
        ("job-1", "work"),
        ("job-2", "work"),
        ("job-2", "work"),
    ]
    assert set(cast(FakeNats, worker._nc).subjects) == {bus.RESULT_SUBJECT}
    assert cast(FakeFeed, worker._feed).released == 1


async def test_a_success_says_how_long_its_worker_waits_for_the_answer() -> None:
    """Only a worker still waiting is handed another job's step (``bus.ANSWER_BY_HEADER``);
    a failure asks for no step, and says nothing."""

    async def handler(ctx: StepContext) -> dict[str, object]:
        return {}

    worker, js = worker_with(handler)
    before = time.time()
    await worker._run_one(step_msg(js))
    (headers,) = cast(FakeNats, worker._nc).headers
    answer_by = int(headers[bus.ANSWER_BY_HEADER]) / 1000
    assert before + 5.0 - 0.5 <= answer_by <= time.time() + 5.0

    async def failing(ctx: StepContext) -> dict[str, object]:
        raise RetryableStepError("MODEL_RATE_LIMITED", "slow down")

    worker, js = worker_with(failing)
    await worker._run_one(step_msg(js))
    (headers,) = cast(FakeNats, worker._nc).headers
    assert bus.ANSWER_BY_HEADER not in headers


async def test_a_stopping_worker_puts_a_handed_step_into_jetstream() -> None:
    async def handler(ctx: StepContext) -> dict[str, object]:
        return {}

    worker, js = worker_with(handler, answers=[handing_over("finish")])
    cast(FakeNats, worker._nc).stop_on_answer = True
    await worker._run_one(step_msg(js, input={"sleep_ms": 1}))
    # Not run here: published as the dispatch it would have been, for another worker, with
    # the job's input and checkpoints.
    assert js.events == [
        "result succeeded",
        "ack",
        "dispatch finish:1 job-1:finish:1 input={'sleep_ms': 1.0} checkpoints=['work']",
    ]


async def test_a_failure_and_a_stopping_worker_take_no_next_step() -> None:
    async def failing(ctx: StepContext) -> dict[str, object]:
        raise RetryableStepError("MODEL_RATE_LIMITED", "slow down")

    worker, js = worker_with(failing)
    await worker._execute(_Delivery.pulled(step_msg(js)))

    async def succeeding(ctx: StepContext) -> dict[str, object]:
        worker._stopping.set()  # stopping, after the handler ran to its end
        return {}

    worker, js_2 = worker_with(succeeding)
    await worker._execute(_Delivery.pulled(step_msg(js_2)))
    assert [r.take_next for r in js.reports + js_2.reports] == [False, False]


async def test_a_handed_step_s_result_goes_to_the_orchestrator_that_handed_it_over() -> None:
    async def handler(ctx: StepContext) -> dict[str, object]:
        return {}

    direct = bus.direct_result_subject("replica-1")
    # That orchestrator is gone by then (no answer): any other takes the result at once.
    worker, js = worker_with(handler, answers=[handing_over("finish", direct), TimeoutError()])
    await worker._run_one(step_msg(js))
    assert cast(FakeNats, worker._nc).subjects == [bus.RESULT_SUBJECT, direct, bus.RESULT_SUBJECT]
    assert js.events == ["result succeeded", "ack", "result succeeded", "result succeeded"]


async def test_a_step_that_outlives_the_first_interval_beats_until_it_ends() -> None:
    async def slow(ctx: StepContext) -> dict[str, object]:
        await asyncio.sleep(0.25)
        return {}

    async def quick(ctx: StepContext) -> dict[str, object]:
        return {}

    worker, js = worker_with(slow, heartbeat_s=0.1)
    await worker._execute(_Delivery.pulled(step_msg(js)))
    # Kept from redelivery and its lease renewed at 0.1 and 0.2 s (by a request an
    # orchestrator answered: no JetStream write); nothing after its end.
    beats = js.events[: js.events.index("result succeeded")]
    assert beats == ["in_progress", "result heartbeat"] * 2
    await asyncio.sleep(0.15)
    assert js.events[-2:] == ["result succeeded", "ack"]

    worker, js = worker_with(quick, heartbeat_s=0.1)
    await worker._execute(_Delivery.pulled(step_msg(js)))
    await asyncio.sleep(0.15)
    assert js.events == ["result succeeded", "ack"]  # over before the first beat


async def test_a_message_that_is_no_step_is_terminated_and_frees_its_slot() -> None:
    worker, js = worker_with(blocked)
    await worker._run_one(FakeMsg(js.events, b"\xff\xff not a StepTask"))
    assert js.events == ["term"]
    assert cast(FakeFeed, worker._feed).released == 1


async def test_a_success_carries_the_handler_s_last_progress_report() -> None:
    async def handler(ctx: StepContext) -> dict[str, object]:
        await ctx.report_progress(20, "Reading...")
        await ctx.report_progress(80, "Writing the overview...")
        return {}

    worker, js = worker_with(handler)
    await worker._execute(_Delivery.pulled(step_msg(js)))
    result = js.reports[-1]
    assert result.WhichOneof("outcome") == "succeeded"
    assert (result.last_progress.percent, result.last_progress.phase) == (
        80,
        "Writing the overview...",
    )


async def test_progress_goes_where_the_result_goes_and_through_jetstream_if_none_takes_it() -> None:
    """Answered once committed, a report needs no JetStream write. None listening, or one
    that could not commit it: JetStream carries it. Unanswered in time, it may be committed
    still, so a progress report is not sent again (it would be a second event)."""

    async def handler(ctx: StepContext) -> dict[str, object]:
        for percent in (10, 20, 30, 40):
            await ctx.report_progress(percent)
        return {}

    answers: list[bytes | Exception] = [
        bus.RESULT_SETTLED,
        NoRespondersError(),
        bus.RESULT_AGAIN,
        nats_errors.TimeoutError(),
    ]
    worker, js = worker_with(handler, answers=answers)
    nats = cast(FakeNats, worker._nc)
    await worker._execute(_Delivery.pulled(step_msg(js)))
    assert js.events == [
        *["result progress"] * 2,
        "publish progress",
        "result progress",
        "publish progress",
        "result progress",
        "result succeeded",
        "ack",
    ]
    assert [r.progress.percent for r, _ in js.updates] == [20, 30]
    assert nats.subjects == [bus.RESULT_SUBJECT] * 5


async def test_a_heartbeat_nobody_answered_in_time_goes_through_jetstream_too() -> None:
    """Committed twice, a heartbeat renews the lease twice: harmless, where a lost one
    could let the lease run out under a step still running."""

    async def slow(ctx: StepContext) -> dict[str, object]:
        await asyncio.sleep(0.15)
        return {}

    worker, js = worker_with(slow, answers=[nats_errors.TimeoutError()], heartbeat_s=0.1)
    await worker._execute(_Delivery.pulled(step_msg(js)))
    assert js.events[:3] == ["in_progress", "result heartbeat", "publish heartbeat"]


async def test_progress_at_the_same_percent_with_a_new_phase_is_not_a_repeat() -> None:
    async def handler(ctx: StepContext) -> dict[str, object]:
        await ctx.report_progress(50, "Planning day 1 of 2...")
        await ctx.report_progress(50, "Planning day 2 of 2...")
        return {}

    # No orchestrator listening: both go through JetStream.
    worker, js = worker_with(handler, answers=[NoRespondersError(), NoRespondersError()])
    await worker._execute(_Delivery.pulled(step_msg(js)))
    progress = [
        (report.progress.phase, msg_id)
        for report, msg_id in js.updates
        if report.WhichOneof("outcome") == "progress"
    ]
    phases = [phase for phase, _ in progress]
    assert phases == ["Planning day 1 of 2...", "Planning day 2 of 2..."]
    # JetStream drops a message whose id it has seen: each report needs its own.
    ids = [msg_id for _, msg_id in progress]
    assert None not in ids
    assert len(set(ids)) == 2


@pytest.mark.parametrize("express", [True, False])
async def test_the_results_of_a_job_that_came_by_the_express_lane_say_so(express: bool) -> None:
    """Its first step's and the steps handed over after it: an orchestrator decides them
    apart from the main queue's batches."""

    async def handler(ctx: StepContext) -> dict[str, object]:
        return {}

    worker, js = worker_with(handler, answers=[handing_over("finish")])
    step = bus.step_subject("noop", "work")
    subject = bus.express_subject(step) if express else step
    await worker._run_one(step_msg(js, subject=subject))
    lanes = [h.get(bus.LANE_HEADER) for h in cast(FakeNats, worker._nc).headers]
    assert lanes == ([bus.EXPRESS_LANE] * 2 if express else [None, None])
