"""LID identity and calls through neonize's real callback path (real worker, real protobuf events).

A message whose sender is a LID with its phone number in ``SenderAlt`` is announced as a
``LidMapped`` event before the message (which carries the phone JID); a LID without it stays a
LID (neonize's lookup is not called: see ``_host``). Call offers become ``CallOffer`` events, and
``reject_call`` reaches whatsmeow's ``RejectCall``. A history sync blob becomes its LID pairs, then
chunks of chats (oldest message first, stubs and status posts left out).
"""

from __future__ import annotations

import pytest
import trio

from actors.drivers import CallOffer, Connected, HistoryChunk, LidMapped, Message, RequestError
from actors.drivers.neonize import NeonizeDriver

from .conftest import TEST_TIMEOUT_S, next_event, open_pool, running
from .test_driver import _connect_with, _jid

PHONE, LID = "5511999990000", "81234567890123"
PN_JID, LID_JID = f"{PHONE}@s.whatsapp.net", f"{LID}@lid"


def _message(message_id: str, sender_alt: dict | None) -> dict:
    source = {"Chat": _jid(LID, "lid"), "Sender": _jid(LID, "lid"), "IsFromMe": False, "IsGroup": False}
    if sender_alt is not None:
        source["SenderAlt"] = sender_alt
    return {"Info": {"ID": message_id, "Timestamp": 1_700_000_000_000, "MessageSource": source, "Pushname": "Bob"},
            "Message": {"conversation": "hi"}}


async def test_lid_senders_call_offers_and_lookups_through_the_real_callback_path(tmp_path, hanging_proxy):
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool() as pool, running(NeonizeDriver("s1", pool, store=str(tmp_path / "s1.db"), proxy=hanging_proxy.url)) as d:
            await _connect_with(d, hanging_proxy, event="ConnectedEv", fields={"status": True})
            assert await next_event(d) == Connected(jid=None)

            # with the alternate field: the mapping first, then the message under the phone JID
            await d.inject(event="MessageEv", fields=_message("M1", _jid(PHONE)))
            assert await next_event(d) == LidMapped(lid=LID_JID, pn=PN_JID)
            first = await next_event(d)
            assert isinstance(first, Message) and (first.chat_jid, first.sender_jid) == (PN_JID, PN_JID)
            await d.inject(event="MessageEv", fields=_message("M2", _jid(PHONE)))  # announced once per client
            assert (await next_event(d)).id == "M2"

            # a call offer from a LID caller with its phone number alongside
            call = {"basicCallMeta": {"from": _jid(LID, "lid"), "callCreator": _jid(LID, "lid"),
                                      "callCreatorAlt": _jid(PHONE), "callID": "C1", "timestamp": 1_700_000_100},
                    "data": {"Tag": "offer", "Nodes": [{"Tag": "video"}]}}
            await d.inject(event="CallOfferEv", fields=call)
            assert await next_event(d) == CallOffer(call_id="C1", caller=PN_JID, call_from=LID_JID,
                                                    timestamp=1_700_000_100.0, is_video=True)

            # a hidden LID: the message keeps it (neonize's lookup is not called, see _host)
            hidden = _message("M3", None)
            await d.inject(event="MessageEv", fields=hidden)
            assert (await next_event(d)).chat_jid == LID_JID
            # whatsmeow's RejectCall answers (this unpaired test device has no JID to send it from)
            with pytest.raises(RequestError, match="device JID"):
                await d.reject_call(LID_JID, "C1")


async def test_a_history_sync_blob_becomes_lid_pairs_then_chunks_of_chats(tmp_path, hanging_proxy):
    old_lid, old_phone = "81234567890777", "5511977770000"
    blob = {"Data": {
        "syncType": "INITIAL_BOOTSTRAP", "progress": 40,
        "phoneNumberToLidMappings": [{"lidJID": LID_JID, "pnJID": PN_JID}],
        "conversations": [
            {"ID": PN_JID, "name": "Bob", "messages": [
                {"message": {"key": {"remoteJID": PN_JID, "fromMe": False, "ID": "H2"}, "messageTimestamp": 1_600_000_002,
                             "message": {"conversation": "second"}}},
                {"message": {"key": {"remoteJID": PN_JID, "fromMe": True, "ID": "H1"}, "messageTimestamp": 1_600_000_001,
                             "message": {"extendedTextMessage": {"text": "first"}}}},
                {"message": {"key": {"remoteJID": PN_JID, "ID": "STUB"}, "messageTimestamp": 1_600_000_003,
                             "messageStubType": 1}},
            ]},
            {"ID": f"{old_lid}@lid", "pnJID": f"{old_phone}@s.whatsapp.net", "messages": [
                {"message": {"key": {"remoteJID": f"{old_lid}@lid", "ID": "H3"}, "messageTimestamp": 1_600_000_004,
                             "message": {"conversation": "from a lid chat"}}},
            ]},
            {"ID": "120363000000000000@g.us", "messages": [
                {"message": {"key": {"remoteJID": "120363000000000000@g.us", "participant": f"{PHONE}:3@s.whatsapp.net",
                                     "ID": "G1"}, "messageTimestamp": 1_600_000_005, "message": {"conversation": "hey all"}}},
            ]},
            {"ID": "status@broadcast", "messages": [
                {"message": {"key": {"remoteJID": "status@broadcast", "ID": "S1"}, "messageTimestamp": 1_600_000_006,
                             "message": {"conversation": "my status"}}},
            ]},
        ],
    }}
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool() as pool, running(NeonizeDriver("s1", pool, store=str(tmp_path / "s1.db"), proxy=hanging_proxy.url)) as d:
            await _connect_with(d, hanging_proxy, event="ConnectedEv", fields={"status": True})
            assert await next_event(d) == Connected(jid=None)
            await d.inject(event="HistorySyncEv", fields=blob)
            assert await next_event(d) == LidMapped(lid=LID_JID, pn=PN_JID)
            assert await next_event(d) == LidMapped(lid=f"{old_lid}@lid", pn=f"{old_phone}@s.whatsapp.net")
            chunk = await next_event(d)
            assert isinstance(chunk, HistoryChunk) and (chunk.progress, chunk.sync_type) == (40, "INITIAL_BOOTSTRAP")
            bob, old, group = chunk.chats
            assert (bob.jid, bob.name, [m.id for m in bob.messages]) == (PN_JID, "Bob", ["H1", "H2"])  # oldest first
            assert [(m.text, m.from_me, m.timestamp) for m in bob.messages] == [
                ("first", True, 1_600_000_001.0), ("second", False, 1_600_000_002.0)]
            assert (old.jid, [m.text for m in old.messages]) == (f"{old_phone}@s.whatsapp.net", ["from a lid chat"])
            assert group.is_group and group.messages[0].sender_jid == PN_JID
