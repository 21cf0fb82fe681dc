"""The one interface both backends implement (memory and Redis), with the semantics they share."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import trio

from ._fanout import Subscription
from ._values import BusStatistics, LockToken


class Bus(Protocol):
    """Coordination for one node: cache, fenced locks, pub/sub (leases are built on the locks).

    Every operation is async, validates its arguments (:class:`BusValueError` naming the field),
    and raises :class:`BusUnavailable` quickly when the backend cannot be reached. Durations are
    float seconds; values are anything JSON can carry. Keys, lock resources and channels live in
    separate namespaces (a cache key "x" and a lock on "x" do not collide).

    Cancellation: every operation is a checkpoint; a cancelled Redis operation may or may not
    have been applied (exactly like a timeout).
    """

    # -- cache (the seed's cache.ts API, with SCAN instead of KEYS) -------------------------------

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` (JSON) under ``key``, replacing it; expire after ``ttl`` seconds if given."""

    async def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default`` when it is missing or expired."""

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True if it existed."""

    async def delete_pattern(self, pattern: str) -> int:
        """Remove every key matching the Redis glob ``pattern`` incrementally; returns how many.

        Never blocks the backend (Redis: SCAN + UNLINK in batches, never KEYS). Keys written while
        it runs may or may not be removed.
        """

    async def exists(self, key: str) -> bool:
        """Whether ``key`` is present (and not expired)."""

    async def incr(self, key: str, amount: int = 1) -> int:
        """Add ``amount`` to the integer under ``key`` (missing counts as 0); returns the new value.

        Keeps the key's TTL. Raises BusValueError if the key holds something other than an integer.
        """

    async def decr(self, key: str, amount: int = 1) -> int:
        """``incr(key, -amount)``."""

    async def expire(self, key: str, ttl: float) -> bool:
        """Set ``key`` to expire ``ttl`` seconds from now; False if it does not exist."""

    async def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires: ``math.inf`` if it never does, None if it does not exist."""

    # -- fenced locks --------------------------------------------------------------------------------

    async def acquire(self, resource: str, ttl: float, *, owner: str = "") -> LockToken:
        """Take the lock on ``resource`` for ``ttl`` seconds without waiting.

        The returned token's fencing number is higher than any issued before for ``resource``.
        Raises LockBusy if someone holds it.
        """

    async def release(self, lock: LockToken) -> bool:
        """Release ``lock`` only if it is still the current holder; False if it was not (expired,
        taken over): nothing is then touched, in particular not the new holder's lock."""

    async def renew(self, lock: LockToken, ttl: float | None = None) -> bool:
        """Extend ``lock`` to ``ttl`` (default: its own ttl) from now, only if it is still current."""

    async def is_locked(self, resource: str) -> bool:
        """Whether anyone holds the lock on ``resource``."""

    async def lock_owner(self, resource: str) -> str | None:
        """The owner string of the current holder of ``resource``, None when free."""

    # -- pub/sub -------------------------------------------------------------------------------------

    async def publish(self, channel: str, data: Any) -> int:
        """Send ``data`` (JSON) to the subscribers of ``channel``; returns how many receivers the
        backend counted (Redis: subscribed connections, memory: subscriptions). Fire-and-forget."""

    def subscribe(
        self, *channels: str, patterns: tuple[str, ...] | list[str] = ()
    ) -> AbstractAsyncContextManager[Subscription]:
        """``async with bus.subscribe("a", patterns=["room:*"]) as sub: async for item in sub: ...``

        Entering confirms the subscription with the backend (BusUnavailable if it cannot);
        messages published after that are delivered. Items are Message or Gap.
        """

    # -- hosting ---------------------------------------------------------------------------------

    def statistics(self) -> BusStatistics:
        """A frozen snapshot of the counters."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The bus's long-running part; reports started when operations may be issued."""
