"""A node joins a running cluster (real daemons on one PostgreSQL and Redis): it takes over only
the sessions placement now gives it (its share; nothing moves between the nodes already there),
each moved session reconnects once, no account is ever connected twice, and no inbound message
sent before, during or after the join is lost or stored twice."""

from __future__ import annotations

import trio

from actors.cluster import Member, place
from actors.store import PostgresBackend, open_store

from .conftest import SETTLE_TIMEOUT, cluster_member, running, seed, wait_converged

SESSIONS = {f"j{i:02d}" for i in range(18)}


def placement(view: dict, nodes: set[str]) -> dict[str, str]:
    """Where placement puts SESSIONS among ``nodes``, with the capacities ``view`` (GET /cluster) shows."""
    members = [Member(m["node_id"], m["url"], m["capacity"]) for m in view["members"] if m["node_id"] in nodes]
    assert {m.node_id for m in members} == nodes
    return place(SESSIONS, members)


async def test_a_joining_node_takes_over_only_its_share(tmp_path, simulator, simulator_control, postgres_dsn,
                                                        redis_url):
    await seed(postgres_dsn, simulator_control, SESSIONS)
    a, b, c = (cluster_member(tmp_path, simulator.url, name, postgres_dsn, redis_url) for name in ("a", "b", "c"))
    sent = 0

    async def send_round(label: str) -> None:
        nonlocal sent
        for session_id in sorted(SESSIONS):
            await simulator_control.send_message(session_id, text=f"{label} {session_id}")
            sent += 1

    async with running(a, b):
        before = await wait_converged(a, SESSIONS, {"a", "b"})
        assert before == placement(await a.cluster(), {"a", "b"})
        await send_round("before")
        connects = (await simulator_control.stats()).connects

        joined = trio.Event()

        async def traffic() -> None:
            round_ = 0
            while not joined.is_set():
                await send_round(f"during {round_}")
                round_ += 1

        async with running(c):
            async with trio.open_nursery() as nursery:  # inbound traffic until the join is over
                nursery.start_soon(traffic)
                with trio.fail_after(SETTLE_TIMEOUT):
                    while len((view := await c.cluster())["members"]) < 3:  # c has heard a and b
                        await trio.sleep(0.1)
                    expected = placement(view, {"a", "b", "c"})
                    # converged (once c has settled and the hand-offs are done) on the new placement
                    while (after := await wait_converged(c, SESSIONS, {"a", "b", "c"})) != expected:
                        await trio.sleep(0.2)
                joined.set()
            moved = {sid for sid in SESSIONS if after[sid] != before[sid]}
            # bounded: exactly c's share moved, all of it to c; nothing moved between a and b
            assert moved == {sid for sid, node in expected.items() if node == "c"}
            assert 0 < len(moved) < len(SESSIONS)
            stats = await simulator_control.stats()
            assert stats.connects == connects + len(moved)  # each moved session reconnected once, no churn
            assert stats.replaced == 0  # never two connections of one account
            await send_round("after")

            async with open_store(PostgresBackend(postgres_dsn)) as store:
                with trio.fail_after(60):
                    while await store.count_messages() < sent:
                        await trio.sleep(0.1)
                await trio.sleep(1.0)  # a duplicate would show up here
                assert await store.count_messages() == sent
    assert (await simulator_control.stats()).replaced == 0
