"""Cache semantics (the seed's cache.ts API), identical on both backends."""

from __future__ import annotations

import math

import pytest
import redis
import trio

from actors.bus import BusValueError, RedisBus, open_bus

TTL = 0.3  # seconds: short so the Redis run stays quick, exact under the MockClock


async def test_values_round_trip_as_json(bus, clock):
    value = {"name": "João", "tags": ["a", "b"], "n": 3, "ok": True, "none": None}
    await bus.set("user:1", value)
    assert await bus.get("user:1") == value
    await bus.set("user:1", [1, 2])
    assert await bus.get("user:1") == [1, 2]


async def test_missing_key_gives_default(bus, clock):
    assert await bus.get("nope") is None
    assert await bus.get("nope", default="fallback") == "fallback"
    await bus.set("null", None)
    assert await bus.get("null", default="fallback") is None


async def test_delete_and_exists(bus, clock):
    await bus.set("k", 1)
    assert await bus.exists("k")
    assert await bus.delete("k") is True
    assert not await bus.exists("k")
    assert await bus.delete("k") is False


async def test_value_expires_after_ttl(bus, clock, backend):
    await bus.set("session:1", "x", ttl=TTL)
    remaining = await bus.ttl("session:1")
    if backend == "memory":
        assert remaining == TTL
    else:
        assert 0 < remaining <= TTL
    await trio.sleep(TTL / 2)
    assert await bus.get("session:1") == "x"
    await trio.sleep(TTL / 2 + (0 if backend == "memory" else 0.05))
    assert await bus.get("session:1") is None
    assert not await bus.exists("session:1")
    assert await bus.ttl("session:1") is None


async def test_ttl_of_persistent_and_missing_keys(bus, clock):
    await bus.set("forever", 1)
    assert await bus.ttl("forever") == math.inf
    assert await bus.ttl("missing") is None


async def test_set_without_ttl_clears_an_old_ttl(bus, clock, backend):
    await bus.set("k", 1, ttl=TTL)
    await bus.set("k", 2)
    assert await bus.ttl("k") == math.inf
    await trio.sleep(TTL + (0 if backend == "memory" else 0.05))
    assert await bus.get("k") == 2


async def test_expire_sets_a_deadline_on_an_existing_key_only(bus, clock, backend):
    await bus.set("k", "v")
    assert await bus.expire("k", TTL) is True
    assert await bus.expire("missing", TTL) is False
    await trio.sleep(TTL + (0 if backend == "memory" else 0.05))
    assert await bus.get("k") is None


async def test_incr_and_decr(bus, clock):
    assert await bus.incr("counter") == 1
    assert await bus.incr("counter", 10) == 11
    assert await bus.decr("counter") == 10
    assert await bus.decr("counter", 15) == -5
    assert await bus.get("counter") == -5  # counters are JSON integers too
    await bus.set("json-int", 41)
    assert await bus.incr("json-int") == 42


async def test_incr_keeps_the_ttl(bus, clock, backend):
    await bus.set("hits", 0, ttl=TTL)
    await bus.incr("hits")
    remaining = await bus.ttl("hits")
    assert remaining != math.inf and remaining is not None
    await trio.sleep(TTL + (0 if backend == "memory" else 0.05))
    assert await bus.get("hits") is None


@pytest.mark.parametrize("stored", ["text", 1.5, [1], {"a": 1}])
async def test_incr_refuses_a_non_integer(bus, clock, stored):
    await bus.set("k", stored)
    with pytest.raises(BusValueError, match="'k'"):
        await bus.incr("k")


async def test_incr_refuses_overflow(bus, clock):
    await bus.set("big", 2**63 - 1)
    with pytest.raises(BusValueError, match="'big'"):
        await bus.incr("big")


async def test_delete_pattern_removes_many_keys_and_nothing_else(bus, clock):
    # more keys than one SCAN batch, so the Redis backend must iterate the cursor
    for i in range(1_200):
        await bus.set(f"sessions:{i}", i)
    for i in range(50):
        await bus.set(f"tickets:{i}", i)
    await bus.set("sessions", "not matched: no colon")
    assert await bus.delete_pattern("sessions:*") == 1_200
    assert not await bus.exists("sessions:7")
    assert await bus.exists("sessions")
    assert await bus.get("tickets:49") == 49
    assert await bus.delete_pattern("sessions:*") == 0


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("a?c", {"abc", "axc", "a-c", "a*c"}),
        ("a[bx]c", {"abc", "axc"}),
        ("a[^b]c", {"axc", "a-c", "a*c"}),
        ("a[a-c]c", {"abc"}),
        ("a\\*c", {"a*c"}),
        ("*c", {"abc", "axc", "a-c", "a*c"}),
    ],
)
async def test_delete_pattern_speaks_redis_glob(bus, clock, pattern, expected):
    keys = {"abc", "axc", "a-c", "a*c", "abcd"}
    for key in keys:
        await bus.set(key, 1)
    assert await bus.delete_pattern(pattern) == len(expected)
    remaining = {key for key in keys if await bus.exists(key)}
    assert remaining == keys - expected


async def test_delete_pattern_skips_expired_keys(bus, clock, backend):
    await bus.set("tmp:1", 1, ttl=TTL)
    await bus.set("tmp:2", 2)
    await trio.sleep(TTL + (0 if backend == "memory" else 0.05))
    assert await bus.delete_pattern("tmp:*") == 1


async def test_cache_keys_do_not_collide_with_locks(bus, clock):
    await bus.set("ticket:9", "cached")
    lock = await bus.acquire("ticket:9", 5)
    assert await bus.get("ticket:9") == "cached"
    assert await bus.delete_pattern("*") == 1
    assert await bus.is_locked("ticket:9")
    assert await bus.release(lock)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda bus: bus.set("", 1), "key"),
        (lambda bus: bus.set("k", object()), "value"),
        (lambda bus: bus.set("k", float("nan")), "value"),
        (lambda bus: bus.set("k", 1, ttl=0), "ttl"),
        (lambda bus: bus.set("k", 1, ttl=-1), "ttl"),
        (lambda bus: bus.set("k", 1, ttl="10"), "ttl"),
        (lambda bus: bus.get(None), "key"),
        (lambda bus: bus.incr("k", 1.5), "amount"),
        (lambda bus: bus.expire("k", math.inf), "ttl"),
        (lambda bus: bus.delete_pattern(""), "pattern"),
    ],
)
async def test_bad_input_names_the_field(bus, clock, call, field):
    with pytest.raises(BusValueError, match=field):
        await call(bus)


async def test_redis_delete_pattern_scans_and_never_calls_keys(redis_url):
    """The seed's delFromPattern used KEYS, which blocks Redis on a big keyspace."""
    async with open_bus(RedisBus(redis_url, scan_batch=100)) as bus:
        for i in range(350):
            await bus.set(f"scan:{i}", i)
        with redis.Redis.from_url(redis_url, decode_responses=True) as raw:
            await trio.to_thread.run_sync(raw.config_resetstat)
            assert await bus.delete_pattern("scan:*") == 350
            stats = await trio.to_thread.run_sync(raw.info, "commandstats")
    assert "cmdstat_keys" not in stats
    assert stats["cmdstat_scan"]["calls"] >= 350 // 100  # batches, not one sweep
    assert stats["cmdstat_unlink"]["calls"] >= 1
