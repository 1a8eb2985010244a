"""Runs a job type's steps in order through the worker's registry, as the orchestrator
would, with every step's output round-tripped through a protobuf Struct."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format, struct_pb2

from jobtypes import CATALOG
from services.ai_worker.registry import Registry
from stepkit import PermanentStepError
from stepkit.context import ChildJob, HistoryPiece, StepContext
from stepkit.providers import ChatProvider, LocalProvider


def struct_round_trip(data: Mapping[str, Any]) -> dict[str, Any]:
    struct = struct_pb2.Struct()
    struct.update(dict(data))
    out: dict[str, Any] = json_format.MessageToDict(struct)
    return out


@dataclass
class Run:
    """What a pipeline run saw: step outputs, progress reports and partial output."""

    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    progress: list[tuple[str, int, str]] = field(default_factory=list)
    partial: dict[str, list[str]] = field(default_factory=dict)
    usage: list[tuple[str, str, int, int]] = field(default_factory=list)
    #: Each cursor saved, with the jobs created with it.
    cursors: list[tuple[dict[str, Any], list[ChildJob]]] = field(default_factory=list)
    #: Artifacts saved, by name: their bytes (kept in memory, as no worker would).
    artifacts: dict[str, bytes] = field(default_factory=dict)

    @property
    def result(self) -> dict[str, Any]:
        return list(self.outputs.values())[-1]


def history_of(lines: Sequence[bytes], piece_bytes: int = 64) -> Any:
    """An ``export_history`` that streams ``lines`` (an owner's jobs as JSON Lines) in
    pieces of ``piece_bytes``, as job_api's ExportService would: the total first."""

    async def read() -> AsyncIterator[HistoryPiece]:
        yield HistoryPiece(b"", 0, len(lines))
        data, ends = b"".join(lines), list[int]()
        for line in lines:
            ends.append((ends[-1] if ends else 0) + len(line))
        for start in range(0, len(data), piece_bytes):
            end = min(start + piece_bytes, len(data))
            done = sum(1 for e in ends if e <= end)
            yield HistoryPiece(data[start:end], done, len(lines))

    return read


async def run_steps(
    job_type: str,
    job_input: Mapping[str, Any],
    provider: ChatProvider | None = None,
    *,
    uploads: Mapping[str, bytes] | None = None,
    history: Sequence[bytes] = (),
) -> Run:
    """Every step of ``job_type`` in order; artifacts are kept in memory, a step that reads
    an upload finds it in ``uploads`` (the owner's files by upload id), and a step that
    reads its owner's history is given ``history`` (none by default)."""
    registry = Registry.of(CATALOG, provider or LocalProvider())
    run = Run()

    async def save_artifact(
        name: str, content_type: str, chunks: AsyncIterable[bytes]
    ) -> dict[str, Any]:
        data = b"".join([c async for c in chunks])
        run.artifacts[name] = data
        digest = hashlib.sha256(data).hexdigest()
        return {"name": name, "content_type": content_type, "size": len(data), "sha256": digest}

    doc = struct_round_trip(job_input)

    async def read_upload(upload_id: str) -> AsyncIterator[bytes]:
        data = (uploads or {}).get(upload_id)
        if data is None:
            raise PermanentStepError("UPLOAD_NOT_FOUND", "no such upload")
        for start in range(0, len(data), 1000):  # in pieces that split lines
            yield data[start : start + 1000]

    async def save_cursor(cursor: Mapping[str, Any], children: Sequence[ChildJob] = ()) -> None:
        run.cursors.append((struct_round_trip(cursor), list(children)))

    for step in CATALOG[job_type].step_names:

        async def progress(percent: int, phase: str = "", step: str = step) -> None:
            run.progress.append((step, percent, phase))

        async def output(text_so_far: str, step: str = step) -> None:
            run.partial.setdefault(step, []).append(text_so_far)

        def usage(
            model: str,
            prompt_tokens: int,
            completion_tokens: int,
            prompt_id: str = "",
            step: str = step,
        ) -> None:
            run.usage.append((step, model, prompt_tokens, completion_tokens))

        ctx = StepContext(
            job_id="job-1",
            job_type=job_type,
            type_version=CATALOG[job_type].version,
            step=step,
            attempt=1,
            input=doc,
            checkpoints=dict(run.outputs),
            report_progress=progress,
            report_output=output,
            record_usage=usage,
            read_upload=read_upload,
            save_cursor=save_cursor,
            save_artifact=save_artifact,
            export_history=history_of(history),
        )
        handler = registry.get(job_type, step)
        assert handler is not None
        run.outputs[step] = struct_round_trip(await handler(ctx))
    return run
