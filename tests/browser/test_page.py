"""The gateway's page (``GET /``) in headless Chromium against the running stack: a
résumé tailored end to end, the page resuming across a gateway restart with every event
exactly once, cancel, results that try to run script, the recent-jobs list, a bad token.

The page runs under the gateway's strict Content-Security-Policy, which also forbids
``eval``: so the tests poll with ``page.evaluate`` (a DevTools call) rather than
``wait_for_function``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from playwright.async_api import Browser, Page, expect

from devstack import Stack
from jobctl.client import JobsClient
from jobctl.transport import Scheduling
from jobkit.gen.jobs.v1 import jobs_pb2
from jobtypes import CATALOG
from tests.browser.conftest import Tab, open_tab

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STATE = "window.__jobsPage"


async def until(page: Page, expression: str, timeout_s: float = 30.0) -> Any:
    """Poll ``expression`` in the page until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            state = await page.evaluate(f"JSON.stringify({STATE})")
            banner = await page.text_content("#banner-text")
            raise AssertionError(f"not true within {timeout_s}s: {expression}\n{state}\n{banner}")
        await asyncio.sleep(0.1)


async def open_page(page: Page, stack: Stack, user: str = "alice") -> None:
    """Open the page as the user would from a link carrying their token."""
    await page.goto(f"{stack.gateway_url}/?token={stack.token(user)}")
    await until(page, "document.querySelector('#job-type').options.length > 1")
    await until(page, "document.querySelector('#input-json').value.length > 2")


async def submit(page: Page, job_type: str | None = None, job_input: Any = None) -> str:
    """Pick a type, replace the input if given, press Start; returns the new job's id."""
    if job_type is not None:
        await page.select_option("#job-type", job_type)
        # Its example loads (a fetch): typing before it lands would mix the two.
        await expect(page.locator("#input-json")).to_have_attribute("data-example", job_type)
    if job_input is not None:
        await page.fill("#input-json", json.dumps(job_input))
    await expect(page.locator("#json-status")).to_have_text("Valid JSON")
    previous = await page.evaluate(f"{STATE}.jobId")
    await page.click("#submit")
    job_id = await until(page, f"{STATE}.jobId !== {json.dumps(previous)} && {STATE}.jobId")
    assert isinstance(job_id, str)
    return job_id


async def sequences(page: Page) -> list[int]:
    received = await page.evaluate(f"{STATE}.sequences")
    assert isinstance(received, list)
    return [int(s) for s in received]


async def grpc_sequences(client: JobsClient, job_id: str) -> list[int]:
    return [int(e.sequence) async for e in client.watch(job_id)]


async def screenshot(page: Page, output_dirs: list[Path], name: str) -> Path:
    first = output_dirs[0] / name
    await page.screenshot(path=first, full_page=True, animations="disabled")
    for directory in output_dirs[1:]:
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(first, directory / name)
    print(f"screenshot: {output_dirs[-1] / name}")
    return first


async def test_cv_tailoring_runs_to_a_rendered_preview(
    tab: Tab, stack: Stack, alice: JobsClient, output_dirs: list[Path]
) -> None:
    page = tab.page
    await open_page(page, stack)
    # The token left the address bar for this tab's session storage.
    assert "token" not in page.url
    assert str(await page.evaluate("sessionStorage.getItem('jobs.token')")).startswith("eyJ")
    await expect(page.locator("#user")).to_have_text("alice")
    # The example request is there, ready to send.
    assert await page.input_value("#job-type") == "cv_tailoring"
    example = json.loads(await page.input_value("#input-json"))
    assert example == json.loads((EXAMPLES / "cv_tailoring.json").read_text())["input"]
    await expect(page.locator("#summary-posting")).to_have_text(
        "Senior Backend Engineer at Fabrikam AI"
    )

    job_id = await submit(page)
    await until(page, f"{STATE}.status === 'JOB_STATUS_SUCCEEDED'")

    await expect(page.locator("#progress-pct")).to_have_text("100%")
    assert await page.get_attribute("#progress", "aria-valuenow") == "100"
    await expect(page.locator("#job-status")).to_have_text("Succeeded")
    await expect(page.locator("#job-phase")).to_have_text("Preview ready!")
    steps = page.locator("#steps > li")
    # tailor_cv waits for a person only when the input asks for a review (test_review.py).
    assert await steps.evaluate_all("items => items.map(i => i.dataset.step)") == [
        "load_profile",
        "analyze_posting",
        "tailor_cv",
        "write_cover_letter",
        "render_preview",
    ]
    assert set(await steps.evaluate_all("items => items.map(i => i.dataset.state)")) == {
        "succeeded"
    }
    # The preview, rendered as HTML from its Markdown.
    preview = page.locator("#preview")
    await expect(preview).to_be_visible()
    await expect(preview.locator("h2").first).to_have_text("Ada Example")
    headings = await preview.locator("h3").all_text_contents()
    assert {"Summary", "Skills", "Experience", "Cover letter"} <= set(headings)
    assert await preview.locator("ul > li").count() >= 5
    assert await preview.locator("strong").count() >= 1
    result = json_format.MessageToDict((await alice.get_job(job_id)).result)
    score = int(result["match_score"])
    await expect(page.locator("#score")).to_have_text(str(score))
    assert await page.locator("#matched-skills > li").all_text_contents() == list(
        result["matched_skills"]
    )
    assert await page.locator("#missing-skills > li").all_text_contents() == list(
        result["missing_skills"]
    )
    await page.click("#tab-letter")
    await expect(page.locator("#cover-letter")).to_contain_text("Fabrikam AI")
    await page.click("#tab-preview")
    # Every event, once, in order: the same as a gRPC watcher sees.
    assert await sequences(page) == await grpc_sequences(alice, job_id)
    assert await sequences(page) == list(range(1, len(await sequences(page)) + 1))
    # The recent-jobs list has it, marked as the one shown.
    await expect(page.locator(f".recent-item[data-job-id='{job_id}']")).to_have_attribute(
        "aria-current", "true"
    )

    await screenshot(page, output_dirs, "cv_tailoring-succeeded.png")
    tab.assert_clean()


@pytest.mark.timeout(180)
async def test_page_resumes_after_the_gateway_restarts(
    tab: Tab, stack: Stack, alice: JobsClient, output_dirs: list[Path]
) -> None:
    page = tab.page
    await open_page(page, stack)
    words = " ".join(f"word{n}" for n in range(1, 25))
    job_id = await submit(page, "noop", {"sleep_ms": 3000, "write": words})
    await until(page, f"{STATE}.sequences.length >= 5 && {STATE}.connection === 'live'")
    before = len(await sequences(page))
    await screenshot(page, output_dirs, "noop-live.png")

    stack.services["gateway"].kill()
    await until(page, f"{STATE}.connection === 'reconnecting'", 10)
    await expect(page.locator("#connection")).to_have_text("Reconnecting…")
    await asyncio.sleep(1)
    stack.start_service("gateway")
    await asyncio.to_thread(stack.wait_ready, 30)

    await until(page, f"{STATE}.status === 'JOB_STATUS_SUCCEEDED'", 60)
    await expect(page.locator("#progress-pct")).to_have_text("100%")
    received = await sequences(page)
    assert received == list(range(1, len(received) + 1)), "a gap or a repeat"
    assert received == await grpc_sequences(alice, job_id)
    assert len(received) > before
    # What each step wrote, as it wrote it (the worker sends the text at a bounded rate, so
    # the last words may only be in the step's result).
    outputs = await page.locator(".step-output").all_text_contents()
    assert len(outputs) == 3
    assert all(text.startswith("word1 word2") and words.startswith(text) for text in outputs)
    await screenshot(page, output_dirs, "noop-resumed.png")
    assert not tab.dialogs
    assert not tab.page_errors


@pytest.mark.timeout(180)
async def test_page_resumes_after_the_notifier_restarts(
    tab: Tab, stack: Stack, alice: JobsClient
) -> None:
    """With the notifier gone the gateway answers the stream's reconnection with an error,
    which closes an EventSource for good: the page opens a new one itself, with a new watch
    token, after the last event it has."""
    page = tab.page
    await open_page(page, stack)
    job_id = await submit(page, "noop", {"sleep_ms": 3000})
    await until(page, f"{STATE}.sequences.length >= 3 && {STATE}.connection === 'live'")
    streams = await page.evaluate(f"{STATE}.streams")

    stack.services["notifier"].kill()
    # The EventSource retries by itself, gets an error status and gives up; the page takes
    # over and keeps trying with back-off.
    await until(page, f"{STATE}.rewatches > 0", 30)
    await asyncio.sleep(1)
    stack.start_service("notifier")
    await asyncio.to_thread(stack.wait_ready, 30)

    await until(page, f"{STATE}.status === 'JOB_STATUS_SUCCEEDED'", 90)
    received = await sequences(page)
    assert received == list(range(1, len(received) + 1)), "a gap or a repeat"
    assert received == await grpc_sequences(alice, job_id)
    assert await page.evaluate(f"{STATE}.streams") > streams, "no new EventSource was opened"
    assert not tab.dialogs
    assert not tab.page_errors


async def test_cancel_from_the_page(tab: Tab, stack: Stack, alice: JobsClient) -> None:
    page = tab.page
    await open_page(page, stack)
    job_id = await submit(page, "noop", {"sleep_ms": 5000})
    await until(page, f"{STATE}.status === 'JOB_STATUS_RUNNING' && {STATE}.connection === 'live'")
    await page.click("#cancel")
    await until(page, f"{STATE}.status === 'JOB_STATUS_CANCELLED'")
    await expect(page.locator("#job-status")).to_have_text("Cancelled")
    await expect(page.locator("#cancel")).to_be_hidden()
    await expect(page.locator("#retry")).to_be_visible()
    await expect(page.locator("#result")).to_be_hidden()
    assert "cancelled" in await page.locator("#steps > li").evaluate_all(
        "items => items.map(i => i.dataset.state)"
    )
    assert (await alice.get_job(job_id)).status == jobs_pb2.JOB_STATUS_CANCELLED
    received = await sequences(page)
    assert received == list(range(1, len(received) + 1))
    tab.assert_clean()


XSS = "<img src=x onerror=alert(1)> <script>alert(2)</script> [click](javascript:alert(3))"


async def test_results_never_run_script(tab: Tab, stack: Stack) -> None:
    page = tab.page
    await open_page(page, stack)
    # Text a step streams and its result: shown as text.
    await submit(page, "noop", {"sleep_ms": 2000, "write": XSS})
    await until(page, f"{STATE}.status === 'JOB_STATUS_SUCCEEDED'")
    await expect(page.locator(".step-output").first).to_contain_text(XSS[:52])
    await expect(page.locator("#result-json")).to_contain_text("<script>alert(2)</script>")

    # A preview whose Markdown carries HTML and a javascript: link: text, and no link.
    cv = json.loads((EXAMPLES / "cv_tailoring.json").read_text())["input"]
    cv["resume"]["experience"][0]["bullets"][0] = (
        "Shipped <script>alert(4)</script><img src=x onerror=alert(5)>, "
        "[docs](https://example.com/docs) and [click](javascript:alert(6))"
    )
    await submit(page, "cv_tailoring", cv)
    await until(page, f"{STATE}.status === 'JOB_STATUS_SUCCEEDED'")
    preview = page.locator("#preview")
    await expect(preview).to_contain_text("Shipped <script>alert(4)</script><img src=x")
    link = preview.locator("a")
    await expect(link).to_have_count(1)
    await expect(link).to_have_attribute("href", "https://example.com/docs")
    await expect(link).to_have_attribute("rel", "noopener noreferrer")
    await expect(preview).to_contain_text("and click")

    await page.wait_for_timeout(300)  # time for an injected handler to fire, were there one
    assert await page.evaluate("document.scripts.length") == 1  # app.js
    assert await page.locator("img[src='x'], [onerror], a[href^='javascript']").count() == 0
    tab.assert_clean()


async def test_recent_jobs_open_a_finished_job(
    browser: Browser, stack: Stack, alice: JobsClient, output_dirs: list[Path]
) -> None:
    """A job submitted elsewhere, opened from the list: its result, from one GET. In dark
    mode, and then on a phone-sized screen."""
    example = json.loads((EXAMPLES / "cv_tailoring.json").read_text())
    job = await alice.create_job("cv_tailoring", example["input"])
    await grpc_sequences(alice, job.job_id)
    tab = await open_tab(browser, color_scheme="dark")
    page = tab.page
    try:
        await open_page(page, stack)
        item = page.locator(f".recent-item[data-job-id='{job.job_id}']")
        await expect(item).to_contain_text("Succeeded")
        await item.click()
        await until(page, f"{STATE}.status === 'JOB_STATUS_SUCCEEDED'")
        await expect(page.locator("#preview h2").first).to_have_text("Ada Example")
        assert f"#job={job.job_id}" in page.url
        await screenshot(page, output_dirs, "cv_tailoring-dark.png")
        # A reload (the job in the address bar) shows it again.
        await page.reload()
        await expect(page.locator("#preview h2").first).to_have_text("Ada Example")
        await page.set_viewport_size({"width": 390, "height": 844})
        await screenshot(page, output_dirs, "cv_tailoring-phone.png")
        tab.assert_clean()
    finally:
        await page.context.close()


async def test_a_bad_token_says_so(tab: Tab, stack: Stack) -> None:
    page = tab.page
    await page.goto(f"{stack.gateway_url}/?token=not-a-token")
    await expect(page.locator("#banner")).to_be_visible()
    await expect(page.locator("#banner-text")).to_contain_text("check your token")
    assert "token" not in page.url
    assert not tab.page_errors
    assert not tab.dialogs


async def test_every_type_is_offered_with_its_example_and_its_required_fields(
    tab: Tab, stack: Stack
) -> None:
    """The types, their examples and their schemas all come from the catalogue: a new
    type shows up here without a line of the page changing."""
    page = tab.page
    await open_page(page, stack)
    offered = await page.evaluate(
        "[...document.querySelectorAll('#job-type option')].map((o) => o.value)"
    )
    assert offered == list(CATALOG)
    for name in CATALOG:
        await page.select_option("#job-type", name)
        await expect(page.locator("#input-json")).to_have_attribute("data-example", name)
        await expect(page.locator("#json-status")).to_have_text("Valid JSON")
    # The published schema names what is missing before any request is sent.
    await page.select_option("#job-type", "cv_tailoring")
    await expect(page.locator("#input-json")).to_have_attribute("data-example", "cv_tailoring")
    await page.fill("#input-json", json.dumps({"resume": {"name": "Sam"}}))
    await expect(page.locator("#json-status")).to_have_text("Missing: job_posting")
    await expect(page.locator("#submit")).to_be_disabled()
    assert not tab.page_errors


async def test_a_job_s_file_downloads_from_its_result(
    tab: Tab, stack: Stack, output_dirs: list[Path]
) -> None:
    """A result that lists an artifact offers it; the button fetches it with the user's
    token and the browser saves the whole file under its name."""
    page = tab.page
    await open_page(page, stack)
    await submit(page, "noop", {"artifact_bytes": 300_000})
    await until(page, f"{STATE}.status === 'JOB_STATUS_SUCCEEDED'")
    button = page.get_by_role("button", name="Download noop.bin")
    await expect(button).to_be_visible()
    await expect(page.locator(".file-meta")).to_contain_text("293.0 KiB")
    async with page.expect_download() as waiting:
        await button.click()
    download = await waiting.value
    assert download.suggested_filename == "noop.bin"
    saved = await download.path()
    assert saved is not None
    assert saved.stat().st_size == 300_000
    await screenshot(page, output_dirs, "noop-file.png")
    tab.assert_clean()


async def test_a_report_s_table_is_drawn_as_a_table(
    tab: Tab, stack: Stack, output_dirs: list[Path]
) -> None:
    """trip_generation's budget by day is a Markdown table: the page draws it as one, a
    row a day, without any of the pipes showing as text."""
    page = tab.page
    await open_page(page, stack)
    await submit(page, "trip_generation")
    await until(page, f"{STATE}.status === 'JOB_STATUS_SUCCEEDED'", timeout_s=60)
    table = page.locator("#preview table.md-table")
    await expect(table.locator("tbody tr")).to_have_count(7)
    await expect(table.locator("thead th").first).to_have_text("day")
    assert "|" not in await page.locator("#preview").inner_text()
    await screenshot(page, output_dirs, "trip_generation.png")
    tab.assert_clean()


async def test_an_import_uploads_its_file_and_shows_what_it_created(
    tab: Tab, stack: Stack, output_dirs: list[Path]
) -> None:
    """A type that takes an upload offers a file field: the file goes up as chosen, its id
    fills the input, and the import's result counts the rows it made into jobs."""
    page = tab.page
    await open_page(page, stack)
    await page.select_option("#job-type", "bulk_import")
    await expect(page.locator("#input-json")).to_have_attribute("data-example", "bulk_import")
    await expect(page.locator("#upload-field")).to_be_visible()
    await page.set_input_files("#upload-file", str(EXAMPLES / "bulk_import.jsonl"))
    status = page.locator("#upload-status")
    await expect(status).to_contain_text("Uploaded bulk_import.jsonl")
    upload_id = await status.get_attribute("data-upload-id")
    assert upload_id
    assert json.loads(await page.input_value("#input-json"))["upload_id"] == upload_id
    job_id = await submit(page)
    await until(page, f"{STATE}.status === 'JOB_STATUS_SUCCEEDED'")
    # The result is drawn once the job is read back after its last event.
    await expect(page.locator("#result-json")).to_contain_text('"imported"')
    result = json.loads(await page.text_content("#result-json") or "{}")
    assert (result["imported"], result["failed"]) == (3, 2)
    assert [e["row"] for e in result["errors"]] == [3, 5]
    await screenshot(page, output_dirs, "bulk-import.png")
    # Another type hides the field again.
    await page.select_option("#job-type", "noop")
    await expect(page.locator("#upload-field")).to_be_hidden()
    assert job_id
    tab.assert_clean()


async def test_a_job_s_scheduling_is_shown(
    tab: Tab, stack: Stack, alice: JobsClient, output_dirs: list[Path]
) -> None:
    """Priority, start time, deadline, key and its limit, as CreateJob took them, under the
    job's id; nothing at all for a job that asked for none."""
    later = datetime.now(UTC) + timedelta(minutes=10)
    scheduled = await alice.create_job(
        "noop",
        {},
        scheduling=Scheduling(
            priority=8,
            not_before=later,
            deadline_s=3600,
            concurrency_key="tenant-9",
            concurrency_limit=3,
        ),
    )
    page = tab.page
    await page.goto(f"{stack.gateway_url}/?token={stack.token('alice')}#job={scheduled.job_id}")
    schedule = page.locator("#job-schedule")
    await expect(schedule).to_contain_text("Priority 8 · starts in 10 minutes")
    await expect(schedule).to_contain_text(
        "deadline 1 h after creation · key tenant-9 (at most 3 at once)"
    )
    await screenshot(page, output_dirs, "scheduled-job.png")
    plain = await alice.create_job("noop", {})
    await page.goto(f"{stack.gateway_url}/?token={stack.token('alice')}#job={plain.job_id}")
    await expect(page.locator("#job-title")).to_have_text("Noop")
    await expect(schedule).to_be_hidden()
    await expect(page.locator("#job-origin")).to_be_hidden()
    await alice.cancel_job(scheduled.job_id)
    # A fork says where it came from, and opens its source in a click.
    fork = await alice.fork_job(plain.job_id, "", {"sleep_ms": 1})
    await page.goto(f"{stack.gateway_url}/?token={stack.token('alice')}#job={fork.job_id}")
    origin = page.locator("#job-origin")
    await expect(origin).to_have_text(f"Forked from job {plain.job_id}")
    await origin.locator("button").click()
    await expect(page.locator("#job-id")).to_contain_text(plain.job_id)
    await expect(origin).to_be_hidden()
    # (Opening the second job closed the first's event stream: an aborted request, fine.)
    assert not tab.page_errors
    assert not tab.console_errors
