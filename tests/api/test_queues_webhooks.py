"""Queue administration and webhook subscriptions over HTTP (real store underneath)."""

from __future__ import annotations

import trio

from actors.store import JobStatus, Queue


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
