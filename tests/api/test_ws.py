"""``/ws`` over real sockets: auth, rooms, tenant isolation, resume, slow clients, malformed frames,
batched writes (and one test of the writer's fallback on Quart's test client)."""

import json
import types

import pytest
import trio
import trio_websocket
from quart_trio import QuartTrio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

from actors.hub import TOO_SLOW, Hub, Room
from api._auth import Authority
from api._ws import WRITE_BATCH, register_websocket

from .ws_kit import ADMIN_TOKEN, FRAME_TIMEOUT, SECRET, RecordingOutbox, closed_with, receive, request, serve_ws

POLICY, UNSUPPORTED = 1008, 1003


async def joined(ws, room: str, **extra) -> dict:
    await request(ws, op="join", room=room, **extra)
    reply = await receive(ws)
    assert (reply["type"], reply["room"]) == ("joined", room)
    return reply


async def test_a_valid_token_opens_the_socket_by_header_or_query():
    async with serve_ws() as served:
        for query in (False, True):
            async with served.client(query=query) as ws:
                await request(ws, op="ping", id=7)
                assert await receive(ws) == {"type": "pong", "id": 7}
        async with served.client(ADMIN_TOKEN) as ws:  # the node admin's token works too
            await joined(ws, "supervision")


@pytest.mark.parametrize("case", ["missing", "forged", "expired", "garbage"])
async def test_bad_tokens_are_rejected_with_1008(case):
    async with serve_ws() as served:
        token = {
            "missing": "",
            "forged": __import__("jwt").encode({"tenant": "acme", "user": 1, "role": "admin", "exp": 2**40},
                                               "another-secret-of-at-least-32-chars!", algorithm="HS256"),
            "expired": served.token(ttl=-60),
            "garbage": "not.a.jwt",
        }[case]
        async with served.client(token) as ws:
            reason = await closed_with(ws)
        assert reason.code == POLICY
        assert ("expired" in reason.reason) if case == "expired" else reason.reason
        assert served.hub.statistics().clients == 0


async def test_join_receive_leave():
    async with serve_ws() as served:
        async with served.client() as ws:
            await joined(ws, "ticket:12")
            served.hub.emit("acme", "message.created", {"id": 1}, ticket_id=12)
            event = await receive(ws)
            assert (event["type"], event["room"], event["seq"], event["payload"]) == (
                "message.created", "ticket:12", 1, {"id": 1})
            await request(ws, op="leave", room="ticket:12")
            assert await receive(ws) == {"type": "left", "room": "ticket:12"}
            served.hub.emit("acme", "message.created", {"id": 2}, ticket_id=12)
            await request(ws, op="ping")
            assert (await receive(ws))["type"] == "pong"  # nothing from the room it left


async def test_a_burst_goes_out_in_few_writes_one_message_per_event_in_order(monkeypatch):
    """The writer hands what it found queued to Hypercorn in one write (api._ws._write_through);
    each event stays its own websocket message, in the room's order."""
    writes: list[int] = []
    send_all = trio.SocketStream.send_all

    async def counting(stream, data):
        writes.append(len(data))
        await send_all(stream, data)

    burst = 200  # below the client's capacity (256): nobody lags
    async with serve_ws() as served:
        async with served.client() as ws:
            await joined(ws, "tenant:acme")
            monkeypatch.setattr(trio.SocketStream, "send_all", counting)
            for n in range(burst):  # no checkpoint in between: the writer wakes to all of them
                served.hub.publish(Room.tenant("acme"), "message.created", {"n": n})
            events = [await receive(ws) for _ in range(burst)]
            monkeypatch.undo()
    assert [(e["type"], e["seq"], e["payload"]["n"]) for e in events] == [
        ("message.created", n + 1, n) for n in range(burst)]
    assert len(writes) <= burst // WRITE_BATCH + 1  # one write per batch, not one per event


async def test_a_burst_reaches_a_client_that_negotiated_permessage_deflate_intact():
    """Browsers offer permessage-deflate and Hypercorn accepts it: the batched messages, compressed
    one after the other with a shared context, must still decode in order (a wsproto client)."""
    burst = 100
    async with serve_ws() as served:
        host, port = served.url.removeprefix("ws://").removesuffix("/ws").split(":")
        connection = WSConnection(ConnectionType.CLIENT)
        stream = await trio.open_tcp_stream(host, int(port))
        await stream.send_all(connection.send(Request(
            host=host, target=f"/ws?token={served.token()}", extensions=[PerMessageDeflate()])))
        messages, parts, accepted = [], [], []

        async def read_until(done) -> None:
            with trio.fail_after(FRAME_TIMEOUT):
                while not done():
                    connection.receive_data(await stream.receive_some())
                    for event in connection.events():
                        if isinstance(event, AcceptConnection):
                            accepted.append([extension.name for extension in event.extensions])
                        elif isinstance(event, TextMessage):
                            parts.append(event.data)
                            if event.message_finished:
                                messages.append(json.loads("".join(parts)))
                                parts.clear()

        await read_until(lambda: accepted)
        assert accepted == [["permessage-deflate"]]
        await stream.send_all(connection.send(TextMessage(data=json.dumps({"op": "join", "room": "tenant:acme"}))))
        await read_until(lambda: messages)
        assert messages[0]["type"] == "joined"
        for n in range(burst):
            served.hub.publish(Room.tenant("acme"), "message.created", {"n": n, "text": f"hello {n} " * 20})
        await read_until(lambda: len(messages) > burst)
        await stream.aclose()
    assert [(m["seq"], m["payload"]["n"]) for m in messages[1:]] == [(n + 1, n) for n in range(burst)]


async def test_under_another_asgi_server_a_burst_goes_out_one_send_per_event():
    """Off Hypercorn (here Quart's test client) the writer falls back to the ASGI send."""
    hub = Hub()
    authority = Authority(ADMIN_TOKEN, SECRET, 3600.0, clock=lambda: hub.wall_clock(trio.current_time()))
    app = QuartTrio(__name__)
    app.extensions["zapvisor"] = types.SimpleNamespace(authority=authority, websocket_clients=lambda: 0)
    register_websocket(app, types.SimpleNamespace(hub=hub), outbox=RecordingOutbox())
    token = authority.issue("acme", 1)[0]
    async with app.test_client().websocket("/ws", headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.send(json.dumps({"op": "join", "room": "tenant:acme"}))
        assert json.loads(await ws.receive())["type"] == "joined"
        for n in range(3):
            hub.publish(Room.tenant("acme"), "message.created", {"n": n})
        with trio.fail_after(10):
            assert [json.loads(await ws.receive())["payload"]["n"] for _ in range(3)] == [0, 1, 2]


async def test_tenants_never_see_each_others_events_in_a_mixed_run():
    async with serve_ws() as served:
        async with served.client(served.token("a", 1)) as wa, served.client(served.token("b", 2, "admin")) as wb:
            for ws, tenant in ((wa, "a"), (wb, "b")):
                for room in (f"tenant:{tenant}", "ticket:1", "status:connected", "notifications"):
                    await joined(ws, room)
            await joined(wb, "supervision")
            for n in range(40):
                tenant = "ab"[n % 2]
                served.hub.emit(tenant, "message.created", {"tenant": tenant, "n": n}, ticket_id=1)
                served.hub.publish(Room.status(tenant, "connected"), "connection.update", {"tenant": tenant})
                served.hub.publish(Room.notifications(tenant), "notification.high", {"tenant": tenant})
            for ws, tenant in ((wa, "a"), (wb, "b")):
                got = [await receive(ws) for _ in range(20 * 4)]
                assert {f["payload"]["tenant"] for f in got} == {tenant}
                await request(ws, op="ping")
                assert (await receive(ws))["type"] == "pong"  # and nothing else was queued
            await request(wa, op="join", room="tenant:b")
            assert (await closed_with(wa)).code == POLICY
            async with served.client(served.token("a", 1)) as wa2:
                await request(wa2, op="join", room="supervision")  # agents never get the tree
                assert (await closed_with(wa2)).code == POLICY


async def test_resume_after_reconnect_gets_what_was_missed():
    async with serve_ws() as served:
        async with served.client() as ws:
            first = await joined(ws, "tenant:acme")
            served.hub.emit("acme", "message.created", {"n": 1})
            last = await receive(ws)
        for n in range(2, 6):
            served.hub.emit("acme", "message.created", {"n": n})
        async with served.client() as ws:
            again = await joined(ws, "tenant:acme", since=last["seq"], epoch=first["epoch"])
            assert again["seq"] == 5
            got = [await receive(ws) for _ in range(4)]
            assert [(f["seq"], f["payload"]["n"]) for f in got] == [(2, 2), (3, 3), (4, 4), (5, 5)]
            served.hub.emit("acme", "message.created", {"n": 6})
            assert (await receive(ws))["seq"] == 6


async def test_resync_when_the_gap_is_older_than_the_replay_buffer():
    async with serve_ws(Hub(replay=3)) as served:
        async with served.client() as ws:
            first = await joined(ws, "tenant:acme")
        for n in range(10):
            served.hub.emit("acme", "message.created", {"n": n})
        async with served.client() as ws:
            await joined(ws, "tenant:acme", since=first["seq"], epoch=first["epoch"])
            assert await receive(ws) == {"type": "resync", "room": "tenant:acme", "seq": 10, "epoch": first["epoch"]}
            await joined(ws, "ticket:1", since=4, epoch="from-another-node")
            assert (await receive(ws))["type"] == "resync"


async def test_a_slow_client_is_warned_then_disconnected_and_never_slows_the_others():
    big = "x" * 32_000  # fills the slow client's socket buffers quickly
    async with serve_ws(Hub(client_capacity=32)) as served:
        async with served.client() as fast, served.client() as slow:
            await joined(fast, "tenant:acme")
            await joined(slow, "tenant:acme")
            sent = 0
            with trio.fail_after(60):
                while served.hub.statistics().disconnected_slow == 0:
                    served.hub.emit("acme", "message.created", {"n": sent, "blob": big})
                    got = await receive(fast)  # the fast one keeps up, in lock-step
                    assert got["payload"]["n"] == sent
                    sent += 1
            frames, reason = [], None
            with trio.fail_after(30):
                try:
                    while True:
                        frames.append(json.loads(await slow.get_message()))
                except trio_websocket.ConnectionClosed as closed:
                    reason = closed.reason
            assert (reason.code, reason.reason) == (POLICY, TOO_SLOW[:len(reason.reason)])
            assert "lagged" in [f["type"] for f in frames]
            stats = served.hub.statistics()
            assert (stats.lagged, stats.disconnected_slow, stats.clients) == (1, 1, 1)
            served.hub.emit("acme", "message.created", {"n": sent})
            assert (await receive(fast))["payload"]["n"] == sent


@pytest.mark.parametrize(
    ("frame", "code", "field"),
    [
        (b"\x00binary", UNSUPPORTED, "binary"),
        ("not json", UNSUPPORTED, "JSON"),
        ("[1, 2]", UNSUPPORTED, "object"),
        ('{"op": "dance"}', POLICY, "op"),
        ('{"room": "tenant:acme"}', POLICY, "op"),
        ('{"op": "join"}', POLICY, "room"),
        ('{"op": "join", "room": "lobby"}', POLICY, "room"),
        ('{"op": "join", "room": "tenant:acme", "since": -1}', POLICY, "since"),
        ('{"op": "join", "room": "tenant:acme", "since": "3"}', POLICY, "since"),
        ('{"op": "send", "ticket_id": "x", "text": "t", "idempotency_key": "k"}', POLICY, "ticket_id"),
        ('{"op": "send", "ticket_id": 1, "text": "", "idempotency_key": "k"}', POLICY, "text"),
        ('{"op": "send", "ticket_id": 1, "text": "hi"}', POLICY, "idempotency_key"),
        ('{"op": "ping", "pad": "' + "x" * 70_000 + '"}', POLICY, "frame"),
    ],
)
async def test_malformed_frames_close_that_socket_and_nothing_else(frame, code, field):
    async with serve_ws() as served:
        async with served.client() as bystander, served.client() as ws:
            await joined(bystander, "tenant:acme")
            await joined(ws, "tenant:acme")
            await ws.send_message(frame)
            reason = await closed_with(ws)
            assert reason.code == code and field in reason.reason
            served.hub.emit("acme", "message.created", {"n": 1})
            assert (await receive(bystander))["payload"] == {"n": 1}
            assert served.hub.statistics().clients == 1


async def test_send_goes_to_the_outbox_with_the_tokens_tenant():
    outbox = RecordingOutbox()
    async with serve_ws(outbox=outbox) as served:
        async with served.client(served.token("acme", 9)) as ws:
            await request(ws, op="send", ticket_id=3, text="hello", idempotency_key="k1")
            assert await receive(ws) == {"type": "sent", "idempotency_key": "k1",
                                         "outbox": {"created": True, "id": 1, "status": "queued"}}
            await request(ws, op="send", ticket_id=404, text="hello", idempotency_key="k2")
            reply = await receive(ws)
            assert (reply["type"], reply["code"], reply["field"]) == ("error", "not_found", "ticket_id")
            await request(ws, op="send", ticket_id=503, text="hello", idempotency_key="k3")
            reply = await receive(ws)
            assert (reply["type"], reply["code"], reply["idempotency_key"]) == ("error", "unavailable", "k3")
    assert outbox.calls[0] == ("acme", "9", 3, "hello", "k1")
