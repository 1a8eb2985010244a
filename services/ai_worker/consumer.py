"""ai_worker's NATS adapter: pulls step attempts, runs their handlers, reports back.

Each attempt's dispatch is acked only after an orchestrator has committed its result: the
result goes as a core NATS request (``jobs.results``), answered after the commit, and is
sent again until it is settled. So a worker that dies mid-step, or before its result is
committed, leaves the dispatch to be redelivered to another, and nothing is lost. While a
step runs, the worker tells JetStream it is still working on it (``in_progress``) and
renews its lease with the orchestrator: its heartbeats and progress go the way its result
will, as core NATS requests answered once committed, and through JetStream's
``JOB_UPDATES`` when no orchestrator answers (``_send_update``).

A new job's first step may come offered rather than pulled (``jobkit.offers``): a worker
keeps ``offer_slots`` of its slots out of its pull requests while no backlog waits (and
one of its express slots, for the express lane's offers), takes an offer into one of
them, and runs it with nothing to ack: if the worker dies before reporting on it, job_api's
outbox publishes the attempt again once a lease would run out.

A worker whose step succeeded has that step's slot free: its result says so
(``take_next``), and the orchestrator may answer with the job's next step, which the
worker then runs in the same slot (``_Delivery.following``). Such a step is in no queue: it
is leased from its dispatch, and if the worker dies, the lease runs out and the attempt
is retried, as for a worker that dies mid-step. A worker that stops hands it to JetStream.
When the job has no next step for the slot while other jobs wait for workers (the fair
dispatcher holds their steps), the answer may hand it one of those instead, picked by the
fair policy (``_Delivery.handed_out``): whole, like an offered step. Its row waits in the
ready queue, hidden, until this worker's first word on it; if none comes, it is released
again for another worker.

The step is a span of its job's trace (``step <type>.<step>``); when spans are recorded,
so are the dispatch's wait for this worker (``wait for worker``, from the message's
store in JetStream) and each result request (``send result``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from google.protobuf import struct_pb2
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.js import JetStreamContext
from opentelemetry.trace import SpanKind

from jobkit import bus, metrics, tracing
from jobkit.artifacts import (
    ArtifactCorrupted,
    ArtifactError,
    ArtifactMissing,
    ArtifactStore,
    upload_prefix_beside,
)
from jobkit.convert import dict_to_struct, struct_to_dict
from jobkit.errors import ConfigError
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.inputs import MAX_WAIT_S
from jobkit.logging import get_logger, redacting
from jobkit.offers import offer_expired, offered_express
from jobkit.pull import PullFeed
from jobkit.redaction import sensitive_terms
from jobkit.schema import compile_schema
from services.ai_worker.history import HistoryClient
from services.ai_worker.outcomes import (
    Abandoned,
    Failed,
    HandedBack,
    InputRequired,
    Outcome,
    Succeeded,
    report_for,
    to_report,
)
from services.ai_worker.progress import (
    DEFAULT_OUTPUT_INTERVAL_S,
    AttemptProgress,
    AttemptUsage,
)
from services.ai_worker.registry import Registry
from stepkit import (
    InputRequested,
    PermanentStepError,
    RetryableStepError,
    StepContext,
    StepError,
)
from stepkit.context import (
    ArtifactSaver,
    ChildJob,
    CursorSaver,
    UploadReader,
    no_artifacts,
    no_history,
    no_uploads,
)

log = get_logger(__name__)

AttemptKey = tuple[str, str, int]


#: When an attempt not yet started in its job's record first reports, if it is still running.
FIRST_BEAT_S = 1.0


class CancelReason(enum.Enum):
    """Why a running attempt's handler was cancelled: what the attempt then comes to."""

    #: A ``CancelStep`` notice: its job was cancelled (``Abandoned``).
    JOB_CANCELLED = "job_cancelled"
    #: ``Worker.stop``: another worker takes the step (``HandedBack``).
    WORKER_STOPPING = "worker_stopping"


@dataclass(frozen=True, slots=True)
class _Delivery:
    """A step attempt in this worker's hands: pulled from JetStream (``msg``), taken when
    offered, or handed over with the answer to the job's previous step (no message: its
    outbox row, or its lease, brings it back if this worker dies)."""

    #: A handed step's has no input or checkpoints: they are ``input`` and ``checkpoints``.
    task: worker_pb2.StepTask
    #: The job's trace context (``traceparent``).
    headers: dict[str, str] | None
    #: The job's input and its committed checkpoints (each handler is given its own
    #: decoded copies).
    input: struct_pb2.Struct
    checkpoints: Mapping[str, struct_pb2.Struct]
    #: What identifies the person behind the input (redacted from every log line): found
    #: once per job on this worker.
    terms: frozenset[str]
    msg: Msg | None = None
    #: Where the result goes first: for a handed step, the orchestrator that handed it
    #: over (it holds the job in memory); else any orchestrator.
    result_subject: str = bus.RESULT_SUBJECT
    #: The job came by the express lane (its first step did; the rest are handed over in
    #: the same slot): its results say so, and are decided apart from a flood's.
    express: bool = False
    #: Committed as started and leased when handed over: a first heartbeat within the
    #: second would only renew a lease just begun, so the first comes a full interval in.
    leased: bool = False

    @classmethod
    def pulled(cls, msg: Msg) -> _Delivery:
        return cls._of(msg, pulled=True)

    @classmethod
    def offered(cls, msg: Msg) -> _Delivery:
        """A step taken when offered: in no queue (its outbox row is the fallback)."""
        return cls._of(msg, pulled=False)

    @classmethod
    def _of(cls, msg: Msg, *, pulled: bool) -> _Delivery:
        express = (
            msg.subject.startswith(bus.EXPRESS_SUBJECT_PREFIX)
            if pulled
            else offered_express(msg.headers)
        )
        task = worker_pb2.StepTask.FromString(msg.data)
        return cls._whole(task, msg.headers, msg if pulled else None, express=express)

    @classmethod
    def handed_out(cls, answer: Msg, task: worker_pb2.StepTask) -> _Delivery:
        """Another job's step, handed out with the answer to a result (like an offered
        step: in no queue; its hidden ready-queue row the fallback)."""
        return cls._whole(task, answer.headers, None, express=False)

    @classmethod
    def _whole(
        cls,
        task: worker_pb2.StepTask,
        headers: dict[str, str] | None,
        msg: Msg | None,
        *,
        express: bool,
    ) -> _Delivery:
        """An attempt that comes with its input and checkpoints."""
        terms = sensitive_terms(struct_to_dict(task.input))
        return cls(task, headers, task.input, task.checkpoints, terms, msg, express=express)

    def following(
        self, answer: Msg, handed: worker_pb2.ResultAnswer, output: struct_pb2.Struct
    ) -> _Delivery:
        """The job's next step, handed over in ``answer``: the same input, and this step's
        output (as committed) as one checkpoint more."""
        handed.next.artifact_prefix = handed.next.artifact_prefix or self.task.artifact_prefix
        return _Delivery(
            handed.next,
            answer.headers,
            self.input,
            {**self.checkpoints, self.task.step: output},
            self.terms,
            result_subject=handed.result_subject or bus.RESULT_SUBJECT,
            express=self.express,
            leased=True,
        )

    def result_headers(self) -> dict[str, str] | None:
        """The headers of a result's request: the current trace context, and the lane."""
        headers = tracing.trace_headers(tracing.current_traceparent())
        if self.express:
            return {**(headers or {}), bus.LANE_HEADER: bus.EXPRESS_LANE}
        return headers

    def whole_task(self) -> worker_pb2.StepTask:
        """The attempt as JetStream carries it: with its input and checkpoints."""
        task = worker_pb2.StepTask()
        task.CopyFrom(self.task)
        task.input.CopyFrom(self.input)
        for name, output in self.checkpoints.items():
            task.checkpoints[name].CopyFrom(output)
        return task

    @property
    def deliveries(self) -> int:
        """How often JetStream has delivered the attempt (a handed one: once)."""
        return (self.msg.metadata.num_delivered or 1) if self.msg is not None else 1

    async def in_progress(self) -> None:
        """Keep a pulled message from redelivery while the attempt is in hand."""
        if self.msg is not None:
            with contextlib.suppress(Exception):
                await self.msg.in_progress()

    async def ack(self) -> None:
        if self.msg is not None:
            await self.msg.ack()


@dataclass(slots=True, eq=False)
class _RunningAttempt:
    """One step attempt while its handler runs on this worker: the step,
    the handler's task and the side tasks that live as long as it does, and why it was
    cancelled, if it was."""

    task: worker_pb2.StepTask
    #: The handler, running.
    run: asyncio.Task[Mapping[str, object]]
    progress: AttemptProgress
    #: Keeps the message from redelivery and renews the attempt's lease (``_heartbeat``):
    #: a timer until the first beat, so a quick step never starts a task for it.
    heartbeat: asyncio.TimerHandle | asyncio.Task[None] | None = None
    cancel_reason: CancelReason | None = None

    @property
    def key(self) -> AttemptKey:
        return (self.task.job_id, self.task.step, self.task.attempt)

    def cancel(self, reason: CancelReason) -> None:
        """Cancel the handler. A cancelled job outranks a stopping worker: once its job is
        cancelled, the attempt is abandoned, never handed back for another worker to run."""
        if self.cancel_reason is not CancelReason.JOB_CANCELLED:
            self.cancel_reason = reason
        self.run.cancel()

    def beat(self, beats: asyncio.Task[None]) -> None:
        """The step outlived the first interval: from now on ``beats`` keeps it alive."""
        self.heartbeat = beats

    def finish(self) -> None:
        """The attempt is over: stop its heartbeat and drop a streamed text still waiting
        (the result has it all); a handler still running is cancelled."""
        self.progress.close()
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        if not self.run.done():
            self.run.cancel()


class Worker:
    def __init__(
        self,
        nc: NatsClient,
        js: JetStreamContext,
        registry: Registry,
        *,
        concurrency: int,
        ack_wait_s: float,
        heartbeat_s: float,
        max_step_deliveries: int,
        express_slots: int = 0,
        offer_slots: int = 0,
        output_interval_s: float = DEFAULT_OUTPUT_INTERVAL_S,
        result_timeout_s: float = 5.0,
        artifacts: ArtifactStore | None = None,
        history: HistoryClient | None = None,
    ) -> None:
        self._nc = nc
        self._artifacts = artifacts
        #: Where steps that read their job owner's history get it (job_api).
        self._history = history
        #: How long to wait for an orchestrator's answer before sending a result again.
        self._result_timeout_s = result_timeout_s
        self._js = js
        self._registry = registry
        self._concurrency = concurrency
        #: Slots of their own for the express lane (newcomers' first steps).
        self._express_slots = express_slots
        self._express: PullFeed | None = None
        #: Slots kept out of the pull requests for offered steps, while no backlog waits.
        self._offer_slots = offer_slots
        self._offer_sub: Subscription | None = None
        #: The steps running, once ``run`` has started: where an offered step joins them.
        self._steps: asyncio.TaskGroup | None = None
        self._ack_wait_s = ack_wait_s
        self._heartbeat_s = heartbeat_s
        self._max_step_deliveries = max_step_deliveries
        self._output_interval_s = output_interval_s
        self._running: dict[AttemptKey, _RunningAttempt] = {}
        #: Tells this process's heartbeats apart from another's on the same attempt.
        self._instance = uuid.uuid4().hex[:12]
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        await bus.ensure_consumer(
            self._js,
            bus.STEPS_STREAM,
            # Unlimited deliveries at JetStream's level: the worker itself fails an attempt
            # that keeps dying (max_step_deliveries), so nothing is ever dropped silently.
            bus.worker_consumer_config(self._ack_wait_s, max_deliver=-1),
        )
        self._feed = PullFeed(
            self._nc,
            bus.STEPS_STREAM,
            bus.WORKER_CONSUMER,
            capacity=self._concurrency,
            reserve=min(self._offer_slots, self._concurrency),
        )
        await self._feed.start()
        if self._express_slots:
            await bus.ensure_consumer(
                self._js,
                bus.EXPRESS_STREAM,
                bus.worker_express_consumer_config(self._ack_wait_s, max_deliver=-1),
            )
            self._express = PullFeed(
                self._nc,
                bus.EXPRESS_STREAM,
                bus.WORKER_EXPRESS_CONSUMER,
                capacity=self._express_slots,
                # One express slot for offers, if there are two or more and offers are
                # taken: a newcomer's first step is rare, and need not wait for JetStream.
                reserve=1 if self._offer_slots and self._express_slots > 1 else 0,
            )
            await self._express.start()
        self._cancel_sub = await self._nc.subscribe(bus.CANCEL_SUBJECT, cb=self._on_cancel)
        if self._offer_slots:
            self._offer_sub = await self._nc.subscribe(
                bus.OFFER_SUBJECT, queue=bus.OFFER_QUEUE, cb=self._on_offer
            )

    async def _on_offer(self, msg: Msg) -> None:
        """Take an offered step into a free slot of its lane, or refuse it (it goes
        through JetStream)."""
        steps = self._steps
        feed = self._express if offered_express(msg.headers) else self._feed
        if (
            steps is None
            or feed is None
            or self._stopping.is_set()
            or offer_expired(msg.headers)
            or not feed.take()
        ):
            with contextlib.suppress(Exception):
                await msg.respond(bus.OFFER_REFUSED)
            return
        try:
            delivery = _Delivery.offered(msg)
            await msg.respond(bus.OFFER_TAKEN)
        except Exception as exc:
            # Not taken (the offerer publishes it to JetStream), or not a step at all.
            log.warning("offer_not_taken", error=type(exc).__name__)
            feed.release()
            return
        steps.create_task(self._run_chain(delivery, feed))

    async def _on_cancel(self, msg: Msg) -> None:
        notice = worker_pb2.CancelStep.FromString(msg.data)
        attempt = self._running.get((notice.job_id, notice.step, notice.attempt))
        if attempt is not None:
            attempt.cancel(CancelReason.JOB_CANCELLED)
            log.info(
                "step_cancel_requested",
                job_id=notice.job_id,
                step=notice.step,
                attempt=notice.attempt,
            )

    async def run(self) -> None:
        """Run steps as they arrive, ``concurrency`` at a time (and the express lane's in
        slots of their own), until ``stop`` is called; returns once the steps in hand are
        finished or handed back."""
        try:
            async with asyncio.TaskGroup() as steps:
                self._steps = steps
                for feed in (self._feed, self._express):
                    if feed is not None:
                        steps.create_task(self._take(feed, steps))
        finally:
            self._steps = None

    async def _take(self, feed: PullFeed, steps: asyncio.TaskGroup) -> None:
        while (msg := await feed.next()) is not None:
            steps.create_task(self._run_one(msg, feed))

    async def _run_one(self, msg: Msg, feed: PullFeed | None = None) -> None:
        """Run a pulled step, then each next step of its job handed over in the answers,
        in the same slot of ``feed`` (the express lane's, or the main one)."""
        feed = feed or self._feed
        try:
            delivery = _Delivery.pulled(msg)
        except Exception as exc:
            # Not a step at all: never again, for any worker.
            log.error("poison_message", error=type(exc).__name__)
            with contextlib.suppress(Exception):
                await msg.term()
            feed.release()
            return
        await self._run_chain(delivery, feed)

    async def _run_chain(self, first: _Delivery, feed: PullFeed) -> None:
        """Run a step, then each next step of its job handed over in the answers, in the
        slot of ``feed`` it holds; then free the slot."""
        delivery: _Delivery | None = first
        try:
            while delivery is not None:
                if self._stopping.is_set():
                    # Arrived as the worker stops: another worker takes it instead.
                    await self._give_back(delivery, feed)
                    break
                delivery = await self._execute(delivery, feed)
        except Exception as exc:
            # Unacked, the step comes back to some worker after its ack wait (a handed
            # one, after its lease).
            log.error("step_execution_failed", error=type(exc).__name__)
        finally:
            feed.release()

    async def _give_back(self, delivery: _Delivery, feed: PullFeed | None = None) -> None:
        """For another worker to run at once: a pulled message goes back to JetStream; a
        handed attempt goes into JetStream, as the dispatch it would otherwise have been."""
        if delivery.msg is not None:
            await (feed or self._feed).give_back(delivery.msg)
            return
        task = delivery.whole_task()
        try:
            await self._js.publish(
                bus.step_subject(task.job_type, task.step),
                task.SerializeToString(),
                headers=tracing.message_headers(
                    bus.step_msg_id(task.job_id, task.step, task.attempt),
                    (delivery.headers or {}).get(tracing.TRACEPARENT, ""),
                ),
            )
        except Exception as exc:
            # Its lease runs out, and the attempt is retried.
            log.warning("hand_back_failed", error=type(exc).__name__)

    def stop(self) -> None:
        """Take no new steps; hand running ones back to JetStream for another worker."""
        self._stopping.set()
        self._feed.stop()
        if self._express is not None:
            self._express.stop()
        for attempt in self._running.values():
            attempt.cancel(CancelReason.WORKER_STOPPING)

    async def close(self) -> None:
        """After ``run`` has returned: drop the subscriptions so nothing new arrives."""
        await self._feed.close()
        if self._express is not None:
            await self._express.close()
        for sub in (self._cancel_sub, self._offer_sub):
            try:
                if sub is not None:
                    await sub.unsubscribe()
            except Exception as exc:
                log.warning("unsubscribe_failed", error=type(exc).__name__)

    async def _execute(self, delivery: _Delivery, feed: PullFeed | None = None) -> _Delivery | None:
        """Run the attempt and settle its result; returns the job's next step when the
        answer hands it over."""
        if delivery.msg is not None and tracing.recording():
            _record_wait(delivery.msg)
        task = delivery.task
        with (
            structlog.contextvars.bound_contextvars(
                job_id=task.job_id, step=task.step, attempt=task.attempt
            ),
            redacting(delivery.terms),
            # The job's trace (the dispatch's `traceparent` header); reports carry it back.
            tracing.span(
                f"step {task.job_type}.{task.step}", delivery.headers, kind=SpanKind.CONSUMER
            ),
        ):
            started = time.monotonic()
            outcome = await self._attempt(delivery)
            metrics.observe_step(
                task.job_type, task.step, outcome.label, time.monotonic() - started
            )
            if isinstance(outcome, HandedBack):
                log.info("step_handed_back")
                await self._give_back(delivery, feed)
                return None
            # The result is committed before the ack: a worker dying in between leaves the
            # step to be redelivered, never lost.
            report = to_report(task, outcome, datetime.now(UTC))
            following = None
            if report is not None:
                report.take_next = isinstance(outcome, Succeeded) and not self._stopping.is_set()
                try:
                    following = await self._send_result(report, delivery)
                except ResultNotSettled as unsettled:
                    log.info("step_handed_back", reason=str(unsettled))
                    await self._give_back(delivery, feed)
                    return None
            try:
                await delivery.ack()
            except Exception as exc:
                # The result is committed: a redelivery of this step is fenced off, and the
                # step handed over stays ours to run.
                log.warning("ack_failed", error=type(exc).__name__)
            return following

    def _cursor_saver(self, delivery: _Delivery) -> CursorSaver:
        """How the attempt's handler saves its cursor: a report an orchestrator answers
        once it is committed, sent as a result is (and again until answered)."""
        task = delivery.task

        async def save(cursor: Mapping[str, Any], children: Sequence[ChildJob] = ()) -> None:
            report = worker_pb2.StepReport(
                job_id=task.job_id,
                step=task.step,
                attempt=task.attempt,
                cursor=worker_pb2.StepCursor(
                    cursor=dict_to_struct(dict(cursor)),
                    children=[
                        worker_pb2.ChildJob(
                            job_type=child.job_type, input=dict_to_struct(dict(child.input))
                        )
                        for child in children
                    ],
                ),
            )
            await self._send_result(report, delivery)

        return save

    def _upload_reader(self, task: worker_pb2.StepTask) -> UploadReader:
        """How the attempt's handler reads its owner's uploads: checked as they stream."""
        store, prefix = self._artifacts, task.artifact_prefix
        if store is None or not prefix:
            return no_uploads

        async def read(upload_id: str) -> AsyncIterator[bytes]:
            try:
                where = upload_prefix_beside(prefix, upload_id)
            except ValueError:
                raise PermanentStepError("UPLOAD_NOT_FOUND", "no such upload") from None
            try:
                async for chunk in store.read_only(where):
                    yield chunk
            except ArtifactMissing:
                raise PermanentStepError("UPLOAD_NOT_FOUND", "no such upload") from None
            except ArtifactCorrupted:
                log.error("upload_corrupted")
                raise PermanentStepError("DATA_LOSS", "the upload is damaged") from None
            except ArtifactError as exc:
                raise RetryableStepError("ARTIFACT_STORE_UNAVAILABLE", str(exc)) from exc

        return read

    def _artifact_saver(self, task: worker_pb2.StepTask) -> ArtifactSaver:
        """How the attempt's handler saves artifacts: streamed to the job's prefix."""
        store, prefix = self._artifacts, task.artifact_prefix
        if store is None or not prefix:
            return no_artifacts

        async def save(
            name: str, content_type: str, chunks: AsyncIterable[bytes]
        ) -> dict[str, Any]:
            try:
                artifact = await store.write(prefix, name, content_type, chunks)
            except ArtifactError as exc:
                raise RetryableStepError("ARTIFACT_STORE_UNAVAILABLE", str(exc)) from exc
            log.info("artifact_saved", size=artifact.size)
            return artifact.as_dict()

        return save

    async def _attempt(self, delivery: _Delivery) -> Outcome:
        """Run one attempt to its end."""
        task = delivery.task
        deliveries = delivery.deliveries
        if deliveries > self._max_step_deliveries:
            # Every earlier delivery died with its worker (a crash, an OOM kill): running it
            # again would kill this one too. Fail the attempt; the retry policy decides.
            log.error("step_redelivered_too_often", count=deliveries)
            return Failed(
                "STEP_KEEPS_CRASHING",
                f"attempt {task.attempt} was started {deliveries - 1} times and its worker "
                "never finished it",
            )
        handler = self._registry.get(task.job_type, task.step)
        if handler is None:
            log.error("no_handler", job_type=task.job_type)
            return Failed("UNKNOWN_STEP", "no worker has a handler for this step", retryable=False)
        log.debug("step_received", job_type=task.job_type, deliveries=deliveries)

        sent = itertools.count(1)

        async def send_progress(progress: worker_pb2.StepProgress) -> None:
            report = report_for(task, datetime.now(UTC))
            report.progress.CopyFrom(progress)
            await self._send_progress(delivery, report, next(sent))

        progress = AttemptProgress(send_progress, output_interval_s=self._output_interval_s)
        usage = AttemptUsage()
        ctx = StepContext(
            job_id=task.job_id,
            job_type=task.job_type,
            type_version=task.type_version,
            step=task.step,
            attempt=task.attempt,
            input=struct_to_dict(delivery.input),
            checkpoints={k: struct_to_dict(v) for k, v in delivery.checkpoints.items()},
            report_progress=progress.progress,
            report_output=progress.output,
            record_usage=usage.record,
            save_artifact=self._artifact_saver(task),
            cursor=struct_to_dict(task.cursor) if task.HasField("cursor") else None,
            save_cursor=self._cursor_saver(delivery),
            read_upload=self._upload_reader(task),
            export_history=self._history.reader(task) if self._history else no_history,
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        run = asyncio.create_task(handler(ctx))
        attempt = _RunningAttempt(task=task, run=run, progress=progress)
        # An attempt not yet started in its job's record starts there with its first
        # report: within a second, so a watcher sees it start.
        first_beat_s = (
            self._heartbeat_s if delivery.leased else min(FIRST_BEAT_S, self._heartbeat_s)
        )
        attempt.heartbeat = loop.call_later(
            first_beat_s,
            lambda: attempt.beat(asyncio.create_task(self._heartbeat(delivery))),
        )
        self._running[attempt.key] = attempt
        timeout_s = task.timeout.ToTimedelta().total_seconds() if task.HasField("timeout") else None
        try:
            async with asyncio.timeout(timeout_s):
                output = await run
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # torn down: the step comes back (redelivered, or its lease runs out)
            if attempt.cancel_reason is CancelReason.JOB_CANCELLED:
                log.info("step_cancelled")
                return Abandoned()  # its job was cancelled: nothing to report
            return HandedBack()  # shutting down: another worker takes it at once
        except InputRequested as asked:
            return _input_required(asked, usage.protos())
        except StepError as error:
            log.info(
                "step_failed",
                code=error.code,
                retryable=error.retryable,
                retry_after_s=error.retry_after_s,
            )
            # Tokens spent count whether the attempt succeeded or failed.
            return Failed(
                error.code,
                error.message,
                retryable=error.retryable,
                retry_after_s=error.retry_after_s,
                usage=usage.protos(),
            )
        except TimeoutError:
            log.warning("step_timed_out")
            return Failed(
                "STEP_TIMEOUT",
                f"step {task.step} took longer than its {timeout_s:g}s timeout",
                usage=usage.protos(),
            )
        except Exception as error:
            log.error("step_crashed", exc_info=error)
            return Failed(
                "STEP_CRASHED",
                f"step {task.step} failed unexpectedly ({type(error).__name__})",
                usage=usage.protos(),
            )
        finally:
            attempt.finish()
            # A second delivery of the same attempt may have taken the key meanwhile.
            if self._running.get(attempt.key) is attempt:
                del self._running[attempt.key]
        log.info("step_succeeded", duration_ms=round((loop.time() - started) * 1000))
        return Succeeded(output, usage=usage.protos(), last_progress=progress.last())

    async def _heartbeat(self, delivery: _Delivery) -> None:
        """While the step runs: keep its message from redelivery (``in_progress``) and renew
        its lease with the orchestrator; started at the first beat (quick steps finish
        before it)."""
        task = delivery.task
        beat = 0
        while True:
            beat += 1
            await delivery.in_progress()
            report = report_for(task)
            report.heartbeat.SetInParent()
            # Unique to this run of the attempt: another worker running the same attempt
            # later (a redelivery) must not have its heartbeats dropped as repeats.
            suffix = f"hb:{self._instance}:{beat}"
            # A heartbeat committed twice renews the lease twice: unanswered, it goes
            # through JetStream as well.
            await self._send_update(delivery, report, suffix, repeatable=True)
            await asyncio.sleep(self._heartbeat_s)

    async def _send_progress(
        self, delivery: _Delivery, report: worker_pb2.StepReport, number: int
    ) -> None:
        # The report's number in this run of the attempt: two reports at the same percent
        # with another phase (or the same length of text) are two, not a repeat to drop.
        suffix = f"progress:{self._instance}:{number}"
        # Committed twice it would be two events: unanswered, it is left to the orchestrator
        # that may have it (the next report, or the result, supersedes it).
        await self._send_update(delivery, report, suffix, repeatable=False)

    async def _send_update(
        self,
        delivery: _Delivery,
        report: worker_pb2.StepReport,
        suffix: str,
        *,
        repeatable: bool,
    ) -> None:
        """Send a heartbeat or a progress report once: to the orchestrator its result will
        go to, as a core NATS request answered once committed (where the job is decided
        from memory, in its lane, and never after the result the attempt sends next); and
        through JetStream when none can take it (none listening, or one that could not
        commit it), or when none answered in time and ``repeatable``: a JetStream write
        fewer for each report an orchestrator commits. ``suffix`` tells the report apart
        from the attempt's others in JetStream (``Nats-Msg-Id``)."""
        try:
            answer = await self._nc.request(
                delivery.result_subject,
                report.SerializeToString(),
                # Within a beat: the lease is renewed by the next one if not this one.
                timeout=min(self._result_timeout_s, self._heartbeat_s),
                headers=delivery.result_headers(),
            )
            if answer.data != bus.RESULT_AGAIN:
                return
        except NoRespondersError:
            pass
        except Exception as exc:
            if not repeatable:
                log.info("update_unanswered", error=type(exc).__name__)
                return
        await self._publish_update(delivery.task, report, suffix)

    async def _publish_update(
        self, task: worker_pb2.StepTask, report: worker_pb2.StepReport, suffix: str
    ) -> None:
        """Publish a heartbeat or a progress report through JetStream, once."""
        try:
            await self._js.publish(
                bus.REPORT_SUBJECT,
                report.SerializeToString(),
                headers=tracing.message_headers(
                    f"{bus.step_msg_id(task.job_id, task.step, task.attempt)}:{suffix}",
                    tracing.current_traceparent(),
                ),
                timeout=self._heartbeat_s,
            )
        except Exception as exc:
            kind = report.WhichOneof("outcome")
            log.warning("update_failed", kind=kind, error=type(exc).__name__)

    async def _send_result(
        self, report: worker_pb2.StepReport, delivery: _Delivery
    ) -> _Delivery | None:
        """Ask an orchestrator to commit the attempt's result, until one says it is settled
        (committed now or before), keeping the dispatch from redelivery meanwhile. Unless
        the worker is stopping: then the dispatch is handed back, and the step runs again
        elsewhere (a result committed meanwhile makes that run's a no-op). Returns the
        job's next step, when the answer hands it over."""
        data = report.SerializeToString()
        subject = delivery.result_subject
        delay = 0.05
        while True:
            failure = "again"
            try:
                with tracing.child_span("send result", kind=SpanKind.PRODUCER) as span:
                    if span.is_recording():
                        span.set_attribute("report", report.WhichOneof("outcome") or "")
                    headers = delivery.result_headers()
                    if report.take_next:
                        answer_by = bus.until_header(self._result_timeout_s)
                        headers = {**(headers or {}), bus.ANSWER_BY_HEADER: answer_by}
                    answer = await self._nc.request(
                        subject, data, timeout=self._result_timeout_s, headers=headers
                    )
                if answer.data == bus.RESULT_SETTLED:
                    return None
                if answer.data != bus.RESULT_AGAIN:
                    if not report.HasField("succeeded"):
                        # Only a success asks for the next step (``take_next``); the
                        # result is settled, and a step handed anyway comes back by lease.
                        log.error("unasked_hand_over")
                        return None
                    handed = worker_pb2.ResultAnswer.FromString(answer.data)
                    if handed.HasField("waiting"):
                        return _Delivery.handed_out(answer, handed.waiting)
                    return delivery.following(answer, handed, report.succeeded.output)
            except Exception as exc:
                failure = type(exc).__name__
            if self._stopping.is_set():
                raise ResultNotSettled(failure)
            if subject != bus.RESULT_SUBJECT:
                # That orchestrator is gone, or busy: any other takes the result now.
                subject = bus.RESULT_SUBJECT
                continue
            log.warning("result_retrying", error=failure)
            await delivery.in_progress()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def _input_required(asked: InputRequested, usage: Sequence[worker_pb2.ModelUsage]) -> Outcome:
    """The handler's request for input, or, if it is malformed (a schema no answer could
    be checked against, a wait out of bounds), the step's failure: a bug in the step,
    which no retry mends."""
    try:
        compile_schema(asked.schema)
    except ConfigError as error:
        log.error("input_request_invalid", error=str(error))
        return Failed("INVALID_INPUT_REQUEST", f"the step asked for input badly: {error}", False)
    if asked.timeout_s is not None and not 0 < asked.timeout_s <= MAX_WAIT_S:
        return Failed(
            "INVALID_INPUT_REQUEST",
            f"the step's wait for input must be positive and at most {MAX_WAIT_S:g}s",
            False,
        )
    log.info("step_asks_for_input", timeout_s=asked.timeout_s)
    return InputRequired(asked.prompt, asked.schema, asked.draft, asked.timeout_s, usage)


class ResultNotSettled(Exception):
    """The worker stopped before an orchestrator settled the result: its dispatch is not
    acked, so the step is delivered again."""


def _record_wait(msg: Msg) -> None:
    """The dispatch's wait in its job's trace: from its store in JetStream (the message's
    timestamp) to this worker's receipt: the delivery to its pull request, and any wait
    for a free slot."""
    stored = msg.metadata.timestamp
    span = tracing.job_span(
        "wait for worker", msg.headers, start_time=int(stored.timestamp() * 1_000_000_000)
    )
    if span.is_recording():
        span.set_attribute("messaging.deliveries", msg.metadata.num_delivered or 1)
    span.end()
