"""Every fault the simulator can inject reaches the SimulatedDriver as the right normalized event."""

import time

import attrs
import pytest
import trio

from actors.drivers import (
    ENDING_EVENTS,
    ClientOutdated,
    Connected,
    Disconnected,
    DriverConnectError,
    KeepaliveLost,
    KeepaliveRestored,
    LoggedOut,
    Message,
    ProbeTimeoutError,
    Qr,
    ReasonCode,
    Replaced,
    SimulatedDriver,
    TemporaryBan,
)
from tests.fixtures.simulator import driver_config, expect_event, pair, running_driver

# Reason codes that end a connection without judging the account.
PLAIN_CODES = [408, 411, 428, 500, 503, 515]


@pytest.mark.parametrize("code", PLAIN_CODES)
async def test_disconnect_with_a_plain_reason_is_disconnected_with_that_code(
        code, shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        assert await shared_control.disconnect(code, session_id, reason="injected") == 1
        assert await expect_event(driver, *ENDING_EVENTS) == Disconnected(code=code, reason="injected")
        assert not driver.connected


@pytest.mark.parametrize(("code", "expected"), [
    (401, LoggedOut(reason="injected", code=401)),
    (403, LoggedOut(reason="injected", code=403)),
    (406, LoggedOut(reason="injected", code=406)),
    (405, ClientOutdated()),
    (440, Replaced()),
    (402, TemporaryBan(expires_at=123.0)),
])
async def test_disconnect_with_a_verdict_code_is_its_event(code, expected, shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        await shared_control.disconnect(code, session_id, reason="injected", expires_at=123.0)
        assert await expect_event(driver, *ENDING_EVENTS) == expected


async def test_logged_out_events_wipe_the_stored_credentials(shared_driver_config, shared_control, session_id):
    creds_file = shared_driver_config.auth_dir / f"{session_id}.json"
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        assert creds_file.exists()
        await shared_control.logout(session_id)  # from "the phone"
        assert await expect_event(driver, *ENDING_EVENTS) == LoggedOut(reason="logged out from the phone")
        assert not creds_file.exists()
        await driver.connect()  # a logged-out account starts over with a QR code
        assert isinstance(await anext(driver.events), Qr)


async def test_local_logout(shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        await driver.logout()
        ending = await expect_event(driver, *ENDING_EVENTS)
        assert isinstance(ending, LoggedOut) and ending.local and ending.code == ReasonCode.LOGGED_OUT
        assert not (shared_driver_config.auth_dir / f"{session_id}.json").exists()
        assert not (await shared_control.account(session_id))["paired"]


async def test_old_credentials_after_a_server_logout_are_refused_with_401(shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        await driver.stop()
        await expect_event(driver, *ENDING_EVENTS)
        await shared_control.logout(session_id)  # while offline: the driver still holds creds
        await driver.connect()
        ending = await expect_event(driver, *ENDING_EVENTS)
        assert isinstance(ending, LoggedOut) and ending.code == 401


async def test_ban_ends_the_connection_and_refuses_reconnects(shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        expires_at = await shared_control.ban(session_id, seconds=3600, ban_code=5)
        assert await expect_event(driver, *ENDING_EVENTS) == TemporaryBan(expires_at=expires_at, ban_code=5)
        await driver.connect()  # still banned: refused at the handshake
        assert await expect_event(driver, *ENDING_EVENTS) == TemporaryBan(expires_at=expires_at, ban_code=5)
        await shared_control.unban(session_id)
        await driver.connect()
        assert isinstance(await expect_event(driver, Connected), Connected)


async def test_a_ban_lifts_by_itself_at_its_expiry(shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        expires_at = await shared_control.ban(session_id, until=time.time() + 0.3)
        ending = await expect_event(driver, *ENDING_EVENTS)
        assert isinstance(ending, TemporaryBan) and ending.expires_at == expires_at
        await trio.sleep(max(0.0, expires_at - time.time()) + 0.05)  # the ban's clock is WhatsApp's wall clock
        await driver.connect()
        assert isinstance(await expect_event(driver, Connected), Connected)
        assert (await shared_control.account(session_id))["banned_until"] is None


async def test_replace_and_a_second_connection_of_the_same_session(shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        await shared_control.replace(session_id)
        assert await expect_event(driver, *ENDING_EVENTS) == Replaced()
        await driver.connect()
        await expect_event(driver, Connected)
        async with running_driver(shared_driver_config, session_id) as twin:  # same session, same creds
            await twin.connect()
            await expect_event(twin, Connected)
            assert await expect_event(driver, *ENDING_EVENTS) == Replaced()


async def test_drop_is_a_codeless_disconnect(shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        assert await shared_control.drop(session_id) == 1
        ending = await expect_event(driver, *ENDING_EVENTS)
        assert isinstance(ending, Disconnected) and ending.code is None and not ending.local


async def test_stall_fails_probes_and_keepalive_until_lifted(shared_driver_config, shared_control, session_id):
    quick_keepalive = attrs.evolve(shared_driver_config, keepalive_interval=0.2, keepalive_timeout=0.3)
    async with running_driver(quick_keepalive, session_id) as driver:
        await pair(driver, shared_control)
        assert await driver.probe() >= 0.0
        await shared_control.stall(session_id)
        with pytest.raises(ProbeTimeoutError):
            await driver.probe(timeout=0.3)
        message_id = await shared_control.send_message(session_id, "held back")
        lost = await expect_event(driver, KeepaliveLost, Message)
        assert isinstance(lost, KeepaliveLost) and lost.error_count >= 1  # nothing delivered while stalled
        await shared_control.stall(session_id, on=False)
        seen: dict[type, object] = {}
        while len(seen) < 2:  # the held message and the restored keepalive, in either order
            event = await expect_event(driver, Message, KeepaliveRestored)
            seen[type(event)] = event
        assert seen[Message].id == message_id
        assert driver.connected


async def test_refuse_qr_and_outdated_client(shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await shared_control.refuse_qr(session_id, code=503)
        await driver.connect()
        assert await expect_event(driver, *ENDING_EVENTS) == Disconnected(code=503, reason="QR pairing refused")
        await shared_control.refuse_qr(session_id, on=False)
        await shared_control.outdated(session_id)
        await driver.connect()
        assert await expect_event(driver, *ENDING_EVENTS) == ClientOutdated()
        await shared_control.outdated(session_id, on=False)
        await driver.connect()
        assert isinstance(await anext(driver.events), Qr)


async def test_slow_connect_delays_and_can_time_out(shared_driver_config, shared_control, session_id):
    await shared_control.slow_connect(0.3, session=session_id)
    async with running_driver(shared_driver_config, session_id) as driver:
        started = trio.current_time()
        await driver.connect()
        assert trio.current_time() - started >= 0.3
    impatient = SimulatedDriver(session_id, attrs.evolve(shared_driver_config, connect_timeout=0.1))
    async with trio.open_nursery() as nursery:
        await nursery.start(impatient.run)
        with pytest.raises(DriverConnectError, match="no answer to hello"):
            await impatient.connect()
        nursery.cancel_scope.cancel()


async def test_simulator_exit_and_kill_are_codeless_disconnects(simulator, tmp_path, session_id):
    config = driver_config(simulator.url, tmp_path / "auth")
    async with simulator.control() as control, running_driver(config, session_id) as driver:
        await pair(driver, control)
        await control.exit()
        ending = await expect_event(driver, *ENDING_EVENTS)
        assert isinstance(ending, Disconnected) and ending.code is None
        assert await simulator.process.wait() == 0
        await simulator.start()
        await driver.connect()
        await expect_event(driver, Connected)
        await simulator.kill()
        ending = await expect_event(driver, *ENDING_EVENTS)
        assert isinstance(ending, Disconnected) and ending.code is None
        with pytest.raises(DriverConnectError):
            await driver.connect()


async def test_logout_while_showing_qr_and_while_offline(shared_driver_config, shared_control, session_id):
    creds_file = shared_driver_config.auth_dir / f"{session_id}.json"
    async with running_driver(shared_driver_config, session_id) as driver:
        await driver.connect()
        await expect_event(driver, Qr)
        await driver.logout()
        ending = await expect_event(driver, *ENDING_EVENTS)
        assert isinstance(ending, LoggedOut) and ending.local
        await pair(driver, shared_control)
        await driver.stop()
        assert creds_file.exists()
        await driver.logout()  # offline: only the local credentials go
        assert not creds_file.exists()


async def test_unreadable_credentials_mean_pairing_again(shared_driver_config, session_id):
    creds_file = shared_driver_config.auth_dir / f"{session_id}.json"
    creds_file.parent.mkdir(parents=True)
    creds_file.write_text("{not json")
    async with running_driver(shared_driver_config, session_id) as driver:
        await driver.connect()
        assert isinstance(await anext(driver.events), Qr)
