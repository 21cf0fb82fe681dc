"""The dashboard's browser side, run as its own process (``python -m tests.api._browser URL SHOT``).

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


def main(url: str, session_path: str, screenshot: str) -> None:
    session = session_path.rsplit("/", 1)[1]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.goto(url)
            page.wait_for_selector('tr[data-path="/infra/store"] [data-state="running"]')
            page.wait_for_selector(f'[data-session="{session}"] [data-status="connected"]')
            page.wait_for_selector('#connection[data-live="websocket"]')  # joined the supervision room
            checkpoint("connected", wait=True)  # the test injects the fault now
            page.wait_for_selector(f'[data-session="{session}"] [data-status="logged_out"]')
            checkpoint("logged_out")
            page.click(f'button[data-action="restart"][data-path="{session_path}"]')
            page.wait_for_selector(f'[data-session="{session}"] [data-status="qr"]')
            page.wait_for_selector(f'[data-session="{session}"] .qr svg')
            page.wait_for_selector('#events li[data-kind="started"]')
            checkpoint("qr")
            page.screenshot(path=screenshot, full_page=True)
            checkpoint("screenshot")
        finally:
            browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
