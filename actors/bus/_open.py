"""Choosing a backend from a URL, and running a bus for the length of a block."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from ._errors import BusValueError
from ._memory import MemoryBus
from ._protocol import Bus
from ._redis import RedisBus

#: URL of the single-node in-memory bus (the default: no server needed).
MEMORY_URL = "memory://"


def bus_from_url(url: str = MEMORY_URL) -> MemoryBus | RedisBus:
    """``memory://`` → MemoryBus; ``redis://``, ``rediss://`` or ``unix://`` → RedisBus (defaults).

    Raises:
        BusValueError: any other URL.
    """
    if url == MEMORY_URL:
        return MemoryBus()
    if isinstance(url, str) and url.startswith(("redis://", "rediss://", "unix://")):
        return RedisBus(url)
    raise BusValueError(f"bus url must be {MEMORY_URL!r} or a redis:// URL, got {url!r}")


@asynccontextmanager
async def open_bus(bus: Bus | str = MEMORY_URL) -> AsyncIterator[Bus]:
    """Run ``bus`` (or the bus a URL names) in a nursery for the block; stop it on exit.

    For scripts and tests; the daemon hosts ``bus.run`` as an actor instead.
    """
    bus = bus_from_url(bus) if isinstance(bus, str) else bus
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        yield bus
        nursery.cancel_scope.cancel()
