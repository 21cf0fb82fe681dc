"""The dashboard in headless Chromium (Debian's, driven by Playwright's Python client).

Against a running daemon (``zapvisor run`` as a subprocess) with a simulated session: the page
shows the live tree, the session connected, and the nodes panel with this node alone running it (a
memory-bus node is a cluster of one); the event feed, filtered to the session's starts, keeps its
filter (and its count) while new events arrive; a fault (WhatsApp logs the device out) turns the session ``logged_out`` on
the page; clicking the session actor's restart button brings it back to showing a QR code.
A screenshot is saved under ``test-artifacts/``. The browser runs in its own process
(``tests/api/_browser.py`` explains why).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import trio

from supervisor import EventKind
from tests.fixtures.simulator import open_simulator

from .conftest import ADMIN_TOKEN, Daemon

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SESSION_PATH = "/tenants/t1/sessions/s1"
BROWSER_TIMEOUT = 120.0
"""Whole browser run, real time: Chromium's start plus three page waits on a shared machine."""


async def _line(stdout: trio.abc.ReceiveStream, buffer: bytearray) -> str:
    while b"\n" not in buffer:
        chunk = await stdout.receive_some()
        if not chunk:
            raise AssertionError(f"browser process ended; output so far: {bytes(buffer)!r}")
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode().strip()


SLOW_QR = ("--qr-interval", "30")
"""A QR code stays up long enough for a page that polls every second on a loaded machine."""


async def test_dashboard_shows_a_fault_and_restarts_the_session(tmp_path: Path) -> None:
    async with open_simulator(tmp_path / "simulator", *SLOW_QR) as simulator, simulator.control() as control:
        await _with_daemon(tmp_path, simulator.url, control)


async def _with_daemon(tmp_path: Path, simulator_url: str, simulator_control) -> None:
    daemon = Daemon(tmp_path, simulator_url, "daemon")
    try:
        url = await daemon.start()
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                                     timeout=BROWSER_TIMEOUT) as admin:
            await _browse(admin, url, simulator_control)
        daemon.process.send_signal(signal.SIGTERM)
        with trio.fail_after(BROWSER_TIMEOUT):
            assert await daemon.process.wait() == 0
    finally:
        daemon.kill()


async def _browse(admin: httpx.AsyncClient, url: str, simulator_control) -> None:
    await admin.post("/tenants", json={"id": "t1", "name": "T1"})
    await admin.post("/tenants/t1/sessions", json={"id": "s1", "name": "Support"})
    await admin.post("/tenants/t1/sessions/s1/connect")
    await simulator_control.scan("s1")
    with trio.fail_after(BROWSER_TIMEOUT):
        while (await admin.get("/tenants/t1/sessions/s1")).json()["status"] != "connected":
            await trio.sleep(0.05)
    cluster = (await admin.get("/cluster")).json()
    [me] = cluster["members"]
    assert me["self"] and me["sessions"] == ["s1"]
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    screenshot.unlink(missing_ok=True)

    seen = []
    command = [sys.executable, "-m", "tests.api._browser", f"{url}/#token={ADMIN_TOKEN}", SESSION_PATH,
               str(screenshot), me["node_id"], f"1/{me['capacity']}"]
    browser = await trio.lowlevel.open_process(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        with trio.fail_after(BROWSER_TIMEOUT):
            buffer = bytearray()
            seen.append(await _line(browser.stdout, buffer))
            await simulator_control.disconnect(401, "s1")  # the fault: the phone unlinked the device
            await browser.stdin.send_all(b"go\n")
            while (line := await _line(browser.stdout, buffer)) != "ok screenshot":
                seen.append(line)
            assert await browser.wait() == 0
    finally:
        if browser.returncode is None:
            browser.kill()
            with trio.CancelScope(shield=True):
                await browser.wait()
    assert seen == ["ok connected", "ok logged_out", "ok qr"]
    assert screenshot.stat().st_size > 0
    audit = (await admin.get("/supervision/audit", params={"target": SESSION_PATH})).json()
    assert [(a["action"], a["result"]) for a in audit] == [
        ("restart", "ok"), ("connect_session", "ok"), ("create_session", "ok")]


def test_the_event_filter_offers_every_event_kind() -> None:
    page = (ROOT / "api" / "static" / "index.html").read_text()
    select = re.search(r'<select id="events-kind">(.*?)</select>', page, re.S).group(1)
    assert re.findall(r"<option>(\w+)</option>", select) == [kind.value for kind in EventKind]
