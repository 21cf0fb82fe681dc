"""Every message kind and operation, from neonize's generated protobuf classes through the real callback path.

Each case is a ``MessageEv`` whose ``Message`` is built from WhatsApp's E2E protobuf (JSON form,
parsed by neonize's own classes in the worker) and fed to the worker's client callback with
``NeonizeDriver.inject`` - exactly what Go does - then read back as the normalized event.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from actors.drivers import MediaKind, Message, MessageKind
from actors.drivers.neonize import NeonizeDriver

from .conftest import TEST_TIMEOUT_S, HangingProxy, next_event, open_pool, running

PHONE = "5511999990000"
VCARD = "BEGIN:VCARD\nVERSION:3.0\nFN:Ana Silva\nTEL;type=CELL;waid=5521999990000:+55 21 99999-0000\nEND:VCARD"
CTX = {"contextInfo": {"stanzaID": "QUOTED1"}}


def _event(message: dict, msg_id: str = "3EB0K1", **flags: Any) -> dict:
    jid = {"User": PHONE, "Server": "s.whatsapp.net"}
    return {"Info": {"ID": msg_id, "Timestamp": 1_700_000_000_000, "MessageSource": {"Chat": jid, "Sender": jid}},
            "Message": message, **flags}


# case id -> (E2E message JSON, event flags, expected kind, text, payload, target_id, quoted_id, media kind)
CASES: dict[str, tuple] = {
    "text": ({"conversation": "olá"}, {}, MessageKind.TEXT, "olá", {}, None, None, None),
    "extended_text_quoting": ({"extendedTextMessage": {"text": "yes", **CTX}}, {}, MessageKind.TEXT, "yes", {}, None,
                              "QUOTED1", None),
    "image_view_once": ({"viewOnceMessageV2": {"message": {"imageMessage": {"mimetype": "image/png",
                                                                              "caption": "look"}}}},
                        {}, MessageKind.IMAGE, "look", {"mimetype": "image/png", "view_once": True}, None, None,
                        MediaKind.IMAGE),
    "image_view_once_unwrapped_by_whatsmeow": ({"imageMessage": {"mimetype": "image/jpeg"}}, {"IsViewOnceV2": True},
                                               MessageKind.IMAGE, "", {"mimetype": "image/jpeg", "view_once": True},
                                               None, None, MediaKind.IMAGE),
    "video": ({"videoMessage": {"mimetype": "video/mp4", "seconds": 12, "caption": "clip", **CTX}}, {},
              MessageKind.VIDEO, "clip", {"mimetype": "video/mp4", "duration": 12}, None, "QUOTED1", MediaKind.VIDEO),
    "audio": ({"audioMessage": {"mimetype": "audio/mpeg", "seconds": 95}}, {}, MessageKind.AUDIO, "",
              {"mimetype": "audio/mpeg", "duration": 95}, None, None, MediaKind.AUDIO),
    "ptt": ({"audioMessage": {"mimetype": "audio/ogg; codecs=opus", "seconds": 7, "PTT": True}}, {}, MessageKind.PTT,
            "", {"mimetype": "audio/ogg; codecs=opus", "duration": 7}, None, None, MediaKind.AUDIO),
    "document_with_caption": ({"documentWithCaptionMessage": {"message": {"documentMessage": {
        "mimetype": "application/pdf", "fileName": "invoice.pdf", "caption": "the invoice", "pageCount": 2}}}}, {},
        MessageKind.DOCUMENT, "the invoice", {"mimetype": "application/pdf", "file_name": "invoice.pdf", "pages": 2},
        None, None, MediaKind.DOCUMENT),
    "sticker": ({"stickerMessage": {"mimetype": "image/webp", "isAnimated": True}}, {}, MessageKind.STICKER, "",
                {"mimetype": "image/webp", "animated": True}, None, None, MediaKind.STICKER),
    "location": ({"locationMessage": {"degreesLatitude": -22.9, "degreesLongitude": -43.2, "name": "Office",
                                      "address": "Av. 1"}}, {},
                 MessageKind.LOCATION, "", {"latitude": -22.9, "longitude": -43.2, "name": "Office",
                                            "address": "Av. 1", "url": None}, None, None, None),
    "live_location": ({"liveLocationMessage": {"degreesLatitude": 1.5, "degreesLongitude": 2.5, "caption": "omw",
                                               "sequenceNumber": 3}}, {},
                      MessageKind.LIVE_LOCATION, "omw", {"latitude": 1.5, "longitude": 2.5, "caption": "omw",
                                                         "sequence": 3}, None, None, None),
    "contact": ({"contactMessage": {"displayName": "Ana", "vcard": VCARD}}, {}, MessageKind.CONTACTS, "",
                {"contacts": [{"name": "Ana Silva", "vcard": VCARD, "phones": [
                    {"number": "+55 21 99999-0000", "wa_id": "5521999990000", "type": "cell"}]}]}, None, None, None),
    "contacts_array": ({"contactsArrayMessage": {"displayName": "2 contacts", "contacts": [
        {"displayName": "Ana", "vcard": VCARD}, {"displayName": "Bia", "vcard": "BEGIN:VCARD\nEND:VCARD"}]}}, {},
        MessageKind.CONTACTS, "", {"contacts": [
            {"name": "Ana Silva", "vcard": VCARD, "phones": [
                {"number": "+55 21 99999-0000", "wa_id": "5521999990000", "type": "cell"}]},
            {"name": "Bia", "vcard": "BEGIN:VCARD\nEND:VCARD", "phones": []}]}, None, None, None),
    "poll": ({"pollCreationMessageV3": {"name": "When?", "options": [{"optionName": "am"}, {"optionName": "pm"}],
                                        "selectableOptionsCount": 1}}, {},
             MessageKind.POLL, "", {"name": "When?", "options": ["am", "pm"], "selectable": 1}, None, None, None),
    # The poll's secret is not in this unpaired device's store: neonize cannot decrypt the vote.
    "poll_vote": ({"pollUpdateMessage": {"pollCreationMessageKey": {"ID": "POLL1"},
                                         "vote": {"encPayload": "AAAA", "encIV": "AAAA"}}}, {},
                  MessageKind.POLL_VOTE, "", {"encrypted": True}, "POLL1", None, None),
    "button_reply": ({"buttonsResponseMessage": {"selectedButtonID": "yes", "selectedDisplayText": "Yes!"}}, {},
                     MessageKind.BUTTON_REPLY, "", {"id": "yes", "text": "Yes!"}, None, None, None),
    "template_button_reply": ({"templateButtonReplyMessage": {"selectedID": "t1", "selectedDisplayText": "Go"}}, {},
                              MessageKind.BUTTON_REPLY, "", {"id": "t1", "text": "Go"}, None, None, None),
    "list_reply": ({"listResponseMessage": {"title": "Plan 2", "singleSelectReply": {"selectedRowID": "p2"},
                                            "description": "100 GB"}}, {},
                   MessageKind.LIST_REPLY, "", {"id": "p2", "title": "Plan 2", "description": "100 GB"}, None, None,
                   None),
    "reaction": ({"reactionMessage": {"key": {"ID": "T1"}, "text": "👍"}}, {}, MessageKind.REACTION, "",
                 {"emoji": "👍"}, "T1", None, None),
    "reaction_removed": ({"reactionMessage": {"key": {"ID": "T1"}, "text": ""}}, {}, MessageKind.REACTION, "",
                         {"emoji": ""}, "T1", None, None),
    "edit": ({"editedMessage": {"message": {"protocolMessage": {
        "key": {"ID": "T2"}, "type": "MESSAGE_EDIT", "editedMessage": {"conversation": "fixed"}}}}}, {"IsEdit": True},
        MessageKind.EDIT, "fixed", {}, "T2", None, None),
    "edited_caption": ({"protocolMessage": {"key": {"ID": "T3"}, "type": "MESSAGE_EDIT", "editedMessage": {
        "imageMessage": {"caption": "new caption"}}}}, {}, MessageKind.EDIT, "new caption", {}, "T3", None, None),
    "revoke": ({"protocolMessage": {"key": {"ID": "T4"}, "type": "REVOKE"}}, {}, MessageKind.REVOKE, "", {}, "T4",
               None, None),
    "unknown": ({"groupInviteMessage": {"groupJID": "1203@g.us", "groupName": "VIP"}}, {}, MessageKind.UNKNOWN, "",
                {"type": "groupInviteMessage",
                 "raw": '{"groupInviteMessage": {"groupJID": "1203@g.us", "groupName": "VIP"}}'}, None, None, None),
}


async def _connected(driver: NeonizeDriver, proxy: HangingProxy) -> None:
    dials = proxy.accepted
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver.connect)
        await proxy.wait_accepted(dials + 1)
        await driver.inject(event="ConnectedEv", fields={"status": True})
    await next_event(driver)


@pytest.mark.parametrize("case", list(CASES))
async def test_kind_through_the_real_callback_path(case, tmp_path, hanging_proxy):
    message, flags, kind, text, payload, target, quoted, media = CASES[case]
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool() as pool, running(
            NeonizeDriver("s1", pool, store=str(tmp_path / "s1.db"), proxy=hanging_proxy.url)
        ) as driver:
            await _connected(driver, hanging_proxy)
            await driver.inject(event="MessageEv", fields=_event(message, **flags))
            event = await next_event(driver)
            assert isinstance(event, Message)
            assert (event.kind, event.text, event.payload, event.target_id, event.quoted_id) == (
                kind, text, payload, target, quoted)
            assert (event.media.kind if event.media else None) == media
            hanging_proxy.release()


async def test_a_protocol_message_that_is_no_operation_is_not_a_message(tmp_path, hanging_proxy):
    with trio.fail_after(TEST_TIMEOUT_S):
        async with open_pool() as pool, running(
            NeonizeDriver("s1", pool, store=str(tmp_path / "s1.db"), proxy=hanging_proxy.url)
        ) as driver:
            await _connected(driver, hanging_proxy)
            setting = {"protocolMessage": {"type": "EPHEMERAL_SETTING", "ephemeralExpiration": 86400}}
            await driver.inject(event="MessageEv", fields=_event(setting, "SETTING"))
            await driver.inject(event="MessageEv", fields=_event({"conversation": "after"}, "AFTER"))
            event = await next_event(driver)
            assert (event.id, event.text) == ("AFTER", "after")  # the setting produced nothing
            hanging_proxy.release()


def test_outbound_operations_are_whatsmeows_messages():
    from neonize.utils.jid import build_jid

    from actors.drivers import OutboundOperation
    from actors.drivers.neonize._operations import operation_message

    chat, me = build_jid(PHONE), build_jid("5511000000001")
    react = operation_message(OutboundOperation("reaction", "T1", target_from_me=False, text="👍"), chat, me, now_ms=7)
    assert (react.reactionMessage.key.ID, react.reactionMessage.key.fromMe, react.reactionMessage.key.remoteJID,
            react.reactionMessage.text, react.reactionMessage.senderTimestampMS) == (
        "T1", False, f"{PHONE}@s.whatsapp.net", "👍", 7)
    edit = operation_message(OutboundOperation("edit", "T2", text="fixed"), chat, me, now_ms=7).editedMessage.message
    assert (edit.protocolMessage.type, edit.protocolMessage.key.ID, edit.protocolMessage.key.fromMe,
            edit.protocolMessage.editedMessage.conversation) == (edit.protocolMessage.MESSAGE_EDIT, "T2", True, "fixed")
    revoke = operation_message(OutboundOperation("revoke", "T3"), chat, me).protocolMessage
    assert (revoke.type, revoke.key.ID, revoke.key.fromMe) == (revoke.REVOKE, "T3", True)
    with pytest.raises(ValueError, match="only our own messages"):
        OutboundOperation("edit", "T4", target_from_me=False, text="x")
    with pytest.raises(ValueError, match="must be one of"):
        OutboundOperation("text", "T5")


def test_a_reply_quotes_the_message_it_answers():
    from neonize.utils.jid import build_jid

    from actors.drivers import Quote
    from actors.drivers.neonize._operations import reply_message

    chat, me = build_jid(PHONE), build_jid("5511000000001")
    reply = reply_message("Got it", Quote("Q1", from_me=False, text="my card"), chat, me).extendedTextMessage
    assert (reply.text, reply.contextInfo.stanzaID, reply.contextInfo.participant,
            reply.contextInfo.quotedMessage.conversation) == ("Got it", "Q1", f"{PHONE}@s.whatsapp.net", "my card")
    ours = reply_message("again", Quote("Q2", from_me=True), chat, me).extendedTextMessage
    assert ours.contextInfo.participant == "5511000000001@s.whatsapp.net"
