"""The steps of ``bulk_import``: count the upload's rows, then create a job per row.

``create_jobs`` reads the file again from the start on every attempt, skips the lines its
cursor says are done, and creates the next batch's jobs with the cursor that moves past
them (``StepContext.save_cursor``): the jobs and the new place in the file commit together,
so a worker killed between two batches leaves the import exactly at a batch's end.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from jobtypes import CATALOG
from jobtypes.bulk_import.spec import CREATE_JOBS, READ_UPLOAD
from stepkit import ChatProvider, ChildJob, Handler, StepContext

#: Rows per batch, and the most input bytes one batch carries (it travels as one message).
BATCH_ROWS = 200
BATCH_BYTES = 256 * 1024
#: A row larger than this is refused (its job's input would travel alone in a message).
MAX_ROW_BYTES = 128 * 1024
#: The result lists the first errors; ``failed`` counts them all.
MAX_LISTED_ERRORS = 100


async def lines_of(chunks: AsyncIterable[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """Each line of a stream, with its number (from 1), without its line ending; blank
    lines are skipped but counted."""
    number = 0
    rest = b""
    async for chunk in chunks:
        rest += chunk
        *complete, rest = rest.split(b"\n")
        for line in complete:
            number += 1
            if line.strip():
                yield number, line.rstrip(b"\r")
    if rest.strip():
        yield number + 1, rest.rstrip(b"\r")


async def read_upload(ctx: StepContext) -> dict[str, Any]:
    """Count the rows (the file's hash is checked on the way): the import's progress is
    out of them, and a damaged or missing file fails here, before any job exists."""
    rows = 0
    async for _ in lines_of(ctx.read_upload(str(ctx.input["upload_id"]))):
        rows += 1
    return {"rows": rows}


@dataclass(slots=True)
class ImportState:
    """Where an import is, as its cursor holds it."""

    #: Lines of the file consumed (blank or not).
    line: int = 0
    imported: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_cursor(cls, cursor: Mapping[str, Any] | None) -> ImportState:
        if not cursor:
            return cls()
        return cls(
            line=int(cursor["line"]),
            imported=int(cursor["imported"]),
            failed=int(cursor["failed"]),
            errors=[dict(e) for e in cursor.get("errors", [])],
        )

    def as_cursor(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "imported": self.imported,
            "failed": self.failed,
            "errors": list(self.errors),
        }

    def refuse(self, line: int, why: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_LISTED_ERRORS:
            self.errors.append({"row": line, "error": why})


def row_input(line: bytes, job_type: str) -> dict[str, Any] | str:
    """A row as its job's input, or why it is not one (without the row's content: the
    error list is shown, and the rows may be personal)."""
    if len(line) > MAX_ROW_BYTES:
        return f"is larger than {MAX_ROW_BYTES} bytes"
    try:
        document = json.loads(line)
    except (ValueError, RecursionError):
        return "is not JSON"
    if not isinstance(document, dict):
        return "must be a JSON object: a job's input"
    violations = CATALOG[job_type].validate_input(document)
    if violations:
        first = violations[0]
        return f"{first.field} {first.description}"
    return document


async def create_jobs(ctx: StepContext) -> dict[str, Any]:
    job_type = str(ctx.input["job_type"])
    total = int(ctx.checkpoint(READ_UPLOAD)["rows"])
    state = ImportState.from_cursor(ctx.cursor)
    resumed_after = state.line if ctx.cursor else None
    batch: list[ChildJob] = []
    batch_bytes = 0

    async def commit(through_line: int) -> None:
        nonlocal batch, batch_bytes
        state.line = through_line
        state.imported += len(batch)
        await ctx.save_cursor(state.as_cursor(), batch)
        batch, batch_bytes = [], 0
        done = state.imported + state.failed
        await ctx.report_progress(
            done * 100 // max(total, 1), f"Imported {done:,} of {total:,} rows..."
        )

    last_line = state.line
    async for number, line in lines_of(ctx.read_upload(str(ctx.input["upload_id"]))):
        if number <= state.line:
            continue
        last_line = number
        row = row_input(line, job_type)
        if isinstance(row, str):
            state.refuse(number, f"row {number} {row}")
        else:
            batch.append(ChildJob(job_type, row))
            batch_bytes += len(line)
        if len(batch) >= BATCH_ROWS or batch_bytes >= BATCH_BYTES:
            await commit(number)
    if last_line > state.line:
        await commit(last_line)
    result: dict[str, Any] = {
        "job_type": job_type,
        "rows": total,
        "imported": state.imported,
        "failed": state.failed,
        "errors": state.errors,
    }
    if resumed_after is not None:
        # An attempt after an interrupted one: where it took over.
        result["resumed_after_row"] = resumed_after
    return result


def handlers(provider: ChatProvider) -> dict[str, Handler]:
    """No model: an import only reads and creates."""
    return {READ_UPLOAD: read_upload, CREATE_JOBS: create_jobs}
