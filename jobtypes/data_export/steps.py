"""The step of ``data_export``: the job owner's history, streamed from job_api
(``StepContext.export_history``) straight into one artifact, never held whole.

The artifact is written atomically (a write that dies leaves only a ``partial/`` object),
so a retry simply starts over. The lines hold the user's personal data: nothing here logs
or reports anything of them but counts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from jobtypes.data_export.spec import EXPORT_CONTENT_TYPE, EXPORT_JOBS, EXPORT_NAME
from stepkit import ChatProvider, Handler, RetryableStepError, StepContext, StepError


class _Count:
    """Jobs written so far, reported as progress each time the percentage moves."""

    def __init__(self, ctx: StepContext) -> None:
        self._ctx = ctx
        self.done = 0
        self.total: int | None = None
        self._percent: int | None = None

    async def update(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        percent = done * 100 // total if total else 100
        if percent != self._percent:
            self._percent = percent
            await self._ctx.report_progress(percent, f"Exported {done:,} of {total:,} jobs...")


async def export_jobs(ctx: StepContext) -> dict[str, Any]:
    count = _Count(ctx)
    #: Why the history stopped, if it did: the object store's write sees only that its
    #: chunks failed, and says so in its own terms.
    failures: list[StepError] = []

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for piece in ctx.export_history():
                if piece.data:
                    yield piece.data
                await count.update(piece.jobs_done, piece.total_jobs)
        except StepError as error:
            failures.append(error)
            raise

    try:
        entry = await ctx.save_artifact(EXPORT_NAME, EXPORT_CONTENT_TYPE, chunks())
    except StepError:
        if failures:
            raise failures[0] from None
        raise
    if count.total is None or count.done != count.total:
        raise RetryableStepError(
            "EXPORT_INCOMPLETE", f"the export ended after {count.done} of {count.total} jobs"
        )
    return {"artifacts": [entry], "jobs": count.done}


def handlers(provider: ChatProvider) -> dict[str, Handler]:
    """One step, and no model."""
    return {EXPORT_JOBS: export_jobs}
