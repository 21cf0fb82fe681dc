"""LID identity and calls through neonize's real callback path (real worker, real protobuf events).

A message whose sender is a LID with its phone number in ``SenderAlt`` is announced as a
``LidMapped`` event before the message (which carries the phone JID); a LID without it stays a
LID (neonize's lookup is not called: see ``_host``). Call offers become ``CallOffer`` events, and
``reject_call`` reaches whatsmeow's ``RejectCall``.
"""

from __future__ import annotations

import pytest
import trio

from actors.drivers import CallOffer, Connected, LidMapped, Message, RequestError
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
