"""SIGTERM under inbound traffic (real daemons on one PostgreSQL and Redis, the simulator
delivering like whatsmeow: receipted on arrival, journaled, stored, then released).

A drained node hands its sessions over: each closes its connection and stores what that
connection delivered before its lease goes. Messages left in the drained node's journal would be
replayed only if their session ran on that node again: lost to the new owner. So the drained
node's journal ends empty, and the store has every generated message once.
"""

from __future__ import annotations

import trio

from actors.drivers._journal import read_pending
from actors.drivers._simulated import JOURNAL_FILE
from actors.store import PostgresBackend, open_store

from .conftest import cluster_member, running, seed, wait_converged

SESSIONS = {f"d{i:02d}" for i in range(12)}
RATE = 60.0
"""Inbound messages per second over all sessions: always some in flight when the drain starts."""


async def test_a_drain_under_traffic_loses_no_receipted_message(tmp_path, simulator, simulator_control,
                                                                postgres_dsn, redis_url):
    await seed(postgres_dsn, simulator_control, SESSIONS)
    members = [cluster_member(tmp_path, simulator.url, name, postgres_dsn, redis_url) for name in ("a", "b")]
    async with running(*members):
        owners = await wait_converged(members[0], SESSIONS, {"a", "b"})
        drained = max(members, key=lambda m: list(owners.values()).count(m.name))
        last = next(m for m in members if m is not drained)
        await simulator_control.traffic_start(rate=RATE, contacts=3, media_share=0.0, group_share=0.0,
                                              sessions=sorted(SESSIONS), seed=5)
        await trio.sleep(3.0)
        drained.terminate()
        await wait_converged(last, SESSIONS, {last.name})
        assert await drained.wait_exit() == 0
        await trio.sleep(1.0)  # traffic to the last node alone
        generated = await simulator_control.traffic_stop()

        journal = tmp_path / drained.name / "data" / "journal" / JOURNAL_FILE
        assert await trio.to_thread.run_sync(read_pending, journal) == []  # nothing left behind
        async with open_store(PostgresBackend(postgres_dsn)) as store:
            with trio.move_on_after(60):
                while await store.count_messages() < generated:
                    await trio.sleep(0.2)
            await trio.sleep(1.0)  # a duplicate would show up here
            assert await store.count_messages() == generated
    assert (await simulator_control.stats()).replaced == 0
