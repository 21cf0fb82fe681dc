"""The session wire protocol, spoken raw over a websocket: handshakes and malformed frames."""

import json

import pytest
import trio
import trio_websocket

from tests.fixtures.simulator import open_simulator


async def _hello(url: str, session: str, creds=None):
    ws_cm = trio_websocket.open_websocket_url(url + "/wa")
    ws = await ws_cm.__aenter__()
    await ws.send_message(json.dumps({"op": "hello", "session": session, "creds": creds}))
    return ws_cm, ws


async def _next(ws) -> dict:
    with trio.fail_after(10):
        return json.loads(await ws.get_message())


@pytest.mark.parametrize("first", [json.dumps({"op": "ping", "rid": 1}), "garbage", json.dumps(["hello"]),
                                   json.dumps({"op": "hello", "session": ""})])
async def test_a_first_frame_that_is_not_hello_is_closed_with_4400(shared_simulator, first):
    async with trio_websocket.open_websocket_url(shared_simulator.url + "/wa") as ws:
        await ws.send_message(first)
        with pytest.raises(trio_websocket.ConnectionClosed) as info, trio.fail_after(10):
            await ws.get_message()
        assert info.value.reason.code == 4400


async def test_an_unknown_path_is_rejected(shared_simulator):
    with pytest.raises(trio_websocket.ConnectionRejected) as info:
        async with trio_websocket.open_websocket_url(shared_simulator.url + "/nope"):
            pass
    assert info.value.status_code == 404


async def test_malformed_requests_get_a_400_naming_the_field(shared_simulator, shared_control, session_id):
    await shared_control.create_account(session_id)
    creds = (await shared_control.account(session_id))["creds"]
    cm, ws = await _hello(shared_simulator.url, session_id, creds)
    try:
        assert await _next(ws) == {"ev": "welcome", "paired": True, "delivery": "whatsmeow"}
        assert (await _next(ws))["ev"] == "connected"
        assert await _next(ws) == {"ev": "offline_sync_done", "count": 0}
        await ws.send_message("not json at all")  # ignored: nothing to answer
        await ws.send_message(json.dumps({"op": "send", "rid": 1, "to": ""}))
        assert await _next(ws) == {"re": 1, "ok": False, "code": 400, "error": "field 'to' must be a non-empty str"}
        await ws.send_message(json.dumps({"op": "teleport", "rid": 2}))
        assert await _next(ws) == {"re": 2, "ok": False, "code": 400, "error": "unknown op 'teleport'"}
        await ws.send_message(json.dumps({"op": "pair_phone", "rid": 3, "number": "5511999990000"}))
        reply = await _next(ws)
        assert reply["re"] == 3 and reply["code"] == 400 and "only valid while QR codes" in reply["error"]
        await ws.send_message(json.dumps({"op": "ping", "rid": 4}))
        assert await _next(ws) == {"re": 4, "ok": True}
    finally:
        await cm.__aexit__(None, None, None)


async def test_close_frames_carry_the_reason_before_the_close_code(shared_simulator, shared_control, session_id):
    await shared_control.create_account(session_id)
    expires_at = await shared_control.ban(session_id, seconds=60, ban_code=2)
    cm, ws = await _hello(shared_simulator.url, session_id, (await shared_control.account(session_id))["creds"])
    try:
        assert await _next(ws) == {"ev": "close", "code": 402, "reason": "temporarily banned",
                                   "expires_at": expires_at, "ban_code": 2}
        with pytest.raises(trio_websocket.ConnectionClosed) as info, trio.fail_after(10):
            await ws.get_message()
        assert info.value.reason.code == 4402
    finally:
        await cm.__aexit__(None, None, None)
    assert (await shared_control.stats()).refused >= 1


async def _connected(url: str, session: str, creds: str, delivery: str = "whatsmeow"):
    """A logged-in raw connection, past its welcome (naming the server's ``delivery`` mode) and connected frames."""
    cm, ws = await _hello(url, session, creds)
    assert await _next(ws) == {"ev": "welcome", "paired": True, "delivery": delivery}
    assert (await _next(ws))["ev"] == "connected"
    return cm, ws


async def _backlog_then(url: str, control, session_id: str, op: str, delivery: str = "whatsmeow",
                        ) -> tuple[list[str], object]:
    """Queue 4 messages, connect raw, read the backlog frame, send ``op`` for messages 0 and 2;
    returns the queued ids and the stats from before."""
    creds = (await control.create_account(session_id))["creds"]
    queued = [await control.send_message(session_id, f"m{i}") for i in range(4)]
    before = await control.stats()
    cm, ws = await _connected(url, session_id, creds, delivery)
    try:
        batch = await _next(ws)
        assert batch["ev"] == "messages"
        assert [(m["id"], m["text"]) for m in batch["msgs"]] == [(q, f"m{i}") for i, q in enumerate(queued)]
        assert await _next(ws) == {"ev": "offline_sync_done", "count": 4}
        await ws.send_message(json.dumps({"op": op, "ids": [queued[0], queued[2], "NOT-QUEUED"]}))
        await ws.send_message(json.dumps({"op": "ping", "rid": 1}))  # read after the ack
        assert await _next(ws) == {"re": 1, "ok": True}
    finally:
        await cm.__aexit__(None, None, None)
    return queued, before


async def test_a_backlog_arrives_in_one_frame_and_the_transport_receipt_takes_a_list(
        shared_simulator, shared_control, session_id):
    """The default (whatsmeow) delivery: a message leaves the queue at the client's ``received``; an ack
    after the store changes nothing on the server."""
    queued, before = await _backlog_then(shared_simulator.url, shared_control, session_id, "received")
    assert (await shared_control.account(session_id))["queued_ids"] == [queued[1], queued[3]]
    after = await shared_control.stats()
    assert (after.messages_receipted - before.messages_receipted, after.messages_acked - before.messages_acked) == (2, 0)


async def test_in_the_idealised_mode_only_acks_take_messages_off_the_queue(tmp_path, session_id):
    async with open_simulator(tmp_path / "sim", "--delivery", "idealised") as simulator, simulator.control() as control:
        creds = (await control.create_account(session_id))["creds"]
        receipted = await control.send_message(session_id, "receipted only")
        cm, ws = await _connected(simulator.url, session_id, creds, "idealised")
        try:
            assert [m["id"] for m in (await _next(ws))["msgs"]] == [receipted]
            await ws.send_message(json.dumps({"op": "received", "ids": [receipted]}))  # ignored here
            await ws.send_message(json.dumps({"op": "ping", "rid": 1}))
            assert (await _next(ws))["ev"] == "offline_sync_done"
            assert await _next(ws) == {"re": 1, "ok": True}
            assert (await control.account(session_id))["queued_ids"] == [receipted]
        finally:
            await cm.__aexit__(None, None, None)
        queued, before = await _backlog_then(simulator.url, control, session_id + "b", "ack", "idealised")
        assert (await control.account(session_id + "b"))["queued_ids"] == [queued[1], queued[3]]
        after = await control.stats()
        assert (after.messages_acked - before.messages_acked, after.messages_receipted - before.messages_receipted) == (2, 0)


async def test_an_ack_with_bad_ids_gets_a_400_and_acks_nothing(shared_simulator, shared_control, session_id):
    creds = (await shared_control.create_account(session_id))["creds"]
    queued = await shared_control.send_message(session_id, "keep me")
    cm, ws = await _connected(shared_simulator.url, session_id, creds)
    try:
        assert [m["id"] for m in (await _next(ws))["msgs"]] == [queued]
        assert await _next(ws) == {"ev": "offline_sync_done", "count": 1}
        for rid, ids in enumerate([queued, [queued, 7], None, {queued: True}]):
            await ws.send_message(json.dumps({"op": "ack", "rid": rid, "ids": ids}))
            reply = await _next(ws)
            assert (reply["re"], reply["ok"], reply["code"]) == (rid, False, 400)
            assert "field 'ids' must be a list" in reply["error"]
        assert (await shared_control.account(session_id))["queued_ids"] == [queued]
    finally:
        await cm.__aexit__(None, None, None)


def test_the_delivery_mode_is_whatsmeow_by_default_and_validated(tmp_path):
    from actors.simulator import SimulatorConfig
    from actors.simulator._serve import config_from_args

    assert SimulatorConfig(state_dir=tmp_path).delivery == "whatsmeow"
    assert config_from_args(["--delivery", "idealised"]).delivery == "idealised"
    with pytest.raises(ValueError, match="SimulatorConfig.delivery must be one of whatsmeow, idealised"):
        SimulatorConfig(state_dir=tmp_path, delivery="eventually")
