"""A campaign whose node is killed (``kill -9``) is resumed by another node of the cluster (real
daemons on one PostgreSQL and Redis, the simulator as WhatsApp): the campaign's lease lapses, the
survivor takes it and finishes it; every recipient got the message at most once — exactly once
but for a send the kill caught with the driver, ``failed`` with an ``unknown:`` error and never
sent again."""

from __future__ import annotations

import trio

from actors.store import CampaignStatus, PostgresBackend, open_store
from tests.campaigns.exactly_once import assert_each_recipient_at_most_once

from .conftest import cluster_member, running, seed, wait_converged

SESSIONS = {"c1", "c2", "c3", "c4"}
RECIPIENTS = 120
DELAY = [0.03, 0.06]
LEASE_TTL = 6.0
"""campaigns.lease_ttl here: a takeover within seconds (30 s by default)."""


async def _sent(control) -> list[str]:
    return [entry["to"] for session in sorted(SESSIONS) for entry in await control.sent(session)]


async def test_a_campaign_whose_node_dies_is_finished_by_another(tmp_path, simulator, simulator_control,
                                                                  postgres_dsn, redis_url):
    await seed(postgres_dsn, simulator_control, SESSIONS)
    members = [cluster_member(tmp_path, simulator.url, name, postgres_dsn, redis_url,
                              campaigns__lease_ttl=str(LEASE_TTL)) for name in ("a", "b")]
    async with running(*members), open_store(PostgresBackend(postgres_dsn)) as store:
        await wait_converged(members[0], SESSIONS, {"a", "b"})
        csv = "phone,name\n" + "".join(f"55219400{i:04d},c{i}\n" for i in range(RECIPIENTS))
        reply = await members[0].client.post("/tenants/acme/campaigns", json={
            "name": "failover", "text": "hello {{name}}", "sessions": sorted(SESSIONS), "recipients_csv": csv,
            "pacing": {"delay": DELAY, "cold_daily_cap": RECIPIENTS}, "start": True})
        assert reply.status_code == 201, reply.text
        campaign_id = reply.json()["id"]
        with trio.fail_after(60):
            while len(await _sent(simulator_control)) < RECIPIENTS // 3:
                await trio.sleep(0.01)
        owner = (await store.get_campaign(campaign_id)).owner
        victim = next(m for m in members if m.name == owner)
        survivor = next(m for m in members if m is not victim)
        victim.kill()  # SIGKILL mid-campaign
        await victim.daemon.process.wait()
        assert len(await _sent(simulator_control)) < RECIPIENTS

        with trio.move_on_after(120):
            while (await store.get_campaign(campaign_id)).status is not CampaignStatus.FINISHED:
                await trio.sleep(0.2)
        campaign = await store.get_campaign(campaign_id)
        assert campaign.status is CampaignStatus.FINISHED, (campaign, await store.campaign_counts(campaign_id))
        assert campaign.owner == survivor.name
        counts = await store.campaign_counts(campaign_id)
        recipients = await store.list_recipients(campaign_id, limit=1000)

    received = await _sent(simulator_control)
    assert_each_recipient_at_most_once(received, recipients, counts, RECIPIENTS, SESSIONS)
    assert (await simulator_control.stats()).replaced == 0
