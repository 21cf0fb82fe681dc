"""The bus gate over a real node with a real Redis bus, stopped for longer than a lease renewal
period under inbound traffic and started again (empty, as a restarted cache node is).

What must hold: no session fails (no exit, no breaker, no backoff spent), each stops using its
account while its lease cannot be renewed and waits at the bus gate, ``/readyz`` is 503 naming
the bus meanwhile, sessions are connected again within 5 s of the return, and every message sent
is stored exactly once.
"""

from __future__ import annotations

import functools

import httpx
import trio

from actors.sessions import SessionStatus, UpstreamMode
from api import create_app, serve_api
from supervisor import EventKind

from tests.fixtures.flows import contact, flow_node, flow_settings, provision

SESSIONS = 3
SEND_INTERVAL = 0.05
OUTAGE = 8.0
"""Longer than a renewal period (lease_ttl / 3 = 5 s with the default 15 s TTL): renewals do fail."""
RECOVERY_BOUND = 5.0


async def test_redis_outage_parks_sessions_at_the_bus_gate(tmp_path, simulator, simulator_control, own_redis_server):
    settings = flow_settings(tmp_path, simulator.url, BUS__BACKEND="redis", BUS__REDIS_URL=own_redis_server.url)
    sessions = [f"s{i}" for i in range(SESSIONS)]
    sent: dict[str, list[str]] = {sid: [] for sid in sessions}
    readyz: list[tuple[int, dict]] = []
    async with flow_node(settings) as (node, _), trio.open_nursery() as nursery:
        stop_api = trio.Event()
        urls = await nursery.start(functools.partial(serve_api, node, stop_api, host="127.0.0.1", port=0,
                                                     app=create_app(node)))
        for sid in sessions:
            await provision(node, simulator_control, sid)
        traffic_done = trio.Event()

        async def traffic() -> None:
            i = 0
            while not traffic_done.is_set():
                sid = sessions[i % SESSIONS]
                sent[sid].append(await simulator_control.send_message(sid, f"m{i}", sender=contact(i % 5)))
                i += 1
                await trio.sleep(SEND_INTERVAL)

        async def probe_readyz(client: httpx.AsyncClient, until: trio.Event) -> None:
            while not until.is_set():
                response = await client.get("/readyz")
                readyz.append((response.status_code, response.json()))
                await trio.sleep(0.5)

        nursery.start_soon(traffic)
        await trio.sleep(1)
        async with httpx.AsyncClient(base_url=urls[0], timeout=30) as client:
            back = trio.Event()
            nursery.start_soon(probe_readyz, client, back)
            await trio.to_thread.run_sync(own_redis_server.stop)
            await trio.sleep(OUTAGE)
            gate = node.deps.bus_gate.statistics()
            assert gate.mode is UpstreamMode.DOWN and gate.waiting > 0
            assert {node.board.get(sid).status for sid in sessions} == {SessionStatus.BACKOFF}
            await trio.to_thread.run_sync(own_redis_server.start)
            returned_at = trio.current_time()
            with trio.fail_after(30):
                while any(node.board.get(sid).status is not SessionStatus.CONNECTED for sid in sessions):
                    await trio.sleep(0.05)
            recovered_after = trio.current_time() - returned_at
            back.set()
            await trio.sleep(2)  # traffic flows after the return
            traffic_done.set()
            with trio.fail_after(30):
                while [await node.store.count_messages(sid) for sid in sessions] != [len(sent[s]) for s in sessions]:
                    await trio.sleep(0.1)
            final = await client.get("/readyz")
        stored = {sid: [m.wa_id for t in await node.store.list_tickets("acme") if t.session_id == sid
                        for m in await node.store.list_messages(t.id, limit=1000)] for sid in sessions}
        stop_api.set()

    assert recovered_after <= RECOVERY_BOUND, recovered_after
    assert final.status_code == 200, final.text
    waiting = [body["waiting"] for code, body in readyz if code == 503 and "waiting" in body]
    assert waiting and all(w["bus"]["mode"] == "down" for w in waiting), readyz
    session_paths = {f"/tenants/acme/sessions/{sid}" for sid in sessions}
    failures = [(e.kind, e.path, e.reason) for e in node.system.history() if e.path in session_paths
                and e.kind in (EventKind.EXITED, EventKind.BREAKER, EventKind.RESTART_SCHEDULED, EventKind.SUSPENDED)]
    assert failures == []
    for sid in sessions:  # nothing lost, nothing twice
        assert sorted(stored[sid]) == sorted(sent[sid])
