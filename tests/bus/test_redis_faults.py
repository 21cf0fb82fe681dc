"""Redis down, stalled or restarted: fail fast, step down, keep running, recover by itself."""

from __future__ import annotations

import pytest
import trio

from actors.bus import BusUnavailable, Gap, GapReason, Lease, LeasePhase, RedisBus, open_bus

from .conftest import make_bus

#: Real-time bound for recovery steps on a loaded 2-core machine (generous on purpose).
RECOVERY_TIMEOUT = 15

#: Lease TTL: its ttl/3 margin (0.4 s) covers scheduling delays on a loaded 2-core machine.
LEASE_TTL = 1.2


def fast_fail_bound(bus: RedisBus) -> float:
    """The longest a failing operation may take: its own deadline plus scheduling slack of the
    same size (the machine is shared; anything near this is still 'fast' next to a hang)."""
    return bus.op_timeout * 2


OPERATIONS = {
    "set": lambda bus: bus.set("k", 1, ttl=5),
    "get": lambda bus: bus.get("k"),
    "incr": lambda bus: bus.incr("n"),
    "delete_pattern": lambda bus: bus.delete_pattern("k*"),
    "acquire": lambda bus: bus.acquire("r", 5),
    "lock_owner": lambda bus: bus.lock_owner("r"),
    "publish": lambda bus: bus.publish("c", 1),
}


async def subscribe_once(bus) -> None:
    async with bus.subscribe("never"):
        pass


@pytest.mark.parametrize("name", [*OPERATIONS, "subscribe"])
async def test_operations_fail_fast_when_redis_is_down(own_redis_server, name):
    call = OPERATIONS.get(name, subscribe_once)
    async with open_bus(make_bus(own_redis_server.url)) as bus:
        await trio.to_thread.run_sync(own_redis_server.stop)
        started = trio.current_time()
        with pytest.raises(BusUnavailable):
            await call(bus)
        assert trio.current_time() - started <= fast_fail_bound(bus)
        assert bus.statistics().unavailable >= 1
        assert not bus.statistics().available


@pytest.mark.parametrize("name", ["get", "acquire", "publish"])
async def test_a_stalled_redis_times_out_instead_of_hanging(own_redis_server, name):
    async with open_bus(make_bus(own_redis_server.url)) as bus:
        await bus.set("warm", 1)  # a pooled connection exists: the stall hits a live socket
        await trio.to_thread.run_sync(own_redis_server.pause)
        try:
            started = trio.current_time()
            with pytest.raises(BusUnavailable, match="no answer"):
                await OPERATIONS[name](bus)
            assert trio.current_time() - started <= fast_fail_bound(bus)
        finally:
            await trio.to_thread.run_sync(own_redis_server.resume)
        with trio.fail_after(RECOVERY_TIMEOUT):
            assert await bus.get("warm") == 1


async def test_a_bus_that_is_not_running_is_unavailable(redis_url):
    bus = RedisBus(redis_url)
    with pytest.raises(BusUnavailable, match="not running"):
        await bus.get("k")
    with pytest.raises(BusUnavailable, match="not running"):
        await subscribe_once(bus)


async def test_starts_while_redis_is_down_and_recovers_when_it_returns(own_redis_server):
    await trio.to_thread.run_sync(own_redis_server.stop)
    async with open_bus(make_bus(own_redis_server.url)) as bus:
        with pytest.raises(BusUnavailable):
            await bus.set("k", "v")
        await trio.to_thread.run_sync(own_redis_server.start)
        await bus.set("k", "v")
        assert await bus.get("k") == "v"
        with trio.fail_after(RECOVERY_TIMEOUT):
            while not bus.statistics().available:
                await trio.sleep(bus.health_interval)


async def test_restart_makes_leases_step_down_and_reacquire(own_redis_server):
    async with open_bus(make_bus(own_redis_server.url)) as bus, trio.open_nursery() as nursery:
        lease = Lease(bus, "session:1", "node-a", LEASE_TTL)
        await nursery.start(lease.run)
        first = await lease.wait_held()

        await trio.to_thread.run_sync(own_redis_server.stop)
        with trio.fail_after(RECOVERY_TIMEOUT):
            await first.lost.wait()
        lost_at = trio.current_time()
        last_renewal = first.valid_until - LEASE_TTL * 2 / 3
        assert lost_at < last_renewal + LEASE_TTL  # stepped down before the lock could expire
        assert first.cancel_scope.cancel_called
        assert lease.state.phase is LeasePhase.UNAVAILABLE

        await trio.to_thread.run_sync(own_redis_server.start)
        with trio.fail_after(RECOVERY_TIMEOUT):
            second = await lease.wait_held()
        assert second.token > first.token
        assert await bus.lock_owner("session:1") == "node-a"
        nursery.cancel_scope.cancel()


async def test_stalled_redis_makes_leases_step_down_before_expiry(own_redis_server):
    """SIGSTOPped Redis accepts connections but never answers: renewals time out, and the
    holder is told strictly before its lock could expire; after SIGCONT it holds it again."""
    async with open_bus(make_bus(own_redis_server.url)) as bus, trio.open_nursery() as nursery:
        lease = Lease(bus, "session:3", "node-a", LEASE_TTL)
        await nursery.start(lease.run)
        first = await lease.wait_held()
        await trio.to_thread.run_sync(own_redis_server.pause)
        try:
            with trio.fail_after(RECOVERY_TIMEOUT):
                await first.lost.wait()
            last_renewal = first.valid_until - LEASE_TTL * 2 / 3
            assert trio.current_time() < last_renewal + LEASE_TTL
            assert lease.state.phase is LeasePhase.UNAVAILABLE
        finally:
            await trio.to_thread.run_sync(own_redis_server.resume)
        with trio.fail_after(RECOVERY_TIMEOUT):
            second = await lease.wait_held()
        assert second.token > first.token
        nursery.cancel_scope.cancel()


async def test_quick_restart_between_renewals_is_noticed_and_reacquired(own_redis_server):
    """Redis restarted empty within one renewal period: the lock vanished, so the next renewal
    fails ("lock expired") and the node takes a new tenure with a higher token."""
    async with open_bus(make_bus(own_redis_server.url)) as bus, trio.open_nursery() as nursery:
        lease = Lease(bus, "session:2", "node-a", LEASE_TTL)
        await nursery.start(lease.run)
        first = await lease.wait_held()
        await trio.to_thread.run_sync(own_redis_server.restart)
        with trio.fail_after(RECOVERY_TIMEOUT):
            await first.lost.wait()
            second = await lease.wait_held()
        assert second.token > first.token
        nursery.cancel_scope.cancel()


async def test_restart_resubscribes_and_signals_the_gap(own_redis_server):
    async with open_bus(make_bus(own_redis_server.url)) as bus, bus.subscribe(
        "events", patterns=["room:*"]
    ) as sub:
        await bus.publish("events", "before")
        assert (await sub.__anext__()).data == "before"

        await trio.to_thread.run_sync(own_redis_server.restart)
        with trio.fail_after(RECOVERY_TIMEOUT):
            assert await sub.__anext__() == Gap(GapReason.RECONNECTED)
            # resubscribed: publishes reach us again, channel and pattern alike
            assert await bus.publish("events", "after") == 1
            assert await bus.publish("room:3", "after") == 1
            assert (await sub.__anext__()).data == "after"
            assert (await sub.__anext__()).pattern == "room:*"
        assert bus.statistics().reconnects >= 1


async def test_subscriptions_end_with_unavailable_when_the_bus_stops(redis_url):
    bus = make_bus(redis_url)
    bus_scope = trio.CancelScope()

    async def host(task_status=trio.TASK_STATUS_IGNORED) -> None:
        with bus_scope:
            await bus.run(task_status=task_status)

    async with trio.open_nursery() as nursery:
        await nursery.start(host)
        async with bus.subscribe("events") as sub:
            bus_scope.cancel()
            with trio.fail_after(RECOVERY_TIMEOUT), pytest.raises(BusUnavailable, match="stopped"):
                await sub.__anext__()
