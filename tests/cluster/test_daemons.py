"""Three real daemons on one PostgreSQL and one Redis behave as one cluster (DESIGN §11).

One scenario, step by step, checking at each step that every session runs connected on exactly
one live node (read through the API of a node that does not necessarily run it), that no
account was ever connected twice (the simulator's 440 ``replaced`` count stays 0), and at the
end that no inbound message was lost (the store has every one, once).
"""

from __future__ import annotations

import trio

from actors.store import PostgresBackend, open_store

from .conftest import cluster_member, running, wait_converged

SESSIONS = {f"s{i}" for i in range(6)}
LEASE_TTL = 15.0
"""The sessions' lease TTL (SessionPolicy's default): a takeover that waited for it would take this long."""


async def test_placement_any_node_requests_failover_and_drain(tmp_path, simulator, simulator_control,
                                                              postgres_dsn, redis_url):
    members = [cluster_member(tmp_path, simulator.url, name, postgres_dsn, redis_url) for name in ("a", "b", "c")]
    async with running(*members):
        a, b, c = members
        assert (await a.client.post("/tenants", json={"id": "acme", "name": "Acme"})).status_code == 201
        with trio.fail_after(30):  # membership: every node hears the others
            while {m["node_id"] for m in (await c.cluster())["members"]} != {"a", "b", "c"}:
                await trio.sleep(0.1)

        # Sessions created on a, connected through b: each connect reaches the session's owner.
        for session_id in sorted(SESSIONS):
            created = await a.client.post("/tenants/acme/sessions", json={"id": session_id, "name": session_id})
            assert created.status_code == 201, created.text
            shown = await b.client.post(f"/tenants/acme/sessions/{session_id}/connect", json={})
            assert shown.status_code == 200 and shown.json()["status"] == "qr", shown.text
            await simulator_control.scan(session_id)
        owners = await wait_converged(c, SESSIONS, {"a", "b", "c"})
        assert len(set(owners.values())) >= 2, owners  # placed over the cluster, not where asked

        # An admin operation on a node that does not run the session reaches its owner.
        session_id = sorted(SESSIONS)[0]
        stranger = next(m for m in members if m.name != owners[session_id])
        before = await simulator_control.stats()
        restarted = await stranger.client.post(f"/tenants/acme/sessions/{session_id}/restart")
        assert restarted.status_code == 200, restarted.text
        assert (await wait_converged(stranger, SESSIONS, {"a", "b", "c"}))[session_id] == owners[session_id]
        assert (await simulator_control.stats()).connects == before.connects + 1

        # Inbound traffic, and a send requested on a node that does not run the session.
        sent = 0
        for sid in sorted(SESSIONS):
            await simulator_control.send_message(sid, text=f"before {sid}")
            sent += 1
        with trio.fail_after(30):
            while not (tickets := (await c.client.get("/tenants/acme/tickets")).json()):
                await trio.sleep(0.1)
        ticket = tickets[0]
        sender = next(m for m in members if m.name != owners[ticket["session_id"]])
        started = trio.current_time()
        reply = await sender.client.post(f"/tenants/acme/tickets/{ticket['id']}/messages", json={"text": "hello"},
                                         headers={"Idempotency-Key": "cross-node-1"})
        assert reply.status_code == 202, reply.text
        with trio.fail_after(30):
            while not any(s.get("text") == "hello" for s in await simulator_control.sent(ticket["session_id"])):
                await trio.sleep(0.02)
        cross_node_send = trio.current_time() - started
        assert cross_node_send < 5.0  # woken over the bus; the idle poll alone takes 30 s
        async with open_store(PostgresBackend(postgres_dsn)) as store:  # its owner recorded it as sent:
            with trio.fail_after(30):  # a kill -9 before that leaves it "unknown" (tests/outbox), not stored
                while await store.count_messages() < sent + 1:
                    await trio.sleep(0.1)

        # kill -9 the busiest node: its sessions come back on the survivors.
        counts = {name: list(owners.values()).count(name) for name in ("a", "b", "c")}
        victim = next(m for m in members if m.name == max(counts, key=counts.get))
        survivors = [m for m in members if m is not victim]
        victim.kill()
        for sid in sorted(SESSIONS):
            await simulator_control.send_message(sid, text=f"during failover {sid}")
            sent += 1
        owners = await wait_converged(survivors[0], SESSIONS, {m.name for m in survivors})

        # SIGTERM drains a survivor that runs sessions: the last node takes them over at once.
        drained = next(m for m in survivors if m.name in owners.values())
        last = next(m for m in survivors if m is not drained)
        started = trio.current_time()
        drained.terminate()
        await wait_converged(last, SESSIONS, {last.name}, timeout=LEASE_TTL)
        drain_s = trio.current_time() - started
        assert await drained.wait_exit() == 0
        assert drain_s < LEASE_TTL * 2 / 3  # released, not lapsed (the earliest lapse is ttl·2/3 away)

        for sid in sorted(SESSIONS):
            await simulator_control.send_message(sid, text=f"after {sid}")
            sent += 1
        async with open_store(PostgresBackend(postgres_dsn)) as store:
            with trio.move_on_after(60):
                while (stored := await store.count_messages()) < sent + 1:  # + the outbound "hello"
                    await trio.sleep(0.1)
            await trio.sleep(1.0)
            per_session = {sid: (await store.count_messages(sid), await simulator_control.account(sid))
                           for sid in sorted(SESSIONS)}
            assert await store.count_messages() == stored == sent + 1, (per_session, await c.cluster())
        assert (await simulator_control.stats()).replaced == 0  # no account was ever connected twice
