"""What one running attempt tells the orchestrator: its progress, and the text it has
written so far when it streams (a model writing a cover letter), at a bounded rate."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from jobkit.gen.jobs.internal.v1 import worker_pb2

Send = Callable[[worker_pb2.StepProgress], Awaitable[None]]

#: A streamed text goes out at most this often: each report is a durable event, and a
#: model writes tokens far faster than anyone reads them.
DEFAULT_OUTPUT_INTERVAL_S = 0.25


class AttemptUsage:
    """The model tokens one attempt used, by model: sent with its result."""

    def __init__(self) -> None:
        self._by_model: dict[str, worker_pb2.ModelUsage] = {}

    def record(
        self, model: str, prompt_tokens: int, completion_tokens: int, prompt_id: str = ""
    ) -> None:
        """``StepContext.record_usage``: add one model call's tokens (and its prompt id)."""
        totals = self._by_model.setdefault(model, worker_pb2.ModelUsage(model=model))
        totals.prompt_tokens += max(0, int(prompt_tokens))
        totals.completion_tokens += max(0, int(completion_tokens))
        if prompt_id and prompt_id not in totals.prompts:
            totals.prompts.append(prompt_id)

    def protos(self) -> list[worker_pb2.ModelUsage]:
        return list(self._by_model.values())


class AttemptProgress:
    def __init__(self, send: Send, *, output_interval_s: float = DEFAULT_OUTPUT_INTERVAL_S) -> None:
        self._send = send
        self._interval_s = output_interval_s
        self._percent = 0
        self._phase = ""
        self._sent_at: float | None = None
        self._pending: str | None = None
        self._flusher: asyncio.Task[None] | None = None

    async def progress(self, percent: int, phase: str = "") -> None:
        """``StepContext.report_progress``: sent at once."""
        self._percent = max(0, min(100, int(percent)))
        self._phase = phase
        await self._send(worker_pb2.StepProgress(percent=self._percent, phase=phase))

    async def output(self, text_so_far: str) -> None:
        """``StepContext.report_output``: the whole text so far. Sent at once if the last
        one went out at least an interval ago; otherwise the newest text waits for the
        end of the interval (texts in between are skipped: each one contains them). The
        first text waits an interval too, so a step that writes quickly sends none: its
        result follows at once anyway."""
        loop = asyncio.get_running_loop()
        if self._sent_at is None:
            self._sent_at = loop.time()
        wait = self._sent_at + self._interval_s - loop.time()
        if wait <= 0 and self._flusher is None:
            await self._send_output(text_so_far)
            return
        self._pending = text_so_far
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush_after(max(wait, 0.0)))

    def last(self) -> worker_pb2.StepProgress | None:
        """The last progress reported (percent and phase), if any was."""
        if not self._phase and not self._percent:
            return None
        return worker_pb2.StepProgress(percent=self._percent, phase=self._phase)

    def close(self) -> None:
        """The attempt is over: a text still waiting is dropped (the result has it all)."""
        if self._flusher is not None:
            self._flusher.cancel()
        self._pending = None

    async def _flush_after(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        text, self._pending = self._pending, None
        self._flusher = None
        if text is not None:
            with contextlib.suppress(Exception):
                await self._send_output(text)

    async def _send_output(self, text: str) -> None:
        self._sent_at = asyncio.get_running_loop().time()
        await self._send(
            worker_pb2.StepProgress(percent=self._percent, phase=self._phase, partial_output=text)
        )
