"""Bounded per-session caches: memory stays flat however many contacts write.

Seed 000's ``store.ts`` kept every chat, contact and message of a session in
memory; seed 002 capped them (chats 500, contacts 300, messages 200). Each cache
here is an LRU map with a hard cap: the least recently touched entry goes first.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, Hashable, TypeVar

import attrs

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

    def __contains__(self, key: object) -> bool:
        return key in self._data

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
