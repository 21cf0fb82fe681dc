"""Fenced locks: ownership-checked release/renew and fencing tokens that only grow."""

from __future__ import annotations

import pytest
import trio

from actors.bus import BusValueError, LockBusy, LockToken, MemoryBus, RedisBus, open_bus

TTL = 0.4  # seconds


def slack(backend: str) -> float:
    """Extra real time for Redis' own expiry to be observable; none under the MockClock."""
    return 0 if backend == "memory" else 0.05


async def test_acquire_gives_a_token_and_excludes_others(bus, clock):
    lock = await bus.acquire("ticket:1", TTL, owner="agent-a")
    assert isinstance(lock, LockToken)
    assert int(lock) == lock.token > 0
    assert (lock.resource, lock.owner, lock.ttl) == ("ticket:1", "agent-a", TTL)
    with pytest.raises(LockBusy) as busy:
        await bus.acquire("ticket:1", TTL, owner="agent-b")
    assert busy.value.holder == "agent-a"
    assert busy.value.resource == "ticket:1"
    assert isinstance(busy.value, BlockingIOError)
    assert await bus.is_locked("ticket:1")
    assert await bus.lock_owner("ticket:1") == "agent-a"


async def test_release_only_for_the_current_token(bus, clock):
    lock = await bus.acquire("ticket:2", TTL)
    assert await bus.release(lock) is True
    assert not await bus.is_locked("ticket:2")
    assert await bus.lock_owner("ticket:2") is None
    assert await bus.release(lock) is False


async def test_tokens_only_grow(bus, clock):
    tokens = []
    for _ in range(5):
        lock = await bus.acquire("ticket:3", TTL)
        tokens.append(lock.token)
        await bus.release(lock)
    assert tokens == sorted(tokens)
    assert len(set(tokens)) == len(tokens)


async def test_lock_expires_after_ttl(bus, clock, backend):
    first = await bus.acquire("ticket:4", TTL)
    await trio.sleep(TTL + slack(backend))
    assert not await bus.is_locked("ticket:4")
    second = await bus.acquire("ticket:4", TTL)
    assert second.token > first.token


async def test_renew_extends_only_the_current_holder(bus, clock, backend):
    lock = await bus.acquire("ticket:5", TTL)
    await trio.sleep(TTL * 0.75)
    assert await bus.renew(lock) is True
    await trio.sleep(TTL * 0.75)  # past the original TTL, inside the renewed one
    assert await bus.lock_owner("ticket:5") == ""
    await trio.sleep(TTL * 0.25 + slack(backend))
    assert await bus.renew(lock) is False  # expired: renew must not resurrect it
    assert not await bus.is_locked("ticket:5")


async def test_a_paused_holder_cannot_release_or_renew_the_new_holders_lock(bus, clock, backend):
    """The seed's ticketLock deleted whatever lock was there. Here a holder stopped past its TTL
    finds it re-granted: its release and renew are refused, and its token is the lower one, so a
    store that remembers the highest token per resource refuses its late write."""
    acquired = trio.Event()
    resume = trio.Event()
    outcome: dict[str, object] = {}

    async def slow_holder() -> None:
        lock = await bus.acquire("ticket:6", TTL, owner="slow")
        outcome["lock"] = lock
        acquired.set()
        await resume.wait()  # "paused": GC stall, swap, a stopped task
        outcome["renewed"] = await bus.renew(lock)
        outcome["released"] = await bus.release(lock)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(slow_holder)
        await acquired.wait()
        await trio.sleep(TTL + slack(backend))
        fresh = await bus.acquire("ticket:6", TTL, owner="fresh")
        resume.set()

    stale = outcome["lock"]
    assert outcome == {"lock": stale, "renewed": False, "released": False}
    assert stale.token < fresh.token
    assert await bus.lock_owner("ticket:6") == "fresh"
    assert await bus.release(fresh) is True


async def test_locks_on_different_resources_are_independent(bus, clock):
    a = await bus.acquire("ticket:7", TTL)
    b = await bus.acquire("ticket:8", TTL)
    assert await bus.release(a) and await bus.release(b)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda bus: bus.acquire("", 1), "resource"),
        (lambda bus: bus.acquire("r", 0), "ttl"),
        (lambda bus: bus.acquire("r", 1, owner=3), "owner"),
        (lambda bus: bus.release("r"), "lock"),
        (lambda bus: bus.renew(None), "lock"),
        (lambda bus: bus.is_locked(""), "resource"),
    ],
)
async def test_bad_lock_input_names_the_field(bus, clock, call, field):
    with pytest.raises(BusValueError, match=field):
        await call(bus)


async def test_memory_tokens_keep_growing_across_a_restart(autojump_clock):
    """A new in-memory bus (daemon restarted) must not reissue tokens a store has already seen."""
    before = await MemoryBus().acquire("session:x", 10)
    after = await MemoryBus().acquire("session:x", 10)
    assert after.token > before.token


async def test_redis_tokens_keep_growing_across_a_redis_restart(own_redis_server):
    """Redis restarted without persistence forgets its counters: the TIME floor keeps order."""
    async with open_bus(RedisBus(own_redis_server.url)) as bus:
        before = await bus.acquire("session:x", 10)
        await trio.to_thread.run_sync(own_redis_server.restart)
        after = await bus.acquire("session:x", 10)  # the lock vanished with the restart
    assert after.token > before.token
