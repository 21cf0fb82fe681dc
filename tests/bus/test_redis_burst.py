"""Bursts on a real Redis: a node stopping (or taking over) hundreds of sessions at once.

redis-py's pool refuses connections beyond its size at once (MaxConnectionsError): 1,000
concurrent acquires used to fail 901 times, and a drain's lease releases failed the same way,
so the leases lapsed at their TTL instead of moving at once. The bus now queues operations in
trio and sends them to Redis in shared pipelines (``_redis_batch``).
"""

from __future__ import annotations

import trio

from actors.bus import Lease, LeasePhase, RedisBus, open_bus

BURST = 1000
TTL = 30.0
"""Long: a lock found free afterwards was released, it cannot have lapsed."""

OP_TIMEOUT = 10.0
"""What these tests pin is that no operation is refused (the pool refused at once, whatever the
timeout); a burst on the shared 2-core machine at a load average of 16 took over the default 1 s."""


async def test_a_burst_of_lock_operations_all_succeed_in_few_round_trips(redis_url):
    async with open_bus(RedisBus(redis_url, namespace="burst1", op_timeout=OP_TIMEOUT)) as bus:
        locks = []

        async def acquire(i: int) -> None:
            locks.append(await bus.acquire(f"r{i}", TTL, owner="n1"))

        async def owner(i: int) -> None:
            owners.append(await bus.lock_owner(f"r{i}"))

        async with trio.open_nursery() as nursery:
            for i in range(BURST):
                nursery.start_soon(acquire, i)
        owners: list[str | None] = []
        async with trio.open_nursery() as nursery:  # plain commands: queued, never refused by the pool
            for i in range(BURST):
                nursery.start_soon(owner, i)
        assert owners == ["n1"] * BURST
        released = []

        async def release(i: int) -> None:
            released.append(await bus.release(locks[i]))

        async with trio.open_nursery() as nursery:
            for i in range(BURST):
                nursery.start_soon(release, i)
        assert released == [True] * BURST
        assert not any([await bus.is_locked(f"r{i}") for i in range(0, BURST, 97)])
        stats = bus.statistics()
        assert stats.unavailable == 0 and stats.available
        # 3,000 commands shared pipelines: far fewer round trips than commands
        assert bus._batcher.pipelines < BURST / 4


async def test_a_thousand_leases_stopped_together_release_at_once(redis_url):
    """The drain: every session stops at once and each lease releases its lock as it stops."""
    async with open_bus(RedisBus(redis_url, namespace="burst2", op_timeout=OP_TIMEOUT)) as bus, \
            open_bus(RedisBus(redis_url, namespace="burst2", op_timeout=OP_TIMEOUT)) as other:
        leases = [Lease(bus, f"session:s{i}", "n1", TTL) for i in range(BURST)]
        async with trio.open_nursery() as nursery:
            for lease in leases:
                nursery.start_soon(lease.run)  # a takeover: every acquire at once
            for lease in leases:
                await lease.wait_held()
            started = trio.current_time()
            nursery.cancel_scope.cancel()
        assert all(lease.state.phase is LeasePhase.STOPPED for lease in leases)
        assert all(lease.statistics().losses == 0 for lease in leases)
        taken = []

        async def take(i: int) -> None:
            taken.append(await other.acquire(f"session:s{i}", TTL, owner="n2"))

        async with trio.open_nursery() as nursery:  # another node finds every lock free now, not after the TTL
            for i in range(BURST):
                nursery.start_soon(take, i)
        assert len(taken) == BURST
        assert trio.current_time() - started < TTL / 3
        assert bus.statistics().unavailable == 0
