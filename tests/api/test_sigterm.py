"""SIGTERM on a real ``zapvisor run`` with sends in flight: exit 0, nothing lost, nothing logged out.

A daemon subprocess (simulated sessions against the simulator process) gets a connected
session, a ticket from an inbound message, and a burst of agent sends; SIGTERM arrives
right after the last send is accepted. The daemon drains and exits 0. A second daemon
on the same data directory restores the session at boot, connected without a QR code (the
stop did not log it out), and every accepted send reaches WhatsApp exactly once.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import trio

from .conftest import ADMIN_TOKEN, Daemon

STOP_TIMEOUT = 45.0
"""Real seconds from SIGTERM to exit: the outbox's drain deadline plus the tree's graceful stop."""
FLOW_TIMEOUT = 60.0
SENDS = 8


async def _wait(check, timeout: float = FLOW_TIMEOUT):
    with trio.fail_after(timeout):
        while not (result := await check()):
            await trio.sleep(0.05)
    return result


async def test_sigterm_drains_and_a_restart_loses_nothing(tmp_path: Path, simulator, simulator_control) -> None:
    first = Daemon(tmp_path, simulator.url, "first")
    second = Daemon(tmp_path, simulator.url, "second")
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        url = await first.start()
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30.0) as admin:
            await admin.post("/tenants", json={"id": "t1", "name": "T1"})
            await admin.post("/tenants/t1/sessions", json={"id": "s1", "name": "S1"})
            assert (await admin.post("/tenants/t1/sessions/s1/connect")).json()["status"] == "qr"
            await simulator_control.scan("s1")

            async def connected():
                return (await admin.get("/tenants/t1/sessions/s1")).json()["status"] == "connected"

            await _wait(connected)
            await simulator_control.send_message("s1", "help!", sender="5511977776666@s.whatsapp.net")

            async def ticket():
                return (await admin.get("/tenants/t1/tickets")).json()

            ticket_id = (await _wait(ticket))[0]["id"]
            user = (await admin.post("/tenants/t1/users", json={"email": "a@t1.test", "name": "A"})).json()
            for i in range(SENDS):
                sent = await admin.post(f"/tenants/t1/tickets/{ticket_id}/messages", json={"text": f"reply {i}"},
                                        headers={"Idempotency-Key": f"drain-{i}"})
                assert sent.status_code == 202, sent.text
            first.process.send_signal(signal.SIGTERM)
        with trio.fail_after(STOP_TIMEOUT):
            assert await first.process.wait() == 0, first.log.read_text()[-3000:]
        log = first.log.read_text()
        assert "received SIGTERM" in log and "stopped" in log
        assert user["id"]  # the store kept writing up to the stop

        url = await second.start()
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30.0) as admin:
            # Restored at boot, and the stop did not log the device out: it connects with no QR code.
            async def restored_and_connected():
                return (await admin.get("/tenants/t1/sessions/s1")).json()["status"] == "connected"

            await _wait(restored_and_connected)
            assert "restored 1 sessions" in second.log.read_text()

            async def all_sent():
                texts = [str(m) for m in await simulator_control.sent("s1")]
                return [t for t in texts if "reply " in t] if all(
                    any(f"reply {i}" in t for t in texts) for i in range(SENDS)) else None

            delivered = await _wait(all_sent)
            assert len(delivered) == SENDS  # exactly once each
            async def outbox_done():
                jobs = (await admin.get("/queues/outbox/jobs")).json()
                return len(jobs) == SENDS and {job["status"] for job in jobs} == {"done"}

            await _wait(outbox_done)  # the simulator may see a send just before the outbox records it
            second.process.send_signal(signal.SIGTERM)
        with trio.fail_after(STOP_TIMEOUT):
            assert await second.process.wait() == 0
    finally:
        first.kill()
        second.kill()
