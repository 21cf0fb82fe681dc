"""The outbox over a real node and simulator: order, exactly once by id, receipts, pauses."""

from __future__ import annotations

import trio

from actors.flows import OUTBOX_PAUSED, QueueInfo, QueueStatus
from actors.outbox import OutboxRefused, Send
from actors.sessions import SessionStatus
from actors.store import DeliveryStatus, JobStatus, Queue
from tests.fixtures.flows import contact, eventually, flow_node, flow_settings, provision, wait_status

SENDS = 8


async def test_sends_in_order_once_by_id_with_receipts(tmp_path, simulator, simulator_control, backend_dsn):
    settings = flow_settings(tmp_path, simulator.url, backend_dsn)
    async with flow_node(settings) as (node, recorder):
        await provision(node, simulator_control, "s1")
        outbox = node.system.ref("/services/outbox")
        items = []
        for i in range(SENDS):
            enqueued = await outbox.ask(Send("acme", "s1", f"key-{i}", contact(7), f"reply {i}"))
            assert enqueued.created
            items.append(enqueued.item)
        again = await outbox.ask(Send("acme", "s1", "key-0", contact(7), "reply 0"))
        assert not again.created and again.item.id == items[0].id

        async def all_read():
            jobs = await node.store.list_jobs(Queue.OUTBOX)
            return all(j.status is JobStatus.DONE and j.delivery is DeliveryStatus.READ for j in jobs)

        await eventually(all_read)
        jobs = {job.id: job for job in await node.store.list_jobs(Queue.OUTBOX)}
        wa_ids = [jobs[item.id].wa_id for item in items]  # the ids WhatsApp gave, not ours
        sent = await simulator_control.sent("s1")
        assert [entry["id"] for entry in sent] == wa_ids
        assert not {item.message_id for item in items} & set(wa_ids)
        assert [entry["text"] for entry in sent] == [f"reply {i}" for i in range(SENDS)]
        for wa_id in wa_ids:  # the stored outbound message: under WhatsApp's id, ticks moved by its receipts
            stored = await node.store.get_message("s1", wa_id)
            assert stored.from_me and stored.status is DeliveryStatus.READ
        refused = await outbox.ask(Send("acme", "s1", "", contact(7), "x"))
        assert isinstance(refused, OutboxRefused) and refused.field == "idempotency_key"


async def test_banned_session_pauses_its_outbox_and_resumes_after(tmp_path, simulator, simulator_control):
    settings = flow_settings(tmp_path, simulator.url)
    async with flow_node(settings) as (node, recorder):
        await provision(node, simulator_control, "s1")
        outbox = node.system.ref("/services/outbox")
        await simulator_control.ban("s1", seconds=1.5)
        await wait_status(node, "s1", SessionStatus.BANNED)

        async def paused():
            info = await outbox.ask(QueueStatus())
            return info if "s1" in info.paused_sessions else None

        info = await eventually(paused)
        assert isinstance(info, QueueInfo) and not info.paused

        async def announced():  # the store's pause is committed just before the event is emitted
            return [p["session_id"] for p in recorder.of(OUTBOX_PAUSED)]

        assert await eventually(announced) == ["s1"]
        enqueued = await outbox.ask(Send("acme", "s1", "while-banned", contact(7), "later"))
        assert enqueued.created  # a paused outbox still accepts
        await trio.sleep(0.3)
        assert (await node.store.get_job(Queue.OUTBOX, enqueued.item.id)).status is JobStatus.QUEUED

        async def delivered():
            return [entry["text"] for entry in await simulator_control.sent("s1")]

        assert await eventually(delivered, timeout=30) == ["later"]

        async def done():
            job = await node.store.get_job(Queue.OUTBOX, enqueued.item.id)
            return job if job.status is JobStatus.DONE else None

        assert (await eventually(done)).wa_id == (await simulator_control.sent("s1"))[0]["id"]
        assert (await outbox.ask(QueueStatus())).paused_sessions == ()
