"""AttemptProgress: progress at once, streamed text at a bounded rate, newest text wins."""

from __future__ import annotations

import asyncio
import itertools

from jobkit.gen.jobs.internal.v1 import worker_pb2
from services.ai_worker.progress import AttemptProgress


def recorder() -> tuple[list[worker_pb2.StepProgress], AttemptProgress]:
    sent: list[worker_pb2.StepProgress] = []

    async def send(report: worker_pb2.StepProgress) -> None:
        sent.append(report)

    return sent, AttemptProgress(send, output_interval_s=0.1)


async def test_progress_goes_out_at_once() -> None:
    sent, progress = recorder()
    await progress.progress(40, "Writing...")
    assert [(r.percent, r.phase, r.partial_output) for r in sent] == [(40, "Writing...", "")]


async def test_a_step_that_writes_quickly_sends_no_text() -> None:
    sent, progress = recorder()
    for text in ("Dear", "Dear hiring", "Dear hiring manager"):
        await progress.output(text)
    progress.close()  # the step returned: its result has the text
    await asyncio.sleep(0.15)
    assert sent == []


async def test_streamed_text_is_sent_at_most_once_an_interval_newest_first() -> None:
    sent, progress = recorder()
    await progress.progress(10, "Writing the letter...")
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    for n in range(1, len(words) + 1):
        await progress.output(" ".join(words[:n]))
        await asyncio.sleep(0.03)  # 0.3 s of writing
    await asyncio.sleep(0.12)
    progress.close()
    texts = [r.partial_output for r in sent[1:]]
    assert 2 <= len(texts) <= 4  # about one per 0.1 s, not one per word
    assert texts[-1] == " ".join(words)  # the newest text always goes out in the end
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts))
    assert all(r.percent == 10 and r.phase == "Writing the letter..." for r in sent[1:])
