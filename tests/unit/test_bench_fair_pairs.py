"""The fairness phase's pairs (``bench.fair.run_interleaved``): each measurement on one
stack then the other, and a mode that fails stopped at once while the other goes on.
The stacks and measurements here are stand-ins that record what was done to them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bench import fair
from bench.fair import FAIR, FIFO, MEASUREMENTS, run_interleaved


class Recorder:
    def __init__(self, fail_at: dict[str, str] | None = None) -> None:
        #: What happened, in order: ("up" | "down" | a measurement | "start", mode).
        self.done: list[tuple[str, str]] = []
        #: mode -> the step at which it raises ("up", "start", a measurement, "down").
        self.fail_at = fail_at or {}

    def step(self, what: str, mode: str) -> None:
        self.done.append((what, mode))
        if self.fail_at.get(mode) == what:
            raise RuntimeError(f"{mode} failed at {what}")


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()

    @contextlib.asynccontextmanager
    async def fake_stack(_config: Any, _root: Path, mode: str, _say: Any) -> AsyncIterator[str]:
        rec.step("up", mode)
        try:
            yield mode
        finally:
            rec.step("down", mode)

    class FakeRun:
        def __init__(self, _config: Any, mode: str, *_: Any) -> None:
            self.mode = mode

        async def start(self) -> None:
            rec.step("start", self.mode)

        async def stop(self) -> None:
            pass

        async def measure(self, name: str) -> None:
            rec.step(name, self.mode)

        def result(self) -> str:
            return self.mode

    monkeypatch.setattr(fair, "fair_stack", fake_stack)
    monkeypatch.setattr(fair, "ModeRun", FakeRun)
    return rec


async def run(rec: Recorder, modes: tuple[str, ...]) -> tuple[list[Any], list[str]]:
    failures: list[str] = []
    results = await run_interleaved(
        None,  # type: ignore[arg-type]
        Path("unused"),
        modes,
        lambda _: None,
        None,  # type: ignore[arg-type]
        on_failure=lambda mode, error: failures.append(f"{mode}: {error}"),
    )
    return results, failures


async def test_each_measurement_is_taken_on_one_stack_then_the_other(recorder: Recorder) -> None:
    results, failures = await run(recorder, (FIFO, FAIR))
    assert results == [FIFO, FAIR]
    assert failures == []
    measured = [d for d in recorder.done if d[0] in MEASUREMENTS]
    assert measured == [(name, mode) for name in MEASUREMENTS for mode in (FIFO, FAIR)]
    # Both stacks up before the first measurement, both down after the last.
    first = recorder.done.index(measured[0])
    assert {("up", FAIR), ("up", FIFO)} <= set(recorder.done[:first])
    assert recorder.done[-2:] in (
        [("down", FIFO), ("down", FAIR)],
        [("down", FAIR), ("down", FIFO)],
    )


async def test_a_mode_that_fails_is_stopped_at_once_and_the_other_goes_on(
    recorder: Recorder,
) -> None:
    recorder.fail_at = {FAIR: "many"}
    results, failures = await run(recorder, (FAIR, FIFO))
    assert results == [FIFO]
    assert failures == [f"{FAIR}: {FAIR} failed at many"]
    # Its stack went down before the other's next measurement, not at the end.
    down = recorder.done.index(("down", FAIR))
    assert recorder.done[down + 1] == ("many", FIFO)
    assert [d for d in recorder.done if d[1] == FIFO and d[0] in MEASUREMENTS] == [
        (name, FIFO) for name in MEASUREMENTS
    ]


async def test_a_stack_that_fails_to_start_leaves_the_other_to_run(recorder: Recorder) -> None:
    recorder.fail_at = {FIFO: "start"}
    results, failures = await run(recorder, (FIFO, FAIR))
    assert results == [FAIR]
    assert failures == [f"{FIFO}: {FIFO} failed at start"]
    assert recorder.done.index(("down", FIFO)) < recorder.done.index(("up", FAIR))


async def test_a_stack_that_fails_to_stop_keeps_its_figures_and_is_reported(
    recorder: Recorder,
) -> None:
    recorder.fail_at = {FIFO: "down"}
    results, failures = await run(recorder, (FAIR, FIFO))
    assert results == [FAIR, FIFO]
    assert failures == [f"{FIFO}: {FIFO} failed at down"]
    assert ("down", FAIR) in recorder.done


async def test_without_on_failure_a_failure_raises_and_every_stack_goes_down(
    recorder: Recorder,
) -> None:
    recorder.fail_at = {FIFO: "idle"}
    with pytest.raises(RuntimeError, match="failed at idle"):
        await run_interleaved(
            None,  # type: ignore[arg-type]
            Path("unused"),
            (FAIR, FIFO),
            lambda _: None,
            None,  # type: ignore[arg-type]
        )
    assert ("down", FAIR) in recorder.done
    assert ("down", FIFO) in recorder.done
