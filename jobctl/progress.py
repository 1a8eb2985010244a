"""jobctl's view of a job's events while it is watched.

On a terminal: a live ``rich`` display — a progress bar with the percentage and the phase,
the steps with their state (pending, running, retrying with the attempt and the delay,
succeeded, failed, cancelled), and the last lines of the text a step streams (a model
writing), redrawn on each event; the final state stays on screen. Anywhere else (a pipe,
a log, a dumb terminal): one plain line per event, and streamed text printed as it grows.

A step waiting for a person shows what it asks and the ``jobctl answer`` command that
answers it, in both forms; the watch goes on, and carries on with the job once answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import TextIO

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from jobctl.transport import TERMINAL_EVENT_TYPES
from jobctl.waiting import answer_hint
from jobkit.gen.jobs.v1 import jobs_pb2

E = jobs_pb2
#: How a step state is shown: marker and style.
_STATE_STYLE = {
    "pending": ("·", "dim"),
    "running": ("", "cyan"),  # a spinner
    "retrying": ("↻", "yellow"),
    "succeeded": ("✓", "green"),
    "failed": ("✗", "red"),
    "cancelled": ("⊘", "magenta"),
    "waiting": ("?", "bold blue"),
}
_STATUS_STYLE = {
    E.JOB_STATUS_QUEUED: "dim",
    E.JOB_STATUS_RUNNING: "cyan",
    E.JOB_STATUS_SUCCEEDED: "green",
    E.JOB_STATUS_FAILED: "red",
    E.JOB_STATUS_CANCELLED: "magenta",
    E.JOB_STATUS_WAITING_INPUT: "blue",
}
_STEP_STATE = {
    E.STEP_STATUS_PENDING: "pending",
    E.STEP_STATUS_RUNNING: "running",
    E.STEP_STATUS_RETRYING: "retrying",
    E.STEP_STATUS_SUCCEEDED: "succeeded",
    E.STEP_STATUS_FAILED: "failed",
    E.STEP_STATUS_CANCELLED: "cancelled",
    E.STEP_STATUS_WAITING_INPUT: "waiting",
}
#: Lines of streamed text kept on screen.
TEXT_LINES = 8


def _kind(event: jobs_pb2.JobEvent) -> str:
    return jobs_pb2.JobEventType.Name(event.type).removeprefix("JOB_EVENT_TYPE_")


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


@dataclass
class _Step:
    state: str = "pending"
    attempt: int = 0
    retry_delay_s: float = 0.0
    message: str = ""
    #: While it waits for input: what it asks.
    request: jobs_pb2.InputRequest | None = None


class _Tail:
    """The last ``lines`` lines of a text as wrapped at the width it is drawn at."""

    def __init__(self, text: str, lines: int) -> None:
        self.text = text
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        wrapped = Text(self.text).wrap(console, options.max_width)
        hidden = len(wrapped) - (self.lines - 1)  # a line says how many are hidden
        if len(wrapped) > self.lines:
            yield Text(f"… {hidden} more line{'s' * (hidden != 1)} above", style="dim italic")
            yield from wrapped[-(self.lines - 1) :]
        else:
            yield from wrapped


class JobProgress:
    """Shows a job's events as they arrive: ``with JobProgress(out) as view:
    view.update(event)``. ``plan(job)`` lists the job's steps up front; else a step is
    listed when an event first names it."""

    def __init__(
        self,
        out: TextIO,
        *,
        console: Console | None = None,
        job_id: str = "",
    ) -> None:
        self._out = out
        #: For the command that answers a waiting step (else each event's own job_id).
        self._job_id = job_id
        self.console = console or Console(file=out)
        #: A live display (a terminal that is not dumb), or plain lines.
        self.interactive = self.console.is_interactive
        self._steps: dict[str, _Step] = {}
        self._status = E.JOB_STATUS_QUEUED
        self._progress = 0
        self._phase = ""
        self._message = ""
        #: The latest streamed text: its step and attempt, and the text.
        self._text_key: tuple[str, int] | None = None
        self._text = ""
        # Plain mode: the text printed so far, per (step, attempt), and whether the last
        # thing printed was streamed text (not ended by a newline yet).
        self._shown: dict[tuple[str, int], str] = {}
        self._streaming = False
        self._live: Live | None = None

    def plan(self, job: jobs_pb2.Job, *, replay: bool) -> None:
        """Start from ``job``: its steps listed, all pending if its events are replayed
        from the first (they tell each step's story), else as the job stands."""
        self._job_id = self._job_id or job.job_id
        for s in job.steps:
            state = "pending" if replay else _STEP_STATE.get(s.status, "pending")
            self._steps[s.name] = _Step(state, 0 if replay else s.attempt)
            if state == "waiting":
                self._steps[s.name].request = s.input_request
        if not replay:
            self._status, self._progress, self._phase = job.status, job.progress, job.phase
            self._message = job.error.message

    def __enter__(self) -> JobProgress:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self.interactive and self._live is None:
            self._live = Live(
                self.renderable(),
                console=self.console,
                refresh_per_second=8,  # only the spinner; each event redraws at once
                vertical_overflow="ellipsis",
            )
            self._live.start()

    def stop(self) -> None:
        """End the display: the live one's last frame stays on screen."""
        if self._live is not None:
            self._live.update(self.renderable())
            self._live.stop()
            self._live = None
        elif self._streaming:
            self._out.write("\n")
            self._out.flush()
            self._streaming = False

    def update(self, event: jobs_pb2.JobEvent) -> None:
        self._apply(event)
        if not self.interactive:
            self._print_plain(event)
            return
        self.start()
        assert self._live is not None
        self._live.update(self.renderable(), refresh=True)

    # -- state -------------------------------------------------------------------------

    def _apply(self, event: jobs_pb2.JobEvent) -> None:
        if event.status:
            self._status = event.status
        self._progress = event.progress
        self._phase = event.phase or self._phase
        kind = event.type
        if kind in TERMINAL_EVENT_TYPES:
            self._message = event.message
            if kind == E.JOB_EVENT_TYPE_CANCELLED:
                for step in self._steps.values():
                    if step.state in ("running", "retrying"):
                        step.state = "cancelled"
        self._job_id = self._job_id or event.job_id
        if not event.step:
            return
        step = self._steps.setdefault(event.step, _Step())
        if event.attempt:
            step.attempt = event.attempt
        step.request = None
        if kind == E.JOB_EVENT_TYPE_INPUT_REQUIRED:
            step.state, step.message, step.request = "waiting", "", event.input_request
        elif kind in (E.JOB_EVENT_TYPE_STEP_STARTED, E.JOB_EVENT_TYPE_PROGRESS):
            step.state, step.message = "running", ""
        elif kind == E.JOB_EVENT_TYPE_STEP_SUCCEEDED:
            step.state, step.message = "succeeded", ""
        elif kind == E.JOB_EVENT_TYPE_STEP_RETRYING:
            step.state, step.message = "retrying", event.message
            step.retry_delay_s = event.retry_delay.ToTimedelta().total_seconds()
        elif kind == E.JOB_EVENT_TYPE_STEP_FAILED:
            step.state, step.message = "failed", event.message
        if event.partial_output:
            self._text_key = (event.step, event.attempt)
            self._text = event.partial_output

    # -- terminal ----------------------------------------------------------------------

    def renderable(self) -> RenderableType:
        """What the live display shows now (also what tests render)."""
        parts: list[RenderableType] = [self._header()]
        if self._steps:
            parts.append(self._step_table())
        panel = self._text_panel()
        if panel is not None:
            parts.append(panel)
        parts += [self._input_panel(name, request) for name, request in self._waiting()]
        return Group(*parts)

    def _waiting(self) -> list[tuple[str, jobs_pb2.InputRequest]]:
        """The steps waiting for input, with what each asks."""
        return [
            (name, step.request)
            for name, step in self._steps.items()
            if step.state == "waiting" and step.request is not None
        ]

    def _hint(self, name: str, request: jobs_pb2.InputRequest) -> str:
        several = len(self._waiting()) > 1
        return answer_hint(self._job_id or "JOB_ID", name, request, name_step=several)

    def _input_panel(self, name: str, request: jobs_pb2.InputRequest) -> RenderableType:
        """What a waiting step asks, and how to answer it."""
        body = Text(request.prompt or "(no prompt)")
        if request.HasField("draft"):
            body.append(f"\nThe draft: jobctl get {self._job_id or 'JOB_ID'}", style="dim")
        body.append("\nAnswer: ", style="bold")
        body.append(self._hint(name, request))
        return Panel(
            body,
            title=f"{name} · waiting for you",
            title_align="left",
            border_style="blue",
        )

    def _text_panel(self) -> RenderableType | None:
        """The last lines a step streamed. Once the step succeeded they go: its whole
        output is in the job's result, and what it streamed was only a beginning."""
        if self._text_key is None or not self._text:
            return None
        name, attempt = self._text_key
        step = self._steps[name]
        state = "failed" if attempt < step.attempt else step.state  # an earlier attempt's
        if state == "succeeded":
            return None
        return Panel(
            _Tail(self._text, TEXT_LINES),
            title=f"{name} · attempt {attempt} · {state}",
            title_align="left",
            border_style="dim",
        )

    def _header(self) -> RenderableType:
        status = jobs_pb2.JobStatus.Name(self._status).removeprefix("JOB_STATUS_")
        style = _STATUS_STYLE.get(self._status, "")
        done = self._status == E.JOB_STATUS_SUCCEEDED
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_column(justify="right", no_wrap=True)
        grid.add_column(ratio=1)
        phase = Text(self._phase)
        if self._message:
            phase.append(f"  {self._message}", style=style)
        grid.add_row(
            Text(f"{status:<9}", style=f"bold {style}"),
            ProgressBar(
                total=100,
                completed=self._progress,
                width=30,
                complete_style=style or "bar.complete",
                finished_style="green" if done else style or "bar.finished",
            ),
            Text(f"{self._progress:3d}%"),
            phase,
        )
        return grid

    def _step_table(self) -> RenderableType:
        table = Table.grid(padding=(0, 1))
        table.add_column(width=1, no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(ratio=1)
        for name, step in self._steps.items():
            marker, style = _STATE_STYLE[step.state]
            icon: RenderableType = (
                Spinner("dots", style=style) if step.state == "running" else Text(marker, style)
            )
            detail = Text(style="dim")
            message = step.message
            if step.state == "retrying":
                # The server's message ends with the delay too: say it once.
                detail.append(f"attempt {step.attempt} in {_duration(step.retry_delay_s)}")
                message = message.split("; retrying in ")[0]
            elif step.attempt > 1:
                detail.append(f"attempt {step.attempt}")
            if message:
                detail.append(f"  {message}", style="red" if step.state == "failed" else "")
            table.add_row(
                icon,
                Text(name, style="bold" if step.state == "running" else ""),
                Text("waiting for you" if step.state == "waiting" else step.state, style=style),
                detail,
            )
        return table

    # -- plain lines -------------------------------------------------------------------

    def _print_plain(self, event: jobs_pb2.JobEvent) -> None:
        if event.partial_output:
            self._print_text(event)
            return
        if self._streaming:
            self._out.write("\n")
            self._streaming = False
        detail = event.phase or _kind(event).lower()
        if event.message:
            detail += f" ({event.message})"
        attempt = f" attempt {event.attempt}" if event.step and event.attempt else ""
        self._out.write(
            f"#{event.sequence} {_kind(event)} {event.step}{attempt} "
            f"{event.progress:3d}%  {detail}\n"
        )
        if event.type == E.JOB_EVENT_TYPE_INPUT_REQUIRED:
            request = event.input_request
            self._out.write(f"  {event.step} asks: {request.prompt or '(no prompt)'}\n")
            if request.HasField("draft"):
                self._out.write(f"  the draft: jobctl get {self._job_id or event.job_id}\n")
            self._out.write(f"  answer: {self._hint(event.step, request)}\n")
        self._out.flush()

    def _print_text(self, event: jobs_pb2.JobEvent) -> None:
        key = (event.step, event.attempt)
        shown = self._shown.get(key, "")
        text = event.partial_output
        # Each event has the whole text so far: print what is new. A text that does not
        # continue the one shown (a retried attempt starting over) is printed whole.
        new = text[len(shown) :] if text.startswith(shown) else "\n" + text
        self._shown[key] = text
        if not self._streaming:
            self._streaming = True
            self._out.write(f"#{event.sequence} PROGRESS {event.step} writing:\n")
            if not shown:
                new = new.lstrip("\n")
        self._out.write(new)
        self._out.flush()
