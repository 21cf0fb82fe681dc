"""Tickets and messages over HTTP: an inbound message opens a ticket; agents accept, send (idempotent),
transfer, close and reopen it; messages page; other tenants get 404."""

from __future__ import annotations

import trio

from actors.sessions import SessionStatus


async def _ticket(api_server, simulator_control) -> tuple[object, int]:
    await api_server.tenant("t1")
    admin = api_server.admin
    await admin.post("/tenants/t1/sessions", json={"id": "s1", "name": "Support"})
    await admin.post("/tenants/t1/sessions/s1/connect")
    await simulator_control.scan("s1")
    await api_server.wait_status("s1", SessionStatus.CONNECTED)
    agent = api_server.client(await api_server.agent_token("t1"))
    for text in ("hello", "anyone there?", "third"):
        await simulator_control.send_message("s1", text, sender="5511988887777@s.whatsapp.net")
    with trio.fail_after(30):
        while True:
            tickets = (await agent.get("/tenants/t1/tickets", params={"status": "pending"})).json()
            if tickets and tickets[0]["unread"] == 3:
                return agent, tickets[0]["id"]
            await trio.sleep(0.05)


async def test_ticket_lifecycle_and_idempotent_send(api_server, simulator_control) -> None:
    agent, ticket_id = await _ticket(api_server, simulator_control)
    base = f"/tenants/t1/tickets/{ticket_id}"
    assert (await agent.get(base)).json()["status"] == "pending"

    page1 = (await agent.get(f"{base}/messages", params={"limit": 2})).json()
    assert [m["body"] for m in page1["messages"]] == ["hello", "anyone there?"]
    page2 = (await agent.get(f"{base}/messages", params={"after_id": page1["next_after_id"]})).json()
    assert [m["body"] for m in page2["messages"]] == ["third"] and page2["next_after_id"] is None

    accepted = await agent.post(f"{base}/accept")
    assert accepted.status_code == 200 and accepted.json()["status"] == "open"

    no_key = await agent.post(f"{base}/messages", json={"text": "hi"})
    assert no_key.status_code == 400 and no_key.json()["error"]["field"] == "Idempotency-Key"
    empty = await agent.post(f"{base}/messages", json={"text": ""}, headers={"Idempotency-Key": "k1"})
    assert empty.status_code == 400 and empty.json()["error"]["field"] == "text"
    first = await agent.post(f"{base}/messages", json={"text": "How can I help?"}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 202 and first.json()["created"] is True
    again = await agent.post(f"{base}/messages", json={"text": "How can I help?"}, headers={"Idempotency-Key": "k1"})
    assert again.json()["created"] is False and again.json()["item"]["id"] == first.json()["item"]["id"]
    with trio.fail_after(30):
        while not [m for m in await simulator_control.sent("s1") if "How can I help?" in str(m)]:
            await trio.sleep(0.05)
    assert len([m for m in await simulator_control.sent("s1") if "How can I help?" in str(m)]) == 1

    transferred = await agent.post(f"{base}/transfer", json={"queue": "billing"})
    assert transferred.status_code == 200 and transferred.json()["queue"] == "billing"
    closed = await agent.post(f"{base}/close")
    assert closed.json()["status"] == "closed"
    assert [t["id"] for t in (await agent.get("/tenants/t1/tickets", params={"status": "closed"})).json()] == [ticket_id]
    reopened = await agent.post(f"{base}/reopen")
    assert reopened.status_code == 200 and reopened.json()["status"] == "pending"


async def test_ticket_errors_and_isolation(api_server, simulator_control) -> None:
    agent, ticket_id = await _ticket(api_server, simulator_control)
    base = f"/tenants/t1/tickets/{ticket_id}"
    bad_status = await agent.get("/tenants/t1/tickets", params={"status": "weird"})
    assert bad_status.status_code == 400 and bad_status.json()["error"]["field"] == "status"
    missing = await agent.get("/tenants/t1/tickets/999999")
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "ticket_id"
    bad_user = await agent.post(f"{base}/accept", json={"user_id": 999999})
    assert bad_user.status_code == 404 and bad_user.json()["error"]["field"] == "user_id"
    admin_without_user = await api_server.admin.post(f"{base}/accept")
    assert admin_without_user.status_code == 400 and admin_without_user.json()["error"]["field"] == "user_id"

    await api_server.tenant("t2")
    other = api_server.client(await api_server.agent_token("t2"))
    for method, path in (("GET", base), ("GET", f"{base}/messages"), ("POST", f"{base}/accept"),
                         ("POST", f"{base}/close"), ("GET", "/tenants/t1/tickets"),
                         ("GET", f"/tenants/t2/tickets/{ticket_id}")):
        response = await other.request(method, path, headers={"Idempotency-Key": "x"})
        assert response.status_code == 404, (method, path, response.text)
    assert (await agent.get(base)).json()["status"] == "pending"  # nothing changed by t2
    await agent.post(f"{base}/close")
    closed_transfer = await agent.post(f"{base}/transfer", json={"queue": "billing"})
    assert closed_transfer.status_code == 409 and closed_transfer.json()["error"]["field"] == "ticket_id"


async def test_send_an_attachment_once_with_its_caption(api_server, simulator_control) -> None:
    import base64

    agent, ticket_id = await _ticket(api_server, simulator_control)
    base = f"/tenants/t1/tickets/{ticket_id}/messages"
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    body = {"text": "the invoice", "media": {"data": base64.b64encode(png).decode(), "mimetype": "image/png",
                                             "file_name": "invoice.png"}}
    bad = await agent.post(base, json={"media": {"data": "***", "mimetype": "image/png"}},
                           headers={"Idempotency-Key": "m0"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "media.data"
    kind = await agent.post(base, json={"media": {**body["media"], "kind": "hologram"}}, headers={"Idempotency-Key": "m0"})
    assert kind.status_code == 400 and kind.json()["error"]["field"] == "media.kind"
    first = await agent.post(base, json=body, headers={"Idempotency-Key": "m1"})
    assert first.status_code == 202, first.text
    again = await agent.post(base, json=body, headers={"Idempotency-Key": "m1"})
    assert again.json()["created"] is False
    with trio.fail_after(30):
        while not (sent := [m for m in await simulator_control.sent("s1") if m.get("media")]):
            await trio.sleep(0.05)
    (message,) = sent
    assert message["text"] == "the invoice" and message["media"]["mimetype"] == "image/png"
    with trio.fail_after(30):
        while not (mine := [m for m in (await agent.get(f"/tenants/t1/tickets/{ticket_id}/messages")).json()["messages"]
                            if m["from_me"]]):
            await trio.sleep(0.05)
    assert mine[0]["media_type"] == "image" and mine[0]["body"] == "the invoice"
