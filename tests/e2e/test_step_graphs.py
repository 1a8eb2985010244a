"""Parallel steps and waiting for a person, against the whole stack.

cv_tailoring writes the CV and the cover letter at the same time (both started before
either finished, in the event log); with ``review: true`` its CV step, once the CV is
drafted, waits for its owner: an invalid answer is refused and changes nothing, another user
cannot answer, a valid one resumes the job, and the wait outlives an orchestrator killed
mid-wait."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from devstack import Stack
from jobctl.client import JobsClient
from jobctl.transport import Scheduling
from jobkit.convert import struct_to_dict
from jobkit.gen.jobs.v1 import jobs_pb2
from tests.e2e.test_job_path import assert_contiguous, watch_all

pytestmark = pytest.mark.e2e

E = jobs_pb2
EXAMPLE = json.loads(
    (Path(__file__).parents[2] / "jobtypes" / "cv_tailoring" / "example.json").read_text()
)["input"]


async def until_input_required(
    client: JobsClient, job_id: str, after: int = 0
) -> list[jobs_pb2.JobEvent]:
    """The job's events after ``after`` up to the first INPUT_REQUIRED."""
    seen: list[jobs_pb2.JobEvent] = []
    async for event in client.watch(job_id, after):
        seen.append(event)
        if event.type == E.JOB_EVENT_TYPE_INPUT_REQUIRED:
            return seen
        assert event.type not in (E.JOB_EVENT_TYPE_FAILED, E.JOB_EVENT_TYPE_CANCELLED), event
    raise AssertionError("the job ended without asking for input")


async def test_the_cv_and_the_cover_letter_are_written_in_parallel(alice: JobsClient) -> None:
    job = await alice.create_job("cv_tailoring", EXAMPLE)
    events = await watch_all(alice, job.job_id)
    assert_contiguous(events)
    assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED
    where = {(e.type, e.step): i for i, e in reversed(list(enumerate(events)))}
    started = [
        where[(E.JOB_EVENT_TYPE_STEP_STARTED, s)] for s in ("tailor_cv", "write_cover_letter")
    ]
    finished = [
        where[(E.JOB_EVENT_TYPE_STEP_SUCCEEDED, s)] for s in ("tailor_cv", "write_cover_letter")
    ]
    assert max(started) < min(finished)  # both started before either finished
    assert "Generating tailored CV and cover letter..." in {e.phase for e in events}
    # render_preview waited for both.
    render = where[(E.JOB_EVENT_TYPE_STEP_STARTED, "render_preview")]
    assert render > max(finished)
    progress = [e.progress for e in events]
    assert progress == sorted(progress)
    # The seed's marks: 10, 25, 50 (the CV and the letter start), 95 (the preview), 100.
    assert {10, 25, 50, 95, 100} <= set(progress)
    done = await alice.get_job(job.job_id)
    assert done.type_version == 3
    assert [(s.name, s.status) for s in done.steps] == [
        (name, E.STEP_STATUS_SUCCEEDED)
        for name in (
            "load_profile",
            "analyze_posting",
            "tailor_cv",
            "write_cover_letter",
            "render_preview",
        )
    ]
    graph = {t.name: {s.name: list(s.after) for s in t.graph} for t in await alice.list_job_types()}
    assert graph["cv_tailoring"]["render_preview"] == ["tailor_cv", "write_cover_letter"]


async def test_a_review_waits_for_its_owner_refuses_a_bad_answer_and_takes_an_edit(
    alice: JobsClient, bob: JobsClient
) -> None:
    job = await alice.create_job("cv_tailoring", {**EXAMPLE, "review": True})
    events = await until_input_required(alice, job.job_id)
    asked = events[-1]
    assert (asked.step, asked.status) == ("tailor_cv", E.JOB_STATUS_WAITING_INPUT)
    assert "approve" in asked.input_request.prompt
    draft = struct_to_dict(asked.input_request.draft)["tailored_cv"]
    assert draft["name"] == EXAMPLE["resume"]["name"]
    schema = struct_to_dict(asked.input_request.schema)
    assert set(schema["properties"]) == {"approved", "tailored_cv"}

    waiting = await alice.get_job(job.job_id)
    assert waiting.status == E.JOB_STATUS_WAITING_INPUT
    (step,) = [s for s in waiting.steps if s.status == E.STEP_STATUS_WAITING_INPUT]
    assert step.name == "tailor_cv"
    assert step.input_request.prompt == asked.input_request.prompt

    # An answer the schema refuses changes nothing.
    for wrong, field in (
        ({"approved": False}, "input.approved"),
        ({"tailored_cv": {"skills": "Python"}}, "input.tailored_cv.skills"),
        ({"maybe": True}, "input"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await alice.submit_input(job.job_id, "tailor_cv", wrong)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (refused.value.details() or "")
    # Another user's answer finds no job; a step not waiting is refused.
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await bob.submit_input(job.job_id, "tailor_cv", {"approved": True})
    assert foreign.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as early:
        await alice.submit_input(job.job_id, "render_preview", {"approved": True})
    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    still = await alice.get_job(job.job_id)
    assert still.status == E.JOB_STATUS_WAITING_INPUT
    assert still.updated_at == waiting.updated_at

    # Only the member changed: the rest of the draft stands.
    edited = {"summary": "Edited by hand: a backend engineer who ships."}
    answered = await alice.submit_input(job.job_id, "tailor_cv", {"tailored_cv": edited})
    assert answered.status in (E.JOB_STATUS_RUNNING, E.JOB_STATUS_SUCCEEDED)
    rest = await watch_all(alice, job.job_id, after=asked.sequence)
    assert rest[0].type == E.JOB_EVENT_TYPE_STEP_SUCCEEDED
    assert (rest[0].step, rest[0].message) == ("tailor_cv", "answered")
    assert rest[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED
    assert_contiguous(events + rest)
    result = struct_to_dict((await alice.get_job(job.job_id)).result)
    assert result["tailored_cv"] == {**draft, **edited}
    assert edited["summary"] in result["preview_markdown"]
    # Answered once: a second answer is refused.
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await alice.submit_input(job.job_id, "tailor_cv", {"approved": True})
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_wait_outlives_an_orchestrator_killed_while_it_waits(
    alice: JobsClient, stack: Stack
) -> None:
    job = await alice.create_job("cv_tailoring", {**EXAMPLE, "review": True})
    asked = (await until_input_required(alice, job.job_id))[-1]
    orchestrator = stack.services["orchestrator"]
    orchestrator.kill()
    orchestrator.start()
    assert (await alice.get_job(job.job_id)).status == E.JOB_STATUS_WAITING_INPUT
    await alice.submit_input(job.job_id, "tailor_cv", {"approved": True})
    rest = await watch_all(alice, job.job_id, after=asked.sequence)
    assert rest[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED
    draft = struct_to_dict(asked.input_request.draft)["tailored_cv"]
    result = struct_to_dict((await alice.get_job(job.job_id)).result)
    assert result["tailored_cv"] == draft  # approved as it was


async def test_a_waiting_job_can_be_cancelled_and_retried_into_a_new_wait(
    alice: JobsClient,
) -> None:
    job = await alice.create_job("cv_tailoring", {**EXAMPLE, "review": True})
    first = await until_input_required(alice, job.job_id)
    cancelled = await alice.cancel_job(job.job_id)
    assert cancelled.status == E.JOB_STATUS_CANCELLED
    assert {s.name: s.status for s in cancelled.steps}["tailor_cv"] == E.STEP_STATUS_CANCELLED
    await alice.retry_job(job.job_id)
    # After the wait (its INPUT_REQUIRED) came the CANCELLED event, then the retry.
    second = await until_input_required(alice, job.job_id, after=first[-1].sequence + 1)
    assert second[-1].step == "tailor_cv"
    # The CV's step asks again, with the draft it kept (its cursor), not a CV written anew;
    # the steps before it keep their checkpoints.
    assert second[-1].input_request.draft == first[-1].input_request.draft
    started = [e.step for e in second if e.type == E.JOB_EVENT_TYPE_STEP_STARTED]
    assert "tailor_cv" in started
    assert "analyze_posting" not in started
    await alice.cancel_job(job.job_id)


async def test_a_wait_that_nobody_answers_in_time_fails_the_job(alice: JobsClient) -> None:
    job = await alice.create_job("noop", {"ask": True, "ask_timeout_s": 1})
    asked = (await until_input_required(alice, job.job_id))[-1]
    assert asked.step == "work"
    expires_at = asked.input_request.expires_at.ToDatetime()
    assert expires_at > asked.occurred_at.ToDatetime()
    rest = await watch_all(alice, job.job_id, after=asked.sequence)
    assert [e.type for e in rest] == [E.JOB_EVENT_TYPE_STEP_FAILED, E.JOB_EVENT_TYPE_FAILED]
    failed = await alice.get_job(job.job_id)
    assert failed.error.code == "INPUT_TIMEOUT"
    assert {s.name: s.status for s in failed.steps}["work"] == E.STEP_STATUS_FAILED
    # Too late to answer; a retry asks again.
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await alice.submit_input(job.job_id, "work", {"continue": True})
    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await alice.retry_job(job.job_id)
    again = await until_input_required(alice, job.job_id, after=rest[-1].sequence)
    await alice.submit_input(job.job_id, "work", {"continue": True})
    done = await watch_all(alice, job.job_id, after=again[-1].sequence)
    assert done[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED


async def test_a_deadline_passes_while_a_job_waits(alice: JobsClient) -> None:
    job = await alice.create_job("noop", {"ask": True}, scheduling=Scheduling(deadline_s=2.0))
    asked = (await until_input_required(alice, job.job_id))[-1]
    rest = await watch_all(alice, job.job_id, after=asked.sequence)
    assert rest[-1].type == E.JOB_EVENT_TYPE_FAILED
    assert (await alice.get_job(job.job_id)).error.code == "DEADLINE_EXCEEDED"
