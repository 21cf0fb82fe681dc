"""Hundreds of real driver connections against one simulator process."""

import trio

from actors.drivers import ENDING_EVENTS, Connected, Disconnected, OfflineSyncDone, SimulatedDriver
from tests.fixtures.simulator import driver_config, expect_event, open_simulator

SESSIONS = 500


async def test_500_concurrent_sessions_connect_and_all_see_a_mass_drop(tmp_path):
    async with open_simulator(tmp_path / "sim", "--auto-pair") as sim, sim.control() as control:
        # Keepalive stays at its 20 s default: this test is about connections, not pings.
        config = driver_config(sim.url, keepalive_interval=20.0, keepalive_timeout=10.0, connect_timeout=30.0)
        drivers = [SimulatedDriver(f"load-{i:04d}", config) for i in range(SESSIONS)]
        connected: list[Connected] = []
        ended: list[object] = []

        async def one(driver: SimulatedDriver, nursery: trio.Nursery) -> None:
            await nursery.start(driver.run)
            await driver.connect()
            connected.append(await expect_event(driver, Connected, timeout=60))
            await expect_event(driver, OfflineSyncDone, timeout=60)
            ended.append(await expect_event(driver, *ENDING_EVENTS, timeout=60))

        async with trio.open_nursery() as nursery:
            for driver in drivers:
                nursery.start_soon(one, driver, nursery)
            with trio.fail_after(60):
                while len(connected) < SESSIONS:
                    await trio.sleep(0.05)
            stats = await control.stats()
            assert stats.connected == SESSIONS and stats.paired_accounts == SESSIONS
            assert len({event.jid for event in connected}) == SESSIONS
            assert await control.drop() == SESSIONS
            with trio.fail_after(60):
                while len(ended) < SESSIONS:
                    await trio.sleep(0.05)
            assert all(isinstance(event, Disconnected) and event.code is None for event in ended)
            nursery.cancel_scope.cancel()
        stats = await control.stats()
        assert stats.connected == 0 and stats.connects == SESSIONS
        assert 1 <= stats.peak_concurrent_connects <= SESSIONS


async def test_peak_concurrent_connects_counts_handshakes_in_flight(tmp_path):
    # Handshakes held open by a slow-connect fault overlap: the simulator counts them all at once.
    async with open_simulator(tmp_path / "sim", "--auto-pair") as sim, sim.control() as control:
        await control.slow_connect(60.0)
        config = driver_config(sim.url, keepalive_interval=20.0, keepalive_timeout=10.0, connect_timeout=60.0)
        async with trio.open_nursery() as nursery:
            for i in range(20):
                driver = SimulatedDriver(f"slow-{i}", config)
                await nursery.start(driver.run)
                nursery.start_soon(driver.connect)
            with trio.fail_after(30):
                while (stats := await control.stats()).connecting < 20:
                    await trio.sleep(0.05)
            assert stats.peak_concurrent_connects == 20 and stats.connected == 0
            nursery.cancel_scope.cancel()
