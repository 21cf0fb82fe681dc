"""What feeds the rooms: the status board and the supervision tree; and nodes feeding each other."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from actors.bus import GapReason, MemoryBus, open_bus
from actors.hub import Hub, Room
from actors.sessions import SessionStatus, StatusBoard
from supervisor import Actor, ChildSpec, EventKind, Supervisor, open_actor_system
from supervisor._events import LifecycleEvent


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


@asynccontextmanager
async def two_nodes() -> AsyncIterator[tuple[MemoryBus, Hub, Hub]]:
    """The hubs of nodes n1 and n2 on one memory bus, running for the block."""
    bus = MemoryBus()
    async with open_bus(bus), trio.open_nursery() as nursery:
        one, two = Hub("n1", bus), Hub("n2", bus)
        await nursery.start(one.run)
        await nursery.start(two.run)
        yield bus, one, two
        nursery.cancel_scope.cancel()


async def frames(client, count: int) -> list[dict]:
    with trio.fail_after(5):
        return [json.loads(await client.receive()) for _ in range(count)]


async def test_status_changes_reach_the_status_and_tenant_rooms(autojump_clock):
    board = StatusBoard(debounce=1.0)
    hub = Hub(board=board)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        agent = hub.connect("acme", "1", "agent")
        hub.join(agent, "tenant:acme")
        hub.join(agent, "status:qr")
        other = hub.connect("zeta", "2", "agent")
        hub.join(other, "tenant:zeta")
        await frames(agent, 2), await frames(other, 1)
        board.set("s1", "acme", SessionStatus.QR, qr="2@abc", qr_index=1)
        board.set("s1", "acme", SessionStatus.CONNECTED)
        got = await frames(agent, 3)
        assert [(f["room"], f["type"], f["payload"]["status"]) for f in got] == [
            ("status:qr", "qrcode.updated", "qr"), ("tenant:acme", "qrcode.updated", "qr"),
            ("tenant:acme", "connection.update", "connected"),
        ]
        assert got[0]["payload"]["qr"] == "2@abc" and got[0]["payload"]["session_id"] == "s1"
        await trio.testing.wait_all_tasks_blocked()
        assert other.depth == 0  # zeta never hears about acme
        nursery.cancel_scope.cancel()


class Crashy(Actor):
    async def receive(self, msg):
        raise RuntimeError("boom")


async def test_lifecycle_events_reach_supervision_rooms_scoped_by_tenant(autojump_clock):
    hub = Hub()
    node_admin = hub.connect("", "admin", "admin")
    acme_admin = hub.connect("acme", "1", "admin")
    zeta_admin = hub.connect("zeta", "2", "admin")
    for client in (node_admin, acme_admin, zeta_admin):
        hub.join(client, "supervision")
        await frames(client, 1)
    tenants = ChildSpec("tenants", lambda: Supervisor([ChildSpec("acme", lambda: Supervisor([
        ChildSpec("w", Crashy)]))]))
    async with open_actor_system([tenants]) as system, trio.open_nursery() as nursery:
        await nursery.start(hub.run, system)
        system.ref("/tenants/acme/w").tell("crash")
        seen = await frames(acme_admin, 2)
        assert [(f["type"], f["payload"]["path"]) for f in seen][:1] == [("supervision.exited", "/tenants/acme/w")]
        assert all(f["room"] == "supervision" for f in seen)
        node_seen = await frames(node_admin, 2)
        assert [f["payload"]["path"] for f in node_seen] == [f["payload"]["path"] for f in seen]
        await trio.testing.wait_all_tasks_blocked()
        assert zeta_admin.depth == 0
        nursery.cancel_scope.cancel()


async def test_lifecycle_events_outside_tenants_go_to_the_node_room_only():
    hub = Hub()
    acme_admin = hub.connect("acme", "1", "admin")
    hub.join(acme_admin, "supervision")
    hub.publish_lifecycle(LifecycleEvent(EventKind.RESTARTED, "/infra/store", 1.0))
    assert hub.room_seq(Room.supervision()) == 1
    assert hub.room_seq(Room.supervision("acme")) == 0


async def test_events_cross_nodes_through_the_bus_once(autojump_clock):
    async with two_nodes() as (_, one, two):
        here, there = one.connect("acme", "1", "agent"), two.connect("acme", "2", "agent")
        hub_of = {id(here): one, id(there): two}
        for client in (here, there):
            hub_of[id(client)].join(client, "ticket:3")
            await frames(client, 1)
        one.emit("acme", "message.created", {"from": "n1"}, ticket_id=3)
        two.emit("acme", "message.created", {"from": "n2"}, ticket_id=3)
        for client in (here, there):
            got = await frames(client, 2)
            assert sorted(f["payload"]["from"] for f in got) == ["n1", "n2"]
            assert [f["seq"] for f in got] == [1, 2]  # each node numbers what it delivers
        await trio.testing.wait_all_tasks_blocked()
        assert here.depth == there.depth == 0  # nobody got its own event twice
        assert one.statistics().remote == two.statistics().remote == 2  # tenant + ticket room


async def test_a_bus_gap_tells_every_client_to_resync(autojump_clock):
    bus = MemoryBus()
    async with open_bus(bus), trio.open_nursery() as nursery:
        hub = Hub("n1", bus)
        await nursery.start(hub.run)
        client = hub.connect("acme", "1", "agent")
        hub.join(client, "tenant:acme")
        await frames(client, 1)
        bus._fanout.gap_all(GapReason.RECONNECTED)
        (resync,) = await frames(client, 1)
        assert resync["type"] == "resync" and resync["room"] == "tenant:acme"
        nursery.cancel_scope.cancel()


async def test_events_cross_nodes_through_real_redis(redis_url):
    from actors.bus import RedisBus

    async with open_bus(RedisBus(redis_url)) as bus_one, open_bus(RedisBus(redis_url)) as bus_two:
        async with trio.open_nursery() as nursery:
            one, two = Hub("r1", bus_one), Hub("r2", bus_two)
            await nursery.start(one.run)
            await nursery.start(two.run)
            there = two.connect("acme", "2", "agent")
            two.join(there, "tenant:acme")
            await frames(there, 1)
            one.emit("acme", "ticket.closed", {"ticket_id": 1})
            (got,) = await frames(there, 1)
            assert (got["type"], got["payload"], got["seq"]) == ("ticket.closed", {"ticket_id": 1}, 1)
            nursery.cancel_scope.cancel()


async def test_emits_queued_before_the_forwarder_runs_cross_as_one_bus_message(autojump_clock):
    async with two_nodes() as (bus, one, two):
        there = two.connect("acme", "2", "agent")
        two.join(there, "tenant:acme")
        await frames(there, 1)
        await trio.testing.wait_all_tasks_blocked()
        published = bus.statistics().published
        for n in range(5):
            one.emit("acme", "message.created", {"n": n})  # no checkpoint: the forwarder waits
        got = await frames(there, 5)
        assert [(f["seq"], f["payload"]) for f in got] == [(n + 1, {"n": n}) for n in range(5)]
        await trio.testing.wait_all_tasks_blocked()
        assert there.depth == 0  # each event once
        assert bus.statistics().published - published == 1
        assert two.statistics().remote == 5
