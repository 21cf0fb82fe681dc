"""A campaign on a whole node (real simulator, real store on SQLite and PostgreSQL): every recipient
reaches WhatsApp once, at the pace asked, progress is announced, stop words opt contacts out."""

from __future__ import annotations

import trio

from actors.campaigns import CAMPAIGN_UPDATED, Pacing, Pause, RecipientInput, Schedule, Start, build_campaign
from actors.store import CampaignStatus
from tests.fixtures.flows import eventually, flow_node, flow_settings, provision

DELAY = (0.05, 0.1)


async def _create(node, sessions, phones, *, text="hi {{name}}", start=True, **pacing):
    definition = build_campaign(
        name="promo", text=text, media=None, sessions=sessions, schedule=Schedule("UTC"),
        pacing=Pacing(DELAY, pacing.get("daily_cap", 1000), pacing.get("cold_daily_cap", 1000),
                      pacing.get("failure_threshold", 5)),
        recipients=[RecipientInput(phone, {"name": f"n{i}"}, f"recipients.rows[{i}]")
                    for i, phone in enumerate(phones)])
    campaign = await node.store.create_campaign(
        "acme", definition.name, template=definition.template, sessions=definition.sessions,
        schedule=definition.schedule.to_document(), pacing=definition.pacing.to_document(),
        recipients=definition.recipients)
    if start:
        await node.system.ref("/services/campaigns").ask(Start(campaign.id))
    return campaign


async def _finished(node, campaign_id, timeout=60.0):
    async def done():
        campaign = await node.store.get_campaign(campaign_id)
        return campaign if campaign.status is CampaignStatus.FINISHED else None
    return await eventually(done, timeout=timeout, interval=0.05)


async def test_each_recipient_is_sent_once_at_the_pace_asked(tmp_path, simulator, simulator_control, backend_dsn):
    settings = flow_settings(tmp_path, simulator.url, backend_dsn)
    async with flow_node(settings) as (node, recorder):
        for session in ("s1", "s2"):
            await provision(node, simulator_control, session)
        phones = [f"5521900{i:06d}" for i in range(30)] + ["not a phone", "5521900000003"]
        campaign = await _create(node, ["s1", "s2"], phones)
        await _finished(node, campaign.id)
        counts = await node.store.campaign_counts(campaign.id)
        assert counts["sent"] == 30 and counts["skipped"] == 2
        assert counts["skipped:invalid_number"] == 1 and counts["skipped:duplicate"] == 1
        received = []
        for session in ("s1", "s2"):
            log = await simulator_control.sent(session)
            received += [entry["to"] for entry in log]
            gaps = [b["ts"] - a["ts"] for a, b in zip(log, log[1:])]
            assert log and min(gaps) >= DELAY[0], gaps  # the simulator's own clock: the pace held
        assert sorted(received) == sorted(f"{p}@s.whatsapp.net" for p in phones[:30])  # once each
        texts = {entry["text"] for s in ("s1", "s2") for entry in await simulator_control.sent(s)}
        assert "hi n0" in texts and "hi n29" in texts
        updates = [p for p in recorder.of(CAMPAIGN_UPDATED) if p["id"] == campaign.id]
        assert updates[-1]["status"] == "finished" and updates[-1]["counts"]["sent"] == 30


async def test_a_stop_word_opts_the_contact_out_of_later_campaigns(tmp_path, simulator, simulator_control):
    settings = flow_settings(tmp_path, simulator.url)
    async with flow_node(settings) as (node, _):
        await provision(node, simulator_control, "s1")
        first = await _create(node, ["s1"], ["552190000001", "552190000002"])
        await _finished(node, first.id)
        await simulator_control.send_message("s1", "  STOP ", sender="552190000001@s.whatsapp.net")
        await simulator_control.send_message("s1", "thanks!", sender="552190000002@s.whatsapp.net")

        async def answered():
            counts = await node.store.campaign_counts(first.id)
            return counts["replied"] == 2 and await node.store.opted_out("acme", "552190000001@s.whatsapp.net")
        await eventually(answered)
        assert not await node.store.opted_out("acme", "552190000002@s.whatsapp.net")
        second = await _create(node, ["s1"], ["552190000001", "552190000002"], text="again")
        await _finished(node, second.id)
        counts = await node.store.campaign_counts(second.id)
        assert counts["sent"] == 1 and counts["skipped:opted_out"] == 1
        assert [e["text"] for e in await simulator_control.sent("s1")].count("again") == 1


async def test_pause_stops_sending_and_resume_finishes(tmp_path, simulator, simulator_control):
    settings = flow_settings(tmp_path, simulator.url)
    async with flow_node(settings) as (node, _):
        await provision(node, simulator_control, "s1")
        campaign = await _create(node, ["s1"], [f"55219100{i:04d}" for i in range(40)])
        service = node.system.ref("/services/campaigns")
        await eventually(lambda: _sent_at_least(simulator_control, 3))
        paused = await service.ask(Pause(campaign.id))
        assert paused.status is CampaignStatus.PAUSED
        await trio.sleep(0.5)
        frozen = len(await simulator_control.sent("s1"))
        await trio.sleep(0.5)
        assert len(await simulator_control.sent("s1")) == frozen < 40
        await service.ask(Start(campaign.id))
        await _finished(node, campaign.id)
        assert sorted(e["to"] for e in await simulator_control.sent("s1")) == sorted(
            f"55219100{i:04d}@s.whatsapp.net" for i in range(40))


async def _sent_at_least(control, n):
    return len(await control.sent("s1")) >= n


async def test_the_daily_caps_hold_and_warm_contacts_pass_the_cold_cap(tmp_path, simulator, simulator_control):
    settings = flow_settings(tmp_path, simulator.url)
    async with flow_node(settings) as (node, recorder):
        await provision(node, simulator_control, "s1")
        warm = "552190000009"
        await simulator_control.send_message("s1", "hello", sender=f"{warm}@s.whatsapp.net")  # a ticket: warm
        await eventually(lambda: node.store.list_tickets("acme"))
        phones = [f"55219000000{i}" for i in range(1, 6)] + [warm]
        campaign = await _create(node, ["s1"], phones, daily_cap=4, cold_daily_cap=2)

        def waiting_on(what):
            async def check():
                updates = [p for p in recorder.of(CAMPAIGN_UPDATED) if p["id"] == campaign.id]
                return updates and what in updates[-1].get("lanes", {}).get("s1", "")
            return check
        await eventually(waiting_on("cold-contact cap reached"))
        sent = [e["to"] for e in await simulator_control.sent("s1")]
        assert len(sent) == 3 and f"{warm}@s.whatsapp.net" in sent  # 2 cold ones, and the warm one passed
        assert (await node.store.get_campaign(campaign.id)).status is CampaignStatus.RUNNING
        second = await _create(node, ["s1"], ["552190000021"], cold_daily_cap=10, daily_cap=4)
        await eventually(lambda: _sent_at_least(simulator_control, 4))
        await trio.sleep(1.0)
        assert len(await simulator_control.sent("s1")) == 4  # the daily cap is the session's, every campaign's
        counts = await node.store.campaign_counts(second.id)
        assert counts["sent"] + counts["pending"] == 1
