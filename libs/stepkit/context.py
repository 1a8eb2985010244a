"""A step handler and the context it runs in: one async function per (job type, step).

A handler receives a ``StepContext`` and returns the step's output (a JSON-like dict,
committed as the step's checkpoint). It reports progress through the context, raises a
``StepError`` subclass to fail, and is cancelled (``asyncio.CancelledError``) when its job
is cancelled or the worker shuts down.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from stepkit.errors import InputRequested, PermanentStepError


class ProgressReporter(Protocol):
    async def __call__(self, percent: int, phase: str = "") -> None: ...


class OutputReporter(Protocol):
    """Called with everything a streaming step has written so far, as often as it likes:
    the worker sends the newest text at a bounded rate, as ``PROGRESS`` events."""

    async def __call__(self, text_so_far: str) -> None: ...


class UsageRecorder(Protocol):
    """Called after each model call with the tokens it used; the worker sends the
    attempt's total with its result, and the orchestrator prices and stores it."""

    def __call__(
        self, model: str, prompt_tokens: int, completion_tokens: int, prompt_id: str = ""
    ) -> None: ...


class ArtifactSaver(Protocol):
    """Stores ``chunks`` as one of the job's artifacts, streamed (never held whole), and
    returns its entry for the step's output, ``{name, content_type, size, sha256}``; list
    the entries under ``artifacts`` in the output that ends the job and they are its
    result's. A name is the step's choice; the same bytes saved twice are stored once."""

    async def __call__(
        self, name: str, content_type: str, chunks: AsyncIterable[bytes]
    ) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class ChildJob:
    """A job a step creates with its cursor: of type ``job_type``, for the step's job's
    owner, with that job as its parent. ``input`` must meet the type's schema."""

    job_type: str
    input: Mapping[str, Any]


class CursorSaver(Protocol):
    """Commits a long step's own progress marker before the step goes on (see
    ``StepContext.cursor``), and the jobs it creates with it."""

    async def __call__(
        self, cursor: Mapping[str, Any], children: Sequence[ChildJob] = ()
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class HistoryPiece:
    """One piece of an export of the job owner's history (``StepContext.export_history``)."""

    #: The next bytes of the JSON Lines document (a line may span several pieces).
    data: bytes
    #: How many jobs' lines are complete once ``data`` is written.
    jobs_done: int
    #: How many jobs the whole export holds.
    total_jobs: int


class HistoryReader(Protocol):
    """Streams every job of the job's owner but this job, oldest first, as JSON Lines (one
    line a job: ``{"job", "input", "events"}``, read from one consistent snapshot), in
    pieces of a few hundred KiB: never the whole. The first piece may be empty (it brings
    ``total_jobs``). Only a job type that declares ``reads_history`` may call it; a failure
    is a ``StepError`` (retryable if the stream broke, permanent if it was refused)."""

    def __call__(self) -> AsyncIterator[HistoryPiece]: ...


def no_history() -> AsyncIterator[HistoryPiece]:
    """For steps not allowed to read their owner's history, workers that cannot reach
    job_api (``JOB_API_ADDR`` unset), and tests."""
    raise PermanentStepError(
        "HISTORY_UNAVAILABLE", "this step cannot read the history of the job's owner"
    )


async def _no_cursor(cursor: Mapping[str, Any], children: Sequence[ChildJob] = ()) -> None:
    """For contexts built outside a worker (tests, tools): the cursor goes nowhere."""


class UploadReader(Protocol):
    """The bytes of one of the owner's uploads (``CreateUpload``), streamed and checked
    against their sha256 as they go: a damaged or missing file raises ``StepError``."""

    def __call__(self, upload_id: str) -> AsyncIterator[bytes]: ...


def no_uploads(upload_id: str) -> AsyncIterator[bytes]:
    """For workers without an object store (``OBJECT_STORE_URL`` unset), and tests."""
    raise PermanentStepError(
        "ARTIFACTS_UNAVAILABLE", "this deployment has no object store for uploads"
    )


async def no_artifacts(
    name: str, content_type: str, chunks: AsyncIterable[bytes]
) -> dict[str, Any]:
    """For workers without an object store (``OBJECT_STORE_URL`` unset), and tests."""
    raise PermanentStepError(
        "ARTIFACTS_UNAVAILABLE", "this deployment has no object store for artifacts"
    )


async def _no_output(text_so_far: str) -> None:
    """For contexts built outside a worker (tests, tools): streamed text goes nowhere."""


def _no_usage(model: str, prompt_tokens: int, completion_tokens: int, prompt_id: str = "") -> None:
    """For contexts built outside a worker: usage goes nowhere."""


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
    record_usage: UsageRecorder = _no_usage
    save_artifact: ArtifactSaver = no_artifacts
    #: In-step checkpoints, for a step that works through many items (the rows of an
    #: import). ``await save_cursor({...})`` returns once the marker is committed with this
    #: attempt (a JSON-like dict, small: where the step is, not what it made). If the
    #: attempt is then interrupted (its worker dies, a retryable error, a RetryJob), the
    #: step's next attempt starts with the newest committed marker as ``cursor`` (``None``
    #: if it never saved one) and picks up there. So work a step does between two saves
    #: may be done twice, never lost: what it does must be safe to repeat from the last
    #: cursor. A save from an attempt that is no longer current changes nothing.
    #:
    #: ``save_cursor(cursor, children)`` also creates jobs (``ChildJob``), committed with
    #: the cursor, all or none, exactly once: a save that repeats the cursor already
    #: committed is taken as a repeat and creates nothing, so a save with children must
    #: move the cursor past them (an import's cursor is its next row). An invalid child
    #: fails the step: check inputs first (``JobTypeSpec.validate_input``).
    cursor: Mapping[str, Any] | None = None
    save_cursor: CursorSaver = _no_cursor
    read_upload: UploadReader = no_uploads
    #: The job owner's whole history as JSON Lines, streamed from job_api (the worker never
    #: reads Postgres itself): ``async for piece in ctx.export_history()``.
    export_history: HistoryReader = no_history
    #: What the attempt has written through a model so far, piece by piece
    #: (``Prose`` appends; its partial output shows them all).
    written: list[str] = field(default_factory=list)
    #: The version of its job type's step graph the job runs (``JobTypeSpec.version``),
    #: for a handler that serves several; 0: not said (a release before it said).
    type_version: int = 0

    def checkpoint(self, step: str) -> Mapping[str, Any]:
        """The output of the job's earlier step ``step``."""
        try:
            return self.checkpoints[step]
        except KeyError:
            # The orchestrator always sends earlier checkpoints: their absence is a bug
            # upstream, which no retry mends.
            raise PermanentStepError(
                "MISSING_CHECKPOINT", f"the {step} step has no output"
            ) from None

    def request_input(
        self,
        prompt: str,
        schema: Mapping[str, Any],
        *,
        draft: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> NoReturn:
        """End the attempt asking a person for input: the job waits (``WAITING_INPUT``,
        with an ``INPUT_REQUIRED`` event carrying ``prompt``, ``schema`` and ``draft``)
        holding no worker, and the answer SubmitInput brings, checked against ``schema``
        (JSON Schema 2020-12), is applied to ``draft`` as a JSON Merge Patch (RFC 7386;
        the answer alone without one) to become this step's checkpoint: the steps after it
        read it with ``checkpoint``. The schema checks the answer, not that result.
        ``timeout_s``: how long to wait before the step fails with ``INPUT_TIMEOUT``
        (``None``: as long as the job may)."""
        raise InputRequested(
            prompt, dict(schema), dict(draft) if draft is not None else None, timeout_s
        )


Handler = Callable[[StepContext], Coroutine[Any, Any, dict[str, Any]]]
