"""``serve()`` inside a trio program: reports where it listens, writes its state when cancelled."""

import json

import pytest
import trio
import trio_websocket

from actors.simulator import SimulatorConfig, StateFileError, serve


async def test_serve_in_process_reports_its_url_and_saves_on_cancel(tmp_path):
    config = SimulatorConfig(state_dir=tmp_path, flush_interval=60.0)  # only the final write can save it
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve, config)
        assert server.port > 0 and server.url == f"ws://127.0.0.1:{server.port}"
        async with trio_websocket.open_websocket_url(server.url + "/wa") as ws:  # creates the account
            await ws.send_message(json.dumps({"op": "hello", "session": "inproc", "creds": None}))
            assert json.loads(await ws.get_message()) == {"ev": "welcome", "paired": False, "delivery": "whatsmeow"}
        nursery.cancel_scope.cancel()
    saved = json.loads(config.state_file.read_text())
    assert saved["accounts"]["inproc"]["creds"] is None


async def test_serve_refuses_a_foreign_state_file(tmp_path):
    (tmp_path / "simulator.json").write_text('{"version": 0}')
    with pytest.raises(StateFileError, match="version 0"):
        await serve(SimulatorConfig(state_dir=tmp_path))


def test_config_names_bad_fields(tmp_path):
    with pytest.raises(ValueError, match="SimulatorConfig.delivery_window"):
        SimulatorConfig(state_dir=tmp_path, delivery_window=0)
    assert SimulatorConfig(state_dir=str(tmp_path)).state_file == tmp_path / "simulator.json"
