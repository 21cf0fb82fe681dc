"""Queue administration and webhook subscriptions over HTTP (real store underneath)."""

from __future__ import annotations

import json

import trio
import trio_websocket

from actors.sessions import SessionStatus
from actors.store import JobStatus, Queue

from .test_ws_app import join, receive_until


async def _outbox_items(api_server, count: int) -> list[int]:
    store = api_server.node.store
    await api_server.tenant("t1")
    await store.upsert_session("s1", "t1", "S")
    items = [await store.enqueue_outbox("t1", "s1", f"key-{i}", "5511@s.whatsapp.net", {"text": f"m{i}"})
             for i in range(count)]
    return [e.item.id for e in items]


async def test_queue_listing_pause_retry_remove_clean(api_server) -> None:
    admin = api_server.admin
    ids = await _outbox_items(api_server, 3)
    overview = (await admin.get("/queues")).json()
    assert set(overview) == {"outbox", "media", "webhooks"}
    assert overview["outbox"]["jobs"]["queued"] == 3 and overview["outbox"]["paused"] is False
    jobs = (await admin.get("/queues/outbox/jobs", params={"state": "queued", "tenant_id": "t1"})).json()
    assert [j["id"] for j in jobs] == ids

    paused = await admin.post("/queues/outbox/pause")
    assert paused.json() == {"queue": "outbox", "session_id": None, "paused": True, "changed": True}
    assert (await admin.get("/queues")).json()["outbox"]["paused"] is True
    per_session = await admin.post("/queues/outbox/pause", json={"session_id": "s1"})
    assert per_session.json()["changed"] is True
    assert (await admin.get("/queues")).json()["outbox"]["paused_sessions"] == ["s1"]
    refused = await admin.post("/queues/media/pause", json={"session_id": "s1"})
    assert refused.status_code == 409 and refused.json()["error"]["field"] == "session_id"
    assert (await admin.post("/queues/outbox/resume")).json()["changed"] is True

    retried = await admin.post(f"/queues/outbox/jobs/{ids[0]}/retry")
    assert retried.status_code == 200 and retried.json()["attempts"] == 0
    assert (await admin.delete(f"/queues/outbox/jobs/{ids[1]}")).status_code == 204
    gone = await admin.delete(f"/queues/outbox/jobs/{ids[1]}")
    assert gone.status_code == 404 and gone.json()["error"]["field"] == "job_id"
    assert (await admin.post("/queues/outbox/jobs/999999/retry")).status_code == 404
    cleaned = await admin.post("/queues/outbox/clean", json={"older_than": 0, "include_dead": True})
    assert cleaned.status_code == 200 and cleaned.json()["removed"] == 0  # nothing finished yet
    assert len((await admin.get("/queues/outbox/jobs")).json()) == 2

    bad_queue = await admin.get("/queues/nope/jobs")
    assert bad_queue.status_code == 400 and bad_queue.json()["error"]["field"] == "queue"
    bad_state = await admin.get("/queues/outbox/jobs", params={"state": "weird"})
    assert bad_state.status_code == 400 and bad_state.json()["error"]["field"] == "state"
    bad_limit = await admin.get("/queues/outbox/jobs", params={"limit": "0"})
    assert bad_limit.status_code == 400 and bad_limit.json()["error"]["field"] == "limit"
    bad_age = await admin.post("/queues/outbox/clean", json={"older_than": -1})
    assert bad_age.status_code == 400 and bad_age.json()["error"]["field"] == "older_than"

    audit = [(a["action"], a["target"], a["result"]) for a in (await admin.get("/supervision/audit")).json()]
    assert ("remove_job", f"outbox/{ids[1]}", "ok") in audit and ("pause_queue", "outbox/s1", "ok") in audit


async def test_webhook_crud(api_server) -> None:
    await api_server.tenant("t1")
    client = api_server.client(await api_server.agent_token("t1", role="admin"))
    created = await client.post("/tenants/t1/webhooks", json={
        "url": "https://example.test/hook", "events": ["connection.update", "ticket.*"], "secret": "s3cret"})
    assert created.status_code == 201
    hook = created.json()
    assert hook["events"] == ["connection.update", "ticket.*"] and hook["has_secret"] is True
    assert "secret" not in hook and "s3cret" not in created.text
    assert (await client.get(f"/tenants/t1/webhooks/{hook['id']}")).json() == hook
    assert (await client.get("/tenants/t1/webhooks")).json() == [hook]
    for body, field in [({"url": "ftp://x", "events": ["*"]}, "url"),
                        ({"url": "http://x.test", "events": []}, "events"),
                        ({"url": "http://x.test", "events": ["Not An Event"]}, "events"),
                        ({"url": "http://x.test", "events": ["made.up"]}, "events"),
                        ({"events": ["*"]}, "url")]:
        response = await client.post("/tenants/t1/webhooks", json=body)
        assert response.status_code == 400 and response.json()["error"]["field"] == field, body
    assert (await client.delete(f"/tenants/t1/webhooks/{hook['id']}")).status_code == 204
    assert (await client.get(f"/tenants/t1/webhooks/{hook['id']}")).status_code == 404
    assert (await client.get("/tenants/t1/webhooks")).json() == []


async def test_dead_deliveries_are_listed_and_replayed(local_hooks_server) -> None:
    api_server = local_hooks_server
    await api_server.tenant("t1")
    await api_server.tenant("t2")
    client = api_server.client(await api_server.agent_token("t1", role="admin"))
    other = api_server.client(await api_server.agent_token("t2", role="admin"))
    store = api_server.node.store
    # A receiver that refuses connections (port 9, discard): every attempt fails, then a dead letter.
    created = await client.post("/tenants/t1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["*"]})
    assert created.status_code == 201, created.text
    deliveries = await store.enqueue_webhook_event("t1", "connection.update", {"session_id": "s1"})
    with trio.fail_after(30):
        while deliveries[0].id not in {d.id for d in await store.list_jobs(Queue.WEBHOOKS, JobStatus.DEAD)}:
            await trio.sleep(0.05)
    dead = (await client.get("/tenants/t1/webhooks/deliveries", params={"state": "dead"})).json()
    assert [d["id"] for d in dead] == [deliveries[0].id]
    assert (await other.get("/tenants/t2/webhooks/deliveries")).json() == []
    hidden = await other.post(f"/tenants/t2/webhooks/deliveries/{deliveries[0].id}/replay")
    assert hidden.status_code == 404 and hidden.json()["error"]["field"] == "delivery_id"
    replayed = await client.post(f"/tenants/t1/webhooks/deliveries/{deliveries[0].id}/replay")
    assert replayed.status_code == 200 and replayed.json()["attempts"] == 0
    bad_state = await client.get("/tenants/t1/webhooks/deliveries", params={"state": "nope"})
    assert bad_state.status_code == 400 and bad_state.json()["error"]["field"] == "state"


async def test_an_ambiguous_send_is_visible_and_only_an_admin_retry_sends_it_again(
        local_hooks_server, simulator_control, webhook_receiver) -> None:
    """WhatsApp accepts a send and the connection drops before its answer: the row is ``unknown``
    (listed by state, announced on the websocket and to webhooks), the session's next send goes
    out, the unknown one is not sent again until an administrator retries it."""
    api_server = local_hooks_server
    admin = api_server.admin
    await api_server.tenant("t1")
    hook = await admin.post("/tenants/t1/webhooks", json={"url": webhook_receiver.url,
                                                          "events": ["message.send_unknown"]})
    assert hook.status_code == 201, hook.text
    ws_url = api_server.url.replace("http://", "ws://") + "/ws"
    agent = api_server.client(await api_server.agent_token("t1"))
    async with trio_websocket.open_websocket_url(f"{ws_url}?token={await api_server.agent_token('t1', 'admin')}") as ws:
        await join(ws, "tenant:t1")
        await admin.post("/tenants/t1/sessions", json={"id": "s1", "name": "Support"})
        await admin.post("/tenants/t1/sessions/s1/connect")
        await receive_until(ws, lambda f: f["type"] == "qrcode.updated")
        await simulator_control.scan("s1")
        await api_server.wait_status("s1", SessionStatus.CONNECTED)
        await simulator_control.send_message("s1", "hello", sender="5511988887777@s.whatsapp.net")
        ticket_id = (await receive_until(ws, lambda f: f["type"] == "message.created"))[-1]["payload"]["ticket_id"]

        await simulator_control.lose_answers("s1")
        posted = await agent.post(f"/tenants/t1/tickets/{ticket_id}/messages", json={"text": "did it arrive?"},
                                  headers={"Idempotency-Key": "k-unknown"})
        assert posted.status_code == 202, posted.text
        job_id = posted.json()["item"]["id"]
        announced = (await receive_until(ws, lambda f: f["type"] == "message.send_unknown"))[-1]["payload"]
        assert (announced["id"], announced["status"], announced["wa_id"]) == (job_id, "unknown", None)

    listed = (await admin.get("/queues/outbox/jobs", params={"state": "unknown"})).json()
    assert [j["id"] for j in listed] == [job_id] and "RequestInterruptedError" in listed[0]["last_error"]
    assert (await admin.get("/queues")).json()["outbox"]["jobs"]["unknown"] == 1
    await webhook_receiver.wait_calls(1)
    delivered = json.loads(webhook_receiver.calls[0]["body"])
    assert delivered["event"] == "message.send_unknown" and delivered["payload"]["id"] == job_id

    await api_server.wait_status("s1", SessionStatus.CONNECTED)  # the session reconnects by itself
    after = await agent.post(f"/tenants/t1/tickets/{ticket_id}/messages", json={"text": "next"},
                             headers={"Idempotency-Key": "k-next"})

    async def texts() -> list[str]:
        return [entry["text"] for entry in await simulator_control.sent("s1")]

    async def done(item_id: int):
        with trio.fail_after(30):
            while (job := await api_server.node.store.get_job(Queue.OUTBOX, item_id)).status is not JobStatus.DONE:
                await trio.sleep(0.05)
        return job

    await done(after.json()["item"]["id"])  # the unknown row does not hold the session's line
    assert await texts() == ["did it arrive?", "next"]  # and it was not sent again by itself

    retried = await admin.post(f"/queues/outbox/jobs/{job_id}/retry")
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    resent = await done(job_id)
    sent = await simulator_control.sent("s1")
    assert [entry["text"] for entry in sent] == ["did it arrive?", "next", "did it arrive?"]  # deliberately twice
    assert resent.wa_id == sent[-1]["id"]
    again = await admin.post(f"/queues/outbox/jobs/{job_id}/retry")
    assert again.status_code == 409 and again.json()["error"]["field"] == "job_id"  # done: nothing to retry
