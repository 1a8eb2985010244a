"""jobctl's live view: progress lines, and streamed text printed as it grows."""

from __future__ import annotations

import io

from jobctl.cli import ProgressBar
from jobkit.gen.jobs.v1 import jobs_pb2


def event(
    sequence: int, kind: jobs_pb2.JobEventType, text: str = "", attempt: int = 1
) -> jobs_pb2.JobEvent:
    return jobs_pb2.JobEvent(
        sequence=sequence,
        type=kind,
        step="work",
        attempt=attempt,
        progress=40,
        phase="Writing...",
        partial_output=text,
    )


def test_streamed_text_is_printed_once_as_it_grows() -> None:
    out = io.StringIO()
    bar = ProgressBar(out)
    bar.update(event(1, jobs_pb2.JOB_EVENT_TYPE_STEP_STARTED))
    bar.update(event(2, jobs_pb2.JOB_EVENT_TYPE_PROGRESS, "Dear hiring"))
    bar.update(event(3, jobs_pb2.JOB_EVENT_TYPE_PROGRESS, "Dear hiring manager,"))
    bar.update(event(4, jobs_pb2.JOB_EVENT_TYPE_PROGRESS, "Dear hiring manager,"))  # repeated
    bar.update(event(5, jobs_pb2.JOB_EVENT_TYPE_STEP_SUCCEEDED))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("#1 STEP_STARTED work")
    assert lines[1] == "#2 PROGRESS work writing:"
    assert lines[2] == "Dear hiring manager,"  # each word once
    assert lines[3].startswith("#5 STEP_SUCCEEDED work")


def test_a_new_attempt_starts_its_text_over() -> None:
    out = io.StringIO()
    bar = ProgressBar(out)
    bar.update(event(1, jobs_pb2.JOB_EVENT_TYPE_PROGRESS, "First try"))
    bar.update(event(2, jobs_pb2.JOB_EVENT_TYPE_STEP_RETRYING))
    bar.update(event(3, jobs_pb2.JOB_EVENT_TYPE_PROGRESS, "Second", attempt=2))
    text = out.getvalue()
    assert "First try\n" in text
    assert text.rstrip().endswith("Second")
