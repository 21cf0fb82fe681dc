"""A session handed over (a drain, a rebalance) releases its ownership lease as soon as what its
connection delivered is stored (``tests/cluster/test_drain.py`` checks that part) — while its actor
still runs — so the next owner need not wait for the node to stop the actor. It neither takes the
lease again nor connects nor is restarted meanwhile."""

from __future__ import annotations

import attrs
import trio

from actors.sessions import HandOver, SessionStatus, lease_resource

from .conftest import FAST_POLICY, MemoryInbound
from .test_session_policy import pair_new


async def test_a_hand_over_releases_the_lease_before_the_actor_stops(session_node, simulator_control):
    await pair_new(session_node, simulator_control, "s1")
    bus = session_node.deps.bus
    assert await bus.lock_owner(lease_resource("s1")) == session_node.deps.node_id

    ref = session_node.system.ref("/tenants/t1/sessions/s1")
    with trio.fail_after(10):
        await ref.ask(HandOver())
    assert await bus.lock_owner(lease_resource("s1")) is None  # free for the next owner now
    assert session_node.actor_state("s1") == "running"  # the node stops it later

    await trio.sleep(0.5)  # nothing happens meanwhile: no lease taken again, no new connection, no restart
    assert await bus.lock_owner(lease_resource("s1")) is None
    assert session_node.status("s1").status not in (SessionStatus.STARTING, SessionStatus.QUEUED,
                                                    SessionStatus.CONNECTING)
    assert session_node.system.tree().find("/tenants/t1/sessions/s1").restarts == 0


async def test_a_session_waiting_for_its_lease_is_handed_over_without_failing(session_node):
    bus = session_node.deps.bus
    await bus.acquire(lease_resource("s2"), 30.0, owner="another-node")  # it waits for another node
    await session_node.add("s2")
    await session_node.wait_status("s2", SessionStatus.STARTING)

    ref = session_node.system.ref("/tenants/t1/sessions/s2")
    with trio.fail_after(10):
        await ref.ask(HandOver())
    await trio.sleep(0.5)  # a stopped lease must not make it fail (and come back, taking the lease)
    assert session_node.system.tree().find("/tenants/t1/sessions/s2").restarts == 0
    assert session_node.actor_state("s2") == "running"


@attrs.define(eq=False)
class _HeldInbound(MemoryInbound):
    """A store that takes its time: ``deliver`` waits until ``release`` is set (``entered`` says one waits)."""

    entered: trio.Event = attrs.field(factory=trio.Event)
    release: trio.Event = attrs.field(factory=trio.Event)

    async def deliver(self, session_id, tenant_id, messages) -> None:
        self.entered.set()
        await self.release.wait()
        await super().deliver(session_id, tenant_id, messages)


async def test_a_hand_over_waiting_for_a_slow_store_is_not_killed_by_its_own_probes(session_node, simulator_control):
    """Seen in bench.failover (a drain of 517 sessions, the store slow under load): the hand-over
    had closed the connection, the watchdog probed it, failed twice and killed the session before
    the messages it had delivered were stored; they stayed in the node's journal only."""
    await pair_new(session_node, simulator_control, "s1")
    inbound = session_node.deps.inbound = _HeldInbound()
    message_id = await simulator_control.send_message("s1", "in flight at the hand-over")
    with trio.fail_after(10):
        await inbound.entered.wait()
    ref = session_node.system.ref("/tenants/t1/sessions/s1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ref.ask, HandOver(), 30.0)
        await trio.sleep(3 * FAST_POLICY.probe_interval[1] * FAST_POLICY.probe_failures)  # probes would have failed
        inbound.release.set()
    assert ("s1", message_id) in inbound.stored
    assert session_node.system.tree().find("/tenants/t1/sessions/s1").restarts == 0
    assert session_node.actor_state("s1") == "running"
