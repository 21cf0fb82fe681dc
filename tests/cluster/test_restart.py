"""A whole cluster restarted with more sessions than one node's capacity: placement spreads them
within each node's ``max_sessions``, every one connects once, and none waits holding a pool slot."""

from __future__ import annotations

from .conftest import cluster_member, running, runners, seed, wait_converged

SESSIONS = {f"r{i:02d}" for i in range(20)}
CAPACITY = 8  # 3 nodes x 8 = 24 >= 20 > 8


async def test_full_cluster_restart_respects_capacity(tmp_path, simulator, simulator_control, postgres_dsn, redis_url):
    await seed(postgres_dsn, simulator_control, SESSIONS, "connected")  # live when the cluster went down
    for boot in ("first", "second"):
        members = [cluster_member(tmp_path / boot, simulator.url, name, postgres_dsn, redis_url,
                                  sessions__max_sessions=str(CAPACITY)) for name in ("a", "b", "c")]
        async with running(*members):
            owners = await wait_converged(members[0], SESSIONS, {"a", "b", "c"})
            loads = {name: list(owners.values()).count(name) for name in ("a", "b", "c")}
            assert max(loads.values()) <= CAPACITY, loads
            view = await members[1].cluster()
            assert all(len(where) == 1 for where in runners(view).values())
            assert not any(m["load"] > m["capacity"] for m in view["members"])
        # running() kills every daemon on exit: the next boot is a restart after a crash of all nodes
    assert (await simulator_control.stats()).replaced == 0
