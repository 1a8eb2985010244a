"""jobctl's view of a watched job: a live display on a terminal (the progress bar and
phase, the steps and their state, the streamed text), plain lines anywhere else."""

from __future__ import annotations

import io
import re

import pytest
from google.protobuf import duration_pb2
from rich.console import Console

from jobctl.cli import _print_job, _to_json
from jobctl.progress import TEXT_LINES, JobProgress
from jobkit.gen.jobs.v1 import jobs_pb2 as E

STEPS = ("prepare", "work", "finish")


def event(
    sequence: int,
    kind: E.JobEventType,
    text: str = "",
    attempt: int = 1,
    *,
    step: str = "work",
    status: E.JobStatus = E.JOB_STATUS_RUNNING,
    progress: int = 40,
    phase: str = "Writing...",
    message: str = "",
    retry_delay_s: float = 0.0,
) -> E.JobEvent:
    return E.JobEvent(
        sequence=sequence,
        type=kind,
        status=status,
        step=step,
        attempt=attempt,
        progress=progress,
        phase=phase,
        message=message,
        partial_output=text,
        retry_delay=duration_pb2.Duration(
            seconds=int(retry_delay_s), nanos=int(retry_delay_s % 1 * 1e9)
        ),
    )


def job(*states: E.StepStatus) -> E.Job:
    return E.Job(
        job_id="j1",
        type="noop",
        steps=[E.JobStep(name=n, status=s) for n, s in zip(STEPS, states, strict=True)],
    )


# -- plain lines (not a terminal) ------------------------------------------------------


def plain_view() -> tuple[JobProgress, io.StringIO]:
    out = io.StringIO()
    view = JobProgress(out, console=Console(file=out, force_terminal=False))
    assert not view.interactive
    return view, out


def test_a_pipe_gets_plain_lines_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    assert not JobProgress(io.StringIO()).interactive


def test_streamed_text_is_printed_once_as_it_grows() -> None:
    view, out = plain_view()
    with view:
        view.update(event(1, E.JOB_EVENT_TYPE_STEP_STARTED))
        view.update(event(2, E.JOB_EVENT_TYPE_PROGRESS, "Dear hiring"))
        view.update(event(3, E.JOB_EVENT_TYPE_PROGRESS, "Dear hiring manager,"))
        view.update(event(4, E.JOB_EVENT_TYPE_PROGRESS, "Dear hiring manager,"))  # repeated
        view.update(event(5, E.JOB_EVENT_TYPE_STEP_SUCCEEDED))
    lines = out.getvalue().splitlines()
    assert lines[0] == "#1 STEP_STARTED work attempt 1  40%  Writing..."
    assert lines[1] == "#2 PROGRESS work writing:"
    assert lines[2] == "Dear hiring manager,"  # each word once
    assert lines[3].startswith("#5 STEP_SUCCEEDED work")
    assert "\x1b" not in out.getvalue()  # no escape codes in a log


def test_a_new_attempt_starts_its_text_over() -> None:
    view, out = plain_view()
    view.update(event(1, E.JOB_EVENT_TYPE_PROGRESS, "First try"))
    view.update(event(2, E.JOB_EVENT_TYPE_STEP_RETRYING, attempt=2, message="boom"))
    view.update(event(3, E.JOB_EVENT_TYPE_PROGRESS, "Second", attempt=2))
    view.stop()
    text = out.getvalue()
    assert "First try\n#2 STEP_RETRYING work attempt 2  40%  Writing... (boom)\n" in text
    assert text.endswith("Second\n")  # the stream's line is ended when the view stops


def test_plain_lines_carry_the_phase_progress_and_failure() -> None:
    view, out = plain_view()
    view.update(event(1, E.JOB_EVENT_TYPE_CREATED, step="", progress=0, phase="Queued"))
    view.update(
        event(
            2,
            E.JOB_EVENT_TYPE_FAILED,
            step="",
            status=E.JOB_STATUS_FAILED,
            phase="Failed",
            message="NOOP_INJECTED_FAILURE: step work failed",
        )
    )
    assert out.getvalue().splitlines() == [
        "#1 CREATED    0%  Queued",
        "#2 FAILED   40%  Failed (NOOP_INJECTED_FAILURE: step work failed)",
    ]


# -- the live display (a terminal) -----------------------------------------------------


def terminal_view(width: int = 80) -> tuple[JobProgress, Console]:
    out = io.StringIO()
    console = Console(
        file=out, record=True, force_terminal=True, force_interactive=True, width=width
    )
    view = JobProgress(out, console=console)
    assert view.interactive
    return view, console


def frame(view: JobProgress, console: Console) -> str:
    """The display as it stands, as plain text."""
    console.export_text()  # drop what was recorded before
    console.print(view.renderable())
    return console.export_text()


def step_line(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if f" {name} " in line)


def test_the_display_shows_the_bar_the_phase_and_every_planned_step() -> None:
    view, console = terminal_view()
    view.plan(job(E.STEP_STATUS_PENDING, E.STEP_STATUS_PENDING, E.STEP_STATUS_PENDING), replay=True)
    view.update(event(1, E.JOB_EVENT_TYPE_STEP_STARTED, step="prepare", progress=0))
    view.update(event(2, E.JOB_EVENT_TYPE_STEP_SUCCEEDED, step="prepare", progress=33))
    view.update(event(3, E.JOB_EVENT_TYPE_STEP_STARTED, step="work", progress=33))
    text = frame(view, console)
    header = text.splitlines()[0]
    assert header.startswith("RUNNING")
    assert "━" in header
    assert " 33% Writing..." in header
    assert "✓ prepare succeeded" in step_line(text, "prepare")
    assert "work    running" in step_line(text, "work")
    assert "· finish  pending" in step_line(text, "finish")


def test_a_retrying_step_shows_the_next_attempt_and_its_delay() -> None:
    view, console = terminal_view(width=120)
    view.update(event(1, E.JOB_EVENT_TYPE_STEP_STARTED))
    view.update(
        event(
            2,
            E.JOB_EVENT_TYPE_STEP_RETRYING,
            attempt=2,
            message="attempt 1 failed (NOOP_INJECTED_FAILURE: boom); retrying in 1.50s",
            retry_delay_s=1.5,
        )
    )
    line = step_line(frame(view, console), "work")
    assert "↻ work retrying attempt 2 in 1.5s" in line
    assert "attempt 1 failed (NOOP_INJECTED_FAILURE: boom)" in line
    assert "retrying in 1.50s" not in line  # the delay is said once
    view.update(event(3, E.JOB_EVENT_TYPE_STEP_STARTED, attempt=2))
    assert "work running attempt 2" in step_line(frame(view, console), "work")


def test_failed_and_cancelled_steps_and_the_job_error() -> None:
    view, console = terminal_view(width=120)
    view.plan(job(E.STEP_STATUS_PENDING, E.STEP_STATUS_PENDING, E.STEP_STATUS_PENDING), replay=True)
    view.update(event(1, E.JOB_EVENT_TYPE_STEP_STARTED, step="prepare"))
    view.update(event(2, E.JOB_EVENT_TYPE_STEP_FAILED, step="prepare", message="bad input"))
    view.update(
        event(3, E.JOB_EVENT_TYPE_FAILED, step="", status=E.JOB_STATUS_FAILED, message="it broke")
    )
    text = frame(view, console)
    assert text.splitlines()[0].startswith("FAILED")
    assert "it broke" in text.splitlines()[0]
    assert "✗ prepare failed" in step_line(text, "prepare")
    assert "bad input" in step_line(text, "prepare")

    view, console = terminal_view()
    view.update(event(1, E.JOB_EVENT_TYPE_STEP_STARTED))
    view.update(event(2, E.JOB_EVENT_TYPE_CANCELLED, step="", status=E.JOB_STATUS_CANCELLED))
    text = frame(view, console)
    assert text.startswith("CANCELLED")
    assert "⊘ work cancelled" in text


def test_the_running_steps_text_shows_its_last_lines() -> None:
    view, console = terminal_view(width=60)
    view.update(event(1, E.JOB_EVENT_TYPE_STEP_STARTED))
    letter = "\n".join(f"line {n}" for n in range(1, 21))
    view.update(event(2, E.JOB_EVENT_TYPE_PROGRESS, letter))
    text = frame(view, console)
    assert "work · attempt 1 · running" in text
    assert "line 20" in text
    assert f"line {20 - TEXT_LINES + 2}" in text
    assert f"line {20 - TEXT_LINES + 1} " not in text
    assert f"{21 - TEXT_LINES} more lines above" in text
    # A retry starts over: the failed attempt's text is labelled so until the new one writes.
    view.update(event(3, E.JOB_EVENT_TYPE_STEP_STARTED, attempt=2))
    assert "work · attempt 1 · failed" in frame(view, console)
    view.update(event(4, E.JOB_EVENT_TYPE_PROGRESS, "Again", attempt=2))
    text = frame(view, console)
    assert "work · attempt 2 · running" in text
    assert "Again" in text
    assert "line 20" not in text
    # Once the step succeeded its whole output is in the result: the beginning goes.
    view.update(event(5, E.JOB_EVENT_TYPE_STEP_SUCCEEDED, attempt=2))
    assert "Again" not in frame(view, console)


def test_watching_later_starts_from_where_the_job_stands() -> None:
    view, console = terminal_view()
    stands = job(E.STEP_STATUS_SUCCEEDED, E.STEP_STATUS_RUNNING, E.STEP_STATUS_PENDING)
    stands.status, stands.progress, stands.phase = E.JOB_STATUS_RUNNING, 50, "Working..."
    view.plan(stands, replay=False)
    text = frame(view, console)
    assert " 50% Working..." in text.splitlines()[0]
    assert "✓ prepare succeeded" in text


def test_the_final_frame_stays_on_screen() -> None:
    view, console = terminal_view()
    with view:
        view.update(event(1, E.JOB_EVENT_TYPE_STEP_STARTED))
        view.update(event(2, E.JOB_EVENT_TYPE_PROGRESS, "Dear hiring manager,"))
        view.update(event(3, E.JOB_EVENT_TYPE_STEP_SUCCEEDED, progress=99))
        view.update(
            event(
                4,
                E.JOB_EVENT_TYPE_SUCCEEDED,
                step="",
                status=E.JOB_STATUS_SUCCEEDED,
                progress=100,
                phase="Done",
            )
        )
    assert isinstance(console.file, io.StringIO)
    written = console.file.getvalue()
    assert "\x1b[?25l" in written  # the cursor is hidden while live, and shown after
    assert written.endswith("\x1b[?25h")
    # Each frame is drawn over the last (erasing its lines): the last one drawn is final.
    last = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", written.rsplit("\x1b[2K", 1)[-1])
    assert [line.rstrip() for line in last.splitlines()[:2]] == [
        "SUCCEEDED ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 100% Done",
        "✓ work succeeded",
    ]


def test_a_result_s_whole_numbers_print_as_integers(capsys: pytest.CaptureFixture[str]) -> None:
    """A Struct holds every number as a double: counts read as 3, not 3.0, in both forms."""
    job = E.Job(job_id="j", type="bulk_import", status=E.JOB_STATUS_SUCCEEDED)
    job.result.update({"imported": 3, "rate": 0.5, "errors": [{"row": 5}]})
    _print_job(job, "text")
    text = capsys.readouterr().out
    shown = text.split("result\n", 1)[1]
    assert '"imported": 3' in shown
    assert '"row": 5' in shown
    assert '"rate": 0.5' in shown
    assert ".0" not in shown.replace("0.5", "")
    as_json = _to_json(job)
    assert as_json["result"]["imported"] == 3
    assert isinstance(as_json["result"]["imported"], int)
