"""Item isolation in the outbox (DESIGN §10), over a real node, simulator and store: an item that
fails on its own content is quarantined with its error, the service never restarts for it, and the
other sessions' sends — and the same session's next ones — flow on."""

from __future__ import annotations

import json

from actors.flows import ListJobs, RemoveJob, RetryJob
from actors.outbox import Send
from actors.store import QUARANTINED, JobStatus, Queue
from supervisor import EventKind
from tests.fixtures.flows import contact, eventually, flow_node, flow_settings, provision

#: An item whose content fails it before it reaches WhatsApp: an attachment of a kind no driver
#: knows (the API never writes one; a bug or a hand-edited row could). Since WhatsApp names what it
#: accepted, an item is quarantined only *before* the send: after it, it is done or ``unknown``.
MALFORMED_PAYLOAD = {"text": "to nowhere", "media": {"kind": "hologram", "mimetype": "x/y"}}  # no file either

BYSTANDER_SENDS = 5


def _outbox_incidents(node) -> list:
    """Every exit or restart of the outbox service (or anything above it) since the node started."""
    return [e for e in node.system.history()
            if e.path in ("/", "/services", "/services/outbox")
            and e.kind in (EventKind.EXITED, EventKind.RESTARTED, EventKind.INTENSITY_EXCEEDED)]


async def test_an_item_that_cannot_be_recorded_is_quarantined_and_everything_else_flows(
    tmp_path, simulator, simulator_control, backend_dsn,
):
    settings = flow_settings(tmp_path, simulator.url, backend_dsn)
    async with flow_node(settings) as (node, _):
        await provision(node, simulator_control, "s1")
        await provision(node, simulator_control, "s2")
        outbox = node.system.ref("/services/outbox")
        poison = (await node.store.enqueue_outbox("acme", "s1", "poison", contact(6), MALFORMED_PAYLOAD)).item
        after = (await outbox.ask(Send("acme", "s1", "after", contact(7), "after the poison"))).item
        # the reply: a lone surrogate (valid JSON) used to crash-loop the outbox and stop the daemon
        surrogate = (await outbox.ask(Send("acme", "s1", "surrogate", contact(7), "hi \ud800"))).item
        bystander = [(await outbox.ask(Send("acme", "s2", f"b{i}", contact(8), f"b{i}"))).item
                     for i in range(BYSTANDER_SENDS)]

        async def settled():
            jobs = {j.id: j for j in await node.store.list_jobs(Queue.OUTBOX)}
            return jobs if all(j.status in (JobStatus.DONE, JobStatus.DEAD) for j in jobs.values()) else None

        jobs = await eventually(settled, timeout=30)
        assert jobs[poison.id].status is JobStatus.DEAD
        assert jobs[poison.id].last_error.startswith(f"{QUARANTINED}: ")
        assert jobs[after.id].status is jobs[surrogate.id].status is JobStatus.DONE  # its session went on, in order
        assert all(jobs[item.id].status is JobStatus.DONE for item in bystander)
        assert [e["id"] for e in await simulator_control.sent("s2")] == [jobs[item.id].wa_id for item in bystander]
        # the poison never reached WhatsApp; the two after it did, in order, under WhatsApp's ids
        assert [e["id"] for e in await simulator_control.sent("s1")] == [
            jobs[after.id].wa_id, jobs[surrogate.id].wa_id]
        stored = await node.store.get_message("s1", jobs[surrogate.id].wa_id)
        assert stored.body == "hi \ufffd" and json.loads(stored.raw_body) == "hi \ud800"
        assert _outbox_incidents(node) == []

        # the admin sees the quarantined item, retries it (quarantined again: its content has not
        # changed), then discards it; the service stays up throughout
        dead = await outbox.ask(ListJobs(JobStatus.DEAD, "acme", 100))
        assert [j.id for j in dead] == [poison.id]
        assert (await outbox.ask(RetryJob(poison.id))).status is JobStatus.QUEUED

        async def quarantined_again():
            job = await node.store.get_job(Queue.OUTBOX, poison.id)
            return job.status is JobStatus.DEAD and job.attempts == 1

        await eventually(quarantined_again)
        assert await outbox.ask(RemoveJob(poison.id)) is True
        assert await node.store.get_job(Queue.OUTBOX, poison.id) is None
        late = (await outbox.ask(Send("acme", "s2", "late", contact(8), "still flowing"))).item

        async def late_sent():
            return (await node.store.get_job(Queue.OUTBOX, late.id)).status is JobStatus.DONE

        await eventually(late_sent)
        assert _outbox_incidents(node) == []


async def test_a_restarted_outbox_that_meets_the_same_interrupted_item_quarantines_it(
    tmp_path, simulator, simulator_control,
):
    settings = flow_settings(tmp_path, simulator.url)
    async with flow_node(settings) as (node, _):
        await provision(node, simulator_control, "s1")
        await node.store.upsert_session("parked", "acme", "a session with no sender running")
        item = (await node.store.enqueue_outbox("acme", "parked", "k", contact(3), {"text": "x"})).item
        services = node.system.supervisor("/services")
        interruptions = 0
        while True:
            # the service takes the item and dies on it (claimed, never finished), then restarts
            assert [i.id for i in await node.store.claim_outbox(session_id="parked")] == [item.id]
            await services.terminate_child("outbox")
            await services.restart_child("outbox")
            interruptions += 1
            job = await node.store.get_job(Queue.OUTBOX, item.id)
            if job.status is not JobStatus.QUEUED:
                break
            assert job.interrupted == interruptions
        assert job.status is JobStatus.DEAD and job.last_error.startswith(f"{QUARANTINED}: ")
        assert interruptions == job.interrupted
        assert await node.store.claim_outbox(session_id="parked") == []
        sent = (await node.system.ref("/services/outbox").ask(Send("acme", "s1", "ok", contact(4), "ok"))).item

        async def delivered():
            return (await node.store.get_job(Queue.OUTBOX, sent.id)).status is JobStatus.DONE

        await eventually(delivered)
