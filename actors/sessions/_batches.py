"""Inbound batches: a session's messages stored in batches, several at once, each chat in order.

A session acknowledges a message only once it is stored. Storing one message at a time would
make a session's throughput one store round trip per message; storing one batch at a time would
make every message that arrives meanwhile wait for the whole batch. So messages queue here and
a *pump* starts a batch whenever fewer than ``max_batches`` are in flight: at a low rate every
message goes at once on its own, under load batches grow by themselves while earlier ones are
being stored.

Order only matters within a chat (a ticket is one chat): a batch takes every queued message of
the chats that have nothing in flight, and leaves the others queued until their chat's batch is
done, so one chat's messages are stored in arrival order while different chats overlap.
``capacity`` bounds the messages queued or in flight; :meth:`InboundBatches.put` waits beyond
it, which is the backpressure that reaches the driver and WhatsApp.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any

import attrs
import trio


@attrs.define(eq=False)
class InboundBatches:
    """Run ``store(batch)`` for batches of the queued items, in ``nursery``; ``key(item)`` names
    its chat. A failing ``store`` fails the nursery (the connection), as any handler would."""

    nursery: trio.Nursery
    store: Callable[[list[Any]], Awaitable[None]]
    key: Callable[[Any], Hashable]
    max_batches: int
    capacity: int
    _queued: collections.deque = attrs.field(init=False, factory=collections.deque)
    _busy: set = attrs.field(init=False, factory=set)  # chats with a batch in flight
    _in_flight: int = attrs.field(init=False, default=0)  # batches
    _held: int = attrs.field(init=False, default=0)  # items queued or in flight
    _room: trio.Event = attrs.field(init=False, factory=trio.Event)

    async def put(self, items: Iterable[Any]) -> None:
        """Queue ``items`` (in arrival order); waits while ``capacity`` items are held."""
        for item in items:
            while self._held >= self.capacity:
                self._room = trio.Event()
                await self._room.wait()
            self._queued.append(item)
            self._held += 1
        self._pump()

    async def drained(self) -> None:
        """Wait until nothing is queued or in flight (everything put so far is stored)."""
        while self._held:
            self._room = trio.Event()
            await self._room.wait()

    def _pump(self) -> None:
        """Start batches while there is queued work for idle chats and room in flight."""
        while self._queued and self._in_flight < self.max_batches:
            batch, waiting = [], collections.deque()
            for item in self._queued:
                (waiting if self.key(item) in self._busy else batch).append(item)
            if not batch:
                return  # everything queued waits for a chat in flight
            self._queued = waiting
            chats = {self.key(item) for item in batch}
            self._busy |= chats
            self._in_flight += 1
            self.nursery.start_soon(self._run, batch, chats)

    async def _run(self, batch: list[Any], chats: set[Hashable]) -> None:
        await self.store(batch)
        self._busy -= chats
        self._in_flight -= 1
        self._held -= len(batch)
        self._room.set()
        self._pump()
