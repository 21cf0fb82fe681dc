"""Ordered lanes: items of one key in order, different keys in parallel, a bounded number in flight.

A session stores inbound messages before it acknowledges them. Doing that one
message at a time makes a session's throughput one store round trip per message.
Order only matters *within a chat* (a ticket is one chat), so each chat gets a
lane: its messages are handled strictly in arrival order, while the lanes of
different chats run concurrently and their store writes share group commits.
``capacity`` bounds the items in flight; ``put`` waits beyond it, which is the
backpressure that reaches the driver and WhatsApp.
"""

from __future__ import annotations

import collections
from typing import Any, Awaitable, Callable, Hashable

import attrs
import trio


@attrs.define(eq=False)
class Lanes:
    """Run ``handle(item)`` per lane in ``nursery``; a failing handler fails the nursery."""

    nursery: trio.Nursery
    handle: Callable[[Any], Awaitable[None]]
    capacity: int
    _slots: trio.Semaphore = attrs.field(init=False)
    _lanes: dict[Hashable, collections.deque] = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        self._slots = trio.Semaphore(self.capacity)

    async def put(self, key: Hashable, item: Any) -> None:
        """Queue ``item`` behind the earlier items of ``key``; waits while the lanes are full."""
        await self._slots.acquire()
        lane = self._lanes.get(key)
        if lane is not None:
            lane.append(item)
            return
        self._lanes[key] = collections.deque([item])
        self.nursery.start_soon(self._drain, key)

    async def _drain(self, key: Hashable) -> None:
        lane = self._lanes[key]
        try:
            while lane:
                await self.handle(lane[0])
                lane.popleft()
                self._slots.release()
        finally:
            del self._lanes[key]
