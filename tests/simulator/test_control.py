"""The control API: bad requests are named, inspection commands tell the truth."""

import pytest

from actors.simulator import ControlError, SimulatorStats
from tests.fixtures.simulator import expect_event, pair, running_driver


async def test_unknown_command_and_bad_arguments_are_named(shared_control):
    with pytest.raises(ControlError, match="unknown command 'nope'"):
        await shared_control.call("nope")
    with pytest.raises(ControlError, match="drop: .*unexpected keyword argument 'sesion'"):
        await shared_control.call("drop", sesion="x")
    with pytest.raises(ControlError, match="stall: .*"):
        await shared_control.call("stall", bogus=1)


async def test_unknown_session_is_an_error(shared_control, session_id):
    with pytest.raises(ControlError, match=f"unknown session '{session_id}'"):
        await shared_control.account(session_id)
    with pytest.raises(ControlError, match="unknown session"):
        await shared_control.send_message(session_id, "to nobody")
    with pytest.raises(ControlError, match="is not connected"):
        await shared_control.scan(session_id)


async def test_fault_arguments_are_validated(shared_control, session_id):
    await shared_control.create_account(session_id)
    with pytest.raises(ControlError, match="3-digit"):
        await shared_control.disconnect(42, session_id)
    with pytest.raises(ControlError, match="exactly one of 'until' or 'seconds'"):
        await shared_control.ban(session_id)
    with pytest.raises(ControlError, match="seconds must be >= 0"):
        await shared_control.slow_connect(-1.0, session_id)
    with pytest.raises(ControlError, match="presence state"):
        await shared_control.presence(session_id, "5521900000001@s.whatsapp.net", "dancing")
    with pytest.raises(ControlError, match="bad traffic spec: .*media_share"):
        await shared_control.traffic_start(media_share=2.0)
    with pytest.raises(ControlError, match="media kind"):
        await shared_control.send_message(session_id, media=b"x", media_kind="hologram")


async def test_scan_needs_a_qr_on_screen_and_pairing_needs_the_right_code(
        shared_control, shared_driver_config, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        with pytest.raises(ControlError, match="not showing a QR code"):
            await shared_control.scan(session_id)
        with pytest.raises(ControlError, match="no pending pairing code"):
            await shared_control.confirm_pairing(session_id, "AAAA-BBBB")


async def test_create_account_and_account_view(shared_control, session_id):
    created = await shared_control.create_account(session_id)
    assert created["creds"].startswith("creds-") and created["jid"].endswith("@s.whatsapp.net")
    queued = await shared_control.send_message(session_id, "waiting")
    view = await shared_control.account(session_id)
    assert (view["paired"], view["queued"], view["queued_ids"], view["phase"]) == (True, 1, [queued], None)
    unpaired = await shared_control.create_account(session_id + "-u", paired=False)
    assert unpaired["creds"] is None


async def test_stats_is_a_frozen_snapshot_that_counts(shared_control, shared_driver_config, session_id):
    before = await shared_control.stats()
    assert isinstance(before, SimulatorStats)
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        during = await shared_control.stats()
        assert during.connected == before.connected + 1
        assert during.connects == before.connects + 1
        assert during.last_connected_at >= during.started_at
    with pytest.raises(AttributeError):
        during.connected = 0  # type: ignore[misc]


async def test_traffic_generator_runs_once_and_reports_its_run(shared_control, shared_driver_config, session_id):
    from actors.drivers import Message

    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        await shared_control.traffic_start(rate=100, count=5, sessions=[session_id])
        for _ in range(5):
            await expect_event(driver, Message)
        assert not (await shared_control.stats()).traffic_running
        assert await shared_control.traffic_stop() == 5


async def test_a_repeated_inbound_id_is_one_message(shared_control, session_id):
    await shared_control.create_account(session_id)
    await shared_control.send_message(session_id, "first", message_id="SAME-1")
    await shared_control.send_message(session_id, "edited", message_id="SAME-1")
    assert (await shared_control.account(session_id))["queued_ids"] == ["SAME-1"]
