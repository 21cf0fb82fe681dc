"""A session whose lease renewal is confirmed only after the tenure's ``valid_until``.

Under CPU starvation the tenure's cancel scope (deadline ``valid_until``) fires while the
renewal's answer is on its way; the session stops using the account at that moment. It must then
meet a tenure that has ended, wait for the next one and connect again — never re-enter the
spent scope (``RuntimeError: Each CancelScope may only be used for a single 'with' block``, seen
in bench.soak and bench.failover), and never fail.
"""

from __future__ import annotations

from actors.sessions import SessionStatus

from tests.fixtures.late_bus import LateRenewalBus

from .conftest import FAST_POLICY, open_session_node
from .test_session_policy import pair_new

ROUNDS = 3


async def test_a_late_renewal_ends_the_tenure_and_the_session_comes_back(simulated_driver_config,
                                                                         simulator_control):
    bus = LateRenewalBus()
    late_by = FAST_POLICY.lease_ttl / 3 + 0.05  # sent ttl/3 after the last, valid until 2/3 ttl after it
    async with open_session_node(simulated_driver_config, bus=bus) as node:
        await pair_new(node, simulator_control, "s1")
        for _ in range(ROUNDS):
            bus.late_by = late_by
            await node.wait_status("s1", SessionStatus.DISCONNECTED, SessionStatus.BACKOFF,
                                   where=lambda info: "bus unavailable" in (info.reason or ""))
            await node.wait_status("s1", SessionStatus.CONNECTED)
        snapshot = node.system.tree().find("/tenants/t1/sessions/s1")
        assert snapshot.restarts == 0, snapshot.last_failure
