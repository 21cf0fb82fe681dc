"""The hub alone (no sockets): rooms, sequence numbers, replay, the slow-client policy, taps."""

import json

import pytest
import trio
import trio.testing

from actors.hub import TOO_SLOW, ClientClosed, Hub, InvalidEvent, Room, RoomForbidden


def drain(client) -> list[dict]:
    frames = []
    while client.depth:
        frames.append(json.loads(client._queue.popleft()))
    return frames


async def test_members_receive_events_with_a_growing_seq():
    hub = Hub()
    client = hub.connect("acme", "1", "agent")
    hub.join(client, "tenant:acme")
    for n in range(3):
        hub.publish(Room.tenant("acme"), "message.created", {"n": n})
    frames = drain(client)
    assert frames[0]["type"] == "joined" and frames[0]["seq"] == 0
    assert [(f["seq"], f["payload"]["n"]) for f in frames[1:]] == [(1, 0), (2, 1), (3, 2)]
    assert hub.room_seq(Room.tenant("acme")) == 3


async def test_leave_stops_delivery():
    hub = Hub()
    client = hub.connect("acme", "1", "agent")
    hub.join(client, "ticket:9")
    hub.leave(client, "ticket:9")
    hub.publish(Room.ticket("acme", 9), "message.created", {})
    assert [f["type"] for f in drain(client)] == ["joined", "left"]


async def test_resume_gets_the_missed_events_or_resync():
    hub = Hub(replay=4)
    room = Room.tenant("acme")
    first = hub.connect("acme", "1", "agent")
    hub.join(first, "tenant:acme")
    hub.publish(room, "message.created", {"n": 1})
    joined, seen = drain(first)
    hub.disconnect(first)
    for n in range(2, 5):
        hub.publish(room, "message.created", {"n": n})
    again = hub.connect("acme", "1", "agent")
    hub.join(again, "tenant:acme", since=seen["seq"], epoch=joined["epoch"])
    assert [f["payload"]["n"] for f in drain(again)[1:]] == [2, 3, 4]
    for n in range(5, 11):
        hub.publish(room, "message.created", {"n": n})
    late = hub.connect("acme", "1", "agent")
    hub.join(late, "tenant:acme", since=seen["seq"], epoch=joined["epoch"])
    assert [f["type"] for f in drain(late)] == ["joined", "resync"]
    other_epoch = hub.connect("acme", "1", "agent")
    hub.join(other_epoch, "tenant:acme", since=10, epoch="another-node")
    assert [f["type"] for f in drain(other_epoch)] == ["joined", "resync"]


async def test_a_slow_client_is_told_it_lagged_then_closed_and_never_slows_the_others():
    hub = Hub(client_capacity=3)
    slow, fast = hub.connect("acme", "1", "agent"), hub.connect("acme", "2", "agent")
    hub.join(slow, "tenant:acme")
    hub.join(fast, "tenant:acme")
    drain(slow), drain(fast)
    received = []
    for n in range(10):
        hub.publish(Room.tenant("acme"), "message.created", {"n": n})
        received += drain(fast)
        if n == 3:
            frames = [json.loads(await slow.receive()) for _ in range(4)]  # it reads once, late
            assert [f["type"] for f in frames] == ["message.created"] * 3 + ["lagged"]
            assert frames[-1] == {"type": "lagged", "dropped": 1, "rooms": ["tenant:acme"]}
    assert [f["payload"]["n"] for f in received] == list(range(10))
    assert slow.closed == TOO_SLOW
    assert json.loads(await slow.receive())["type"] == "lagged"  # its last words, then the end
    with pytest.raises(ClientClosed, match="too slow"):
        await slow.receive()
    stats = hub.statistics()
    assert (stats.lagged, stats.disconnected_slow, stats.clients) == (2, 1, 1)


async def test_a_client_that_catches_up_gets_a_fresh_warning_next_time():
    hub = Hub(client_capacity=2)
    client = hub.connect("acme", "1", "agent")
    hub.join(client, "tenant:acme")
    drain(client)
    for round_ in range(3):
        for n in range(3):
            hub.publish(Room.tenant("acme"), "message.created", {"n": n})
        frames = [json.loads(await client.receive()) for _ in range(3)]
        assert frames[-1]["type"] == "lagged"
    assert client.closed is None


async def test_receive_many_takes_a_burst_in_order_up_to_the_limit():
    hub = Hub(client_capacity=8)
    client = hub.connect("acme", "1", "agent")
    hub.join(client, "tenant:acme")
    drain(client)
    for n in range(5):
        hub.publish(Room.tenant("acme"), "message.created", {"n": n})
    first, rest = await client.receive_many(3), await client.receive_many(3)
    assert [json.loads(f)["payload"]["n"] for f in first + rest] == [0, 1, 2, 3, 4]
    assert (len(first), len(rest), client.depth) == (3, 2, 0)


async def test_receive_many_keeps_the_lag_policy():
    hub = Hub(client_capacity=2)
    client = hub.connect("acme", "1", "agent")
    hub.join(client, "tenant:acme")
    drain(client)
    for n in range(3):  # one too many: dropped, and the client is told
        hub.publish(Room.tenant("acme"), "message.created", {"n": n})
    taken = await client.receive_many(1)  # the queue is not empty yet: still lagging
    assert client.lagged and json.loads(taken[0])["payload"]["n"] == 0
    assert [json.loads(f)["type"] for f in await client.receive_many(8)] == ["message.created", "lagged"]
    assert not client.lagged  # emptied: caught up, the next overflow is a fresh warning
    for n in range(6):  # overflows twice without catching up: closed, its last words alone
        hub.publish(Room.tenant("acme"), "message.created", {"n": n})
    assert client.closed == TOO_SLOW
    assert [json.loads(f)["type"] for f in await client.receive_many(8)] == ["lagged"]
    with pytest.raises(ClientClosed, match="too slow"):
        await client.receive_many(8)


async def test_emit_publishes_to_the_tenant_and_ticket_rooms_and_the_taps():
    hub = Hub()
    tapped = []
    hub.add_tap(lambda tenant, kind, payload: tapped.append((tenant, kind, payload)))
    client = hub.connect("acme", "1", "agent")
    hub.join(client, "tenant:acme")
    hub.join(client, "ticket:5")
    hub.emit("acme", "ticket.accepted", {"ticket_id": 5}, ticket_id=5)
    hub.emit("acme", "message.created", {"id": 1})
    events = [f for f in drain(client) if f["type"] != "joined"]
    assert [(f["room"], f["type"]) for f in events] == [
        ("tenant:acme", "ticket.accepted"), ("ticket:5", "ticket.accepted"), ("tenant:acme", "message.created"),
    ]
    assert tapped == [("acme", "ticket.accepted", {"ticket_id": 5}), ("acme", "message.created", {"id": 1})]
    with pytest.raises(InvalidEvent, match="type"):
        hub.emit("acme", "Bad Type", {})


async def test_joining_a_forbidden_room_changes_nothing():
    hub = Hub()
    client = hub.connect("acme", "1", "agent")
    with pytest.raises(RoomForbidden):
        hub.join(client, "tenant:other")
    assert client.rooms == {} and client.depth == 0


async def test_rooms_without_members_are_evicted_beyond_the_bound():
    hub = Hub(max_rooms=3)
    client = hub.connect("acme", "1", "agent")
    hub.join(client, "ticket:1")
    for ticket in range(2, 10):
        hub.publish(Room.ticket("acme", ticket), "message.created", {})
    assert hub.statistics().rooms == 3
    assert hub.room_seq(Room.ticket("acme", 1)) == 0  # a room with a member stays
    hub.publish(Room.ticket("acme", 1), "message.created", {})
    assert hub.room_seq(Room.ticket("acme", 1)) == 1


async def test_publishing_never_waits():
    hub = Hub()
    clients = [hub.connect("acme", str(n), "agent") for n in range(50)]
    for client in clients:
        hub.join(client, "tenant:acme")
    with trio.CancelScope() as scope:
        scope.cancel()  # any checkpoint inside publish would raise Cancelled here
        for _ in range(300):
            hub.publish(Room.tenant("acme"), "message.created", {})
    assert hub.statistics().disconnected_slow == 50


async def test_a_writer_gets_every_frame_in_order_whether_it_waits_or_is_busy():
    """The hub wakes a client's writer only when it waits for a frame; frames queued while it is
    busy (writing the previous ones) are still handed out in order, and it is woken again once
    it has caught up and waits."""
    hub = Hub()
    client = hub.connect("acme", "1", "agent")
    hub.join(client, "tenant:acme")
    received: list[dict] = []
    sending, written = trio.Event(), trio.Event()

    async def writer() -> None:
        while True:
            received.append(json.loads(await client.receive()))
            if len(received) == 2:
                sending.set()
                await written.wait()  # a slow socket write: the next frames queue meanwhile

    room = Room.tenant("acme")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        await trio.testing.wait_all_tasks_blocked()  # joined handed out; the writer now waits
        hub.publish(room, "message.created", {"n": 0})  # wakes it
        await sending.wait()
        for n in range(1, 4):
            hub.publish(room, "message.created", {"n": n})  # queued behind the busy writer
        assert client.depth == 3
        written.set()
        await trio.testing.wait_all_tasks_blocked()  # it drained them and waits again
        assert [f["payload"]["n"] for f in received[1:]] == [0, 1, 2, 3]
        hub.publish(room, "message.created", {"n": 4})
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert [f.get("seq") for f in received] == [0, 1, 2, 3, 4, 5]
    assert received[-1]["payload"] == {"n": 4}


async def test_quiet_rooms_without_members_are_dropped_after_room_idle(autojump_clock):
    hub = Hub(room_idle=60.0)
    client = hub.connect("acme", "1", "agent")
    hub.join(client, "ticket:1")
    hub.publish(Room.ticket("acme", 1), "message.created", {})  # quiet, but has a member
    hub.publish(Room.ticket("acme", 2), "message.created", {})  # quiet, no member: dropped
    await trio.sleep(50)
    hub.publish(Room.ticket("acme", 3), "message.created", {})  # no member, but recent
    await trio.sleep(20)
    hub.publish(Room.ticket("acme", 4), "message.created", {})  # a new room: the scan runs
    assert hub.room_seq(Room.ticket("acme", 2)) == 0
    assert hub.room_seq(Room.ticket("acme", 1)) == 1 and hub.room_seq(Room.ticket("acme", 3)) == 1
    hub.leave(client, "ticket:1")
    late = hub.connect("acme", "2", "agent")
    hub.join(late, "ticket:2", since=1)  # a resume after the log went: resync, as after an eviction
    assert [f["type"] for f in drain(late)] == ["joined", "resync"]
