"""Restart backoff: exact delays without jitter, the bounds of every jitter mode,
and the reset after a stable run, observed through a supervisor."""

from __future__ import annotations

import random

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from supervisor import NO_BACKOFF, Backoff, EventKind, Jitter, SpecError, open_actor_system

from ._kit import Plan, Raise, settle

seconds = st.floats(min_value=0.01, max_value=1000, allow_nan=False, allow_infinity=False)
multipliers = st.floats(min_value=1, max_value=10, allow_nan=False)
attempts = st.integers(min_value=0, max_value=10_000)


@st.composite
def policies(draw, jitter: Jitter) -> Backoff:
    low = draw(seconds)
    high = draw(st.floats(min_value=low, max_value=low * 1000))
    return Backoff(min=low, max=high, multiplier=draw(multipliers), jitter=jitter)


def test_default_delays_without_jitter_are_the_seeds():
    """2 s → 4 → 8 → 16 → 30 s cap."""
    backoff = Backoff(jitter=Jitter.NONE)
    rng = random.Random(0)
    assert [backoff.delay(n, 0.0, rng) for n in range(7)] == [2, 4, 8, 16, 30, 30, 30]


def test_defaults():
    backoff = Backoff()
    assert (backoff.min, backoff.max, backoff.multiplier, backoff.jitter) == (2.0, 30.0, 2.0, Jitter.FULL)
    assert NO_BACKOFF.delay(5, 1.0, random.Random(0)) == 0


@given(policies(Jitter.NONE), attempts)
def test_capped_is_monotonic_and_bounded(backoff, attempt):
    assert backoff.min <= backoff.capped(attempt) <= backoff.max
    assert backoff.capped(attempt) <= backoff.capped(attempt + 1)
    assert backoff.capped(0) == backoff.min


@given(policies(Jitter.FULL), attempts, st.randoms(use_true_random=False))
def test_full_jitter_bounds(backoff, attempt, rng):
    assert 0 <= backoff.delay(attempt, 0.0, rng) <= backoff.capped(attempt)


@given(policies(Jitter.EQUAL), attempts, st.randoms(use_true_random=False))
def test_equal_jitter_bounds(backoff, attempt, rng):
    capped = backoff.capped(attempt)
    assert capped / 2 <= backoff.delay(attempt, 0.0, rng) <= capped


@given(policies(Jitter.DECORRELATED), attempts, st.floats(min_value=0, max_value=1e6), st.randoms(use_true_random=False))
def test_decorrelated_jitter_bounds(backoff, attempt, previous, rng):
    delay = backoff.delay(attempt, previous, rng)
    assert backoff.min <= delay <= backoff.max
    assert delay <= max(backoff.min, previous * 3)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"min": -1}, "Backoff.min"),
        ({"max": float("inf")}, "Backoff.max"),
        ({"min": 5, "max": 1}, "Backoff.max"),
        ({"multiplier": 0.5}, "Backoff.multiplier"),
        ({"jitter": "full"}, "Backoff.jitter"),
        ({"reset_after": -1}, "Backoff.reset_after"),
    ],
)
def test_bad_backoff_names_the_field(fields, named):
    with pytest.raises(SpecError, match=named):
        Backoff(**fields)


async def crash(ref) -> None:
    ref.tell(Raise(RuntimeError("down")))
    await settle()


async def test_supervisor_waits_exact_delays(autojump_clock):
    """A child that dies at once every time restarts at 2, 6, 14, 30, 60, 90."""
    plan = Plan("flaky", crash_after=0)
    spec = plan.spec(backoff=Backoff(jitter=Jitter.NONE))
    async with open_actor_system([spec], intensity=100, period=60) as system:
        await trio.sleep(90)
        await settle()
    assert plan.starts == [0, 2, 6, 14, 30, 60, 90]
    scheduled = [e.delay for e in system.history() if e.kind is EventKind.RESTART_SCHEDULED]
    assert scheduled == [2, 4, 8, 16, 30, 30, 30]


async def test_backoff_resets_after_a_stable_run(autojump_clock):
    """A run of at least ``reset_after`` seconds makes the next delay ``min`` again;
    a shorter one keeps growing."""
    plan = Plan("flaky")
    spec = plan.spec(backoff=Backoff(min=1, max=64, jitter=Jitter.NONE, reset_after=10))
    async with open_actor_system([spec], intensity=100, period=60) as system:
        ref = system.ref("/flaky")
        for up in (0, 1, 3):  # delays 1, 2, 4: up again at 1, 3, 7
            await trio.sleep_until(up)
            await settle()
            await crash(ref)
        await trio.sleep_until(7)
        await settle()
        assert plan.starts == [0, 1, 3, 7]
        await trio.sleep(9.5)  # uptime 9.5 < reset_after: the next delay is 8
        await crash(ref)
        await trio.sleep_until(24.5)
        await settle()
        assert plan.starts[-1] == 24.5
        await trio.sleep(10)  # uptime exactly reset_after: back to 1
        await crash(ref)
        await trio.sleep(1)
        await settle()
        assert plan.starts == [0, 1, 3, 7, 24.5, 35.5]
        await crash(ref)  # and growing again from there: 2
        await trio.sleep(2)
        await settle()
        assert plan.starts[-1] == 37.5


async def run_with_full_jitter(seed: int) -> list[float]:
    """The restart delays a failing child waits in 200 s, with FULL jitter (the default)."""
    plan = Plan("flaky", crash_after=0)
    async with open_actor_system([plan.spec(backoff=Backoff(min=2, max=30))], intensity=100, seed=seed) as system:
        await trio.sleep(200)
    return [e.delay for e in system.history() if e.kind is EventKind.RESTART_SCHEDULED]


async def test_full_jitter_through_the_supervisor_is_bounded_and_seeded(autojump_clock):
    """Each wait is within [0, capped]; a seed makes the schedule reproducible."""
    delays = await run_with_full_jitter(7)
    assert delays == await run_with_full_jitter(7)
    assert delays != await run_with_full_jitter(8)
    assert len(delays) >= 6
    assert all(0 <= delay <= Backoff().capped(n) for n, delay in enumerate(delays))
