"""A real browser for tests that look at a page as a person would: headless Chromium.

Debian's `chromium` (`make browser` installs it; `make test` depends on it), driven by
Playwright's Python package through `executable_path`: Playwright's own browser download is
not used, so nothing is fetched at test time. Each browser starts from an empty profile of
its own and talks to nothing but the pages it is sent to (no sync, no component updates, no
background requests).
"""

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    ViewportSize,
    sync_playwright,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}


@contextmanager
def chromium() -> Iterator[BrowserContext]:
    """A headless Chromium with a fresh profile (its `--user-data-dir`), closed afterwards."""
    if not CHROMIUM.exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    with (
        tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=list(CHROMIUM_FLAGS),
            viewport=VIEWPORT,
        )
        try:
            yield context
        finally:
            context.close()


@dataclass
class PageWatch:
    """What a page did besides rendering: every URL it requested, and what went wrong (console
    errors, uncaught exceptions, Content-Security-Policy refusals, failed requests)."""

    requested: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def _failed(self, request: Request) -> None:
        self.problems.append(f"request failed: {request.url} ({request.failure})")


def watch(page: Page) -> PageWatch:
    """Start recording what `page` requests and what goes wrong on it."""
    watched = PageWatch()
    page.on("request", lambda request: watched.requested.append(request.url))
    page.on("requestfailed", watched._failed)
    page.on("console", watched._console)
    page.on("pageerror", lambda error: watched.problems.append(f"page error: {error}"))
    return watched
