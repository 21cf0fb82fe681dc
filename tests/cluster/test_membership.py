"""Membership over a real Redis: nodes hear each other, see drains at once and drop the silent."""

from __future__ import annotations

import trio

from actors.bus import MemoryBus, RedisBus, open_bus
from actors.cluster import Member, Membership

INTERVAL, TTL = 0.1, 0.5


def membership(bus, name: str, running=()) -> Membership:
    return Membership(bus, Member(name, f"http://{name}", 10), INTERVAL, TTL, running=lambda: running)


async def wait_members(m: Membership, names: set[str], timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while {x.node_id for x in m.members() if not x.draining} != names:
            await m.wait_changed()


async def test_join_drain_and_silence(redis_url):
    async with open_bus(RedisBus(redis_url)) as bus:
        info = {"session_id": "s1", "tenant_id": "t", "status": "connected"}
        a, b = membership(bus, "a"), membership(bus, "b", running=(info,))
        async with trio.open_nursery() as nursery:
            await nursery.start(a.run)
            b_scope = trio.CancelScope()

            async def run_b(task_status=trio.TASK_STATUS_IGNORED):
                with b_scope:
                    await b.run(task_status=task_status)

            await nursery.start(run_b)
            await wait_members(a, {"a", "b"})
            await wait_members(b, {"a", "b"})
            assert a.runner("s1") == "b" and a.remote_status("s1") == info
            assert a.member("b") == Member("b", "http://b", 10)
            with trio.fail_after(5):
                await a.settled.wait()  # one member_ttl after start

            await b.leave()  # draining: at once, not after a TTL
            await wait_members(a, {"a"}, timeout=TTL / 2)
            assert a.member("b").draining

            lock = await bus.acquire("session:s1", 1.5, owner="b")  # b's renewals still get through...
            b_scope.cancel()  # ...while its heartbeats stop: kept until its lease lapses
            await trio.sleep(TTL * 2)
            assert a.member("b") is not None
            await bus.release(lock)  # b dead: its lease gone, it is gone after member_ttl
            with trio.fail_after(5):
                while a.member("b") is not None:
                    await a.wait_changed()
            assert a.runner("s1") is None and a.members() == (a.me,)
            nursery.cancel_scope.cancel()


async def test_the_memory_bus_is_a_cluster_of_one_settled_at_once():
    async with open_bus(MemoryBus()) as bus:
        alone = membership(bus, "solo")
        async with trio.open_nursery() as nursery:
            await nursery.start(alone.run)
            await alone.settled.wait()
            assert alone.solo and alone.members() == (alone.me,)
            nursery.cancel_scope.cancel()
