"""Fixtures for the bus suite: every parametrised test runs once per backend.

``backend`` is "memory" or "redis". Tests take ``clock`` too: for memory it is a MockClock that
jumps whenever every task sleeps (pytest-trio uses any Clock argument as the run's clock), so
TTLs are asserted exactly; for Redis it is None and the test runs on real time with short TTLs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import pytest
import trio
from trio.testing import MockClock

from actors.bus import MEMORY_URL, Bus, LockToken, MemoryBus, RedisBus, open_bus


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def clock(backend: str) -> MockClock | None:
    return MockClock(autojump_threshold=0) if backend == "memory" else None


@pytest.fixture
def bus_url(backend: str, request: pytest.FixtureRequest) -> str:
    return MEMORY_URL if backend == "memory" else request.getfixturevalue("redis_url")


def make_bus(url: str) -> MemoryBus | RedisBus:
    """A bus for ``url`` with tight Redis timeouts so fault tests stay quick."""
    if url == MEMORY_URL:
        return MemoryBus()
    return RedisBus(url, op_timeout=0.5, connect_timeout=0.25, health_interval=0.2, reconnect_delay=0.1)


@pytest.fixture
async def bus(bus_url: str) -> AsyncIterator[Bus]:
    async with open_bus(make_bus(bus_url)) as running:
        yield running


@attrs.define(eq=False)
class FreezableNode:
    """The lock API as seen from a node that can freeze (GC pause, SIGSTOP, partition).

    While ``frozen``, every call hangs until cancelled, exactly like a request that never gets an
    answer; the wrapped bus itself keeps working for the other nodes. A test double for a node,
    since a real frozen node cannot share a trio run with the test.
    """

    bus: Bus
    frozen: bool = False

    async def _gate(self) -> None:
        if self.frozen:
            await trio.sleep_forever()

    async def acquire(self, resource: str, ttl: float, *, owner: str = "") -> LockToken:
        await self._gate()
        return await self.bus.acquire(resource, ttl, owner=owner)

    async def renew(self, lock: LockToken, ttl: float | None = None) -> bool:
        await self._gate()
        return await self.bus.renew(lock, ttl)

    async def release(self, lock: LockToken) -> bool:
        await self._gate()
        return await self.bus.release(lock)

    async def lock_owner(self, resource: str) -> str | None:
        await self._gate()
        return await self.bus.lock_owner(resource)
