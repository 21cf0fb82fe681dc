"""The simulator as a process: kill -9 and restart keep accounts, credentials and queues."""

import json
import subprocess
import sys

import trio

from actors.drivers import ENDING_EVENTS, Connected, Disconnected, Message, OfflineSyncDone, Receipt
from actors.simulator import ControlConnectionError
from tests.fixtures.simulator import driver_config, expect_event, open_simulator, pair, running_driver


async def test_kill_and_restart_keep_accounts_and_the_offline_queue(simulator, tmp_path):
    """The message receipted but never acked is gone from the simulator (whatsmeow delivery): it comes
    back from the driver's journal; the one queued while the session was away from the restarted
    simulator's queue."""
    config = driver_config(simulator.url, tmp_path / "auth", tmp_path / "journal")
    async with running_driver(config, "keep") as driver:
        async with simulator.control() as control:
            jid = (await pair(driver, control)).jid
            acked = await control.send_message("keep", "acked before the crash")
            assert (await expect_event(driver, Message)).id == acked
            await driver.ack(acked)
            await driver.probe()
            unacked = await control.send_message("keep", "delivered, never acked")
            assert (await expect_event(driver, Message)).id == unacked
            first = await driver.send_text("5521900000001@s.whatsapp.net", "out", "OUT-K")
            await control.flush()
        await simulator.kill()
        assert isinstance(await expect_event(driver, *ENDING_EVENTS), Disconnected)
        await simulator.start()  # same port, same state dir
        async with simulator.control() as control:
            offline = await control.send_message("keep", "sent while the session was away")
            await driver.connect()
            events = []
            while not isinstance(events[-1:] and events[-1], OfflineSyncDone):
                events.append(await expect_event(driver, Connected, Message, OfflineSyncDone))
            assert Connected(jid=jid) in events  # stored creds still valid
            redelivered = [event.id for event in events if isinstance(event, Message)]
            assert redelivered == [unacked, offline]  # zero loss, order kept, the acked one gone
            again = await driver.send_text("5521900000001@s.whatsapp.net", "out", "OUT-K")
            assert again.message_id != first.message_id  # WhatsApp names every send: a repeat is a new message


async def test_receipts_for_an_offline_account_wait_for_it(tmp_path):
    # Receipts come 1 s after the send: the session is long gone by then.
    async with open_simulator(tmp_path / "sim", "--receipt-delay", "1.0", "--read-delay", "0.1") as simulator, \
            simulator.control() as control, \
            running_driver(driver_config(simulator.url, tmp_path / "auth"), "away") as driver:
        await pair(driver, control)
        await driver.send_text("5521900000001@s.whatsapp.net", "bye", "OUT-A")
        await driver.stop()
        with trio.fail_after(10):
            while (await control.account("away"))["pending_events"] < 2:
                await trio.sleep(0.05)
        await driver.connect()
        kinds = [(await expect_event(driver, Receipt)).kind.value for _ in range(2)]
        assert kinds == ["delivered", "read"]


async def test_sigterm_writes_state_and_exits_cleanly(simulator):
    async with simulator.control() as control:
        await control.create_account("a1")
        await control.send_message("a1", "queued")
    assert await simulator.terminate() == 0
    state = json.loads((simulator.state_dir / "simulator.json").read_text())
    assert state["accounts"]["a1"]["creds"].startswith("creds-")
    assert [item["text"] for item in state["accounts"]["a1"]["queue"]] == ["queued"]
    assert not list(simulator.state_dir.glob("*.tmp"))


async def test_exit_command_ends_the_process_with_its_code(simulator):
    async with simulator.control() as control:
        await control.exit(3)
    assert await simulator.process.wait() == 3
    try:
        async with simulator.control():
            raise AssertionError("the simulator should be gone")
    except ControlConnectionError as exc:
        assert "cannot reach" in str(exc)


async def test_drop_and_stall_without_a_session_hit_every_connection(simulator, tmp_path):
    config = driver_config(simulator.url, tmp_path / "auth")
    async with simulator.control() as control, running_driver(config, "a") as a, running_driver(config, "b") as b:
        await pair(a, control)
        await pair(b, control)
        assert await control.stall() == 2
        assert (await control.account("a"))["stalled"] and (await control.account("b"))["stalled"]
        await control.stall(on=False)
        assert await control.drop() == 2
        for driver in (a, b):
            assert (await expect_event(driver, *ENDING_EVENTS)).code is None


def test_command_line_rejects_bad_values_by_name(tmp_path):
    result = subprocess.run([sys.executable, "-m", "actors.simulator", "--state-dir", str(tmp_path),
                             "--qr-interval", "0"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "qr_interval" in result.stderr

