"""Browser fixtures: Debian's headless Chromium driven by Playwright, and hubs to point it at.

A machine without ``/usr/bin/chromium`` skips the browser tests with the reason; under CI
(``CI=true``) a missing browser is a failure, so the suite can never pass by skipping them.
Screenshots go to ``tests/artifacts/``; :func:`keep_screenshot` also refreshes ``docs/img`` when
``POSKO_UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from ops.app import Hub
from ops.core.config import Config
from ops.users import Role
from ops.web.app import Served, serve
from tests.fixtures.hub import HOST, TEST_RESTART_POLICY, ConfigFactory, create_user

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
DOCS_IMG = ROOT / "docs" / "img"
UPDATE_SCREENSHOTS = "POSKO_UPDATE_SCREENSHOTS"
#: Playwright's own waits (milliseconds): long enough for a loaded CI machine, short enough to fail.
EXPECT_TIMEOUT_MS = 10_000
VIEWPORT = {"width": 1600, "height": 900}


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"headless Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the run."""
    _require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


NewPage = Callable[..., Awaitable[Page]]


@pytest.fixture
async def new_page(browser: Browser) -> AsyncIterator[NewPage]:
    """Factory: a page in its own browser context (own cookies), closed after the test.

    Errors the page's scripts throw fail the test: a console that works only by luck is broken.
    """
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    async def open_page(**options: Any) -> Page:
        context = await browser.new_context(
            viewport=options.pop("viewport", VIEWPORT), locale="id-ID", **options
        )
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    try:
        yield open_page
    finally:
        for context in contexts:
            await context.close()
    assert not errors, f"the page threw: {errors}"


@contextlib.asynccontextmanager
async def run_hub(config: Config, port: int = 0) -> AsyncIterator[tuple[Hub, Served]]:
    """A hub served on 127.0.0.1 (on ``port``, or a free one)."""
    async with (
        Hub(config, restart_policy=TEST_RESTART_POLICY) as hub,
        serve(hub, host=HOST, port=port) as served,
    ):
        yield hub, served


@pytest.fixture
async def served_hub(make_hub_config: ConfigFactory) -> AsyncIterator[tuple[Hub, Served]]:
    """This test's hub, served on a free port."""
    async with run_hub(make_hub_config()) as running:
        yield running


async def sign_in(page: Page, served: Served, username: str, password: str) -> None:
    """Open the console and sign in through its form."""
    await page.goto(served.url + "/")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#shell:not([hidden])")
    await page.wait_for_selector("#live[data-state=open]")


async def console_user(hub: Hub, role: Role) -> tuple[str, str]:
    """A new user of ``role``: (username, password)."""
    user, password = await create_user(hub, role)
    return user.username, password


async def keep_screenshot(page: Page, name: str, *, docs: bool = False) -> Path:
    """Save a screenshot under tests/artifacts; with ``docs``, refresh docs/img/NAME.png too.

    The docs copy is made only when ``POSKO_UPDATE_SCREENSHOTS=1``, so an ordinary test run
    leaves the tracked images alone.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path))
    if docs and os.environ.get(UPDATE_SCREENSHOTS) == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMG / f"{name}.png")
    return path
