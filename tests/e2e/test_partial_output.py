"""A step that streams text (as a model writes) shows it through WatchJob while it is being
written, durably: a client that reconnects, or comes later, replays the same text."""

from __future__ import annotations

import itertools

import pytest

from jobctl.client import JobsClient
from jobkit.convert import struct_to_dict
from jobkit.gen.jobs.v1 import jobs_pb2

pytestmark = pytest.mark.e2e

LETTER = " ".join(f"word{n}" for n in range(40))


async def test_streamed_text_is_watched_live_and_replayed(alice: JobsClient) -> None:
    job = await alice.create_job("noop", {"sleep_ms": 1200, "write": LETTER})
    live = [e async for e in alice.watch(job.job_id)]
    assert live[-1].type == jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED
    streamed = [e for e in live if e.partial_output]
    for step in ("prepare", "work", "finish"):
        texts = [e.partial_output for e in streamed if e.step == step]
        # About one every 250 ms over 1.2 s of writing, each continuing the one before.
        assert 2 <= len(texts) <= 8, (step, len(texts))
        assert all(b.startswith(a) and len(b) > len(a) for a, b in itertools.pairwise(texts))
        assert LETTER.startswith(texts[-1])
        assert all(e.type == jobs_pb2.JOB_EVENT_TYPE_PROGRESS for e in streamed)
    # The whole text is in the step's output.
    final = await alice.get_job(job.job_id)
    assert struct_to_dict(final.result)["written"] == LETTER

    # Durable: a client arriving afterwards replays exactly the same text, and one that
    # reconnects half-way gets the rest.
    replay = [e async for e in alice.watch(job.job_id)]
    assert [(e.sequence, e.partial_output) for e in replay] == [
        (e.sequence, e.partial_output) for e in live
    ]
    middle = streamed[len(streamed) // 2].sequence
    rest = [e async for e in alice.watch(job.job_id, middle)]
    assert [e.sequence for e in rest] == [e.sequence for e in live if e.sequence > middle]
