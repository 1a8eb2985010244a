"""The steps of ``noop``: each waits ``input.sleep_ms`` per step and fails each step
``input.fail_attempts`` times with a retryable error first; with ``input.write``, streams
that text word by word across the wait, the way a model writes. Used by diagnostics, tests
and benchmarks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from jobtypes.noop.spec import ASK_SCHEMA, FINISH, PREPARE, WORK
from stepkit import ChatProvider, Handler, RetryableStepError, StepContext


async def run_noop_step(ctx: StepContext) -> dict[str, Any]:
    fail_attempts = int(ctx.input.get("fail_attempts", 0) or 0)
    sleep_ms = float(ctx.input.get("sleep_ms", 0) or 0)
    text = str(ctx.input.get("write", "") or "")
    if text:
        words = text.split(" ")
        for n in range(1, len(words) + 1):
            await asyncio.sleep(sleep_ms / 1000 / len(words))
            await ctx.report_output(" ".join(words[:n]))
    elif sleep_ms > 0:
        # Report half-way so a watcher sees progress inside a long step.
        await asyncio.sleep(sleep_ms / 2000)
        await ctx.report_progress(50)
        await asyncio.sleep(sleep_ms / 2000)
    tokens = int(ctx.input.get("tokens", 0) or 0)
    if tokens:
        # Usage accounting without a model: what budgets and dashboards are tested with.
        ctx.record_usage("noop", tokens, tokens // 2)
    counted_from = await count(ctx, int(ctx.input.get("count_to", 0) or 0))
    if ctx.attempt <= fail_attempts:
        raise RetryableStepError(
            "NOOP_INJECTED_FAILURE",
            f"injected failure {ctx.attempt} of {fail_attempts}",
        )
    if ctx.step == WORK and ctx.input.get("ask"):
        timeout_s = ctx.input.get("ask_timeout_s")
        ctx.request_input(
            "Continue?",
            ASK_SCHEMA,
            draft={"continue": True},
            timeout_s=float(timeout_s) if timeout_s else None,
        )
    output: dict[str, Any] = {"step": ctx.step, "attempt": ctx.attempt, "slept_ms": sleep_ms}
    if text:
        output["written"] = text
    if counted_from is not None:
        output["counted_from"] = counted_from
    size = int(ctx.input.get("artifact_bytes", 0) or 0)
    if size and ctx.step == FINISH:
        output["artifacts"] = [
            await ctx.save_artifact("noop.bin", "application/octet-stream", noop_bytes(size))
        ]
    return output


async def count(ctx: StepContext, to: int) -> int | None:
    """Count to ``to``, saving the count as the step's cursor after each; an attempt that
    finds a cursor resumes from it. Returns where this attempt started (``None``: no
    counting asked)."""
    if not to:
        return None
    start = int((ctx.cursor or {}).get("counted", 0))
    for n in range(start, to):
        await ctx.save_cursor({"counted": n + 1})
    return start


#: The pieces ``noop_bytes`` makes: the size a real step would stream in.
PIECE = 64 * 1024


async def noop_bytes(size: int) -> AsyncIterator[bytes]:
    """``size`` bytes that differ from piece to piece (each starts with its number), made
    as they are sent: nothing the size of the whole is ever held."""
    pattern = bytes(range(256)) * (PIECE // 256)
    for start in range(0, size, PIECE):
        piece = (f"{start // PIECE:016d}".encode() + pattern)[: min(PIECE, size - start)]
        yield piece


def handlers(provider: ChatProvider) -> dict[str, Handler]:
    """Every step does the same: there is no model to ask."""
    return {PREPARE: run_noop_step, WORK: run_noop_step, FINISH: run_noop_step}
