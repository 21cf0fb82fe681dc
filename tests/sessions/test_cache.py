"""Per-session caches stay bounded however many contacts write."""

from __future__ import annotations

import sys

import pytest
import trio
import trio.testing

from actors.sessions import BoundedCache, CacheLimits, ExpiringCache, SessionCaches


def test_lru_evicts_least_recently_used():
    cache = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.evictions == 1


def test_zero_limit_keeps_nothing_and_bad_limit_is_refused():
    cache = BoundedCache(0)
    cache.put("a", 1)
    assert len(cache) == 0
    with pytest.raises(ValueError, match="limit"):
        BoundedCache(-1)


def test_100k_distinct_contacts_leave_memory_bounded():
    caches = SessionCaches(CacheLimits(chats=500, contacts=300, messages=200))
    sizes = []
    for i in range(100_000):
        jid = f"55{i:011d}@s.whatsapp.net"
        caches.contacts.put(jid, f"contact {i}")
        caches.chats.put(jid, float(i))
        caches.messages.put(f"MSG{i}", True)
        if i in (10_000, 99_999):
            sizes.append(sum(sys.getsizeof(c._data) for c in (caches.contacts, caches.chats, caches.messages)))
    assert caches.sizes() == {"chats": 500, "contacts": 300, "messages": 200}
    assert caches.contacts.evictions == 100_000 - 300
    assert sizes[1] <= sizes[0]  # the containers did not grow between 10k and 100k contacts


def test_expiring_cache_serves_fresh_values_only():
    async def main():
        cache = ExpiringCache(5.0)
        cache.put("s1", "options")
        assert cache.get("s1") == "options"
        await trio.sleep(4.9)
        assert cache.get("s1") == "options"
        await trio.sleep(0.1)
        assert cache.get("s1") is None  # re-read from the store

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_expiring_cache_forgets_keys_no_longer_used():
    """Sessions created and deleted for hours leave no entries behind (bench/soak.py's churn)."""

    async def main():
        cache = ExpiringCache(5.0)
        for n in range(10_000):  # a new session id every second, each read once
            cache.put(f"churn{n}", n)
            await trio.sleep(1.0)
            assert len(cache) <= 2 * ExpiringCache.PRUNE_FLOOR
        assert cache.get("churn9999") == 9999 and cache.get("churn0") is None

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
