"""The websocket and the webhooks in the real app (Hypercorn, a real node, the simulator):
status changes and inbound messages reach the tenant's sockets and its signed webhooks; a
websocket ``send`` goes through the real outbox to the simulated WhatsApp; another tenant's
socket hears nothing of it."""

from __future__ import annotations

import json

import trio
import trio_websocket

from actors.sessions import SessionStatus
from actors.webhooks import SIGNATURE_HEADER, verify
from api._asyncapi import SentFrame

from .ws_kit import FRAME_TIMEOUT

HOOK_SECRET = "hook-secret"


async def receive_until(ws, predicate, timeout: float = 30.0) -> list[dict]:
    """Frames up to and including the first one ``predicate`` accepts."""
    frames = []
    with trio.fail_after(timeout):
        while True:
            frames.append(json.loads(await ws.get_message()))
            if predicate(frames[-1]):
                return frames


async def join(ws, room: str) -> None:
    await ws.send_message(json.dumps({"op": "join", "room": room}))
    with trio.fail_after(FRAME_TIMEOUT):
        assert json.loads(await ws.get_message())["type"] == "joined"


async def test_realtime_and_webhooks_end_to_end(local_hooks_server, simulator_control, webhook_receiver) -> None:
    api_server = local_hooks_server  # the receiver listens on 127.0.0.1: allowed by webhooks.allow_targets
    for tenant in ("t1", "t2"):
        await api_server.tenant(tenant)
    created = await api_server.admin.post("/tenants/t1/webhooks", json={
        "url": webhook_receiver.url, "events": ["connection.update", "message.created"], "secret": HOOK_SECRET})
    assert created.status_code == 201, created.text
    ws_url = api_server.url.replace("http://", "ws://") + "/ws"
    t1_token, t2_token = await api_server.agent_token("t1"), await api_server.agent_token("t2")
    async with trio_websocket.open_websocket_url(f"{ws_url}?token={t1_token}") as ws, \
            trio_websocket.open_websocket_url(f"{ws_url}?token={t2_token}") as other:
        await join(ws, "tenant:t1")
        await join(other, "tenant:t2")
        await api_server.admin.post("/tenants/t1/sessions", json={"id": "s1", "name": "Support"})
        await api_server.admin.post("/tenants/t1/sessions/s1/connect")
        qr = await receive_until(ws, lambda f: f["type"] == "qrcode.updated")
        assert qr[-1]["payload"]["session_id"] == "s1" and qr[-1]["payload"]["qr"]
        await simulator_control.scan("s1")
        await receive_until(ws, lambda f: f["type"] == "connection.update" and f["payload"]["status"] == "connected")
        await api_server.wait_status("s1", SessionStatus.CONNECTED)

        await simulator_control.send_message("s1", "hello", sender="5511988887777@s.whatsapp.net")
        inbound = await receive_until(ws, lambda f: f["type"] == "message.created")
        ticket_id = inbound[-1]["payload"]["ticket_id"]
        assert inbound[-1]["payload"]["body"] == "hello"

        await ws.send_message(json.dumps({"op": "send", "ticket_id": ticket_id, "text": "How can I help?",
                                          "idempotency_key": "ws-1"}))
        sent = await receive_until(ws, lambda f: f["type"] in ("sent", "error"))
        assert sent[-1]["type"] == "sent" and sent[-1]["outbox"]["created"] is True, sent[-1]
        SentFrame.model_validate(sent[-1])  # the real outbox's answer fits /asyncapi.json
        with trio.fail_after(30):
            while not [m for m in await simulator_control.sent("s1") if "How can I help?" in str(m)]:
                await trio.sleep(0.05)
        await other.send_message(json.dumps({"op": "send", "ticket_id": ticket_id, "text": "x",
                                             "idempotency_key": "ws-2"}))
        foreign = await receive_until(other, lambda f: f["type"] in ("sent", "error"))
        assert [f["type"] for f in foreign] == ["error"] and foreign[0]["code"] == "not_found"

    with trio.fail_after(30):
        while {json.loads(c["body"])["event"] for c in webhook_receiver.calls} != {"connection.update",
                                                                                   "message.created"}:
            await webhook_receiver.wait_calls(len(webhook_receiver.calls) + 1)
    for call in webhook_receiver.calls:
        assert verify(HOOK_SECRET, call["body"], call["headers"][SIGNATURE_HEADER])
        assert json.loads(call["body"])["tenant_id"] == "t1"
