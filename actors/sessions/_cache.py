"""Bounded caches: memory stays flat however many contacts write and sessions come and go.

Seed 000's ``store.ts`` kept every chat, contact and message of a session in
memory; seed 002 capped them (chats 500, contacts 300, messages 200). Each
:class:`BoundedCache` here is an LRU map with a hard cap: the least recently touched entry goes
first. An :class:`ExpiringCache` holds values read from the store for a few seconds (a session's
options); its expired entries are dropped as new ones come, so sessions deleted long ago leave
nothing behind (found with ``bench/soak.py``: one entry per deleted session, kept forever).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, Hashable, TypeVar

import attrs
import trio

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """An LRU mapping holding at most ``limit`` entries (``limit`` 0 keeps nothing)."""

    def __init__(self, limit: int) -> None:
        if not (isinstance(limit, int) and limit >= 0):
            raise ValueError(f"cache limit must be an int >= 0, got {limit!r}")
        self.limit = limit
        self.evictions = 0
        self._data: OrderedDict[K, V] = OrderedDict()

    def put(self, key: K, value: V) -> None:
        if self.limit == 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.limit:
            self._data.popitem(last=False)
            self.evictions += 1

    def get(self, key: K, default: V | None = None) -> V | None:
        if key not in self._data:
            return default
        self._data.move_to_end(key)
        return self._data[key]

    def drop_where(self, doomed: Callable[[K], bool]) -> int:
        """Remove every entry whose key ``doomed`` accepts (a deleted session's); how many went.
        A walk of the whole map: for rare events, never per message."""
        keys = [key for key in self._data if doomed(key)]
        for key in keys:
            del self._data[key]
        return len(keys)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)


class ExpiringCache(Generic[K, V]):
    """Values fresh for ``ttl`` seconds of trio time after they were put.

    Every put that finds the map twice as large as what the last prune left (and at least
    PRUNE_FLOOR) drops every expired entry: amortised O(1) per put, and the map holds at most about
    twice the keys used within one ``ttl``.
    """

    PRUNE_FLOOR = 64

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._data: dict[K, tuple[V, float]] = {}
        self._prune_at = self.PRUNE_FLOOR

    def get(self, key: K) -> V | None:
        """The value put under ``key`` less than ``ttl`` seconds ago, else None."""
        found = self._data.get(key)
        if found is None or trio.current_time() - found[1] >= self.ttl:
            return None
        return found[0]

    def put(self, key: K, value: V) -> None:
        now = trio.current_time()
        self._data[key] = (value, now)
        if len(self._data) >= self._prune_at:
            self._data = {k: kept for k, kept in self._data.items() if now - kept[1] < self.ttl}
            self._prune_at = max(self.PRUNE_FLOOR, 2 * len(self._data))

    def __len__(self) -> int:
        return len(self._data)


@attrs.frozen
class CacheLimits:
    chats: int = 500
    contacts: int = 300
    messages: int = 200


@attrs.define(eq=False)
class SessionCaches:
    """What a session remembers about its chats, contacts and recent message ids."""

    limits: CacheLimits = attrs.field(factory=CacheLimits)
    chats: BoundedCache = attrs.field(init=False)
    contacts: BoundedCache = attrs.field(init=False)
    messages: BoundedCache = attrs.field(init=False)  # recently stored inbound ids: dedupe

    def __attrs_post_init__(self) -> None:
        self.chats = BoundedCache(self.limits.chats)
        self.contacts = BoundedCache(self.limits.contacts)
        self.messages = BoundedCache(self.limits.messages)

    def sizes(self) -> dict[str, int]:
        return {"chats": len(self.chats), "contacts": len(self.contacts), "messages": len(self.messages)}
