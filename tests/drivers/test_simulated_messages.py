"""SimulatedDriver traffic: inbound delivery with acks and zero-loss re-delivery, media, sends, receipts."""

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio
import trio_websocket

from actors.drivers import (
    ENDING_EVENTS,
    Connected,
    MediaKind,
    MediaNotFoundError,
    MediaRef,
    Message,
    OfflineSyncDone,
    OutboundMedia,
    Presence,
    PresenceState,
    NotConnectedError,
    Receipt,
    ReceiptKind,
    RequestError,
    RequestInterruptedError,
    Undecryptable,
)
from actors.simulator import SimulatorConfig
from actors.simulator._state import State
from tests.fixtures.simulator import driver_config, expect_event, open_simulator, pair, running_driver


async def test_inbound_message_is_normalized(shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        group = "120363000000000001@g.us"
        sent_id = await shared_control.send_message(session_id, "olá", sender="5521900000042@s.whatsapp.net",
                                                       chat=group, push_name="Ana", quoted_id="Q1")
        message = await expect_event(driver, Message)
        assert (message.id, message.chat_jid, message.sender_jid) == (sent_id, group, "5521900000042@s.whatsapp.net")
        assert (message.text, message.push_name, message.quoted_id) == ("olá", "Ana", "Q1")
        assert message.is_group and not message.is_broadcast and not message.from_me
        assert message.media is None and isinstance(message.timestamp, float)


async def _until_sync_done(driver) -> list[object]:
    events: list[object] = []
    while not isinstance(events[-1:] and events[-1], OfflineSyncDone):
        events.append(await expect_event(driver, Connected, Message, OfflineSyncDone))
    return events


async def test_unacked_messages_come_back_from_the_journal_after_reconnect_and_acked_ones_do_not(
        shared_driver_config, shared_control, session_id):
    """whatsmeow delivery: the server forgot all six at the transport receipt; the four never acked
    come back from the driver's journal, before the new connection's own events."""
    before = await shared_control.stats()
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        ids = [await shared_control.send_message(session_id, f"m{i}") for i in range(6)]
        received = [(await expect_event(driver, Message)).id for _ in ids]
        assert received == ids  # in order
        await driver.ack(*ids[:2])
        await driver.probe()
        assert (await shared_control.account(session_id))["queued"] == 0  # receipted: gone from WhatsApp
        await shared_control.drop(session_id)
        await expect_event(driver, *ENDING_EVENTS)
        await driver.connect()
        events = await _until_sync_done(driver)
        again = [event.id for event in events if isinstance(event, Message)]
        assert again == ids[2:] and events[len(again)] == Connected(jid=events[len(again)].jid)  # replay first
        assert events[-1] == OfflineSyncDone(count=0)
        await driver.ack(*again)
    async with running_driver(shared_driver_config, session_id) as driver:  # a restarted driver: nothing left
        await driver.connect()
        assert not [event for event in await _until_sync_done(driver) if isinstance(event, Message)]
    stats = await shared_control.stats()
    assert stats.messages_receipted - before.messages_receipted == 6
    assert stats.messages_redelivered - before.messages_redelivered == 0


async def test_a_restarted_driver_replays_its_journal_before_new_messages(
        shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        lost_without_journal = [await shared_control.send_message(session_id, f"j{i}") for i in range(3)]
        assert [(await expect_event(driver, Message)).id for _ in range(3)] == lost_without_journal
        await shared_control.flush()
    # The driver's process "died" with three messages receipted and unstored; a new one starts.
    later = await shared_control.send_message(session_id, "sent meanwhile")
    async with running_driver(shared_driver_config, session_id) as driver:
        await driver.connect()
        events = await _until_sync_done(driver)
        assert [event.id for event in events if isinstance(event, Message)] == [*lost_without_journal, later]


async def test_in_the_idealised_mode_the_server_redelivers_what_was_not_acked(tmp_path, session_id):
    before = None
    async with open_simulator(tmp_path / "sim", "--delivery", "idealised") as simulator, \
            simulator.control() as control, \
            running_driver(driver_config(simulator.url, tmp_path / "auth"), session_id) as driver:  # no journal
        await pair(driver, control)
        before = await control.stats()
        ids = [await control.send_message(session_id, f"m{i}") for i in range(6)]
        assert [(await expect_event(driver, Message)).id for _ in ids] == ids
        await driver.ack(*ids[:2])
        await driver.probe()  # the acks are ahead of this round trip on the same socket
        await control.drop(session_id)
        await expect_event(driver, *ENDING_EVENTS)
        await driver.connect()
        await expect_event(driver, Connected)
        again = [(await expect_event(driver, Message)).id for _ in ids[2:]]
        assert again == ids[2:]
        assert await expect_event(driver, OfflineSyncDone) == OfflineSyncDone(count=4)
        await driver.ack(*again)
        await driver.probe()
        stats = await control.stats()
        assert stats.messages_acked - before.messages_acked == 6
        assert stats.messages_redelivered - before.messages_redelivered == 4
        assert (await control.account(session_id))["queued"] == 0


async def test_messages_for_an_offline_account_wait_for_it(shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        await driver.stop()
        ids = [await shared_control.send_message(session_id, f"offline {i}") for i in range(3)]
        await driver.connect()
        await expect_event(driver, Connected)
        assert [(await anext(driver.events)).id for _ in ids] == ids
        assert await anext(driver.events) == OfflineSyncDone(count=3)


async def test_delivery_window_bounds_unacked_messages(tmp_path, session_id):
    # Idealised delivery: a session that never acks receives the window, then nothing more until it acks.
    async with open_simulator(tmp_path / "sim", "--delivery", "idealised") as simulator, \
            simulator.control() as control, \
            running_driver(driver_config(simulator.url, tmp_path / "auth"), session_id) as driver:
        await pair(driver, control)
        window = attrs.fields(SimulatorConfig).delivery_window.default
        for i in range(window + 5):
            await control.send_message(session_id, f"w{i}")
        first = [await expect_event(driver, Message) for _ in range(window)]
        await driver.probe()  # anything sent before its answer has been read by now
        buffered = []
        while True:
            try:
                buffered.append(driver.events.receive_nowait())
            except trio.WouldBlock:
                break
        assert not [event for event in buffered if isinstance(event, Message)]  # nothing beyond the window
        await driver.ack(first[0].id)
        assert (await expect_event(driver, Message)).text == f"w{window}"


async def test_media_download_returns_the_exact_bytes(shared_driver_config, shared_control, session_id):
    payload = bytes(range(256)) * 40
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        await shared_control.send_message(session_id, "a caption", media=payload, media_kind="document",
                                             mimetype="application/pdf", file_name="doc.pdf")
        message = await expect_event(driver, Message)
        assert message.text == "a caption"
        assert message.media.kind is MediaKind.DOCUMENT and message.media.file_name == "doc.pdf"
        assert message.media.size == len(payload)
        assert message.media.sha256 == hashlib.sha256(payload).hexdigest()
        assert await driver.download_media(message.media) == payload
        with pytest.raises(MediaNotFoundError):
            await driver.download_media(MediaRef(ref="m-" + "0" * 32, kind=MediaKind.IMAGE, mimetype="image/jpeg"))


async def test_the_server_names_each_send_and_receipts_carry_that_id(shared_driver_config, shared_control,
                                                                     session_id):
    before = await shared_control.stats()
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        to = "5521900000007@s.whatsapp.net"
        first = await driver.send_text(to, "hello", "OUT-1")
        repeat = await driver.send_text(to, "hello", "OUT-1")  # our key never reaches WhatsApp
        assert first.message_id != repeat.message_id and "OUT-1" not in (first.message_id, repeat.message_id)
        assert not first.duplicate and not repeat.duplicate
        receipts = [await expect_event(driver, Receipt) for _ in range(4)]
        by_id = {}
        for receipt in receipts:
            assert receipt.chat_jid == to
            by_id.setdefault(receipt.message_ids, []).append(receipt.kind)
        assert by_id == {(first.message_id,): [ReceiptKind.DELIVERED, ReceiptKind.READ],
                         (repeat.message_id,): [ReceiptKind.DELIVERED, ReceiptKind.READ]}
        sent = await shared_control.sent(session_id)
        assert [(entry["id"], entry["text"]) for entry in sent] == [(first.message_id, "hello"),
                                                                    (repeat.message_id, "hello")]
        assert (await shared_control.stats()).sends_received - before.sends_received == 2


async def test_voice_notes_are_also_played(shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        voice = OutboundMedia(b"OggS...", MediaKind.AUDIO, "audio/ogg; codecs=opus")
        sent = await driver.send_media("5521900000007@s.whatsapp.net", voice, "OUT-V")
        kinds = [await expect_event(driver, Receipt) for _ in range(3)]
        assert [(r.message_ids, r.kind) for r in kinds] == [
            ((sent.message_id,), ReceiptKind.DELIVERED), ((sent.message_id,), ReceiptKind.READ),
            ((sent.message_id,), ReceiptKind.PLAYED)]


async def test_a_send_whose_answer_is_lost_is_interrupted_not_refused(shared_driver_config, shared_control,
                                                                     session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        await shared_control.lose_answers(session_id)
        with pytest.raises(RequestInterruptedError):
            await driver.send_text("5521900000007@s.whatsapp.net", "did it go?", "OUT-2")
        await expect_event(driver, *ENDING_EVENTS)
        [entry] = await shared_control.sent(session_id)
        assert entry["text"] == "did it go?"  # WhatsApp has it, the client cannot know
        assert (await shared_control.stats()).answers_lost >= 1
        await driver.connect()
        await expect_event(driver, Connected)
        receipt = await expect_event(driver, Receipt)  # its receipts reach the next connection
        assert receipt.message_ids == (entry["id"],)
        with pytest.raises(NotConnectedError) as plain:  # nothing went out: no connection
            await driver.stop()
            await driver.send_text("5521900000007@s.whatsapp.net", "x", "OUT-3")
        assert not isinstance(plain.value, RequestInterruptedError)


async def test_send_media_and_mark_read(shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        media = OutboundMedia(b"\x89PNG...", MediaKind.IMAGE, "image/png", file_name="a.png", caption="look")
        result = await driver.send_media("5521900000007@s.whatsapp.net", media, "OUT-3")
        (entry,) = await shared_control.sent(session_id)
        assert entry["id"] == result.message_id
        assert entry["text"] == "look" and entry["media"]["mimetype"] == "image/png"
        before = await shared_control.stats()
        await driver.mark_read("5521900000007@s.whatsapp.net", ("IN-1", "IN-2"))
        assert (await shared_control.stats()).marks_read - before.marks_read == 2


async def test_presence_and_undecryptable_events(shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        contact = "5521900000009@s.whatsapp.net"
        await shared_control.presence(session_id, contact, "composing", chat=contact)
        assert await expect_event(driver, Presence) == Presence(jid=contact, state=PresenceState.COMPOSING,
                                                                chat_jid=contact)
        lost_id = await shared_control.undecryptable(session_id, sender=contact)
        lost = await expect_event(driver, Undecryptable)
        assert (lost.id, lost.sender_jid) == (lost_id, contact)


async def test_requests_before_login_are_refused(shared_driver_config, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await driver.connect()
        with pytest.raises(RequestError, match="logged-in") as info:
            await driver.send_text("5521900000007@s.whatsapp.net", "too early", "OUT-4")
        assert info.value.code == 400


async def test_generated_traffic_is_delivered_and_downloadable(shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        await shared_control.traffic_start(rate=200, count=40, media_share=0.5, group_share=0.3,
                                              broadcast_share=0.2, seed=7, media_size=512,
                                              sessions=[session_id])
        messages = [await expect_event(driver, Message) for _ in range(40)]
        for message in messages:
            await driver.ack(message.id)
        with_media = [m for m in messages if m.media is not None]
        assert with_media and len(with_media) < 40
        assert len(await driver.download_media(with_media[0].media)) == 512
        assert any(m.is_group for m in messages) and any(m.is_broadcast for m in messages)
        assert await shared_control.traffic_stop() == 40


async def test_two_simulated_accounts_can_chat(shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as alice, \
            running_driver(shared_driver_config, session_id + "-b") as bob:
        alice_jid = (await pair(alice, shared_control)).jid
        bob_jid = (await pair(bob, shared_control)).jid
        sent = await alice.send_text(bob_jid, "oi Bob", "CHAT-1")
        received = await expect_event(bob, Message)
        assert (received.id, received.sender_jid, received.chat_jid, received.text) == (
            sent.message_id, alice_jid, alice_jid, "oi Bob")
        photo = OutboundMedia(b"jpeg bytes", MediaKind.IMAGE, "image/jpeg", caption="foto")
        await bob.send_media(alice_jid, photo, "CHAT-2")
        reply = await expect_event(alice, Message)
        assert reply.text == "foto" and await alice.download_media(reply.media) == b"jpeg bytes"


async def test_messages_from_the_phone_are_from_me(shared_driver_config, shared_control, session_id):
    async with running_driver(shared_driver_config, session_id) as driver:
        await pair(driver, shared_control)
        await shared_control.send_message(session_id, "typed on the phone", from_me=True)
        assert (await expect_event(driver, Message)).from_me


@asynccontextmanager
async def recording_relay(upstream: str) -> AsyncIterator[tuple[str, list[dict]]]:
    """A websocket relay in front of the real simulator (like the store tests' TCP proxy): yields
    its URL and the frames clients sent through it, in order."""
    sent: list[dict] = []

    async def pump(source, sink, record: bool, scope: trio.CancelScope) -> None:
        try:
            while True:
                text = await source.get_message()
                if record:
                    sent.append(json.loads(text))
                await sink.send_message(text)
        except trio_websocket.ConnectionClosed:
            pass
        scope.cancel()

    async def handler(request) -> None:
        client = await request.accept()
        try:
            async with trio_websocket.open_websocket_url(upstream + request.path) as server, \
                    trio.open_nursery() as nursery:
                nursery.start_soon(pump, client, server, True, nursery.cancel_scope)
                nursery.start_soon(pump, server, client, False, nursery.cancel_scope)
        except (trio_websocket.ConnectionClosed, trio_websocket.HandshakeError, OSError):
            pass

    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, None)
        yield f"ws://127.0.0.1:{server.port}", sent
        nursery.cancel_scope.cancel()


async def test_in_the_idealised_mode_an_ack_sends_all_its_ids_in_one_frame_and_no_receipt_goes(
        tmp_path, session_id):
    async with open_simulator(tmp_path / "sim", "--delivery", "idealised") as simulator, \
            simulator.control() as control, recording_relay(simulator.url) as (url, sent), \
            running_driver(driver_config(url, tmp_path / "auth"), session_id) as driver:
        await pair(driver, control)
        ids = [await control.send_message(session_id, f"m{i}") for i in range(3)]
        assert [(await expect_event(driver, Message)).id for _ in ids] == ids
        await driver.ack()  # nothing to acknowledge: no frame
        await driver.ack(*ids)
        await driver.probe()  # its ping follows the ack on the same socket
        assert [frame for frame in sent if frame.get("op") == "ack"] == [{"op": "ack", "ids": ids}]
        assert not [frame for frame in sent if frame.get("op") == "received"]  # this server ignores receipts
        assert (await control.account(session_id))["queued_ids"] == []


async def test_in_the_whatsmeow_mode_a_frame_is_receipted_once_and_acks_send_nothing(
        shared_simulator, shared_control, session_id, tmp_path):
    """WhatsApp forgets a message at the transport receipt: a frame costs one ``received`` and the
    ack after the store stays local (it releases the journal), as with whatsmeow. Both frames each
    way per batch cost the pipeline a socket send and a server-side parse for nothing."""
    async with recording_relay(shared_simulator.url) as (url, sent), \
            running_driver(driver_config(url, tmp_path / "auth", journal_dir=tmp_path / "journal"),
                           session_id) as driver:
        await pair(driver, shared_control)
        ids = [await shared_control.send_message(session_id, f"m{i}") for i in range(3)]
        assert [(await expect_event(driver, Message)).id for _ in ids] == ids
        await driver.ack(*ids)
        await driver.probe()
        receipted = [i for frame in sent if frame.get("op") == "received" for i in frame["ids"]]
        assert receipted == ids
        assert not [frame for frame in sent if frame.get("op") == "ack"]
        assert (await shared_control.account(session_id))["queued_ids"] == []


async def test_a_frames_messages_reach_the_session_together(shared_simulator, shared_control, session_id, tmp_path):
    """The driver hands a frame's messages over without a schedule point between them, so the
    session wakes once and finds them all waiting (and stores them as one batch). With a checkpoint
    per message (``await send``) the session woke for the first one alone: a round of the event loop
    per message, measured as most of the driver's task steps in ``bench/pipeline.py``."""
    async with running_driver(driver_config(shared_simulator.url, tmp_path / "auth"), session_id) as driver:
        await pair(driver, shared_control)
        await shared_control.drop(session_id)
        await expect_event(driver, *ENDING_EVENTS)
        ids = [await shared_control.send_message(session_id, f"m{i}") for i in range(5)]  # one backlog frame
        await driver.connect()
        first = await expect_event(driver, Message)
        rest = [driver.events.receive_nowait() for _ in ids[1:]]  # WouldBlock if any was still to come
        assert [first.id, *(event.id for event in rest)] == ids


async def test_a_malformed_message_in_a_batch_is_skipped_and_the_rest_arrive(tmp_path, session_id, caplog):
    state = await State.load(tmp_path / "simulator" / "simulator.json", flush_interval=0.0)
    account = state.account(session_id)
    account.creds = "creds-test"
    jid = "5521900000042@s.whatsapp.net"

    def wire(message_id: str, **fields) -> dict:
        return {"id": message_id, "chat": jid, "sender": jid, "from_me": False, "ts": 1.0, "text": message_id,
                **fields}

    no_sender = wire("NO-SENDER")
    del no_sender["sender"]
    for message in (wire("GOOD-1"), wire("BAD-TS", ts="yesterday"), no_sender, wire("GOOD-2")):
        account.queue[message["id"]] = message
    await state.write_now()  # the backlog waiting for the account when the simulator starts
    (tmp_path / "auth").mkdir()
    (tmp_path / "auth" / f"{session_id}.json").write_text(json.dumps({"creds": "creds-test"}))
    async with open_simulator(tmp_path / "simulator") as simulator, \
            simulator.control() as control, \
            running_driver(driver_config(simulator.url, tmp_path / "auth"), session_id) as driver:
        await driver.connect()
        await expect_event(driver, Connected)
        with trio.fail_after(10):
            events = [await anext(driver.events) for _ in range(3)]
        assert [event.id for event in events[:2]] == ["GOOD-1", "GOOD-2"]
        assert events[2] == OfflineSyncDone(count=4)
        assert len([r for r in caplog.records if "malformed message skipped" in r.getMessage()]) == 2
        await driver.ack("GOOD-1", "GOOD-2")
        await driver.probe()
        assert (await control.account(session_id))["queued_ids"] == ["BAD-TS", "NO-SENDER"]  # never acked
