"""What is particular to bulk_import: its rows, its errors, and resuming from a cursor."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest

from jobtypes.bulk_import.spec import CREATE_JOBS, READ_UPLOAD, SPEC
from jobtypes.bulk_import.steps import (
    BATCH_ROWS,
    MAX_LISTED_ERRORS,
    MAX_ROW_BYTES,
    create_jobs,
    lines_of,
    row_input,
)
from stepkit import ChildJob, StepContext
from tests.unit.pipeline import run_steps

UPLOAD = "7d1c2a52-3a8e-4b7e-9a55-1e1f3f0c2b10"


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
async def test_lines_are_found_across_pieces_with_their_numbers(size: int) -> None:
    data = b'{"a": 1}\r\n\n  \n{"b": 2}\n{"c": 3}'
    found = [(n, line) async for n, line in lines_of(pieces(data, size))]
    assert found == [(1, b'{"a": 1}'), (4, b'{"b": 2}'), (5, b'{"c": 3}')]


def test_a_row_is_an_input_the_type_accepts_or_says_why_not() -> None:
    assert row_input(b'{"sleep_ms": 5}', "noop") == {"sleep_ms": 5}
    assert row_input(b"[1, 2]", "noop") == "must be a JSON object: a job's input"
    assert row_input(b"{nope", "noop") == "is not JSON"
    assert row_input(b'{"sleep_ms": "soon"}', "noop") == "input.sleep_ms must be a number"
    big = json.dumps({"write": "x" * MAX_ROW_BYTES}).encode()
    assert row_input(big, "noop") == f"is larger than {MAX_ROW_BYTES} bytes"


def test_the_rows_type_must_be_known_and_not_an_import() -> None:
    ok = {"upload_id": UPLOAD, "job_type": "cv_tailoring"}
    assert SPEC.validate_input(ok) == []
    assert [v.field for v in SPEC.validate_input({**ok, "job_type": "bulk_import"})] == [
        "input.job_type"
    ]
    assert [v.field for v in SPEC.validate_input({**ok, "job_type": "data_export"})] == [
        "input.job_type"
    ]
    assert [v.field for v in SPEC.validate_input({**ok, "job_type": "pottery"})] == [
        "input.job_type"
    ]
    assert [v.field for v in SPEC.validate_input({**ok, "upload_id": "../x"})] == [
        "input.upload_id"
    ]


def rows(n: int, *, bad_every: int = 0) -> bytes:
    lines = [
        '{"sleep_ms": "soon"}' if bad_every and i % bad_every == 0 else json.dumps({"sleep_ms": i})
        for i in range(1, n + 1)
    ]
    return ("\n".join(lines) + "\n").encode()


async def test_an_import_creates_a_job_per_valid_row_in_batches_and_lists_the_rest() -> None:
    run = await run_steps(
        "bulk_import",
        {"upload_id": UPLOAD, "job_type": "noop"},
        uploads={UPLOAD: rows(450, bad_every=100)},
    )
    assert run.outputs[READ_UPLOAD] == {"rows": 450}
    result = run.outputs[CREATE_JOBS]
    assert (result["imported"], result["failed"], result["rows"]) == (446, 4, 450)
    assert [e["row"] for e in result["errors"]] == [100, 200, 300, 400]
    assert result["errors"][0]["error"] == "row 100 input.sleep_ms must be a number"
    created = [c.input["sleep_ms"] for _, children in run.cursors for c in children]
    assert created == [i for i in range(1, 451) if i % 100]
    assert all(len(children) <= BATCH_ROWS for _, children in run.cursors)
    # Each batch moves the cursor past its rows: the last one ends at the last line.
    assert [cursor["line"] for cursor, _ in run.cursors][-1] == 450
    lines = [cursor["line"] for cursor, _ in run.cursors]
    assert lines == sorted(set(lines))
    assert run.progress[-1][2] == "Imported 450 of 450 rows..."


async def test_the_error_list_is_capped_but_every_failure_is_counted() -> None:
    data = b"oops\n" * (MAX_LISTED_ERRORS + 20)
    run = await run_steps(
        "bulk_import", {"upload_id": UPLOAD, "job_type": "noop"}, uploads={UPLOAD: data}
    )
    result = run.outputs[CREATE_JOBS]
    assert result["failed"] == MAX_LISTED_ERRORS + 20
    assert len(result["errors"]) == MAX_LISTED_ERRORS


async def test_an_attempt_with_a_cursor_goes_on_from_the_next_row() -> None:
    """What a worker killed after committing the first batch leaves to the next attempt."""
    data = rows(500)
    saved: list[tuple[dict[str, Any], list[ChildJob]]] = []

    async def read_upload(upload_id: str) -> AsyncIterator[bytes]:
        assert upload_id == UPLOAD
        async for piece in pieces(data, 4096):
            yield piece

    async def save_cursor(cursor: Mapping[str, Any], children: Sequence[ChildJob] = ()) -> None:
        saved.append((dict(cursor), list(children)))

    async def progress(percent: int, phase: str = "") -> None:
        pass

    ctx = StepContext(
        job_id="job-1",
        job_type="bulk_import",
        step=CREATE_JOBS,
        attempt=2,
        input={"upload_id": UPLOAD, "job_type": "noop"},
        checkpoints={READ_UPLOAD: {"rows": 500}},
        report_progress=progress,
        cursor={"line": 200, "imported": 199, "failed": 1, "errors": [{"row": 7, "error": "x"}]},
        save_cursor=save_cursor,
        read_upload=read_upload,
    )
    result = await create_jobs(ctx)
    created = [c.input["sleep_ms"] for _, children in saved for c in children]
    assert created == list(range(201, 501))
    assert (result["imported"], result["failed"]) == (499, 1)
    assert result["errors"] == [{"row": 7, "error": "x"}]
