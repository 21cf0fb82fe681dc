"""The janitor actor under the MockClock: it runs on its interval, and only the node holding the
bus lease runs (another node's ``RunNow`` is Skipped while it is held). SQLite store: the MockClock
drives trio's time only, and the asyncpg bridge has its own loop."""

from __future__ import annotations

import attrs
import pytest
import trio
from trio.testing import MockClock

from actors.bus import MemoryBus
from actors.lifecycle import LEASE_RESOURCE, Janitor, RunNow, RunReport, Skipped, Sweeper
from supervisor import ChildSpec, open_actor_system

INTERVAL = 600.0


@pytest.fixture
def backend_name() -> str:
    return "sqlite"


@pytest.fixture
def clock() -> MockClock:
    # taken by each test (pytest-trio runs a test on any Clock argument); jumps only once every task has been idle for 0.2 s of real time: never while a SQLite
    # statement runs on its thread (a jump then would fire the store's write deadlines)
    return MockClock(autojump_threshold=0.2)


@attrs.define(eq=False)
class TimedSweeper(Sweeper):
    """A real sweeper that notes when each run starts (trio time)."""

    starts: list[float] = attrs.Factory(list)

    async def run_once(self) -> RunReport:
        self.starts.append(trio.current_time())
        return await super().run_once()


async def test_runs_after_the_first_delay_then_every_interval(clock, sweeper):
    sweeper = TimedSweeper(attrs.evolve(sweeper.settings, interval=INTERVAL), sweeper.store, sweeper.media_dir,
                           sweeper.auth_dir)
    bus = MemoryBus()
    t0 = trio.current_time()
    async with open_actor_system([ChildSpec("janitor", lambda: Janitor(sweeper, bus, "n1"))]):
        await trio.sleep(60 + 2 * INTERVAL + 30)
    starts = sweeper.starts
    assert len(starts) == 3
    assert starts[0] - t0 == pytest.approx(60.0)
    assert all(b - a >= INTERVAL for a, b in zip(starts, starts[1:]))
    assert all(b - a < INTERVAL + 30 for a, b in zip(starts, starts[1:]))
    assert sweeper.statistics().runs == 3


async def test_only_the_lease_holder_runs(clock, sweeper):
    sweeper.settings = attrs.evolve(sweeper.settings, interval=INTERVAL)
    bus = MemoryBus()
    async with open_actor_system([ChildSpec("janitor", lambda: Janitor(sweeper, bus, "n1"))]) as system:
        janitor = system.ref("/janitor")
        other = await bus.acquire(LEASE_RESOURCE, 30.0, owner="n2")  # another node is running it
        reply = await janitor.ask(RunNow())
        assert isinstance(reply, Skipped) and "n2" in reply.reason
        assert sweeper.statistics().runs == 0
        await bus.release(other)
        assert isinstance(await janitor.ask(RunNow()), RunReport)
        assert await bus.lock_owner(LEASE_RESOURCE) is None  # released after the run: nodes take turns
        assert sweeper.statistics().runs == 1
