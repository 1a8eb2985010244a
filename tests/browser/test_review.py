"""The page with a job that waits for a person: a cv_tailoring job with ``review`` stops
after ``tailor_cv`` and shows its draft CV, to approve as it is or to edit and send back
(the job ends with the answer); an answer the schema refuses names what is wrong in
place; a finished job is forked from a step picked on the page.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from playwright.async_api import Route, expect

from devstack import Stack
from jobctl.client import JobsClient
from jobkit.gen.jobs.v1 import jobs_pb2
from tests.browser.conftest import Tab
from tests.browser.test_page import (
    EXAMPLES,
    STATE,
    grpc_sequences,
    open_page,
    screenshot,
    sequences,
    submit,
    until,
)

#: The review waits for a person after the CV is drafted: allow the steps before it.
WAIT_S = 60.0
#: The CV's own step asks, once the CV is drafted.
REVIEW_STEP = "tailor_cv"


def review_input() -> dict[str, Any]:
    """The example CV job, asking to review the tailored CV before it is used."""
    job_input: dict[str, Any] = json.loads((EXAMPLES / "cv_tailoring.json").read_text())["input"]
    return {**job_input, "review": True}


async def waiting_for_review(client: JobsClient, job_id: str) -> jobs_pb2.Job:
    """The job once its CV step asks for the review (read from its events)."""
    async with aclosing(client.watch(job_id)) as events:
        async for event in events:
            if event.type == jobs_pb2.JOB_EVENT_TYPE_INPUT_REQUIRED:
                assert event.step == REVIEW_STEP
                break
            assert event.type not in (
                jobs_pb2.JOB_EVENT_TYPE_SUCCEEDED,
                jobs_pb2.JOB_EVENT_TYPE_FAILED,
                jobs_pb2.JOB_EVENT_TYPE_CANCELLED,
            ), f"the job ended without asking: {event}"
    return await client.get_job(job_id)


def draft_cv(job: jobs_pb2.Job) -> dict[str, Any]:
    """The tailored CV the CV step proposes."""
    step = next(s for s in job.steps if s.name == REVIEW_STEP)
    assert step.status == jobs_pb2.STEP_STATUS_WAITING_INPUT
    cv: dict[str, Any] = json_format.MessageToDict(step.input_request.draft)["tailored_cv"]
    return cv


async def test_a_reviewed_cv_is_edited_and_the_job_ends_with_the_edit(
    tab: Tab, stack: Stack, alice: JobsClient, output_dirs: list[Path]
) -> None:
    page = tab.page
    await open_page(page, stack)
    job_id = await submit(page, "cv_tailoring", review_input())

    card = page.locator(f".input-request[data-step='{REVIEW_STEP}']")
    await expect(card.get_by_role("button", name="Approve", exact=True)).to_be_visible(
        timeout=WAIT_S * 1000
    )
    await expect(page.locator("#job-status")).to_have_text("Waiting for you")
    await expect(page.locator(f"#steps > li[data-step='{REVIEW_STEP}']")).to_have_attribute(
        "data-state", "waiting_input"
    )
    await expect(card.locator(".input-prompt")).to_contain_text("Check the tailored CV")
    # The draft, drawn as a CV: its name, summary, skills and every bullet.
    draft = draft_cv(await alice.get_job(job_id))
    view = card.locator(".input-draft")
    await expect(view.locator("h2").first).to_have_text(draft["name"])
    await expect(view).to_contain_text(draft["summary"])
    await expect(view).to_contain_text(", ".join(draft["skills"]))
    bullets = [b for role in draft["experience"] for b in role["bullets"]]
    assert set(bullets) <= set(await view.locator("li").all_text_contents())
    # The CV and the cover letter are written side by side, and the step list says so.
    alongside = await page.get_attribute(
        "#steps > li[data-step='write_cover_letter']", "data-parallel"
    )
    assert "tailor_cv" in (alongside or "").split()
    await screenshot(page, output_dirs, "cv_tailoring-review.png")

    await card.get_by_role("button", name="Edit", exact=True).click()
    summary = card.get_by_label("Summary", exact=True)
    await expect(summary).to_have_value(draft["summary"])
    edited = f"Edited in review. {draft['summary']}"
    await summary.fill(edited)
    await screenshot(page, output_dirs, "cv_tailoring-review-edit.png")
    await card.get_by_role("button", name="Submit", exact=True).click()

    await until(page, f"{STATE}.status === 'JOB_STATUS_SUCCEEDED'", WAIT_S)
    await expect(page.locator("#inputs .input-request")).to_have_count(0)
    await expect(page.locator(f"#steps > li[data-step='{REVIEW_STEP}']")).to_have_attribute(
        "data-state", "succeeded"
    )
    await expect(page.locator("#preview")).to_contain_text(edited)
    result = json_format.MessageToDict((await alice.get_job(job_id)).result)
    assert result["tailored_cv"]["summary"] == edited
    # Only the summary was changed: the rest is the draft.
    for key in ("name", "skills", "experience"):
        assert result["tailored_cv"][key] == draft[key], key
    received = await sequences(page)
    assert received == await grpc_sequences(alice, job_id)
    tab.assert_clean()


async def test_a_draft_approved_after_a_reload_is_the_result(
    tab: Tab, stack: Stack, alice: JobsClient, output_dirs: list[Path]
) -> None:
    """A job already waiting when the page opens: its question comes from GetJob (the
    waiting step's input request), again after a reload, and Approve sends it on."""
    job = await alice.create_job("cv_tailoring", review_input())
    draft = draft_cv(await waiting_for_review(alice, job.job_id))
    page = tab.page
    await page.goto(f"{stack.gateway_url}/?token={stack.token('alice')}#job={job.job_id}")
    approve = page.get_by_role("button", name="Approve", exact=True)
    await expect(approve).to_be_visible()
    await page.reload()
    await expect(approve).to_be_visible()
    await expect(page.locator(".input-request .input-prompt")).to_contain_text(
        "Check the tailored CV"
    )
    await until(page, f"{STATE}.connection === 'live'")
    await screenshot(page, output_dirs, "cv_tailoring-review-reloaded.png")
    # The recent-jobs list says who the job waits for.
    await expect(page.locator(f".recent-item[data-job-id='{job.job_id}']")).to_contain_text(
        "Waiting for you"
    )
    await approve.click()
    await until(page, f"{STATE}.status === 'JOB_STATUS_SUCCEEDED'", WAIT_S)
    await expect(page.locator("#inputs .input-request")).to_have_count(0)
    result = json_format.MessageToDict((await alice.get_job(job.job_id)).result)
    assert result["tailored_cv"] == draft
    await expect(page.locator("#preview")).to_contain_text(draft["summary"])
    assert not tab.page_errors
    assert not tab.console_errors
    # The reload cut off the first load's requests (its event stream, say): nothing else.
    assert all(r.endswith("net::ERR_ABORTED") for r in tab.failed_requests), tab.failed_requests


async def test_an_answer_the_schema_refuses_is_named_in_place(
    tab: Tab, stack: Stack, alice: JobsClient
) -> None:
    """The gateway's 400 (SubmitInput's field violations) is shown in the card, the step
    still waits, and a good answer then goes through. The refused answer is made by
    rewriting the page's request on its way out: the page itself only sends a CV object."""
    job = await alice.create_job("cv_tailoring", review_input())
    await waiting_for_review(alice, job.job_id)
    page = tab.page

    async def spoil(route: Route) -> None:
        await route.continue_(
            post_data=json.dumps({"step": REVIEW_STEP, "input": {"tailored_cv": "not a CV"}})
        )

    await page.route("**/*:submitInput", spoil)
    await page.goto(f"{stack.gateway_url}/?token={stack.token('alice')}#job={job.job_id}")
    card = page.locator(f".input-request[data-step='{REVIEW_STEP}']")
    await card.get_by_role("button", name="Approve", exact=True).click()
    errors = card.locator(".input-errors")
    await expect(errors).to_be_visible()
    await expect(errors).to_contain_text("tailored_cv")
    waiting = await alice.get_job(job.job_id)
    assert waiting.status == jobs_pb2.JOB_STATUS_WAITING_INPUT

    await page.unroute("**/*:submitInput")
    await card.get_by_role("button", name="Approve", exact=True).click()
    await until(page, f"{STATE}.status === 'JOB_STATUS_SUCCEEDED'", WAIT_S)
    assert not tab.page_errors
    assert not tab.dialogs
    # The browser reports the refused request itself; nothing else went wrong.
    assert all("400" in message for message in tab.console_errors), tab.console_errors


async def test_a_finished_job_is_forked_from_a_step_picked_on_the_page(
    tab: Tab, stack: Stack, alice: JobsClient, output_dirs: list[Path]
) -> None:
    source = await alice.create_job("noop", {"sleep_ms": 5, "write": "first draft"})
    await grpc_sequences(alice, source.job_id)
    page = tab.page
    await page.goto(f"{stack.gateway_url}/?token={stack.token('alice')}#job={source.job_id}")
    await until(page, f"{STATE}.status === 'JOB_STATUS_SUCCEEDED'")
    fork = page.locator("#fork")
    await expect(fork).to_be_visible()
    await fork.click()
    form = page.locator("#fork-form")
    await expect(form).to_be_visible()
    options = page.locator("#fork-step option")
    assert await options.evaluate_all("os => os.map(o => o.value)") == ["", "work", "finish"]
    await page.select_option("#fork-step", "work")
    await page.fill("#fork-overrides", json.dumps({"write": "second draft"}))
    await screenshot(page, output_dirs, "noop-fork.png")
    await page.click("#fork-submit")

    forked = await until(page, f"{STATE}.jobId !== {json.dumps(source.job_id)} && {STATE}.jobId")
    await expect(form).to_be_hidden()
    await expect(page.locator("#job-origin")).to_have_text(f"Forked from job {source.job_id}")
    await until(page, f"{STATE}.status === 'JOB_STATUS_SUCCEEDED'")
    await expect(page.locator("#result-json")).to_contain_text("second draft")
    done = await alice.get_job(str(forked))
    assert done.forked_from_job_id == source.job_id
    assert [(s.name, s.attempt) for s in done.steps] == [("prepare", 0), ("work", 1), ("finish", 1)]
    tab.assert_clean()


async def test_a_fork_the_source_cannot_give_says_why(
    tab: Tab, stack: Stack, alice: JobsClient
) -> None:
    """From a step after one that failed: refused (409), said under the form; the page
    stays on the source."""
    source = await alice.create_job("noop", {"sleep_ms": 1, "fail_attempts": 100})
    await grpc_sequences(alice, source.job_id)
    page = tab.page
    await page.goto(f"{stack.gateway_url}/?token={stack.token('alice')}#job={source.job_id}")
    await until(page, f"{STATE}.status === 'JOB_STATUS_FAILED'")
    await page.click("#fork")
    # The first step that did not succeed is offered first.
    assert await page.input_value("#fork-step") == ""
    await page.select_option("#fork-step", "work")
    await page.click("#fork-submit")
    await expect(page.locator("#fork-error")).to_contain_text("has not succeeded")
    assert await page.evaluate(f"{STATE}.jobId") == source.job_id
    # Bad JSON in the input changes never leaves the page.
    await page.fill("#fork-overrides", "[1, 2]")
    await page.click("#fork-submit")
    await expect(page.locator("#fork-error")).to_have_text(
        "Input changes must be a JSON object: { … }."
    )
    assert not tab.page_errors
    assert all("409" in message for message in tab.console_errors), tab.console_errors


async def test_the_review_option_is_a_checkbox_that_edits_the_input(
    tab: Tab, stack: Stack, alice: JobsClient, output_dirs: list[Path]
) -> None:
    page = tab.page
    await open_page(page, stack)
    await page.select_option("#job-type", "cv_tailoring")
    await expect(page.locator("#input-json")).to_have_attribute("data-example", "cv_tailoring")
    review = page.get_by_role("checkbox", name="Pause once the CV is tailored")
    await expect(review).not_to_be_checked()
    await review.check()
    assert json.loads(await page.input_value("#input-json"))["review"] is True
    await screenshot(page, output_dirs, "cv_tailoring-review-option.png")
    # Typed into the JSON, it shows in the box too.
    typed = json.loads(await page.input_value("#input-json"))
    typed["review"] = False
    await page.fill("#input-json", json.dumps(typed))
    await expect(review).not_to_be_checked()
    await review.check()
    job_id = await submit(page)
    job = await waiting_for_review(alice, job_id)
    assert job.status == jobs_pb2.JOB_STATUS_WAITING_INPUT
    await alice.cancel_job(job_id)
    tab.assert_clean()
