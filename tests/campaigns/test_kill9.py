"""kill -9 of a real daemon (``zapvisor run``) in the middle of a campaign, then a restart, on SQLite
and on PostgreSQL: the campaign resumes from the store by itself and finishes; WhatsApp (the
simulator) got every recipient at most once — exactly once but for a send the kill caught with the
driver, which is ``failed`` with an ``unknown:`` error, never sent again —, and the pace held across
the restart."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import httpx
import trio

from actors.store import CampaignStatus, PostgresBackend, SqliteBackend, open_store
from bench._servers import free_port
from tests.fixtures.flows import flow_env
from tests.campaigns.exactly_once import assert_each_recipient_at_most_once

DAEMON = [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main(['run']))"]
TOKEN = "campaign-kill9-admin-token-0123456789"
SESSIONS = ("k1", "k2", "k3")
RECIPIENTS = 150
DELAY = [0.03, 0.06]
START_TIMEOUT = 60.0


def _backend(env: dict[str, str]):
    if env.get("ZAPVISOR_STORE__BACKEND") == "postgres":
        return PostgresBackend(env["ZAPVISOR_STORE__POSTGRES_DSN"])
    return SqliteBackend(Path(env["ZAPVISOR_NODE__DATA_DIR"]) / "zapvisor.sqlite3")


async def _start(env: dict[str, str], log: Path, url: str) -> trio.Process:
    with open(log, "ab") as out:
        process = await trio.lowlevel.open_process(DAEMON, env={**os.environ, **env}, stdout=out, stderr=out)
    async with httpx.AsyncClient(base_url=url) as client:
        with trio.fail_after(START_TIMEOUT):
            while True:
                assert process.returncode is None, log.read_text()[-3000:]
                try:
                    await client.get("/healthz")
                    return process
                except httpx.TransportError:
                    await trio.sleep(0.1)


async def _stop(process: trio.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(30):
            await process.wait()
        if process.returncode is None:
            process.kill()


async def test_kill9_mid_campaign_resumes_and_sends_each_recipient_at_most_once(
        tmp_path, simulator, simulator_control, backend_dsn):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = flow_env(tmp_path, simulator.url, backend_dsn, api__port=str(port), api__admin_token=TOKEN,
                   logging__level="warning")
    data = Path(env["ZAPVISOR_NODE__DATA_DIR"])
    (data / "auth").mkdir(parents=True)
    log = tmp_path / "daemon.log"
    async with open_store(_backend(env)) as store:
        await store.upsert_tenant("acme", "Acme")
        for session in SESSIONS:
            account = await simulator_control.create_account(session, paired=True)
            (data / "auth" / f"{session}.json").write_text('{"creds": "%s"}' % account["creds"])
            await store.upsert_session(session, "acme", session)
            await store.set_session_status(session, "connecting")  # was live: restored at boot
        daemon = await _start(env, log, url)
        try:
            with trio.fail_after(START_TIMEOUT):
                while [(await store.get_session(s)).status for s in SESSIONS] != ["connected"] * len(SESSIONS):
                    await trio.sleep(0.05)
            csv = "phone,name\n" + "".join(f"55219300{i:04d},c{i}\n" for i in range(RECIPIENTS))
            async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
                reply = await client.post("/tenants/acme/campaigns", json={
                    "name": "kill9", "text": "hello {{name}}", "sessions": list(SESSIONS), "recipients_csv": csv,
                    "pacing": {"delay": DELAY, "cold_daily_cap": RECIPIENTS}, "start": True})
            assert reply.status_code == 201, reply.text
            campaign_id = reply.json()["id"]
            with trio.fail_after(START_TIMEOUT):
                while sum([len(await simulator_control.sent(s)) for s in SESSIONS]) < RECIPIENTS // 3:
                    await trio.sleep(0.01)
            daemon.kill()  # SIGKILL mid-campaign: no shutdown, no flush
            await daemon.wait()
            before = sum([len(await simulator_control.sent(s)) for s in SESSIONS])
            assert before < RECIPIENTS
            daemon = await _start(env, log, url)
            with trio.move_on_after(START_TIMEOUT * 2):
                while (await store.get_campaign(campaign_id)).status is not CampaignStatus.FINISHED:
                    await trio.sleep(0.1)
            campaign = await store.get_campaign(campaign_id)
            assert campaign.status is CampaignStatus.FINISHED, (
                campaign, await store.campaign_counts(campaign_id), log.read_text()[-3000:])
        finally:
            await _stop(daemon)
        counts = await store.campaign_counts(campaign_id)
        recipients = await store.list_recipients(campaign_id, limit=1000)
    assert daemon.returncode == 0, log.read_text()[-3000:]

    received = []
    for session in SESSIONS:
        entries = await simulator_control.sent(session)
        received += [entry["to"] for entry in entries]
        gaps = [b["ts"] - a["ts"] for a, b in zip(entries, entries[1:])]
        assert min(gaps) >= DELAY[0], gaps  # the pace held, across the kill and restart too
    assert_each_recipient_at_most_once(received, recipients, counts, RECIPIENTS, SESSIONS)
