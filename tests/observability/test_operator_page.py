"""The operator page in a real headless browser (Debian's chromium, driven by playwright): it loads, shows a call
queued through the API, and follows it to its outcome, by waiting on what the page shows.

The screenshot is saved in the test's temporary directory; with CALLQUEUE_SCREENSHOT=docs/operator-page.png it is
also written where the README shows it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from callqueue.operator.api import STATIC_DIR
from tests.tracking.conftest import StackFactory, new_number

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TALK = {"ring_after": 1.0, "answer_after": 1.0, "talk_for": 3.0, "cdr_delay": 0.3}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (installs Debian's chromium with apt-get)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def test_the_page_follows_a_queued_call_to_its_outcome(stack: StackFactory, browser: Browser, tmp_path: Path) -> None:
    s = stack()
    page: Page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{s.service}/operator/")
    expect(page.locator("#freshness")).to_have_attribute("data-state", "ok", timeout=30_000)

    busy = new_number()
    s.script(busy, {**TALK, "outcome": "busy", "talk_for": 0})
    s.queue(busy)
    number = new_number()
    s.script(number, {**TALK, "outcome": "completed"})
    call_id = s.queue(number)
    row = page.locator(f'tr[data-call-id="{call_id}"]')
    expect(row).to_be_visible(timeout=30_000)
    expect(row).to_have_attribute("data-status", "completed", timeout=60_000)
    timeline = row.locator(".timeline").inner_text()
    for status in ("queued", "dispatching", "dispatched", "ringing", "completed"):
        assert status in timeline, timeline
    assert number not in row.inner_text(), "the page masks phone numbers"
    expect(page.locator("#queued")).to_have_text("0", timeout=30_000)
    expect(page.locator("#pace-limit")).to_contain_text("of 50")
    assert page.locator("#breaker-state").inner_text() == "not in this version"

    shot = tmp_path / "operator-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("CALLQUEUE_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["CALLQUEUE_SCREENSHOT"])
    assert all(url.startswith(s.service) for url in requests), f"the page loads nothing from elsewhere: {requests}"
    page.close()


def test_the_page_is_three_local_files_without_a_build_step(stack: StackFactory) -> None:
    s = stack()
    assert sorted(p.name for p in STATIC_DIR.iterdir()) == ["app.js", "index.html", "style.css"]
    html = httpx.get(f"{s.service}/operator/").text
    assert "https://" not in html and "http://" not in html
    for asset in ("app.js", "style.css"):
        assert httpx.get(f"{s.service}/operator/static/{asset}").status_code == 200
    assert httpx.get(f"{s.service}/operator", follow_redirects=False).headers["location"] == "/operator/"
