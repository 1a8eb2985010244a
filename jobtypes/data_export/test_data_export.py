"""data_export: the history streamed into one artifact, progress as jobs counted, and a
broken or refused history failing the step in its own terms. (The checks every type
passes are in tests/unit/test_jobtypes.py; job_api's side of the export, the real thing,
in tests/e2e/test_data_export.py.)"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import pytest

from jobtypes.data_export import steps
from jobtypes.data_export.spec import SPEC
from stepkit import PermanentStepError, RetryableStepError, StepContext
from stepkit.context import HistoryPiece, no_history
from tests.unit.pipeline import run_steps

LINES = [
    json.dumps({"job": {"jobId": f"job-{n}"}, "input": {"n": n}, "events": []}).encode() + b"\n"
    for n in range(7)
]


def test_it_takes_no_input_and_reads_history() -> None:
    assert SPEC.validate_input({}) == []
    assert SPEC.reads_history
    assert SPEC.saves_artifacts


async def test_the_history_becomes_one_artifact_byte_for_byte() -> None:
    run = await run_steps("data_export", {}, history=LINES)
    data = b"".join(LINES)
    assert run.artifacts == {"export.jsonl": data}
    assert run.result == {
        "artifacts": [
            {
                "name": "export.jsonl",
                "content_type": "application/x-ndjson",
                "size": float(len(data)),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        ],
        "jobs": 7.0,
    }
    phases = [phase for _, _, phase in run.progress]
    assert phases[0] == "Exported 0 of 7 jobs..."
    assert phases[-1] == "Exported 7 of 7 jobs..."
    percents = [percent for _, percent, _ in run.progress]
    assert percents == sorted(set(percents))  # reported as the percentage moves, once each


async def test_an_empty_history_is_an_empty_artifact() -> None:
    run = await run_steps("data_export", {})
    assert run.artifacts == {"export.jsonl": b""}
    assert run.result["jobs"] == 0


def context(history: Any, saved: dict[str, bytes]) -> StepContext:
    async def progress(percent: int, phase: str = "") -> None:
        pass

    async def save(name: str, content_type: str, chunks: AsyncIterable[bytes]) -> dict[str, Any]:
        try:
            saved[name] = b"".join([c async for c in chunks])
        except Exception as exc:
            # As the object store does: the cause reaches the step in its own terms.
            raise RetryableStepError("ARTIFACT_STORE_UNAVAILABLE", type(exc).__name__) from exc
        return {"name": name}

    return StepContext(
        job_id="job-1",
        job_type="data_export",
        step="export_jobs",
        attempt=1,
        input={},
        checkpoints={},
        report_progress=progress,
        save_artifact=save,
        export_history=history,
    )


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (PermanentStepError("HISTORY_REFUSED", "refused"), "HISTORY_REFUSED"),
        (RetryableStepError("HISTORY_UNAVAILABLE", "broken"), "HISTORY_UNAVAILABLE"),
    ],
)
async def test_a_history_that_fails_midway_fails_the_step_with_its_own_error(
    error: Exception, code: str
) -> None:
    async def broken() -> AsyncIterator[HistoryPiece]:
        yield HistoryPiece(b"", 0, 2)
        yield HistoryPiece(LINES[0], 1, 2)
        raise error

    saved: dict[str, bytes] = {}
    with pytest.raises(type(error)) as caught:
        await steps.export_jobs(context(broken, saved))
    assert caught.value.code == code  # type: ignore[attr-defined]
    assert saved == {}


async def test_a_history_that_ends_short_is_retried() -> None:
    async def short() -> AsyncIterator[HistoryPiece]:
        yield HistoryPiece(b"", 0, 3)
        yield HistoryPiece(LINES[0], 1, 3)

    with pytest.raises(RetryableStepError) as caught:
        await steps.export_jobs(context(short, {}))
    assert caught.value.code == "EXPORT_INCOMPLETE"


async def test_without_a_history_reader_the_step_fails_for_good() -> None:
    with pytest.raises(PermanentStepError) as caught:
        await steps.export_jobs(context(no_history, {}))
    assert caught.value.code == "HISTORY_UNAVAILABLE"
