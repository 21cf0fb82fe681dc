"""The dashboard's browser side, run as its own process
(``python -m tests.api._browser URL SESSION_PATH SHOT NODE LOAD``).

Playwright's sync client runs an asyncio loop; the test process has trio-asyncio's loop policy
installed (the PostgreSQL backend), so the browser gets a process of its own. Protocol: after
each checkpoint it prints ``ok <name>`` and, where the test acts in between, waits for a line
on stdin.
"""

from __future__ import annotations

import sys

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
UI_TIMEOUT_MS = 30_000
"""Generous: the page polls every second and the machine is shared."""


def checkpoint(name: str, *, wait: bool = False) -> None:
    print("ok", name, flush=True)
    if wait:
        sys.stdin.readline()


def main(url: str, session_path: str, screenshot: str, node: str, load: str) -> None:
    session = session_path.rsplit("/", 1)[1]
    started = f'#events li[data-kind="started"][data-path^="{session_path}"]'  # the session's own starts
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.goto(url)
            page.wait_for_selector('tr[data-path="/infra/store"] [data-state="running"]')
            page.wait_for_selector(f'[data-session="{session}"] [data-status="connected"]')
            page.wait_for_selector('#connection[data-live="websocket"]')  # joined the supervision room
            # The nodes panel: this node alone (memory bus), its sessions out of its capacity.
            page.wait_for_selector(f'#nodes tr[data-node="{node}"][data-self="true"] [data-load="{load}"]')
            assert page.locator("#nodes tbody tr").count() == 1
            # The event feed, filtered to the session's starts; the filter then stays through the fault.
            total = page.locator("#events li").count()
            page.select_option("#events-kind", "started")
            page.fill("#events-text", session_path)
            before = matching_events(page, session_path)
            assert 0 < before < total, (before, total)
            checkpoint("connected", wait=True)  # the test injects the fault now
            page.wait_for_selector(f'[data-session="{session}"] [data-status="logged_out"]')
            checkpoint("logged_out")
            page.click(f'button[data-action="restart"][data-path="{session_path}"]')
            page.wait_for_selector(f'[data-session="{session}"] [data-status="qr"]')
            page.wait_for_selector(f'[data-session="{session}"] .qr svg')
            page.wait_for_selector(f"{started} >> nth={before}")  # the restart's start arrived, still filtered
            assert matching_events(page, session_path) > before
            page.select_option("#events-kind", "")
            page.fill("#events-text", "")
            checkpoint("qr")
            page.screenshot(path=screenshot, full_page=True)
            checkpoint("screenshot")
        finally:
            browser.close()


FEED = """() => ({
  rows: [...document.querySelectorAll("#events li")].map((li) => [li.dataset.kind, li.dataset.path]),
  matched: document.getElementById("events-count").dataset.matched,
  text: document.getElementById("events-count").textContent })"""
"""The feed and its count read in one go (the page may redraw between two separate reads)."""


def matching_events(page, session_path: str) -> int:
    """How many events the filtered feed shows, checking each is a start of the session and the count agrees."""
    feed = page.evaluate(FEED)
    shown = len(feed["rows"])
    assert all(kind == "started" and path.startswith(session_path) for kind, path in feed["rows"]), feed
    assert feed["matched"] == str(shown) and feed["text"].startswith(f"{shown} of "), feed
    return shown


if __name__ == "__main__":
    main(*sys.argv[1:6])
