"""The fleet dashboard's browser side (``python -m tests.api._browser_fleet URL SHOT TENANT SESSIONS BROKEN``),
its own process like ``tests.api._browser`` (which explains why). Prints ``ok <checkpoint>`` lines, and
``timing <name> <ms>`` for how long the page took to show the fleet."""

from __future__ import annotations

import sys
import time

from playwright.sync_api import sync_playwright

from tests.api._browser import CHROMIUM, CHROMIUM_ARGS, UI_TIMEOUT_MS, checkpoint


def main(url: str, screenshot: str, tenant: str, per_tenant: str, broken: str) -> None:
    sessions = f"/tenants/{tenant}/sessions"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(UI_TIMEOUT_MS)
            started = time.monotonic()
            page.goto(url)
            page.wait_for_selector(f'#by-status [data-count="logged_out"][data-value="{broken}"]')
            print("timing overview_ms", round((time.monotonic() - started) * 1000), flush=True)
            checkpoint("overview")
            # A subtree of hundreds of sessions starts collapsed; opened, it shows one page of 50.
            toggle = page.locator(f'button[data-toggle="{sessions}"]')
            assert toggle.get_attribute("aria-expanded") == "false"
            toggle.click()
            page.wait_for_selector(f'tr[data-pager="{sessions}"]')
            shown = page.locator(f'#tree tbody tr[data-path^="{sessions}/"]').count()
            pager = page.locator(f'tr[data-pager="{sessions}"]')
            assert shown == 50, shown
            assert f"1–50 of {per_tenant}" in pager.inner_text(), pager.inner_text()
            pager.locator('button[data-page="next"]').click()
            page.wait_for_selector(f'tr[data-pager="{sessions}"]:has-text("51–100 of {per_tenant}")')
            checkpoint("paged")
            # The filter: one session out of the whole tree, then every stopped actor.
            page.fill("#filter-text", f"{sessions}/s-0007")
            page.wait_for_selector("#tree-count:has-text(' of ')")
            assert page.locator("#tree tbody tr[data-path]").count() == 1
            assert "1 of " in page.inner_text("#tree-count")
            page.fill("#filter-text", "")
            page.select_option("#filter-breaker", "closed")
            page.wait_for_selector("tr.pager[data-pager]")
            assert page.locator("#tree tbody tr[data-path]").count() == 100  # one page of the flat list
            page.select_option("#filter-breaker", "")
            checkpoint("filtered")
            # Cards only for the sessions that need a human.
            page.wait_for_selector('#sessions .session [data-status="logged_out"]')
            assert page.locator("#sessions .session").count() == int(broken)
            # The traffic charts: rates and gauges from /metrics, sampled by the page (it is itself the
            # one websocket client).
            page.wait_for_selector('[data-chart="clients"] b[data-value="1"]')
            # No traffic here: a flat line, which has no height (so "attached", not "visible").
            page.wait_for_selector('[data-chart="received"] svg.spark polyline', state="attached")
            checkpoint("charts")
            page.screenshot(path=screenshot, full_page=False)
            checkpoint("screenshot")
        finally:
            browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:6])
