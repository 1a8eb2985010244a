"""Fixtures for the browser tests: the whole stack with its gateway, a headless Chromium
found on this machine (never downloaded), and a tab that records everything that went wrong
in it: console errors, failed requests, uncaught exceptions and dialogs.

Without a browser the tests skip, unless ``JOBS_REQUIRE_BROWSER=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Request,
    async_playwright,
)

from devstack import SeaweedServer, Stack
from jobctl.client import JobsClient

#: Headless and self-contained: no sandbox (containers), no GPU, nothing phoning home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
VIEWPORT = {"width": 1280, "height": 900}


def find_browser() -> str | None:
    """``$CHROMIUM_PATH``, else the first Chromium-like browser on the PATH."""
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser_path() -> str:
    path = find_browser()
    if path is None:
        reason = "no Chromium to drive: set CHROMIUM_PATH or install chromium"
        if os.environ.get("JOBS_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def stack(
    browser_path: str,
    tmp_root: Path,
    seaweed_server: SeaweedServer,
) -> Iterator[Stack]:
    """The stack, gateway included, with the session's object store for artifacts;
    started only once a browser is known to be there."""
    running = Stack(tmp_root / "browser-stack", extra_env=seaweed_server.env()).start()
    yield running
    running.stop()


@pytest.fixture
async def alice(stack: Stack) -> AsyncIterator[JobsClient]:
    """The page's user, over gRPC: to check what the page shows against the source."""
    async with JobsClient(stack.job_api_addr, stack.notifier_addr, stack.token("alice")) as c:
        yield c


@pytest.fixture(scope="session")
async def browser(browser_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=browser_path, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@dataclass
class Tab:
    """A page, and what went wrong in it."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.page_errors, self.page_errors
        assert not self.console_errors, self.console_errors
        assert not self.failed_requests, self.failed_requests
        assert not self.dialogs, self.dialogs


async def open_tab(browser: Browser, *, color_scheme: str = "light") -> Tab:
    context = await browser.new_context(
        viewport={"width": VIEWPORT["width"], "height": VIEWPORT["height"]},
        color_scheme="dark" if color_scheme == "dark" else "light",
    )
    tab = Tab(await context.new_page())

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            tab.console_errors.append(message.text)

    def on_request_failed(request: Request) -> None:
        tab.failed_requests.append(f"{request.method} {request.url}: {request.failure}")

    async def on_dialog(dialog: Dialog) -> None:
        tab.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    tab.page.on("console", on_console)
    tab.page.on("requestfailed", on_request_failed)
    tab.page.on("pageerror", lambda error: tab.page_errors.append(str(error)))
    tab.page.on("dialog", on_dialog)
    return tab


@pytest.fixture
async def tab(browser: Browser) -> AsyncIterator[Tab]:
    opened = await open_tab(browser)
    yield opened
    await opened.page.context.close()


@pytest.fixture
def output_dirs(tmp_path: Path) -> list[Path]:
    """Where screenshots go: the test's tmp_path, and ``$JOBS_TEST_OUTPUT/browser``."""
    dirs = [tmp_path]
    extra = os.environ.get("JOBS_TEST_OUTPUT")
    if extra:
        dirs.append(Path(extra).resolve() / "browser")
    return dirs
