"""The store gate over a real node on a real PostgreSQL, stopped for longer than a write's timeout
under inbound traffic and started again (DESIGN §10: a dependency outage is not a session failure).

What must hold: no session fails (no exit, no breaker opened, no backoff spent), nor do the outbox
and media services (their claims wait at the same gate), ``/readyz`` is 503
naming the store while sessions wait at its gate, every message sent is stored exactly once, and
the messages held during the outage are stored within 5 s of PostgreSQL's return.
"""

from __future__ import annotations

import functools

import httpx
import trio

from actors.sessions import UpstreamMode
from api import create_app, serve_api
from supervisor import EventKind

from tests.fixtures.flows import contact, flow_node, flow_settings, provision

SESSIONS = 4
SEND_INTERVAL = 0.05
"""Seconds between inbound messages (round robin over the sessions): steady traffic, 20 msg/s."""
OUTAGE = 14.0
"""Longer than a store write's timeout (10 s), so writes do fail with StoreUnavailable."""
RECOVERY_BOUND = 5.0
"""DESIGN §10 / issue 13: sessions flow again within 5 s of the dependency's return."""


async def test_postgres_outage_parks_sessions_at_the_store_gate(tmp_path, simulator, simulator_control,
                                                                postgres_server, postgres_dsn):
    settings = flow_settings(tmp_path, simulator.url, postgres_dsn, API__ADMIN_TOKEN="admin-token-for-tests-0123456789")
    sessions = [f"s{i}" for i in range(SESSIONS)]
    sent: dict[str, list[str]] = {sid: [] for sid in sessions}
    readyz: list[tuple[float, int, dict]] = []
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
                sent[sid].append(await simulator_control.send_message(sid, f"m{i}", sender=contact(i % 7)))
                i += 1
                await trio.sleep(SEND_INTERVAL)

        async def probe_readyz(client: httpx.AsyncClient, until: trio.Event) -> None:
            while not until.is_set():
                response = await client.get("/readyz")
                readyz.append((trio.current_time(), response.status_code, response.json()))
                await trio.sleep(0.5)

        nursery.start_soon(traffic)
        await trio.sleep(2)
        async with httpx.AsyncClient(base_url=urls[0], timeout=30) as client:
            back = trio.Event()
            nursery.start_soon(probe_readyz, client, back)
            await trio.to_thread.run_sync(postgres_server.stop)
            await trio.sleep(OUTAGE)
            gate = node.deps.store_gate.statistics()
            assert gate.mode is UpstreamMode.DOWN and gate.waiting > 0
            held = {sid: len(ids) for sid, ids in sent.items()}  # sent before the return
            await trio.to_thread.run_sync(postgres_server.start)
            returned_at = trio.current_time()

            async def all_held_stored() -> bool:
                counts = [await node.store.count_messages(sid) for sid in sessions]
                return all(count >= held[sid] for count, sid in zip(counts, sessions))

            with trio.fail_after(30):
                while True:
                    try:
                        if await all_held_stored():
                            break
                    except Exception:  # the reading pool reconnecting
                        pass
                    await trio.sleep(0.1)
            recovered_after = trio.current_time() - returned_at
            back.set()
            await trio.sleep(2)  # traffic keeps flowing after the return
            traffic_done.set()
            with trio.fail_after(30):
                while [await node.store.count_messages(sid) for sid in sessions] != [len(sent[s]) for s in sessions]:
                    await trio.sleep(0.1)
            final = await client.get("/readyz")
        stored = {sid: [m.wa_id for m in await _messages(node, sid)] for sid in sessions}
        stop_api.set()

    assert recovered_after <= RECOVERY_BOUND, recovered_after
    assert final.status_code == 200, final.text
    waiting = [body["waiting"] for _, code, body in readyz if code == 503 and "waiting" in body]
    assert waiting and all(w["store"]["mode"] == "down" for w in waiting), readyz
    assert max(w["store"]["waiting"] for w in waiting) >= 1
    session_paths = {f"/tenants/acme/sessions/{sid}" for sid in sessions}
    history = node.system.history()
    failures = [(e.kind, e.path, e.reason) for e in history if e.path in session_paths
                and e.kind in (EventKind.EXITED, EventKind.BREAKER, EventKind.RESTART_SCHEDULED, EventKind.SUSPENDED)]
    assert failures == []
    services = [(e.path, e.reason) for e in history if e.kind is EventKind.EXITED and e.path.startswith("/services")]
    assert services == []  # the outbox and media services waited at the gate too
    for sid in sessions:  # nothing lost, nothing twice
        assert sorted(stored[sid]) == sorted(sent[sid])


async def _messages(node, session_id: str):
    found = []
    for ticket in await node.store.list_tickets("acme"):
        if ticket.session_id == session_id:
            found.extend(await node.store.list_messages(ticket.id, limit=1000))
    return found
