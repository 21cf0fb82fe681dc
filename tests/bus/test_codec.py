"""Pure helpers: Redis glob translation, the fencing-token rule, URL choice, statistics."""

from __future__ import annotations

import attrs
import pytest
import trio

from actors.bus import (
    MEMORY_URL,
    BusStatistics,
    BusValueError,
    MemoryBus,
    RedisBus,
    bus_from_url,
    next_fence,
)
from actors.bus._codec import compile_glob
from actors.bus._memory import SWEEP_INTERVAL


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("sessions:*", ["sessions:", "sessions:1:x"], ["session:1", "xsessions:1"]),
        ("h?llo", ["hello", "hallo"], ["hllo", "heello"]),
        ("h[ae]llo", ["hello", "hallo"], ["hillo"]),
        ("h[^e]llo", ["hallo", "hbllo"], ["hello"]),
        ("h[a-b]llo", ["hallo", "hbllo"], ["hcllo"]),
        ("a\\*b", ["a*b"], ["axb"]),
        ("a.b+c", ["a.b+c"], ["aXb+c", "a.bbc"]),  # regex metacharacters are literal
        ("line*", ["line\nbreak"], []),
    ],
)
def test_glob_follows_redis_rules(pattern, matches, misses):
    glob = compile_glob(pattern)
    assert all(glob.fullmatch(m) for m in matches)
    assert not any(glob.fullmatch(m) for m in misses)


def test_fence_counts_up_and_never_falls_below_the_wall_clock():
    assert next_fence(last=10, wall_us=5) == 11
    assert next_fence(last=10, wall_us=500) == 500
    assert next_fence(last=0, wall_us=0) == 1


def test_bus_from_url_picks_the_backend():
    assert isinstance(bus_from_url(MEMORY_URL), MemoryBus)
    redis_bus = bus_from_url("redis://127.0.0.1:1/0")
    assert isinstance(redis_bus, RedisBus) and redis_bus.url == "redis://127.0.0.1:1/0"
    with pytest.raises(BusValueError, match="url"):
        bus_from_url("postgres://x")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"url": "http://x"}, "url"),
        ({"url": "redis://x", "namespace": "a*b"}, "namespace"),
        ({"url": "redis://x", "namespace": "a:b"}, "namespace"),
        ({"url": "redis://x", "op_timeout": 0}, "op_timeout"),
    ],
)
def test_redis_bus_settings_are_validated(kwargs, field):
    with pytest.raises(BusValueError, match=field):
        RedisBus(**kwargs)


async def test_statistics_is_a_frozen_snapshot(autojump_clock):
    bus = MemoryBus()
    before = bus.statistics()
    await bus.set("k", 1)
    assert bus.statistics().operations == before.operations + 1
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        before.operations = 5  # type: ignore[misc]
    assert isinstance(before, BusStatistics) and before.backend == "memory"


async def test_memory_sweep_reclaims_keys_nobody_reads(autojump_clock):
    bus = MemoryBus()
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        await bus.set("forgotten", 1, ttl=1)
        await bus.acquire("lock", 1)
        await trio.sleep(SWEEP_INTERVAL * 1.5)  # one sweep has run, mid-way to the next
        assert not bus._values and not bus._expiry and not bus._locks
        nursery.cancel_scope.cancel()
