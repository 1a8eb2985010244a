"""ai_worker's NATS adapter: pulls step attempts, runs their handlers, reports back.

Each attempt is acked only after its result is published (durably, to JetStream), so a
worker that dies mid-step leaves the message to be redelivered to another. While a step
runs, the worker tells JetStream it is still working on it (``in_progress``) so a long
step is not redelivered under it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import FetchTimeoutError

from jobkit import bus
from jobkit.convert import dict_to_struct, struct_to_dict
from jobkit.gen.jobs.internal.v1 import worker_pb2
from jobkit.logging import get_logger
from services.ai_worker.errors import StepError
from services.ai_worker.handlers import Registry, StepContext

log = get_logger(__name__)

AttemptKey = tuple[str, str, int]


class Worker:
    def __init__(
        self,
        nc: NatsClient,
        js: JetStreamContext,
        registry: Registry,
        *,
        concurrency: int,
        ack_wait_s: float,
        max_deliver: int,
    ) -> None:
        self._nc = nc
        self._js = js
        self._registry = registry
        self._concurrency = concurrency
        self._ack_wait_s = ack_wait_s
        self._max_deliver = max_deliver
        self._running: dict[AttemptKey, asyncio.Task[dict[str, Any]]] = {}
        self._cancelled: set[AttemptKey] = set()
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        self._pull = await self._js.pull_subscribe(
            "jobs.steps.>",
            durable=bus.WORKER_CONSUMER,
            stream=bus.STEPS_STREAM,
            config=bus.worker_consumer_config(self._ack_wait_s, self._max_deliver),
        )
        self._cancel_sub = await self._nc.subscribe(bus.CANCEL_SUBJECT, cb=self._on_cancel)

    async def _on_cancel(self, msg: Msg) -> None:
        notice = worker_pb2.CancelStep.FromString(msg.data)
        key = (notice.job_id, notice.step, notice.attempt)
        task = self._running.get(key)
        if task is not None:
            self._cancelled.add(key)
            task.cancel()
            log.info(
                "step_cancel_requested",
                job_id=notice.job_id,
                step=notice.step,
                attempt=notice.attempt,
            )

    async def run(self) -> None:
        """Pull and run steps with ``concurrency`` slots until ``stop`` is called."""
        async with asyncio.TaskGroup() as slots:
            for _ in range(self._concurrency):
                slots.create_task(self._slot())

    async def _slot(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = await self._pull.fetch(1, timeout=2)
            except (TimeoutError, FetchTimeoutError):
                continue
            except Exception as exc:
                log.warning("fetch_failed", error=type(exc).__name__)
                await asyncio.sleep(0.5)
                continue
            for msg in messages:
                await self._execute(msg)

    def stop(self) -> None:
        """Take no new steps; hand running ones back to JetStream for another worker."""
        self._stopping.set()
        for task in self._running.values():
            task.cancel()

    async def close(self) -> None:
        """After ``run`` has returned: drop the subscriptions so nothing new arrives."""
        for subscription in (self._pull, self._cancel_sub):
            try:
                await subscription.unsubscribe()
            except Exception as exc:
                log.warning("unsubscribe_failed", error=type(exc).__name__)

    async def _execute(self, msg: Msg) -> None:
        task = worker_pb2.StepTask.FromString(msg.data)
        key = (task.job_id, task.step, task.attempt)
        with structlog.contextvars.bound_contextvars(
            job_id=task.job_id, step=task.step, attempt=task.attempt
        ):
            handler = self._registry.get(task.job_type, task.step)
            if handler is None:
                log.error("no_handler", job_type=task.job_type)
                await self._report(
                    task,
                    failed=worker_pb2.StepFailed(
                        code="UNKNOWN_STEP",
                        message="this worker has no handler for the step",
                        retryable=False,
                    ),
                )
                await msg.ack()
                return
            ctx = StepContext(
                job_id=task.job_id,
                job_type=task.job_type,
                step=task.step,
                attempt=task.attempt,
                input=struct_to_dict(task.input),
                checkpoints={k: struct_to_dict(v) for k, v in task.checkpoints.items()},
                report_progress=self._progress_reporter(task),
            )
            started = asyncio.get_running_loop().time()
            run = asyncio.create_task(handler(ctx))
            self._running[key] = run
            keepalive = asyncio.create_task(self._keep_alive(msg))
            try:
                output = await self._await_until_deadline(run, task)
            except asyncio.CancelledError:
                if key in self._cancelled:
                    # The job was cancelled: nothing to report, the work is abandoned.
                    log.info("step_cancelled")
                    await msg.ack()
                else:
                    log.info("step_handed_back")
                    await msg.nak()
                if asyncio.current_task() and asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    raise
                return
            except StepError as error:
                log.info("step_failed", code=error.code, retryable=error.retryable)
                await self._report(
                    task,
                    failed=worker_pb2.StepFailed(
                        code=error.code, message=error.message, retryable=error.retryable
                    ),
                )
            except TimeoutError:
                log.warning("step_timed_out")
                await self._report(
                    task,
                    failed=worker_pb2.StepFailed(
                        code="STEP_TIMEOUT",
                        message=f"step {task.step} took longer than allowed",
                        retryable=True,
                    ),
                )
            except Exception as error:
                log.error("step_crashed", exc_info=error)
                await self._report(
                    task,
                    failed=worker_pb2.StepFailed(
                        code="STEP_CRASHED",
                        message=f"step {task.step} failed unexpectedly ({type(error).__name__})",
                        retryable=True,
                    ),
                )
            else:
                log.info(
                    "step_succeeded",
                    duration_ms=round((asyncio.get_running_loop().time() - started) * 1000),
                )
                await self._report(
                    task, succeeded=worker_pb2.StepSucceeded(output=dict_to_struct(output))
                )
            finally:
                keepalive.cancel()
                self._running.pop(key, None)
                self._cancelled.discard(key)
            await msg.ack()

    async def _await_until_deadline(
        self, run: asyncio.Task[dict[str, Any]], task: worker_pb2.StepTask
    ) -> dict[str, Any]:
        remaining = None
        if task.HasField("deadline"):
            remaining = (task.deadline.ToDatetime(UTC) - datetime.now(UTC)).total_seconds()
        try:
            async with asyncio.timeout(max(remaining, 0.001) if remaining is not None else None):
                return await run
        finally:
            if not run.done():
                run.cancel()
                with contextlib.suppress(BaseException):
                    await run

    async def _keep_alive(self, msg: Msg) -> None:
        """Tell JetStream the step is still being worked on, well within ack_wait."""
        while True:
            await asyncio.sleep(self._ack_wait_s / 3)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    def _progress_reporter(self, task: worker_pb2.StepTask) -> Any:
        async def report(percent: int, phase: str = "") -> None:
            await self._report(
                task,
                progress=worker_pb2.StepProgress(
                    percent=max(0, min(100, int(percent))), phase=phase
                ),
            )

        return report

    async def _report(self, task: worker_pb2.StepTask, **outcome: Any) -> None:
        report = worker_pb2.StepReport(
            job_id=task.job_id, step=task.step, attempt=task.attempt, **outcome
        )
        report.reported_at.FromDatetime(datetime.now(UTC))
        kind = report.WhichOneof("outcome")
        suffix = f"{kind}:{report.progress.percent}" if kind == "progress" else "result"
        msg_id = f"{task.job_id}:{task.step}:{task.attempt}:{suffix}"
        delay = 0.1
        while True:
            try:
                await self._js.publish(
                    bus.REPORT_SUBJECT,
                    report.SerializeToString(),
                    headers={"Nats-Msg-Id": msg_id},
                )
                return
            except Exception as exc:
                if kind == "progress" or self._stopping.is_set():
                    log.warning("report_failed", kind=kind, error=type(exc).__name__)
                    if kind != "progress":
                        raise
                    return
                log.warning("report_retrying", kind=kind, error=type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
