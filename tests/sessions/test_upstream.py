"""The upstream gate (pure trio, MockClock): one trial at a time while WhatsApp is down."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from actors.sessions import UpstreamGate, UpstreamMode
from supervisor import Backoff, Jitter



@pytest.fixture
def clock():
    return trio.testing.MockClock(autojump_threshold=0)


def gate(threshold: int = 3) -> UpstreamGate:
    return UpstreamGate(threshold, Backoff(min=1.0, max=8.0, jitter=Jitter.NONE), random.Random(0))


async def attempt(g: UpstreamGate, verdict: str | None) -> float:
    """One connect attempt with the given verdict; returns when it was admitted."""
    async with g.attempt() as a:
        admitted = trio.current_time()
        if verdict == "reached":
            a.reached()
        elif verdict == "unreachable":
            a.unreachable()
    return admitted


async def test_threshold_unreachable_in_a_row_takes_it_down(clock):
    g = gate(threshold=3)
    await attempt(g, "unreachable")
    await attempt(g, "reached")  # a success resets the streak
    for _ in range(2):
        await attempt(g, "unreachable")
    assert g.mode is UpstreamMode.UP
    await attempt(g, "unreachable")
    assert g.mode is UpstreamMode.DOWN
    assert g.reopens_at == pytest.approx(trio.current_time() + 1.0)
    assert g.statistics().outages == 1


async def test_down_admits_one_trial_per_delay_and_success_releases_everyone(clock):
    """Six sessions wait while WhatsApp is down; the trials fail twice, then reach it."""
    g = gate(threshold=1)
    await attempt(g, "unreachable")  # down at t=0: trials at 1, then 1+2, then 3+4
    trial_verdicts = ["unreachable", "unreachable", "reached"]
    log: list[tuple[float, bool]] = []

    async def session():
        async with g.attempt() as a:
            trial = g.mode is UpstreamMode.DOWN
            log.append((trio.current_time(), trial))
            if trial:
                getattr(a, trial_verdicts.pop(0))()

    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(session)
    assert g.mode is UpstreamMode.UP
    assert [entry for entry in log if entry[1]] == [(1.0, True), (3.0, True), (7.0, True)]
    assert [entry for entry in log if not entry[1]] == [(7.0, False)] * 3  # released together
    assert g.statistics().trials == 3


async def test_trial_holder_leaving_without_verdict_hands_the_trial_on(clock):
    g = gate(threshold=1)
    await attempt(g, "unreachable")
    with trio.move_on_after(1.5):
        async with g.attempt():
            await trio.sleep_forever()  # admitted as the trial at t=1, then cancelled
    assert g.mode is UpstreamMode.DOWN
    assert await attempt(g, "reached") == 1.5  # the next caller takes the trial at once
    assert g.mode is UpstreamMode.UP


async def test_cancelled_waiter_takes_nothing(clock):
    g = gate(threshold=1)
    await attempt(g, "unreachable")
    with trio.move_on_after(0.5):
        await attempt(g, "reached")
    assert g.statistics().waiting == 0 and g.statistics().trials == 0


def test_threshold_validated():
    with pytest.raises(ValueError, match="threshold"):
        UpstreamGate(threshold=0)
