"""A real Chromium (Debian's /usr/bin/chromium, never a downloaded Playwright build) driven by Playwright's sync API,
and screenshots of each step kept as test artifacts.

Screenshots go to $BROWSER_ARTIFACTS (default var/test-artifacts/browser/ in the repository), one folder per test,
emptied when the test starts so that what is there after a run is that run's. A test that fails also leaves
failure.png, the page as it was when it failed.
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Long enough for a cold page of the admin on a busy CI machine, short enough that a missing element fails fast.
DEFAULT_TIMEOUT_MS = 10_000
VIEWPORT = {"width": 1600, "height": 900}
# expect(...) waits this long too, instead of its own 5 s.
expect.set_options(timeout=DEFAULT_TIMEOUT_MS)


def artifacts_root() -> Path:
    return Path(os.environ.get("BROWSER_ARTIFACTS") or ROOT / "var" / "test-artifacts" / "browser")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # The page fixture's teardown looks at this to decide whether to keep a picture of the failure.
    report = yield
    if report.when == "call":
        item.browser_call_failed = report.failed
    return report


@pytest.fixture
def playwright(monkeypatch) -> Iterator[Playwright]:
    """Playwright's sync API, for one test.

    It runs an asyncio loop that Django sees as running in the test's thread, which has two effects on the ORM
    calls the test makes while the browser is open:
    - they would be refused as "called from an async context". The test's code is plainly synchronous, which is
      what DJANGO_ALLOW_ASYNC_UNSAFE is for. It is set only while Playwright is running; worker processes started
      by module fixtures have already copied the environment by then;
    - they get a database connection of their own (asgiref keeps one per async context), which sees only
      committed rows: tests here use django_db(transaction=True). That connection is closed before Playwright
      stops, or it would keep the test database from being dropped at the end of the session."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as running:
        try:
            yield running
        finally:
            connections.close_all()


@pytest.fixture
def browser(playwright) -> Iterator[Browser]:
    # --no-sandbox: the tests run as root, where Chromium refuses to start its sandbox.
    launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
    yield launched
    launched.close()


@pytest.fixture
def page(browser, live_server, request) -> Iterator[Page]:
    """A fresh browser context (no cookies) on the live server; relative URLs in goto() are against it."""
    context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    opened = context.new_page()
    yield opened
    if getattr(request.node, "browser_call_failed", False):
        folder = artifacts_root() / request.node.name
        folder.mkdir(parents=True, exist_ok=True)
        for i, tab in enumerate(context.pages):
            tab.screenshot(path=folder / ("failure.png" if i == 0 else f"failure-tab{i}.png"), full_page=True)
    context.close()


class Screenshots:
    """Numbered, named full-page screenshots of one test: 01-login-form.png, 02-signed-in.png, ..."""

    def __init__(self, page: Page, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.taken: list[Path] = []

    def take(self, step: str, page: Page | None = None) -> Path:
        path = self.folder / f"{len(self.taken) + 1:02d}-{step}.png"
        (page or self.page).screenshot(path=path, full_page=True)
        self.taken.append(path)
        return path

    def assert_saved(self, *steps: str) -> None:
        """Each step's file is there, a PNG with something in it, in the order the steps were taken."""
        assert [p.name.split("-", 1)[1].removesuffix(".png") for p in self.taken] == list(steps)
        for path in self.taken:
            data = path.read_bytes()
            assert data.startswith(PNG_SIGNATURE), f"{path} is not a PNG"
            assert len(data) > 1000, f"{path} is only {len(data)} bytes"


@pytest.fixture
def screenshots(page, request) -> Screenshots:
    folder = artifacts_root() / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Screenshots(page, folder)
