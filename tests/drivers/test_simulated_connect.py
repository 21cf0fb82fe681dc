"""SimulatedDriver against the real simulator process: connecting, pairing, credentials, lifecycle."""

import json

import pytest
import trio

from actors.drivers import (
    ENDING_EVENTS,
    Connected,
    Disconnected,
    DriverConnectError,
    DriverStateError,
    NotConnectedError,
    OfflineSyncDone,
    PairingCode,
    PairSuccess,
    Qr,
    SimulatedDriver,
    SimulatedDriverConfig,
)
from tests.fixtures.simulator import QR_COUNT, expect_event, pair, running_driver


async def test_qr_then_scan_connects_and_stores_credentials(shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await driver.connect()
        qr = await expect_event(driver, Qr)
        assert qr.index == 1 and qr.code.startswith("2@") and qr.expires_at is not None
        jid = await shared_control.scan(session_id)
        assert await anext(driver.events) == PairSuccess(jid=jid)
        assert await anext(driver.events) == Connected(jid=jid)
        assert await anext(driver.events) == OfflineSyncDone(count=0)
        stored = json.loads((shared_driver_config.auth_dir / f"{session_id}.json").read_text())
        assert stored["creds"] == (await shared_control.account(session_id))["creds"]
        await driver.stop()
        assert await anext(driver.events) == Disconnected(code=None, reason="stopped", local=True)


async def test_stored_credentials_skip_the_qr_on_the_next_driver(shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        await driver.stop()
    async with running_driver(shared_driver_config, session_id) as fresh:  # reads creds from auth_dir
        await fresh.connect()
        first = await anext(fresh.events)
        assert isinstance(first, Connected)


async def test_qr_codes_rotate_then_time_out_with_408(shared_driver_config, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await driver.connect()
        codes = [await expect_event(driver, Qr) for _ in range(QR_COUNT)]
        assert [qr.index for qr in codes] == list(range(1, QR_COUNT + 1))
        assert len({qr.code for qr in codes}) == QR_COUNT
        ending = await expect_event(driver, *ENDING_EVENTS)
        assert ending == Disconnected(code=408, reason="QR code timed out")


async def test_pairing_code_flow(shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await driver.connect()
        await expect_event(driver, Qr)
        code = await driver.pair_phone("+55 11 98888-7777")
        assert len(code) == 9 and code[4] == "-"
        assert (await expect_event(driver, PairingCode)).code == code
        jid = await shared_control.confirm_pairing(session_id, code)
        assert await expect_event(driver, PairSuccess) == PairSuccess(jid=jid)
        assert isinstance(await anext(driver.events), Connected)


async def test_pair_phone_rejects_a_bad_number_by_name(shared_driver_config, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await driver.connect()
        await expect_event(driver, Qr)
        with pytest.raises(ValueError, match="phone_number"):
            await driver.pair_phone("12ab")


async def test_connect_to_nothing_is_a_connect_error(tmp_path):
    with trio.socket.socket() as sock:  # a port nobody listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = SimulatedDriverConfig(url=f"ws://127.0.0.1:{port}", connect_timeout=5.0)
    async with running_driver(config, "nowhere") as driver:
        with pytest.raises(DriverConnectError, match="cannot connect"):
            await driver.connect()
        assert not driver.connected
        with pytest.raises(NotConnectedError):
            await driver.probe()


async def test_connect_needs_run_and_only_one_connection(shared_driver_config, shared_control, session_id):
    driver = SimulatedDriver(session_id, shared_driver_config)
    with pytest.raises(DriverStateError, match="run"):
        await driver.connect()
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        with pytest.raises(DriverStateError, match="already"):
            await driver.connect()


async def test_stop_is_idempotent_and_reconnect_works(shared_driver_config, shared_control, session_id):
    before = await shared_control.stats()
    async with running_driver(shared_driver_config, session_id) as driver:
        await driver.stop()  # nothing to stop
        await pair(driver, shared_control)
        await driver.stop()
        assert (await expect_event(driver, *ENDING_EVENTS)).local
        await driver.stop()
        await driver.connect()
        assert isinstance(await expect_event(driver, Connected), Connected)
        assert (await shared_control.stats()).connects - before.connects == 2


async def test_bad_construction_names_the_field():
    with pytest.raises(ValueError, match="session_id"):
        SimulatedDriver("../etc", SimulatedDriverConfig(url="ws://127.0.0.1:1"))
    with pytest.raises(ValueError, match="url"):
        SimulatedDriverConfig(url="http://x")
    with pytest.raises(ValueError, match="keepalive_interval"):
        SimulatedDriverConfig(url="ws://x", keepalive_interval=0)


async def test_events_channel_closes_when_run_ends(shared_driver_config, session_id):
    driver = SimulatedDriver(session_id, shared_driver_config)
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        nursery.cancel_scope.cancel()
    with pytest.raises(trio.EndOfChannel):
        await driver.events.receive()


async def test_driver_satisfies_the_protocol(shared_driver_config, session_id):
    from actors.drivers import Driver

    assert isinstance(SimulatedDriver(session_id, shared_driver_config), Driver)
