"""The front door's small promises (issue 16, item 8) and the exact message counters of ``/metrics``:
accepting a ticket reads it (unread 0), a closed ticket refuses a send with 409 and sends nothing,
creating an existing session is a 409 that renames nothing, the favicon exists."""

from __future__ import annotations

import errno
import json
import logging
import os

import trio
import trio_websocket

from actors.sessions import SessionStatus
from bench._servers import free_port
from tests.api.conftest import api_settings, open_api_server
from tests.api.test_tickets import _ticket
from tests.api.ws_kit import receive
from tests.fixtures.simulator import driver_config


def _samples(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


async def test_accept_reads_the_ticket_and_counters_are_exact(api_server, simulator_control) -> None:
    agent, ticket_id = await _ticket(api_server, simulator_control)  # three inbound messages, unread 3
    base = f"/tenants/t1/tickets/{ticket_id}"
    accepted = await agent.post(f"{base}/accept")
    assert accepted.status_code == 200
    assert (accepted.json()["status"], accepted.json()["unread"]) == ("open", 0)
    assert (await agent.get(base)).json()["unread"] == 0

    for _ in range(2):  # the same key twice: one send
        sent = await agent.post(f"{base}/messages", json={"text": "on it"}, headers={"Idempotency-Key": "k1"})
        assert sent.status_code == 202
    await agent.post(f"{base}/messages", json={"text": "done"}, headers={"Idempotency-Key": "k2"})
    with trio.fail_after(30):
        while len(await simulator_control.sent("s1")) < 2:
            await trio.sleep(0.05)
    metrics = await api_server.client().get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    with trio.fail_after(30):  # the outbox marks an item done just after WhatsApp took it
        while (samples := _samples((await api_server.client().get("/metrics")).text))[
                "zapvisor_messages_sent_total"] < 2:
            await trio.sleep(0.05)
    assert samples["zapvisor_messages_received_total"] == 3
    assert samples["zapvisor_messages_sent_total"] == 2
    assert samples["zapvisor_messages_stored_total"] == 5


async def test_a_closed_ticket_refuses_a_send_and_sends_nothing(api_server, simulator_control) -> None:
    agent, ticket_id = await _ticket(api_server, simulator_control)
    base = f"/tenants/t1/tickets/{ticket_id}"
    await agent.post(f"{base}/accept")
    before = await agent.post(f"{base}/messages", json={"text": "bye"}, headers={"Idempotency-Key": "before"})
    assert before.status_code == 202
    assert (await agent.post(f"{base}/close")).json()["status"] == "closed"

    refused = await agent.post(f"{base}/messages", json={"text": "hello?"}, headers={"Idempotency-Key": "after"})
    assert refused.status_code == 409
    assert refused.json()["error"]["field"] == "ticket_id" and "is closed" in refused.json()["error"]["message"]
    repeat = await agent.post(f"{base}/messages", json={"text": "bye"}, headers={"Idempotency-Key": "before"})
    assert repeat.status_code == 202 and repeat.json()["created"] is False  # idempotency still answers
    token = agent.headers["Authorization"].removeprefix("Bearer ")
    ws_url = f"{api_server.url.replace('http://', 'ws://')}/ws?token={token}"
    async with trio_websocket.open_websocket_url(ws_url) as ws:  # the same over /ws
        await ws.send_message(json.dumps({"op": "send", "ticket_id": ticket_id, "text": "hello?",
                                          "idempotency_key": "ws-after"}))
        refused_frame = await receive(ws)
        assert (refused_frame["type"], refused_frame["code"], refused_frame["field"]) == (
            "error", "conflict", "ticket_id"), refused_frame
        assert refused_frame["message"] == refused.json()["error"]["message"]
        await ws.send_message(json.dumps({"op": "send", "ticket_id": ticket_id, "text": "bye",
                                          "idempotency_key": "before"}))
        repeat_frame = await receive(ws)
        assert repeat_frame["type"] == "sent" and repeat_frame["outbox"]["created"] is False, repeat_frame
        assert repeat_frame["outbox"]["id"] == repeat.json()["item"]["id"]
    outbox = (await api_server.admin.get("/queues/outbox/jobs")).json()
    assert [job["idempotency_key"] for job in outbox] == ["before"]
    with trio.fail_after(30):
        while not await simulator_control.sent("s1"):
            await trio.sleep(0.05)
    await trio.sleep(0.5)
    assert [m["text"] for m in await simulator_control.sent("s1")] == ["bye"]


async def test_creating_an_existing_session_is_a_409_and_renames_nothing(api_server, simulator_control) -> None:
    await api_server.tenant("t1")
    admin = api_server.admin
    assert (await admin.post("/tenants/t1/sessions", json={"id": "s1", "name": "Support"})).status_code == 201
    await admin.post("/tenants/t1/sessions/s1/connect")
    await simulator_control.scan("s1")
    await api_server.wait_status("s1", SessionStatus.CONNECTED)

    again = await admin.post("/tenants/t1/sessions", json={"id": "s1", "name": "Sales"})
    assert again.status_code == 409 and again.json()["error"]["field"] == "id"
    assert "status connected" in again.json()["error"]["message"]
    session = (await admin.get("/tenants/t1/sessions/s1")).json()
    assert (session["name"], session["status"]) == ("Support", "connected")


async def test_the_favicon_is_served(api_server) -> None:
    icon = await api_server.client().get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml") and b"<svg" in icon.content


async def test_a_dead_simulator_is_logged_once_with_its_cause(tmp_path, caplog) -> None:
    """A session pointed at a dead simulator (a real closed port): its connects fail again and
    again, the gate goes down; the log has one WARNING naming the URL and the OS's words, and the
    session's status reason says the same (never an empty cause)."""
    url = f"ws://127.0.0.1:{free_port()}"
    settings = api_settings(tmp_path / "data", url)
    with caplog.at_level(logging.WARNING, logger="zapvisor.upstream"):
        async with open_api_server(settings, driver_config(url, tmp_path / "auth")) as server:
            await server.tenant("t1")
            await server.admin.post("/tenants/t1/sessions", json={"id": "s1", "name": "Support"})
            gate = server.node.deps.upstream
            async with trio.open_nursery() as nursery:  # connect answers once the session shows a QR: never
                nursery.start_soon(server.admin.post, "/tenants/t1/sessions/s1/connect")
                with trio.fail_after(30):  # threshold connects, then trials: several failures
                    while gate.statistics().outages < 1 or gate.statistics().trials < 1:
                        await trio.sleep(0.05)
                reason = (await server.admin.get("/tenants/t1/sessions/s1")).json()["reason"]
                nursery.cancel_scope.cancel()
    refused = os.strerror(errno.ECONNREFUSED)
    cause = f"cannot connect to {url}/wa: {refused}"
    assert cause in reason, reason
    lines = [record.getMessage() for record in caplog.records if record.name == "zapvisor.upstream"]
    assert lines == [f"WhatsApp unreachable: {cause}"], lines  # rate-limited: one per 30 s
