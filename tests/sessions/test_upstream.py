"""The upstream gate (pure trio, MockClock): one trial at a time while WhatsApp is down."""

from __future__ import annotations

import errno
import os
import random

import pytest
import trio
import trio.testing

from actors.drivers import DriverConnectError, SimulatedDriver, SimulatedDriverConfig
from actors.sessions import UpstreamGate, UpstreamMode
from bench._servers import free_port
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


class Down(ConnectionError):
    pass


async def test_call_waits_at_the_gate_and_resumes_when_a_trial_succeeds(clock):
    """``call`` (the store gate's use): an unavailable call closes the gate (threshold 1);
    the callers wait, one trial per backoff delay (1, 2, 4 s) runs the call again, and
    the first that succeeds releases everyone at once. Errors that are not
    unavailability go straight to the caller."""
    g = UpstreamGate(1, Backoff(min=1.0, max=8.0, jitter=Jitter.NONE), random.Random(0),
                     name="store", unavailable=lambda exc: isinstance(exc, Down))
    back_at = 7.0
    calls: list[tuple[str, float]] = []
    heard: list[str] = []

    async def write(who: str) -> str:
        calls.append((who, trio.current_time()))
        if trio.current_time() < back_at:
            raise Down("database unreachable")
        return f"{who} stored"

    results: dict[str, tuple[str, float]] = {}

    async def caller(who: str) -> None:
        value = await g.call(write, who, on_unavailable=lambda exc: heard.append(f"{who}: {exc}"))
        results[who] = (value, trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(caller, "a")
        await trio.testing.wait_all_tasks_blocked()
        assert (g.mode, g.reopens_at, g.statistics().name) == (UpstreamMode.DOWN, 1.0, "store")
        nursery.start_soon(caller, "b")
    # a fails at 0 (gate down until 1); trials at 1 (down until 3), 3 (until 7), 7: up
    assert [t for _, t in calls] == [0, 1, 3, 7, 7]
    assert results == {"a": ("a stored", 7), "b": ("b stored", 7)}
    assert g.mode is UpstreamMode.UP and g.statistics().outages == 1
    assert heard[0] == "a: database unreachable"

    async def wrong(who: str) -> None:
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):
        await g.call(wrong, "c")
    assert g.mode is UpstreamMode.UP


async def test_unreachable_causes_are_logged_at_most_once_per_interval(clock, caplog):
    """Every session's connect fails during an outage; the gate logs the cause once per
    ``log_every`` (30 s) and then counts what it left out. An attempt without a cause logs nothing."""
    g = gate(threshold=1)
    cause = "cannot connect to ws://127.0.0.1:18999/wa: Connection refused"
    with caplog.at_level("WARNING", logger="zapvisor.upstream"):
        await attempt(g, "unreachable")  # no cause given: no line
        for _ in range(9):  # trials at 1, 3, 7, 15, 23, 31, 39, 47, 55 (backoff max 8 s)
            async with g.attempt() as a:
                a.unreachable(cause)
    lines = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert g.log_every == 30.0
    assert lines == [
        ("WARNING", f"WhatsApp unreachable: {cause}"),  # at 1
        ("WARNING", f"WhatsApp unreachable: {cause} (4 more unreachable attempts since the last report)"),  # at 31
    ]
    assert trio.current_time() == 55.0


async def test_a_dead_simulator_is_named_with_the_os_error(tmp_path):
    """A real dead port: the driver's connect error names the URL and the OS's words, never an
    empty cause (trio-websocket's HandshakeError has no text of its own)."""
    port = free_port()
    driver = SimulatedDriver("s1", SimulatedDriverConfig(url=f"ws://127.0.0.1:{port}", auth_dir=tmp_path))
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        with pytest.raises(DriverConnectError) as refused:
            await driver.connect()
        nursery.cancel_scope.cancel()
    assert str(refused.value) == f"cannot connect to ws://127.0.0.1:{port}/wa: {os.strerror(errno.ECONNREFUSED)}"
    assert refused.value.code is None  # unreachable: no WhatsApp reason code
