"""Runs a job type's steps in order through the worker's registry, as the orchestrator
would, with every step's output round-tripped through a protobuf Struct."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format, struct_pb2

from jobtypes import CATALOG
from services.ai_worker.registry import Registry
from stepkit import PermanentStepError
from stepkit.context import ChildJob, StepContext
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

    @property
    def result(self) -> dict[str, Any]:
        return list(self.outputs.values())[-1]


async def run_steps(
    job_type: str,
    job_input: Mapping[str, Any],
    provider: ChatProvider | None = None,
    *,
    uploads: Mapping[str, bytes] | None = None,
) -> Run:
    """``uploads``: the owner's files by upload id, for steps that read them."""
    registry = Registry.of(CATALOG, provider or LocalProvider())
    run = Run()
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
            step=step,
            attempt=1,
            input=doc,
            checkpoints=dict(run.outputs),
            report_progress=progress,
            report_output=output,
            record_usage=usage,
            read_upload=read_upload,
            save_cursor=save_cursor,
        )
        handler = registry.get(job_type, step)
        assert handler is not None
        run.outputs[step] = struct_round_trip(await handler(ctx))
    return run
