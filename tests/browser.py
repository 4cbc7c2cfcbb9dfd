"""Open a page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright).

Every request goes through one route: the page's own URL (and any `allow`ed URL) passes,
anything else is recorded and aborted, so a page that would fetch from outside fails the
check instead of leaking. A `request` listener records what the route might not see
(e.g. other file:// URLs). Reused by the report, Android and lab tests.

    with chromium() as browser:
        visit = open_page(browser, path, screenshot=ARTIFACTS / "report.png")
    assert_self_contained(visit)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("EDGEBENCH_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def require_chromium() -> Path:
    """Skip when Debian's chromium is absent, with the fix; on CI (CI=true) fail instead."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = f"{CHROMIUM} is absent: apt-get install -y chromium (never `playwright install`)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class PageVisit:
    """What a page did while it loaded."""

    url: str
    text: str = ""
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    outgoing: list[str] = field(default_factory=list)  # requests blocked or seen beyond `allow`
    failed: list[str] = field(default_factory=list)  # requests that failed, ours included
    page_width: int = 0  # the document's scroll width: wider than the viewport means a sideways scroll
    clipped: list[str] = field(default_factory=list)  # scroll boxes whose content is wider than them
    screenshot: Path | None = None

    def problems(self) -> list[str]:
        return (
            [f"console error: {e}" for e in self.console_errors]
            + [f"page error: {e}" for e in self.page_errors]
            + [f"outgoing request: {u}" for u in self.outgoing]
        )


def assert_self_contained(visit: PageVisit) -> None:
    """No console errors, no script errors, no request beyond the page itself."""
    problems = visit.problems()
    assert not problems, f"{visit.url}:\n  " + "\n  ".join(problems)


_CLIPPED_JS = """els => els
  .filter(e => ['auto', 'scroll', 'hidden'].includes(getComputedStyle(e).overflowX)
               && e.scrollWidth > e.clientWidth + 1)
  .map(e => `${e.tagName.toLowerCase()}.${e.className} under #${e.closest('[id]')?.id ?? '?'}`)"""


def _is_local(url: str, allowed: set[str]) -> bool:
    """The page itself (any #fragment) or inline data: the only loads that stay inside."""
    return url.startswith("data:") or url.split("#")[0] in allowed


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium browser (playwright sync API), closed on exit."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def open_page(
    browser,
    target: Path | str,
    *,
    allow: Iterable[str] = (),
    screenshot: Path | None = None,
    viewport: tuple[int, int] = (1280, 900),
    timeout_ms: int = 15_000,
) -> PageVisit:
    """Load `target` (a file path or URL) in a fresh context and record what it did."""
    url = Path(target).resolve().as_uri() if isinstance(target, Path) else str(target)
    allowed = {url, *allow}
    visit = PageVisit(url=url)
    context = browser.new_context(
        viewport={"width": viewport[0], "height": viewport[1]}, service_workers="block"
    )
    try:

        def route(r) -> None:
            if _is_local(r.request.url, allowed):
                r.continue_()
            else:
                visit.outgoing.append(r.request.url)
                r.abort()

        def seen(request) -> None:
            u = request.url
            if not _is_local(u, allowed) and u not in visit.outgoing:
                visit.outgoing.append(u)

        context.route("**/*", route)
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        page.on("request", seen)
        page.on("console", lambda m: m.type == "error" and visit.console_errors.append(m.text))
        page.on("pageerror", lambda e: visit.page_errors.append(str(e)))
        page.on("requestfailed", lambda r: visit.failed.append(f"{r.url}: {r.failure}"))
        page.goto(url, wait_until="load")
        visit.text = page.inner_text("body")
        visit.page_width = page.evaluate("document.documentElement.scrollWidth")
        visit.clipped = page.eval_on_selector_all("body *", _CLIPPED_JS)
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
            visit.screenshot = screenshot
    finally:
        context.close()
    return visit
