"""Agents react to, edit and delete messages over REST and the websocket (real app, real node,
the simulator as WhatsApp); message kinds and contacts' operations reach the listing; deleted
text is kept for admins only."""

from __future__ import annotations

import json

import trio
import trio_websocket

from actors.flows import DELETED_TEXT
from actors.sessions import SessionStatus

from .test_ws_app import join, receive_until

CUSTOMER = "5511988887777@s.whatsapp.net"


async def _ticket_with_our_reply(api_server, simulator_control):
    await api_server.tenant("t1")
    admin = api_server.admin
    await admin.post("/tenants/t1/sessions", json={"id": "s1", "name": "Support"})
    await admin.post("/tenants/t1/sessions/s1/connect")
    await simulator_control.scan("s1")
    await api_server.wait_status("s1", SessionStatus.CONNECTED)
    agent = api_server.client(await api_server.agent_token("t1"))
    await simulator_control.send_message("s1", "my card is 1234", sender=CUSTOMER)
    await simulator_control.send_message("s1", "", sender=CUSTOMER, kind="location",
                                         payload={"latitude": 1.5, "longitude": 2.5, "name": "Home"})
    with trio.fail_after(30):
        while not (tickets := (await agent.get("/tenants/t1/tickets")).json()) or tickets[0]["unread"] < 2:
            await trio.sleep(0.05)
    base = f"/tenants/t1/tickets/{tickets[0]['id']}"
    sent = await agent.post(f"{base}/messages", json={"text": "How can I help?"}, headers={"Idempotency-Key": "k1"})
    assert sent.status_code == 202
    with trio.fail_after(30):
        while len(messages := (await agent.get(f"{base}/messages")).json()["messages"]) < 3:
            await trio.sleep(0.05)
    return agent, base, messages


async def test_agents_react_edit_and_delete_over_rest(api_server, simulator_control) -> None:
    agent, base, messages = await _ticket_with_our_reply(api_server, simulator_control)
    theirs, location, ours = messages
    assert (location["kind"], location["payload"]["name"], location["body"]) == (
        "location", "Home", "📍 location: Home (1.5, 2.5)")

    reacted = await agent.post(f"{base}/messages/{theirs['id']}/reaction", json={"emoji": "👍"})
    assert reacted.status_code == 200, reacted.text
    assert list(reacted.json()["message"]["reactions"].values()) == ["👍"]
    edited = await agent.patch(f"{base}/messages/{ours['id']}", json={"text": "How can I help you?"})
    assert edited.status_code == 200 and edited.json()["message"]["body"] == "How can I help you?"
    versions = (await agent.get(f"{base}/messages/{ours['id']}/versions")).json()["versions"]
    assert [v["body"] for v in versions] == ["How can I help?"]
    deleted = await agent.delete(f"{base}/messages/{ours['id']}")
    assert deleted.status_code == 204

    on_wire = [(m["kind"], m["target_id"], m["text"]) for m in await simulator_control.sent("s1") if m["target_id"]]
    assert on_wire == [("reaction", theirs["wa_id"], "👍"), ("edit", ours["wa_id"], "How can I help you?"),
                       ("revoke", ours["wa_id"], "")]
    as_agent = {m["id"]: m for m in (await agent.get(f"{base}/messages")).json()["messages"]}
    assert as_agent[ours["id"]]["body"] == DELETED_TEXT and as_agent[ours["id"]]["deleted_at"] is not None
    assert (await agent.get(f"{base}/messages/{ours['id']}/versions")).json()["versions"] == []
    as_admin = {m["id"]: m for m in (await api_server.admin.get(f"{base}/messages")).json()["messages"]}
    assert as_admin[ours["id"]]["body"] == "How can I help you?"  # the text is kept for admins

    # Refusals name the field; nothing reaches WhatsApp.
    not_ours = await agent.patch(f"{base}/messages/{theirs['id']}", json={"text": "x"})
    assert not_ours.status_code == 409 and not_ours.json()["error"]["field"] == "message_id"
    gone = await agent.post(f"{base}/messages/{ours['id']}/reaction", json={"emoji": "👍"})
    assert gone.status_code == 409 and gone.json()["error"]["field"] == "message_id"
    missing = await agent.delete(f"{base}/messages/999999")
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "message_id"
    too_long = await agent.post(f"{base}/messages/{theirs['id']}/reaction", json={"emoji": "x" * 40})
    assert too_long.status_code == 400 and too_long.json()["error"]["field"] == "emoji"
    assert len([m for m in await simulator_control.sent("s1") if m["target_id"]]) == 3


async def test_an_agents_reply_quotes_a_message(api_server, simulator_control) -> None:
    agent, base, messages = await _ticket_with_our_reply(api_server, simulator_control)
    theirs = messages[0]
    reply = await agent.post(f"{base}/messages", json={"text": "Got it", "quoted_message_id": theirs["id"]},
                             headers={"Idempotency-Key": "quote-1"})
    assert reply.status_code == 202, reply.text
    with trio.fail_after(30):
        while not (sent := [m for m in await simulator_control.sent("s1") if m["text"] == "Got it"]):
            await trio.sleep(0.05)
    assert sent[0]["quoted_id"] == theirs["wa_id"]
    with trio.fail_after(30):
        while not (stored := [m for m in (await agent.get(f"{base}/messages")).json()["messages"]
                              if m["body"] == "Got it"]):
            await trio.sleep(0.05)
    assert stored[0]["quoted_wa_id"] == theirs["wa_id"]
    elsewhere = await agent.post(f"{base}/messages", json={"text": "x", "quoted_message_id": 999999},
                                 headers={"Idempotency-Key": "quote-2"})
    assert elsewhere.status_code == 404 and elsewhere.json()["error"]["field"] == "quoted_message_id"


async def test_agents_react_over_the_websocket_and_hear_contacts_operations(api_server, simulator_control) -> None:
    agent, base, messages = await _ticket_with_our_reply(api_server, simulator_control)
    theirs, _, ours = messages
    ws_url = api_server.url.replace("http://", "ws://") + "/ws"
    async with trio_websocket.open_websocket_url(f"{ws_url}?token={await api_server.agent_token('t1', email='ws@t1.test')}") as ws:
        await join(ws, "tenant:t1")
        await ws.send_message(json.dumps({"op": "react", "ticket_id": int(base.rsplit("/", 1)[1]),
                                          "message_id": theirs["id"], "emoji": "❤️"}))
        frames = await receive_until(ws, lambda f: f["type"] == "updated")
        assert frames[-1]["op"] == "react" and list(frames[-1]["message"]["reactions"].values()) == ["❤️"]
        await ws.send_message(json.dumps({"op": "edit", "ticket_id": int(base.rsplit("/", 1)[1]),
                                          "message_id": theirs["id"], "text": "no"}))
        refused = await receive_until(ws, lambda f: f["type"] == "error")
        assert (refused[-1]["op"], refused[-1]["code"], refused[-1]["field"]) == ("edit", "conflict", "message_id")

        # The contact reacts to our reply and edits its own message: message.updated, no new message.
        await simulator_control.react("s1", ours["wa_id"], "🙏", sender=CUSTOMER)
        await simulator_control.edit("s1", theirs["wa_id"], "my card is ****", sender=CUSTOMER)
        updates = await receive_until(ws, lambda f: f["type"] == "message.updated"
                                      and f["payload"].get("change") == "edited")
        changes = [f["payload"] for f in updates if f["type"] == "message.updated" and "change" in f["payload"]]
        assert [c["change"] for c in changes][-2:] == ["reaction", "edited"]
        assert changes[-1]["previous_body"] == "my card is 1234" and changes[-1]["body"] == "my card is ****"
    assert len((await agent.get(f"{base}/messages")).json()["messages"]) == 3


async def test_kinds_and_operations_reach_the_webhooks(local_hooks_server, simulator_control, webhook_receiver) -> None:
    api_server = local_hooks_server  # the receiver listens on 127.0.0.1: allowed by webhooks.allow_targets
    await api_server.tenant("t1")
    hook = await api_server.admin.post("/tenants/t1/webhooks", json={
        "url": webhook_receiver.url, "events": ["message.created", "message.updated"], "secret": "s"})
    assert hook.status_code == 201, hook.text
    await api_server.admin.post("/tenants/t1/sessions", json={"id": "s1", "name": "Support"})
    await api_server.admin.post("/tenants/t1/sessions/s1/connect")
    await simulator_control.scan("s1")
    await api_server.wait_status("s1", SessionStatus.CONNECTED)
    card = await simulator_control.send_message("s1", sender=CUSTOMER, kind="contacts", payload={"contacts": [
        {"name": "Ana", "phones": [{"number": "+55 21 1", "wa_id": None, "type": None}], "vcard": "BEGIN:VCARD"}]})
    await simulator_control.revoke("s1", card, sender=CUSTOMER)

    def events() -> list[dict]:
        return [json.loads(call["body"]) for call in webhook_receiver.calls]

    with trio.fail_after(30):
        while len(events()) < 2:
            await webhook_receiver.wait_calls(len(webhook_receiver.calls) + 1)
    created, deleted = sorted(events(), key=lambda e: e["event"])
    assert created["event"] == "message.created" and created["payload"]["kind"] == "contacts"
    assert created["payload"]["payload"]["contacts"][0]["name"] == "Ana"
    assert created["payload"]["body"] == "👤 contact: Ana +55 21 1"
    assert deleted["event"] == "message.updated" and deleted["payload"]["change"] == "deleted"
    assert deleted["payload"]["body"] == DELETED_TEXT and deleted["payload"]["payload"] is None
