"""Pub/sub fan-out: channels, patterns, independent copies, bounded queues with explicit gaps."""

from __future__ import annotations

import pytest
import redis
import trio

from actors.bus import (
    SUBSCRIPTION_CAPACITY,
    BusValueError,
    Gap,
    GapReason,
    Message,
    RedisBus,
    open_bus,
)

#: Real-time bound for a message to cross Redis on a loaded 2-core machine (generous on purpose).
DELIVERY_TIMEOUT = 10


async def next_item(sub):
    with trio.fail_after(DELIVERY_TIMEOUT):
        return await sub.__anext__()


async def test_channel_message_round_trip(bus, clock):
    async with bus.subscribe("events") as sub:
        assert await bus.publish("events", {"ticket": 7, "text": "olá"}) == 1
        assert await next_item(sub) == Message("events", {"ticket": 7, "text": "olá"})


async def test_pattern_subscription_sees_matching_channels_only(bus, clock):
    async with bus.subscribe(patterns=["tenant:*"]) as sub:
        await bus.publish("other", 1)
        await bus.publish("tenant:42", 2)
        assert await next_item(sub) == Message("tenant:42", 2, pattern="tenant:*")


async def test_every_subscriber_gets_its_own_copy(bus, clock):
    async with bus.subscribe("room") as first, bus.subscribe("room") as second:
        assert bus.statistics().subscriptions == 2
        await bus.publish("room", {"seen_by": []})
        a, b = await next_item(first), await next_item(second)
        a.data["seen_by"].append("first")
        assert b.data == {"seen_by": []}


async def test_channel_and_pattern_both_match(bus, clock):
    async with bus.subscribe("room:1", patterns=["room:*"]) as sub:
        await bus.publish("room:1", "x")
        items = {await next_item(sub), await next_item(sub)}
    assert items == {Message("room:1", "x"), Message("room:1", "x", pattern="room:*")}


async def test_messages_before_subscribing_are_not_delivered(bus, clock):
    assert await bus.publish("late", "lost") == 0
    async with bus.subscribe("late") as sub:
        with pytest.raises(trio.WouldBlock):
            sub.receive_nowait()
        await bus.publish("late", "seen")
        assert (await next_item(sub)).data == "seen"


async def test_leaving_the_block_closes_the_subscription(bus, clock):
    async with bus.subscribe("c", patterns=["p:*"]) as sub:
        assert bus.statistics().names == 2
    assert bus.statistics().subscriptions == 0
    assert bus.statistics().names == 0
    with pytest.raises(StopAsyncIteration):
        sub.receive_nowait()


async def test_a_slow_subscriber_gets_a_gap_instead_of_blocking_anyone(bus, clock):
    extra = 5
    async with bus.subscribe("firehose") as slow, bus.subscribe("firehose") as fast:
        for i in range(SUBSCRIPTION_CAPACITY + extra):
            await bus.publish("firehose", i)
            assert (await next_item(fast)).data == i  # the reader keeps up, unaffected
        for i in range(SUBSCRIPTION_CAPACITY):
            assert (await next_item(slow)).data == i
        await bus.publish("firehose", "after")
        assert await next_item(slow) == Gap(GapReason.OVERFLOW, dropped=extra)
        assert (await next_item(slow)).data == "after"
        assert slow.dropped == extra
        assert bus.statistics().dropped == extra


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda bus: bus.publish("", 1), "channel"),
        (lambda bus: bus.publish("c", {1, 2}), "data"),
    ],
)
async def test_bad_publish_input_names_the_field(bus, clock, call, field):
    with pytest.raises(BusValueError, match=field):
        await call(bus)


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [((), {}, "at least one"), (("",), {}, "channel"), ((), {"patterns": [""]}, "pattern")],
)
async def test_bad_subscribe_input_names_the_field(bus, clock, args, kwargs, field):
    with pytest.raises(BusValueError, match=field):
        async with bus.subscribe(*args, **kwargs):
            pass


async def test_foreign_non_json_messages_are_skipped_and_counted(redis_url):
    async with open_bus(RedisBus(redis_url)) as bus, bus.subscribe("mixed") as sub:
        with redis.Redis.from_url(redis_url) as raw:
            await trio.to_thread.run_sync(raw.publish, "zv:p:mixed", b"not json {")
        await bus.publish("mixed", "fine")
        assert (await next_item(sub)).data == "fine"
        assert bus.statistics().malformed == 1
