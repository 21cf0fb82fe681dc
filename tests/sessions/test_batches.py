"""InboundBatches: batches a few at once, one chat never in two, backpressure at capacity (MockClock)."""

from __future__ import annotations

import pytest
import trio

from actors.sessions._batches import InboundBatches


class Recorder:
    """A store that takes ``seconds`` per batch and notes what it was given, and when."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds
        self.batches: list[tuple[float, list[tuple[str, int]]]] = []
        self.in_flight = self.peak = 0

    async def __call__(self, batch: list[tuple[str, int]]) -> None:
        self.batches.append((trio.current_time(), batch))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await trio.sleep(self.seconds)
        self.in_flight -= 1


def chat(item: tuple[str, int]) -> str:
    return item[0]


async def test_a_lone_message_goes_at_once_and_later_ones_overlap_it(autojump_clock):
    store = Recorder()
    async with trio.open_nursery() as nursery:
        batches = InboundBatches(nursery, store, chat, max_batches=4, capacity=100)
        await batches.put([("a", 1)])
        await trio.sleep(0.5)
        await batches.put([("b", 1)])  # another chat: no waiting for the first batch
    assert [(at, batch) for at, batch in store.batches] == [(0.0, [("a", 1)]), (0.5, [("b", 1)])]
    assert store.peak == 2


async def test_a_chat_in_flight_waits_and_keeps_its_order(autojump_clock):
    store = Recorder()
    async with trio.open_nursery() as nursery:
        batches = InboundBatches(nursery, store, chat, max_batches=4, capacity=100)
        await batches.put([("a", 1)])
        await trio.sleep(0.1)
        await batches.put([("a", 2), ("b", 1), ("a", 3)])  # a is busy: only b goes now
    assert store.batches == [(0.0, [("a", 1)]), (0.1, [("b", 1)]), (1.0, [("a", 2), ("a", 3)])]


async def test_batches_in_flight_are_bounded_and_grow_meanwhile(autojump_clock):
    store = Recorder()
    async with trio.open_nursery() as nursery:
        batches = InboundBatches(nursery, store, chat, max_batches=2, capacity=100)
        for n in range(6):
            await batches.put([(f"c{n}", 1)])
    assert store.peak == 2
    assert [(at, len(batch)) for at, batch in store.batches] == [(0.0, 1), (0.0, 1), (1.0, 4)]


async def test_put_waits_while_capacity_items_are_held(autojump_clock):
    store = Recorder(seconds=3.0)
    async with trio.open_nursery() as nursery:
        batches = InboundBatches(nursery, store, chat, max_batches=4, capacity=2)
        await batches.put([("a", 1), ("b", 1)])
        await batches.put([("c", 1)])  # two held: waits until a batch is stored
        assert trio.current_time() == 3.0
    assert [at for at, _ in store.batches] == [0.0, 3.0]


async def test_a_failing_store_fails_the_nursery(autojump_clock):
    async def broken(batch):
        raise RuntimeError("store down")

    with pytest.raises(ExceptionGroup) as failed:
        async with trio.open_nursery() as nursery:
            await InboundBatches(nursery, broken, chat, max_batches=4, capacity=10).put([("a", 1)])
    assert failed.group_contains(RuntimeError, match="store down")


async def test_wait_empty_returns_once_everything_put_is_stored(autojump_clock):
    """A hand-over waits for it: what the connection delivered is stored before the lease goes."""
    store = Recorder(seconds=1.0)
    async with trio.open_nursery() as nursery:
        batches = InboundBatches(nursery, store, chat, max_batches=1, capacity=100)
        await batches.wait_empty()  # nothing held: at once
        assert trio.current_time() == 0.0
        await batches.put([("a", 1), ("b", 1)])
        await batches.put([("a", 2)])  # queued behind the first batch (one in flight at most)
        await batches.wait_empty()
        assert trio.current_time() == 2.0
        assert [batch for _, batch in store.batches] == [[("a", 1), ("b", 1)], [("a", 2)]]
