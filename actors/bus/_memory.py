"""The in-memory bus: the single-node default, no server needed.

All state lives in this object; every deadline is trio time, so tests drive expiry with
``trio.testing.MockClock``. Expiry is exact on every access; ``run()`` only sweeps keys and
locks nobody touches again, to keep memory bounded.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from ._codec import (
    FENCE_RETENTION,
    check_amount,
    check_lock,
    check_name,
    check_ttl,
    compile_glob,
    decode,
    encode,
    next_fence,
)
from ._errors import BusValueError, LockBusy
from ._fanout import Fanout, Subscription, new_subscription
from ._values import BusStatistics, LockToken

#: Seconds between sweeps of expired keys and locks. Expiry itself is exact on access; the sweep
#: only reclaims memory of keys nobody reads again, so a coarse period is enough.
SWEEP_INTERVAL = 10.0

#: Integers Redis INCR accepts (signed 64 bit); the memory backend refuses the same ones.
_INT64 = (-(2**63), 2**63 - 1)
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")


def _wall_clock_us() -> int:
    """Microseconds since the epoch: only an ordering floor for fencing tokens, never a timer."""
    return time.time_ns() // 1000


@attrs.define(eq=False)
class _Held:
    token: int
    owner: str
    deadline: float


@attrs.define(eq=False)
class MemoryBus:
    """In-process implementation of :class:`~actors.bus.Bus` (see there for the semantics).

    ``wall_clock_us`` feeds the fencing-token floor (see ``next_fence``) and is the only use of
    the wall clock; all expiry uses trio time.
    """

    wall_clock_us: Callable[[], int] = _wall_clock_us
    _values: dict[str, str] = attrs.field(init=False, factory=dict)
    _expiry: dict[str, float] = attrs.field(init=False, factory=dict)
    _locks: dict[str, _Held] = attrs.field(init=False, factory=dict)
    _fences: dict[str, tuple[int, float]] = attrs.field(init=False, factory=dict)
    _fanout: Fanout = attrs.field(init=False, factory=Fanout)
    _operations: int = attrs.field(init=False, default=0)
    _published: int = attrs.field(init=False, default=0)

    # -- cache -------------------------------------------------------------------------------------

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        check_name("key", key)
        raw = encode("value", value)
        deadline = None if ttl is None else trio.current_time() + check_ttl("ttl", ttl)
        await self._op()
        self._values[key] = raw
        if deadline is None:
            self._expiry.pop(key, None)
        else:
            self._expiry[key] = deadline

    async def get(self, key: str, default: Any = None) -> Any:
        check_name("key", key)
        await self._op()
        raw = self._live(key)
        return default if raw is None else decode(raw)

    async def delete(self, key: str) -> bool:
        check_name("key", key)
        await self._op()
        return self._drop(key)

    async def delete_pattern(self, pattern: str) -> int:
        glob = compile_glob(check_name("pattern", pattern))
        await self._op()
        doomed = [k for k in list(self._values) if glob.fullmatch(k) and self._live(k) is not None]
        for key in doomed:
            self._drop(key)
        return len(doomed)

    async def exists(self, key: str) -> bool:
        check_name("key", key)
        await self._op()
        return self._live(key) is not None

    async def incr(self, key: str, amount: int = 1) -> int:
        check_name("key", key)
        check_amount("amount", amount)
        await self._op()
        raw = self._live(key)
        current = 0 if raw is None else int(raw) if _INTEGER.fullmatch(raw) else None
        if current is None or not _INT64[0] <= current <= _INT64[1]:
            raise BusValueError(f"key {key!r} does not hold a 64-bit integer")
        value = current + amount
        if not _INT64[0] <= value <= _INT64[1]:
            raise BusValueError(f"incrementing key {key!r} by {amount} leaves the 64-bit integer range")
        self._values[key] = str(value)
        return value

    async def decr(self, key: str, amount: int = 1) -> int:
        return await self.incr(key, -check_amount("amount", amount))

    async def expire(self, key: str, ttl: float) -> bool:
        check_name("key", key)
        deadline = trio.current_time() + check_ttl("ttl", ttl)
        await self._op()
        if self._live(key) is None:
            return False
        self._expiry[key] = deadline
        return True

    async def ttl(self, key: str) -> float | None:
        check_name("key", key)
        await self._op()
        if self._live(key) is None:
            return None
        deadline = self._expiry.get(key)
        return math.inf if deadline is None else deadline - trio.current_time()

    def _live(self, key: str) -> str | None:
        """The raw value of ``key``, dropping it first if it has expired."""
        deadline = self._expiry.get(key)
        if deadline is not None and deadline <= trio.current_time():
            self._drop(key)
        return self._values.get(key)

    def _drop(self, key: str) -> bool:
        self._expiry.pop(key, None)
        return self._values.pop(key, None) is not None

    # -- locks ---------------------------------------------------------------------------------------

    async def acquire(self, resource: str, ttl: float, *, owner: str = "") -> LockToken:
        check_name("resource", resource)
        ttl = check_ttl("ttl", ttl)
        if not isinstance(owner, str):
            raise BusValueError(f"owner must be a string, got {owner!r}")
        await self._op()
        now = trio.current_time()
        held = self._current(resource)
        if held is not None:
            raise LockBusy(resource, held.owner)
        last = self._fences.get(resource, (0, now))[0]
        token = next_fence(last, self.wall_clock_us())
        self._fences[resource] = (token, now)
        self._locks[resource] = _Held(token, owner, now + ttl)
        return LockToken(resource, token, owner, ttl, now)

    async def release(self, lock: LockToken) -> bool:
        check_lock(lock)
        await self._op()
        held = self._current(lock.resource)
        if held is None or held.token != lock.token:
            return False
        del self._locks[lock.resource]
        return True

    async def renew(self, lock: LockToken, ttl: float | None = None) -> bool:
        check_lock(lock)
        ttl = lock.ttl if ttl is None else check_ttl("ttl", ttl)
        await self._op()
        held = self._current(lock.resource)
        if held is None or held.token != lock.token:
            return False
        held.deadline = trio.current_time() + ttl
        return True

    async def is_locked(self, resource: str) -> bool:
        check_name("resource", resource)
        await self._op()
        return self._current(resource) is not None

    async def lock_owner(self, resource: str) -> str | None:
        check_name("resource", resource)
        await self._op()
        held = self._current(resource)
        return None if held is None else held.owner

    def _current(self, resource: str) -> _Held | None:
        held = self._locks.get(resource)
        if held is not None and held.deadline <= trio.current_time():
            del self._locks[resource]
            return None
        return held

    # -- pub/sub ---------------------------------------------------------------------------------

    async def publish(self, channel: str, data: Any) -> int:
        check_name("channel", channel)
        raw = encode("data", data)
        await self._op()
        self._published += 1
        receivers = self._fanout.deliver(channel, raw)
        for pattern in self._fanout.matching_patterns(channel):
            receivers += self._fanout.deliver(channel, raw, pattern)
        return receivers

    @asynccontextmanager
    async def subscribe(
        self, *channels: str, patterns: tuple[str, ...] | list[str] = ()
    ) -> AsyncIterator[Subscription]:
        sub = new_subscription(channels, patterns)
        await self._op()
        self._fanout.add(sub)
        try:
            yield sub
        finally:
            self._fanout.remove(sub)

    # -- hosting ---------------------------------------------------------------------------------

    def statistics(self) -> BusStatistics:
        fanout = self._fanout
        return BusStatistics(
            backend="memory",
            available=True,
            operations=self._operations,
            unavailable=0,
            subscriptions=fanout.subscriptions,
            names=len(fanout.channel_names) + len(fanout.pattern_names),
            published=self._published,
            delivered=fanout.delivered,
            dropped=fanout.dropped,
            malformed=fanout.malformed,
            reconnects=0,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sweep expired keys, locks and stale fences every SWEEP_INTERVAL until cancelled.

        The bus works without it (expiry is exact on access); running it bounds memory.
        """
        task_status.started()
        while True:
            await trio.sleep(SWEEP_INTERVAL)
            self.sweep()

    def sweep(self) -> None:
        """Drop everything that has expired now (synchronous, O(keys + locks))."""
        now = trio.current_time()
        for key in [k for k, deadline in self._expiry.items() if deadline <= now]:
            self._drop(key)
        for resource in [r for r, held in self._locks.items() if held.deadline <= now]:
            del self._locks[resource]
        for resource in [r for r, (_, used) in self._fences.items() if now - used > FENCE_RETENTION]:
            if resource not in self._locks:
                del self._fences[resource]

    async def _op(self) -> None:
        await trio.lowlevel.checkpoint()
        self._operations += 1

