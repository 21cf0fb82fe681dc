"""Liveness: a child with ``liveness_timeout`` that stops calling ``ctx.heartbeat()``
is treated as hung: stopped (within its grace), recorded as a ``Hung`` failure and restarted."""

from __future__ import annotations

import trio

from supervisor import EventKind, ExitKind, Hung, open_actor_system

from ._kit import Plan, Sleep, settle


async def test_a_child_that_stops_heartbeating_is_restarted(autojump_clock):
    """Beats at 1, 2, 3 then silence: with a 5 s timeout it is declared hung at
    3 + 5 = 8 and restarted at once (no backoff); the next incarnation at 16."""
    plan = Plan("session", beats=3)
    async with open_actor_system([plan.spec(liveness_timeout=5)], intensity=10, period=60) as system:
        await trio.sleep_until(7.9)
        assert plan.starts == [0]
        await trio.sleep_until(16)
        await settle()
        assert plan.starts == [0, 8, 16]
        snap = system.tree().find("/session")
        assert (snap.restarts, snap.last_failure.type, snap.last_failure.kind, snap.last_failure.at) == (
            2,
            "Hung",
            "abnormal",
            16,
        )
    assert [(r.kind, r.error_type) for r in plan.stop_reasons][:2] == [(ExitKind.ABNORMAL, "Hung")] * 2
    exits = [(e.at, e.reason) for e in system.history() if e.kind is EventKind.EXITED]
    assert [at for at, _ in exits] == [8, 16]
    assert all("Hung" in reason for _, reason in exits)
    assert issubclass(Hung, TimeoutError)


async def test_a_child_stuck_in_a_handler_is_cancelled_after_its_grace(autojump_clock):
    """No heartbeat at all and stuck in a handler: declared hung at 5, cancelled
    when its 2 s grace runs out, restarted at 7."""
    plan = Plan("stuck")
    async with open_actor_system([plan.spec(liveness_timeout=5, shutdown=2)], intensity=10, period=60) as system:
        system.ref("/stuck").tell(Sleep(10_000))
        await trio.sleep_until(7)
        await settle()
        assert plan.starts == [0, 7]
        assert system.tree().find("/stuck").last_failure.type == "Hung"


async def test_a_child_that_keeps_heartbeating_is_left_alone(autojump_clock):
    plan = Plan("healthy", beats=1000)
    async with open_actor_system([plan.spec(liveness_timeout=5)]) as system:
        await trio.sleep(500)
        snap = system.tree().find("/healthy")
        assert (snap.restarts, snap.last_failure, snap.uptime) == (0, None, 500)
    assert plan.starts == [0]
