"""Ownership leases: renewal, stepping down strictly before the TTL, hand-over between nodes."""

from __future__ import annotations

import pytest
import trio

from actors.bus import BusError, BusValueError, Lease, LeasePhase, open_bus

from tests.fixtures.late_bus import LateRenewalBus

from .conftest import FreezableNode

#: Lease TTL per backend. Memory runs on the MockClock, where any TTL is exact and free. On real
#: Redis the margin (ttl/3) must cover scheduling delays on a loaded 2-core machine: 0.4 s.
TTLS = {"memory": 0.6, "redis": 1.2}


@pytest.fixture
def ttl(backend: str) -> float:
    return TTLS[backend]


async def start(nursery: trio.Nursery, lease: Lease) -> Lease:
    await nursery.start(lease.run)
    return lease


async def test_lease_is_acquired_and_kept_by_renewal(bus, clock, backend, ttl):
    async with trio.open_nursery() as nursery:
        lease = await start(nursery, Lease(bus, "session:1", "node-a", ttl))
        tenure = await lease.wait_held()
        assert lease.state.phase is LeasePhase.HELD
        assert lease.state.token == tenure.token
        # well past the ttl (only renewals keep it), halfway between two renewals
        await trio.sleep(ttl * 3 + ttl / 6)
        assert lease.tenure is tenure and not tenure.lost.is_set()
        assert await bus.lock_owner("session:1") == "node-a"
        remaining = tenure.valid_until - trio.current_time()
        assert 0 < remaining <= ttl * 2 / 3
        if backend == "memory":  # renewed ttl/6 ago: valid for 2/3 ttl from then
            assert remaining == pytest.approx(ttl / 2)
            assert lease.statistics().renewals == 9  # every ttl/3 over 3 ttl + ttl/6
        stats = lease.statistics()
        assert stats.state == lease.state and stats.tenures == 1 and stats.losses == 0
        nursery.cancel_scope.cancel()


async def test_other_node_stands_by_and_takes_over_when_released(bus, clock, backend, ttl):
    async with trio.open_nursery() as nursery:
        a_scope = trio.CancelScope()

        async def run_a(task_status=trio.TASK_STATUS_IGNORED):
            with a_scope:
                await lease_a.run(task_status=task_status)

        lease_a = Lease(bus, "session:2", "node-a", ttl)
        await nursery.start(run_a)
        first = await lease_a.wait_held()
        lease_b = await start(nursery, Lease(bus, "session:2", "node-b", ttl))
        assert lease_b.state.phase is LeasePhase.STANDBY
        assert lease_b.state.holder == "node-a"

        a_scope.cancel()  # node A shuts down cleanly: it releases at once
        released_at = trio.current_time()
        second = await lease_b.wait_held()
        assert first.lost.is_set() and lease_a.state.phase is LeasePhase.STOPPED
        assert second.token > first.token
        took = trio.current_time() - released_at
        if backend == "memory":
            assert took <= lease_b.retry_interval
        else:
            assert took < ttl  # without the release B would have waited for the expiry
        nursery.cancel_scope.cancel()


async def test_frozen_holder_steps_down_before_expiry_and_other_node_takes_over(bus, clock, backend, ttl):
    """A node whose bus calls stop answering (GC pause, partition) must stop using the session
    strictly before its lock can expire; another node gets it only after the expiry."""
    node_a = FreezableNode(bus)
    times: dict[str, float] = {}
    async with trio.open_nursery() as nursery:
        lease_a = await start(nursery, Lease(node_a, "session:3", "node-a", ttl))
        tenure = await lease_a.wait_held()

        async def use_session() -> None:
            with tenure.cancel_scope:
                await trio.sleep_forever()
            times["holder_stopped"] = trio.current_time()

        nursery.start_soon(use_session)
        await trio.sleep(ttl * 1.5)  # a few renewals succeed
        node_a.frozen = True
        lease_b = await start(nursery, Lease(bus, "session:3", "node-b", ttl))
        assert lease_b.state.phase is LeasePhase.STANDBY
        await tenure.lost.wait()
        times["lost"] = trio.current_time()
        # valid_until stops moving at the last confirmed renewal, sent 2/3 ttl before it
        valid_until = tenure.valid_until
        last_renewal = valid_until - ttl * 2 / 3
        await lease_b.wait_held()
        times["taken_over"] = trio.current_time()
        nursery.cancel_scope.cancel()

    expiry = last_renewal + ttl
    assert times["lost"] < expiry and times["holder_stopped"] < expiry
    assert times["taken_over"] >= expiry
    if backend == "memory":  # exact: detection at valid_until, a full ttl/3 before the expiry
        assert times["lost"] == times["holder_stopped"] == valid_until
        assert expiry - times["lost"] == pytest.approx(ttl / 3)
    assert "not confirmed" in tenure.reason


async def test_holder_is_told_when_another_node_holds_it(bus, clock, backend, ttl):
    async with trio.open_nursery() as nursery:
        lease = await start(nursery, Lease(bus, "session:4", "node-a", ttl))
        tenure = await lease.wait_held()
        # the lock is lost behind the holder's back (as after an expiry) and re-granted
        assert await bus.release(tenure.lock)
        stolen_at = trio.current_time()
        thief = await bus.acquire("session:4", ttl * 10, owner="node-b")
        await tenure.lost.wait()
        detected_after = trio.current_time() - stolen_at
        assert tenure.cancel_scope.cancel_called
        assert "node-b" in tenure.reason
        assert lease.state.phase is LeasePhase.STANDBY and lease.state.holder == "node-b"
        assert detected_after <= ttl / 3 if backend == "memory" else detected_after < ttl
        assert thief.token > tenure.token
        assert lease.statistics().losses == 1
        nursery.cancel_scope.cancel()


async def test_watch_reports_each_phase(bus, clock, ttl):
    seen: list[LeasePhase] = []
    lease = Lease(bus, "session:5", "node-a", ttl)

    async def watch() -> None:
        async for state in lease.watch():
            seen.append(state.phase)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        async with trio.open_nursery() as inner:
            await start(inner, lease)
            await lease.wait_held()
            await trio.sleep(ttl)
            inner.cancel_scope.cancel()
    assert seen == [LeasePhase.STANDBY, LeasePhase.HELD, LeasePhase.STOPPED]


async def test_stopping_releases_the_lock_and_wait_held_refuses(bus, clock, ttl):
    async with trio.open_nursery() as nursery:
        lease = await start(nursery, Lease(bus, "session:6", "node-a", ttl))
        await lease.wait_held()
        nursery.cancel_scope.cancel()
    assert not await bus.is_locked("session:6")
    with pytest.raises(BusError, match="stopped"):
        await lease.wait_held()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"resource": "", "node_id": "a", "ttl": 1}, "resource"),
        ({"resource": "r", "node_id": "", "ttl": 1}, "node_id"),
        ({"resource": "r", "node_id": "a", "ttl": 0}, "ttl"),
        ({"resource": "r", "node_id": "a", "ttl": 1, "retry_interval": -1}, "retry_interval"),
    ],
)
async def test_bad_lease_input_names_the_field(bus, clock, kwargs, field):
    with pytest.raises(BusValueError, match=field):
        Lease(bus, **kwargs)


async def test_retry_now_makes_the_next_attempt_at_once(bus, clock, backend, ttl):
    """A standby lease retries every ``retry_interval``; ``retry_now`` (the bus gate saw the bus
    answer again) cuts that wait short, and takes effect once only."""
    async with trio.open_nursery() as nursery:
        holder = await start(nursery, Lease(bus, "session:retry", "node-a", ttl))
        await holder.wait_held()
        waiter = await start(nursery, Lease(bus, "session:retry", "node-b", ttl, retry_interval=100.0))
        assert waiter.state.phase is LeasePhase.STANDBY
        await bus.release(holder.tenure.lock)  # the holder's lock is gone (it will learn at its renewal)
        waiter.retry_now()
        asked_at = trio.current_time()
        await waiter.wait_held()
        if backend == "memory":
            assert trio.current_time() == asked_at  # not after retry_interval (100 s)
        else:
            assert trio.current_time() - asked_at < 10
        nursery.cancel_scope.cancel()


async def test_a_renewal_confirmed_after_valid_until_ends_the_tenure(autojump_clock):
    ttl = TTLS["memory"]
    bus = LateRenewalBus()
    async with open_bus(bus), trio.open_nursery() as nursery:
        lease = await start(nursery, Lease(bus, "session:late", "node-a", ttl))
        tenure = await lease.wait_held()
        bus.late_by = ttl / 3 + 0.01  # sent at ttl/3, valid until 2/3 ttl: answered 0.01 s late
        with tenure.cancel_scope:
            await trio.sleep_forever()
        assert trio.current_time() == pytest.approx(ttl * 2 / 3)  # the scope fired at valid_until
        await trio.sleep(0.02)  # the late answer has arrived by now
        assert tenure.lost.is_set() and tenure.reason == "renewal confirmed after valid_until"
        assert lease.tenure is not tenure  # a holder never meets a spent scope in a live tenure
        lease.retry_now()
        again = await lease.wait_held()
        assert again is not tenure and again.token > tenure.token
        nursery.cancel_scope.cancel()
