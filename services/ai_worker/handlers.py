"""The registry of step handlers: one async function per (job type, step).

A handler receives a ``StepContext`` and returns the step's output (a JSON-like dict,
committed as the step's checkpoint). It reports progress through the context, raises a
``StepError`` subclass to fail, and is cancelled (``asyncio.CancelledError``) when its job
is cancelled or the worker shuts down.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from jobkit.catalog import JOB_TYPES


class ProgressReporter(Protocol):
    async def __call__(self, percent: int, phase: str = "") -> None: ...


class OutputReporter(Protocol):
    """Called with everything a streaming step has written so far, as often as it likes:
    the worker sends the newest text at a bounded rate, as ``PROGRESS`` events."""

    async def __call__(self, text_so_far: str) -> None: ...


async def _no_output(text_so_far: str) -> None:
    """For contexts built outside a worker (tests, tools): streamed text goes nowhere."""


@dataclass(frozen=True, slots=True)
class StepContext:
    job_id: str
    job_type: str
    step: str
    attempt: int
    input: Mapping[str, Any]
    #: Outputs of the job's earlier steps, by step name.
    checkpoints: Mapping[str, Mapping[str, Any]]
    report_progress: ProgressReporter
    report_output: OutputReporter = _no_output


Handler = Callable[[StepContext], Coroutine[Any, Any, dict[str, Any]]]


class Registry:
    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str], Handler] = {}

    def register(self, job_type: str, step: str, handler: Handler) -> None:
        spec = JOB_TYPES.get(job_type)
        if spec is None or step not in spec.step_names:
            raise ValueError(f"{job_type}.{step} is not in the job-type catalogue")
        self._handlers[(job_type, step)] = handler

    def get(self, job_type: str, step: str) -> Handler | None:
        return self._handlers.get((job_type, step))

    def missing(self) -> list[str]:
        """Catalogue steps without a handler: a worker must not start with any."""
        return [
            f"{t.name}.{s}"
            for t in JOB_TYPES.values()
            for s in t.step_names
            if (t.name, s) not in self._handlers
        ]
