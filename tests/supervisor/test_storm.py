"""A restart storm: many children failing forever behind one shared RestartLimiter.

The limiter is a token bucket (``rate`` per second, ``burst`` tokens) plus a cap on
restarts in progress. Over any interval of length ``w`` it grants at most
``burst + rate * w`` restarts, so a supervisor whose intensity is at least
``rate * period + burst`` can never see more than ``intensity`` restarts within
``period``: a mass failure becomes a smooth ramp, never an escalation.
"""

from __future__ import annotations

import math

import trio

from supervisor import (
    NO_BACKOFF,
    ChildSpec,
    CircuitBreaker,
    EventKind,
    RestartLimiter,
    Supervisor,
    open_actor_system,
)

from ._kit import Plan, Raise, wall_clock_limit

CHILDREN = 1000
RATE = 50.0  # restarts per second
BURST = 20
CONCURRENT = 10
PERIOD = 10.0
THRESHOLD = 3  # failed runs before a breaker opens: each child is restarted THRESHOLD - 1 times
EPSILON = 1e-9  # float slack on rate * elapsed


def max_excess(times: list[float], rate: float) -> float:
    """The most grants in any window beyond ``rate * window``: max over i <= j of
    (j - i + 1) - rate * (t_j - t_i). A token bucket keeps it <= burst. O(n)."""
    times = sorted(times)
    best = -math.inf
    lowest = math.inf  # min over i <= j of (i - rate * t_i)
    for j, t in enumerate(times):
        lowest = min(lowest, j - rate * t)
        best = max(best, (j - rate * t) - lowest + 1)
    return best


def test_max_excess_measures_the_worst_window():
    assert max_excess([0.0] * 5, 1.0) == 5
    assert max_excess([0.0, 1.0, 2.0, 3.0], 1.0) == 1
    assert max_excess([0.0, 10.0, 10.0, 10.0], 1.0) == 3


async def test_a_storm_of_failing_children_ramps_instead_of_escalating(autojump_clock):
    """1,000 children that fail forever, one limiter (rate 50/s, burst 20, 10 at a
    time) and a breaker each. The supervisor's intensity is set from the limiter,
    intensity = rate * period + burst: that relation is the guarantee that it never
    escalates. Every breaker opens, and the restarts never beat the limiter's bound
    in any window, nor its concurrency cap."""
    limiter = RestartLimiter(rate=RATE, burst=BURST, max_concurrent=CONCURRENT)
    intensity = math.ceil(RATE * PERIOD) + BURST
    sessions = [Plan(f"s{n}", crash_after=0) for n in range(CHILDREN)]
    specs = [
        plan.spec(
            backoff=NO_BACKOFF,
            limiter=limiter,
            breaker=CircuitBreaker(threshold=THRESHOLD, window=600, cooldown=3600),
        )
        for plan in sessions
    ]
    root = ChildSpec("sessions", lambda: Supervisor(specs, intensity=intensity, period=PERIOD))
    async with wall_clock_limit(), open_actor_system([root], intensity=0, period=PERIOD) as system:
        expected = CHILDREN * (THRESHOLD - 1) / RATE  # the ramp's length in seconds
        await trio.sleep(2 * expected)
        tree = system.tree().find("/sessions")
        assert tree.state == "running" and tree.restarts == 0
        assert {(s.state, s.breaker) for s in tree.children} == {("suspended", "open")}
        escalations = [e for e in system.history() if e.kind is EventKind.INTENSITY_EXCEEDED]
        assert escalations == []

    restarts = [t for plan in sessions for t in plan.starts[1:]]
    assert len(restarts) == CHILDREN * (THRESHOLD - 1)
    assert max_excess(restarts, RATE) <= BURST + EPSILON
    assert max(restarts) >= CHILDREN * (THRESHOLD - 1) / RATE - BURST / RATE - EPSILON  # a ramp, not a stampede
    stats = limiter.statistics()
    assert stats.granted == CHILDREN * (THRESHOLD - 1)
    assert stats.peak_in_progress <= CONCURRENT
    assert (stats.in_progress, stats.waiting) == (0, 0)


async def test_limiter_bounds_rate_burst_and_concurrency(autojump_clock):
    """Directly: 200 restarts of 1 s each through the limiter."""
    limiter = RestartLimiter(rate=20, burst=5, max_concurrent=3)
    granted: list[float] = []

    async def restart() -> None:
        async with limiter.slot():
            granted.append(trio.current_time())
            assert limiter.in_progress <= 3
            await trio.sleep(0.01)

    async with wall_clock_limit(), trio.open_nursery() as nursery:
        for _ in range(200):
            nursery.start_soon(restart)
    assert len(granted) == 200
    assert max_excess(granted, 20) <= 5 + EPSILON
    stats = limiter.statistics()
    assert (stats.granted, stats.in_progress, stats.waiting) == (200, 0, 0)
    assert stats.peak_in_progress == 3


async def test_limiter_waiter_cancelled_takes_nothing(autojump_clock):
    limiter = RestartLimiter(rate=1, burst=1, max_concurrent=1)
    async with wall_clock_limit(), limiter.slot():
        with trio.move_on_after(5):
            async with limiter.slot():
                raise AssertionError("the only slot is taken")
        assert limiter.statistics().waiting == 0
    async with wall_clock_limit(), limiter.slot():  # the token came back after 1 s; the slot is free
        assert trio.current_time() == 5
    assert limiter.statistics().granted == 2


async def test_limiter_caps_concurrent_restarts_across_supervisors(autojump_clock):
    """Slow restarts (1 s to be ready) under two supervisors sharing one limiter:
    with max_concurrent=1 they are serialised across both supervisors; with 2 the
    supervisors restart side by side."""

    async def storm(max_concurrent: int) -> tuple[list[float], int]:
        limiter = RestartLimiter(rate=1000, burst=1000, max_concurrent=max_concurrent)
        groups = [[Plan(f"s{n}") for n in range(2)] for _ in range(2)]
        sups = [
            ChildSpec(f"sup{g}", lambda group=group: Supervisor([p.spec(limiter=limiter) for p in group], intensity=10))
            for g, group in enumerate(groups)
        ]
        async with wall_clock_limit(), open_actor_system(sups, intensity=0) as system:
            begin = trio.current_time()
            for g, group in enumerate(groups):
                for plan in group:
                    plan.start_delay = 1  # every restart takes 1 s to be ready
                    system.ref(f"/sup{g}/{plan.name}").tell(Raise(RuntimeError("upstream down")))
            await trio.sleep(10)
        ready = sorted(t - begin for group in groups for p in group for t in p.starts[1:])
        return ready, limiter.statistics().peak_in_progress

    assert await storm(1) == ([1, 2, 3, 4], 1)
    assert await storm(2) == ([1, 1, 2, 2], 2)
