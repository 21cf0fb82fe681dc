"""Circuit breaker: every transition of the pure state machine, then the same
through a supervisor (suspension, half-open trials, operator commands)."""

from __future__ import annotations

import math

import attrs
import pytest
import trio

from supervisor import (
    NO_BACKOFF,
    Backoff,
    BreakerAction,
    BreakerMode,
    BreakerState,
    ChildNotFound,
    ChildRestarting,
    ChildState,
    CircuitBreaker,
    EventKind,
    Jitter,
    SpecError,
    open_actor_system,
)

from ._kit import Plan, Raise, settle

POLICY = CircuitBreaker(threshold=3, window=10, cooldown=300, half_open_trials=2)


def fail(state: BreakerState, *times: float) -> BreakerMode:
    mode = state.mode
    for now in times:
        mode = state.record_failure(now)
    return mode


# -- the pure state machine ------------------------------------------------------------


def test_defaults_are_the_seeds():
    policy = CircuitBreaker()
    assert (policy.threshold, policy.cooldown, policy.half_open_trials) == (5, 300, 1)


def test_closed_opens_after_threshold_failures_within_window():
    state = BreakerState(POLICY)
    assert fail(state, 0, 1) is BreakerMode.CLOSED
    assert state.allows_restart(1)
    assert fail(state, 2) is BreakerMode.OPEN
    assert (state.opened_at, state.reopens_at) == (2, 302)


def test_failures_older_than_window_start_a_new_streak():
    state = BreakerState(POLICY)
    assert fail(state, 0, 5, 16, 17) is BreakerMode.CLOSED  # 16 - 0 > window: streak restarts at 16
    assert fail(state, 18) is BreakerMode.OPEN


def test_the_window_slides():
    """Failures at 1, 7, 13, 15 (window 10, threshold 3): 7, 13 and 15 fall within
    10 s of each other, so 15 opens it; a fixed window starting at 1 would have
    forgotten 1 and 7 at 13 and never opened."""
    state = BreakerState(POLICY)
    assert fail(state, 1, 7, 13) is BreakerMode.CLOSED
    assert state.failures == 2  # 1 is more than 10 s old at 13
    assert fail(state, 15) is BreakerMode.OPEN
    assert state.opened_at == 15


def test_a_failure_counts_until_it_is_exactly_window_old():
    state = BreakerState(POLICY)
    assert fail(state, 0, 5, 10) is BreakerMode.OPEN  # 10 - 0 == window: still counted
    state = BreakerState(POLICY)
    assert fail(state, 0, 5, 10.5, 15.5) is BreakerMode.CLOSED  # 0 left at 10.5, 5 left at 15.5 (10.5 s old)
    assert fail(state, 16) is BreakerMode.OPEN


def test_success_while_closed_forgets_failures():
    state = BreakerState(POLICY)
    fail(state, 0, 1)
    assert state.record_success() is BreakerMode.CLOSED
    assert fail(state, 2, 3) is BreakerMode.CLOSED
    assert fail(state, 4) is BreakerMode.OPEN


def test_open_refuses_until_cooldown_then_half_open():
    state = BreakerState(POLICY)
    fail(state, 0, 0, 0)
    assert not state.allows_restart(299.9)
    assert state.refresh(299.9) is BreakerMode.OPEN
    assert fail(state, 100) is BreakerMode.OPEN  # failures while open change nothing
    assert state.reopens_at == 300
    assert state.refresh(300) is BreakerMode.HALF_OPEN
    assert state.trials_left == 2


def test_half_open_allows_its_trials_then_refuses():
    state = BreakerState(POLICY)
    fail(state, 0, 0, 0)
    assert state.allows_restart(300)
    assert state.allows_restart(301)
    assert not state.allows_restart(302)
    assert state.mode is BreakerMode.HALF_OPEN


def test_half_open_success_closes():
    state = BreakerState(POLICY)
    fail(state, 0, 0, 0)
    state.allows_restart(300)
    assert state.record_success() is BreakerMode.CLOSED
    assert state.failures == 0
    assert fail(state, 400, 401) is BreakerMode.CLOSED


def test_half_open_failure_with_trials_left_stays_half_open():
    """``half_open_trials=2``: the first failed trial uses one trial up, the breaker
    stays half-open and lets the second through; the second failure reopens it."""
    state = BreakerState(POLICY)
    fail(state, 0, 0, 0)
    assert state.allows_restart(300)
    assert fail(state, 310) is BreakerMode.HALF_OPEN
    assert state.trials_left == 1
    assert state.allows_restart(312)
    assert not state.allows_restart(312)  # both trials are out
    assert fail(state, 320) is BreakerMode.OPEN
    assert (state.opened_at, state.reopens_at) == (320, 620)


def test_half_open_failure_reopens_with_a_new_cooldown():
    state = BreakerState(attrs.evolve(POLICY, half_open_trials=1))
    fail(state, 0, 0, 0)
    state.allows_restart(300)
    assert fail(state, 310) is BreakerMode.OPEN
    assert state.reopens_at == 610
    assert not state.allows_restart(609)
    assert state.allows_restart(610)


def test_forced_open_never_allows_and_ignores_everything():
    state = BreakerState(POLICY)
    state.force_open()
    assert state.mode is BreakerMode.FORCED_OPEN
    assert state.reopens_at == math.inf
    assert not state.allows_restart(1e9)
    assert fail(state, 1, 2, 3) is BreakerMode.FORCED_OPEN
    assert state.record_success() is BreakerMode.FORCED_OPEN


def test_forced_closed_never_trips():
    state = BreakerState(POLICY)
    fail(state, 0, 0)
    state.force_closed()
    assert fail(state, *range(100)) is BreakerMode.FORCED_CLOSED
    assert state.allows_restart(100)
    assert state.record_success() is BreakerMode.FORCED_CLOSED


@pytest.mark.parametrize("setup", ["open", "forced_open", "forced_closed", "half_open"])
def test_reset_closes_and_forgets(setup):
    state = BreakerState(POLICY)
    match setup:
        case "open":
            fail(state, 0, 0, 0)
        case "forced_open":
            state.force_open()
        case "forced_closed":
            state.force_closed()
        case "half_open":
            fail(state, 0, 0, 0)
            state.refresh(300)
    state.reset()
    assert (state.mode, state.failures) == (BreakerMode.CLOSED, 0)
    assert fail(state, 1000, 1001) is BreakerMode.CLOSED


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"threshold": 0}, "CircuitBreaker.threshold"),
        ({"window": 0}, "CircuitBreaker.window"),
        ({"cooldown": float("nan")}, "CircuitBreaker.cooldown"),
        ({"half_open_trials": 0}, "CircuitBreaker.half_open_trials"),
    ],
)
def test_bad_policy_names_the_field(fields, named):
    with pytest.raises(SpecError, match=named):
        CircuitBreaker(**fields)


# -- through a supervisor ------------------------------------------------------------


def breaker_events(system, path: str) -> list[tuple[float, EventKind, str | None]]:
    wanted = (EventKind.BREAKER, EventKind.SUSPENDED, EventKind.RESUMED)
    return [(e.at, e.kind, e.breaker) for e in system.history() if e.path == path and e.kind in wanted]


async def test_open_breaker_suspends_without_burning_intensity(autojump_clock):
    """Three failed runs open the breaker: the child is suspended, not restarted,
    and the failure that opened it is not counted (intensity 2 would be exceeded).
    After the cooldown a half-open trial runs: failure reopens, a stable run closes."""
    plan = Plan("flappy", crash_after=0)
    spec = plan.spec(backoff=NO_BACKOFF, breaker=CircuitBreaker(threshold=3, window=60, cooldown=300))
    async with open_actor_system([spec], intensity=2, period=60) as system:
        await settle()
        assert plan.starts == [0, 0, 0]
        snap = system.tree().find("/flappy")
        assert (snap.state, snap.breaker, snap.backoff_until) == ("suspended", "open", 300)
        assert [i.state for i in system.supervisor("/").which_children()] == [ChildState.SUSPENDED]

        await trio.sleep(299)
        assert plan.starts == [0, 0, 0]

        await trio.sleep(1)  # t=300: the trial fails and reopens the breaker
        await settle()
        assert plan.starts == [0, 0, 0, 300]
        snap = system.tree().find("/flappy")
        assert (snap.state, snap.breaker, snap.backoff_until) == ("suspended", "open", 600)

        plan.crash_after = None
        await trio.sleep_until(600)  # the trial runs...
        await settle()
        assert plan.starts[-1] == 600
        assert system.tree().find("/flappy").breaker == "half_open"
        await trio.sleep_until(660)  # ...stably for reset_after (60 s): closed
        await settle()
        snap = system.tree().find("/flappy")
        assert (snap.state, snap.breaker) == ("running", "closed")
    assert breaker_events(system, "/flappy") == [
        (0, EventKind.BREAKER, "open"),
        (0, EventKind.SUSPENDED, "open"),
        (300, EventKind.RESUMED, "half_open"),
        (300, EventKind.BREAKER, "open"),
        (300, EventKind.SUSPENDED, "open"),
        (600, EventKind.RESUMED, "half_open"),
        (660, EventKind.BREAKER, "closed"),
    ]
    assert [e.path for e in system.history() if e.kind is EventKind.INTENSITY_EXCEEDED] == []


async def test_forced_open_closed_and_reset_through_the_supervisor(autojump_clock):
    plan = Plan("session")
    spec = plan.spec(shutdown=1, breaker=CircuitBreaker(threshold=2, window=60, cooldown=300))
    async with open_actor_system([spec, Plan("plain").spec()], intensity=100, period=60) as system:
        sup = system.supervisor("/")
        ref = system.ref("/session")

        assert await sup.breaker("session", BreakerAction.OPEN) == "forced_open"
        assert plan.journal[-1] == ("stop", "session")
        snap = system.tree().find("/session")
        assert (snap.state, snap.breaker) == ("suspended", "forced_open")
        await trio.sleep(10_000)  # forced open never reopens by itself
        assert len(plan.starts) == 1

        assert await sup.breaker("session", BreakerAction.CLOSE) == "forced_closed"
        await settle()
        assert len(plan.starts) == 2
        for _ in range(5):  # forced closed never trips
            ref.tell(Raise(RuntimeError("down")))
            await settle()
        snap = system.tree().find("/session")
        assert (snap.state, snap.breaker, len(plan.starts)) == ("running", "forced_closed", 7)

        assert await sup.breaker("session", BreakerAction.RESET) == "closed"
        for _ in range(2):
            ref.tell(Raise(RuntimeError("down")))
            await settle()
        assert system.tree().find("/session").state == "suspended"
        assert await sup.breaker("session", BreakerAction.RESET) == "closed"  # releases the child now
        await settle()
        snap = system.tree().find("/session")
        assert (snap.state, snap.breaker) == ("running", "closed")

        with pytest.raises(SpecError, match="no circuit breaker"):
            await sup.breaker("plain", BreakerAction.OPEN)
        with pytest.raises(ChildNotFound):
            await sup.breaker("nobody", BreakerAction.RESET)
    operator = [e.reason for e in system.history() if e.kind is EventKind.BREAKER and "operator" in e.reason]
    assert operator == ["operator open", "operator close", "operator reset", "operator reset"]


async def test_terminating_a_suspended_child_ends_its_suspension(autojump_clock):
    """A suspended child is "restarting" for restart/delete; terminate_child parks it
    for good: the cooldown does not bring it back."""
    plan = Plan("flappy", crash_after=0)
    spec = plan.spec(backoff=NO_BACKOFF, breaker=CircuitBreaker(threshold=1, window=60, cooldown=300))
    async with open_actor_system([spec], intensity=10, period=60) as system:
        sup = system.supervisor("/")
        await settle()
        assert system.tree().find("/flappy").state == "suspended"
        with pytest.raises(ChildRestarting):
            await sup.restart_child("flappy")
        with pytest.raises(ChildRestarting):
            await sup.delete_child("flappy")
        await sup.terminate_child("flappy")
        await trio.sleep(1000)
        assert system.tree().find("/flappy").state == "stopped"
        assert plan.starts == [0]
        await sup.delete_child("flappy")
        assert sup.which_children() == ()


async def test_sliding_window_through_the_supervisor(autojump_clock):
    """Crashes at 1, 7, 13 and 15 (window 10, threshold 3): the crash at 15 opens the
    breaker and suspends the child until 15 + cooldown."""
    plan = Plan("flappy")
    spec = plan.spec(backoff=NO_BACKOFF, breaker=CircuitBreaker(threshold=3, window=10, cooldown=300))
    async with open_actor_system([spec], intensity=100, period=60) as system:
        ref = system.ref("/flappy")
        for at in (1, 7, 13):
            await trio.sleep_until(at)
            ref.tell(Raise(RuntimeError("down")))
            await settle()
            ref = system.ref("/flappy")
        assert system.tree().find("/flappy").breaker == "closed"
        await trio.sleep_until(15)
        ref.tell(Raise(RuntimeError("down")))
        await settle()
        snap = system.tree().find("/flappy")
        assert (snap.state, snap.breaker, snap.backoff_until) == ("suspended", "open", 315)
        assert plan.starts == [0, 1, 7, 13]


async def test_half_open_trials_are_honoured(autojump_clock):
    """Two half-open trials: the first failed trial is followed, after the child's
    backoff (5 s), by the second; only the second failure reopens the breaker. The
    next cooldown's trial that runs stably (reset_after 60 s) closes it."""
    plan = Plan("flappy", crash_after=0)
    spec = plan.spec(
        backoff=Backoff(min=5, max=5, jitter=Jitter.NONE, reset_after=60),
        breaker=CircuitBreaker(threshold=3, window=60, cooldown=100, half_open_trials=2),
    )
    async with open_actor_system([spec], intensity=100, period=60) as system:
        await trio.sleep_until(10)
        await settle()
        assert plan.starts == [0, 5, 10]
        snap = system.tree().find("/flappy")
        assert (snap.state, snap.breaker, snap.backoff_until) == ("suspended", "open", 110)

        await trio.sleep_until(110)  # trial 1 fails: still half-open, trial 2 after the backoff
        await settle()
        snap = system.tree().find("/flappy")
        assert (snap.state, snap.breaker, snap.backoff_until) == ("backoff", "half_open", 115)
        await trio.sleep_until(115)  # trial 2 fails: open again
        await settle()
        snap = system.tree().find("/flappy")
        assert (snap.state, snap.breaker, snap.backoff_until) == ("suspended", "open", 215)
        assert plan.starts == [0, 5, 10, 110, 115]

        plan.crash_after = None
        await trio.sleep_until(215)
        await settle()
        assert (plan.starts[-1], system.tree().find("/flappy").breaker) == (215, "half_open")
        await trio.sleep_until(275)
        await settle()
        snap = system.tree().find("/flappy")
        assert (snap.state, snap.breaker) == ("running", "closed")
    assert breaker_events(system, "/flappy") == [
        (10, EventKind.BREAKER, "open"),
        (10, EventKind.SUSPENDED, "open"),
        (110, EventKind.RESUMED, "half_open"),
        (115, EventKind.BREAKER, "open"),
        (115, EventKind.SUSPENDED, "open"),
        (215, EventKind.RESUMED, "half_open"),
        (275, EventKind.BREAKER, "closed"),
    ]
