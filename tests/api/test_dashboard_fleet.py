"""The dashboard with a fleet, in headless Chromium: 1,000 simulated sessions over four tenants, a
few of them logged out. The overview counts them by status and tenant, the tree keeps the big
subtrees collapsed and pages their children, the filter finds one session among thousands of
actors, only the sessions that need a human get a card, and the traffic charts sample /metrics. Screenshot:
``test-artifacts/dashboard-fleet.png``."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import trio

from tests.fixtures.simulator import open_simulator

from .conftest import ADMIN_TOKEN, Daemon
from .test_dashboard import ARTIFACTS, ROOT, _line

TENANTS = 4
PER_TENANT = 250
"""1,000 sessions: the issue's fleet."""
BROKEN = 3
"""Sessions logged out from "the phone": what the overview and the cards must single out."""
CREATE_CONCURRENCY = 20
"""Requests in flight while the fleet is built: quick, without queueing hundreds at the daemon."""
FLEET_TIMEOUT = 600.0
"""Real seconds to build and connect 1,000 sessions and browse them on a loaded 2-core machine."""


async def test_the_dashboard_handles_a_fleet(tmp_path: Path) -> None:
    async with open_simulator(tmp_path / "simulator", "--auto-pair") as simulator, \
            simulator.control() as control:
        daemon = Daemon(tmp_path, simulator.url, "daemon")
        daemon.env["ZAPVISOR_SESSIONS__MAX_SESSIONS"] = str(TENANTS * PER_TENANT)
        try:
            url = await daemon.start()
            async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                                         timeout=FLEET_TIMEOUT) as admin:
                with trio.fail_after(FLEET_TIMEOUT):
                    await _build_fleet(admin)
                    await _wait_counts(admin, {"connected": TENANTS * PER_TENANT})
                    for index in range(BROKEN):
                        await control.logout(f"s-{index:04d}")  # in fleet-0
                    await _wait_counts(admin, {"connected": TENANTS * PER_TENANT - BROKEN, "logged_out": BROKEN})
                    await _browse(url)
            daemon.process.send_signal(signal.SIGTERM)
            with trio.fail_after(FLEET_TIMEOUT):
                assert await daemon.process.wait() == 0
        finally:
            daemon.kill()


async def _build_fleet(admin: httpx.AsyncClient) -> None:
    limiter = trio.CapacityLimiter(CREATE_CONCURRENCY)

    async def one(tenant: str, session: str) -> None:
        async with limiter:
            made = await admin.post(f"/tenants/{tenant}/sessions", json={"id": session, "name": session})
            assert made.status_code == 201, made.text
            shown = await admin.post(f"/tenants/{tenant}/sessions/{session}/connect", json={"timeout": 60})
            assert shown.status_code == 200, shown.text  # auto-paired: "pairing", then connected

    async with trio.open_nursery() as nursery:
        for t in range(TENANTS):
            tenant = f"fleet-{t}"
            assert (await admin.post("/tenants", json={"id": tenant, "name": tenant})).status_code in (200, 201)
            for s in range(PER_TENANT):
                # Session ids are node-wide: the tenant's number goes in front of all but fleet-0's.
                nursery.start_soon(one, tenant, f"s-{t * PER_TENANT + s:04d}")


async def _wait_counts(admin: httpx.AsyncClient, expected: dict[str, int]) -> None:
    while True:
        counts: dict[str, int] = {}
        for t in range(TENANTS):
            for session in (await admin.get(f"/tenants/fleet-{t}/sessions")).json():
                counts[session["status"]] = counts.get(session["status"], 0) + 1
        if counts == expected:
            return
        await trio.sleep(0.5)


async def _browse(url: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dashboard-fleet.png"
    screenshot.unlink(missing_ok=True)
    command = [sys.executable, "-m", "tests.api._browser_fleet", f"{url}/#token={ADMIN_TOKEN}", str(screenshot),
               "fleet-0", str(PER_TENANT), str(BROKEN)]
    browser = await trio.lowlevel.open_process(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    seen = []
    try:
        buffer = bytearray()
        while (line := await _line(browser.stdout, buffer)) != "ok screenshot":
            seen.append(line)
        assert await browser.wait() == 0
    finally:
        if browser.returncode is None:
            browser.kill()
            with trio.CancelScope(shield=True):
                await browser.wait()
    assert [line for line in seen if line.startswith("ok ")] == ["ok overview", "ok paged", "ok filtered", "ok charts"]
    timing = [line for line in seen if line.startswith("timing ")]
    print(*timing)  # how long the page took to show 1,000 sessions (pytest -s shows it)
    assert screenshot.stat().st_size > 0
