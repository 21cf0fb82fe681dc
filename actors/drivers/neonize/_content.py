"""What a WhatsApp ``Message`` protobuf says: its kind, payload, text, quote and target. Worker-side only.

:func:`content` reads one ``waE2E.Message`` (as whatsmeow hands it over, already unwrapped
from ``deviceSentMessage``/``ephemeralMessage``/``viewOnceMessage``/``editedMessage``; any
wrapper still there is unwrapped here too) into the fields of a normalized
:class:`~actors.drivers.Message` (see :mod:`actors.drivers._kinds` for the payload keys):

* text, and media with their caption, mimetype, duration, file name; ``audioMessage.PTT``
  is a voice note (``ptt``); a view-once wrapper sets ``view_once``;
* ``locationMessage`` (``isLive`` → live location), ``liveLocationMessage``;
* ``contactMessage`` / ``contactsArrayMessage``: the vCards parsed (names, numbers);
* ``pollCreationMessage`` (V1-V3 and later), ``pollUpdateMessage`` (a vote: decrypted when the
  caller's ``decrypt_vote`` can, which needs the poll's secret in whatsmeow's store - the
  selected options are then SHA-256 hashes of their names, resolved against the stored poll);
* ``buttonsResponseMessage``, ``templateButtonReplyMessage``, ``listResponseMessage``;
* operations: ``reactionMessage`` (``""`` removes), ``protocolMessage`` REVOKE and MESSAGE_EDIT;
* anything else: ``unknown`` with the field's name and its JSON form (never an empty message).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import attrs
from google.protobuf import json_format
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as E2EMessage

from .._events import MediaKind
from .._kinds import MessageKind
from .._vcard import parse_vcards

VoteDecrypter = Callable[[Any], list[bytes] | None]
"""Decrypts the vote of a ``MessageEv`` holding a ``pollUpdateMessage`` (neonize's
``decrypt_poll_vote`` takes the whole event: the key derives from its sender and chat): the
selected options' hashes, ``None`` when it cannot."""

_WRAPPERS: Final = (
    "deviceSentMessage", "ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2", "viewOnceMessageV2Extension",
    "documentWithCaptionMessage", "editedMessage",
)
_VIEW_ONCE: Final = frozenset({"viewOnceMessage", "viewOnceMessageV2", "viewOnceMessageV2Extension"})
_POLLS: Final = ("pollCreationMessage", "pollCreationMessageV2", "pollCreationMessageV3", "pollCreationMessageV4",
                 "pollCreationMessageV5", "pollCreationMessageV6")
MEDIA_FIELDS: Final[dict[str, tuple[MediaKind, str]]] = {
    "imageMessage": (MediaKind.IMAGE, "image/jpeg"),
    "videoMessage": (MediaKind.VIDEO, "video/mp4"),
    "audioMessage": (MediaKind.AUDIO, "audio/ogg"),
    "documentMessage": (MediaKind.DOCUMENT, "application/octet-stream"),
    "stickerMessage": (MediaKind.STICKER, "image/webp"),
}
"""E2E message field of an attachment -> (its media kind, the mimetype when the sender gave none)."""
_IGNORED: Final = frozenset({"messageContextInfo", "senderKeyDistributionMessage"})
"""Fields that ride along with the real content (keys, context), never a content of their own."""

RAW_LIMIT: Final = 4000
"""Characters of an unknown message's JSON form kept (a stray thumbnail must not bloat the store)."""


@attrs.frozen
class Content:
    """The kind-specific fields of a normalized message."""

    kind: MessageKind
    text: str = ""
    payload: dict[str, Any] = attrs.field(factory=dict)
    quoted_id: str | None = None
    target_id: str | None = None
    media: tuple[str, Any] | None = None  # the attachment: its E2E field and that sub-message


def unwrap(message: E2EMessage) -> tuple[E2EMessage, bool]:
    """The innermost message and whether a view-once wrapper was crossed."""
    view_once = False
    while True:
        for field in _WRAPPERS:
            if message.HasField(field) and getattr(message, field).HasField("message"):
                view_once = view_once or field in _VIEW_ONCE
                message = getattr(message, field).message
                break
        else:
            return message, view_once


def _quote(part: Any) -> str | None:
    if hasattr(part, "contextInfo") and part.HasField("contextInfo"):
        return part.contextInfo.stanzaID or None
    return None


def _media(field: str, part: Any, view_once: bool) -> Content:
    media_kind, default_mimetype = MEDIA_FIELDS[field]
    kind = MessageKind(media_kind.value)
    if kind is MessageKind.AUDIO and part.PTT:
        kind = MessageKind.PTT
    payload: dict[str, Any] = {"mimetype": part.mimetype or default_mimetype}
    if kind in (MessageKind.VIDEO, MessageKind.AUDIO, MessageKind.PTT) and part.seconds:
        payload["duration"] = part.seconds
    if kind is MessageKind.DOCUMENT:
        payload["file_name"] = part.fileName or None
        if part.pageCount:
            payload["pages"] = part.pageCount
    if kind is MessageKind.STICKER:
        payload["animated"] = bool(part.isAnimated)
    elif kind is not MessageKind.DOCUMENT and (view_once or getattr(part, "viewOnce", False)):
        payload["view_once"] = True
    return Content(kind, getattr(part, "caption", ""), payload, _quote(part), media=(field, part))


def _cards(display_name: str, vcards: list[str]) -> list[dict[str, Any]]:
    cards = []
    for vcard in vcards:
        parsed = parse_vcards(vcard) or [{"name": None, "phones": []}]
        cards.extend({**card, "name": card["name"] or display_name or None, "vcard": vcard} for card in parsed)
    return cards


def _vote(message: E2EMessage, decrypt_vote: Callable[[], list[bytes] | None] | None) -> Content:
    vote = message.pollUpdateMessage
    hashes = None if decrypt_vote is None else decrypt_vote()
    payload: dict[str, Any] = {"encrypted": hashes is None}
    if hashes is not None:
        payload["selected"] = [option.hex() for option in hashes]  # named from the stored poll
    return Content(MessageKind.POLL_VOTE, payload=payload, target_id=vote.pollCreationMessageKey.ID or None)


def _protocol(message: E2EMessage) -> Content | None:
    proto = message.protocolMessage
    target = proto.key.ID or None
    if proto.type == proto.REVOKE and target:
        return Content(MessageKind.REVOKE, target_id=target)
    if proto.type == proto.MESSAGE_EDIT and target:
        edited, _ = unwrap(proto.editedMessage)
        text = edited.conversation or edited.extendedTextMessage.text
        if not text:  # an edited caption
            for field in MEDIA_FIELDS:
                if edited.HasField(field):
                    text = getattr(edited, field).caption
        return Content(MessageKind.EDIT, text=text, target_id=target)
    return None  # ephemeral settings, key shares, history-sync notices: not messages


def _unknown(message: E2EMessage) -> Content:
    fields = [f.name for f, _ in message.ListFields() if f.name not in _IGNORED]
    raw = json_format.MessageToJson(message, indent=None)
    return Content(MessageKind.UNKNOWN, payload={"type": fields[0] if fields else "empty", "raw": raw[:RAW_LIMIT]})


def content(
    message: E2EMessage, *, view_once: bool = False, decrypt_vote: Callable[[], list[bytes] | None] | None = None,
) -> Content | None:
    """The kind-specific fields of ``message`` (see the module docstring); ``None`` for a protocol
    message that is not an operation on a message (it is not shown to anyone). ``decrypt_vote()``
    decrypts the vote of a ``pollUpdateMessage`` when given."""
    message, wrapped = unwrap(message)
    view_once = view_once or wrapped
    if message.conversation:
        return Content(MessageKind.TEXT, message.conversation)
    if message.HasField("extendedTextMessage"):
        part = message.extendedTextMessage
        return Content(MessageKind.TEXT, part.text, quoted_id=_quote(part))
    for field in MEDIA_FIELDS:
        if message.HasField(field):
            return _media(field, getattr(message, field), view_once)
    if message.HasField("locationMessage"):
        loc = message.locationMessage
        payload = {"latitude": loc.degreesLatitude, "longitude": loc.degreesLongitude}
        if loc.isLive:
            return Content(MessageKind.LIVE_LOCATION, loc.comment, payload, _quote(loc))
        payload |= {"name": loc.name or None, "address": loc.address or None, "url": loc.URL or None}
        return Content(MessageKind.LOCATION, loc.comment, payload, _quote(loc))
    if message.HasField("liveLocationMessage"):
        loc = message.liveLocationMessage
        payload = {"latitude": loc.degreesLatitude, "longitude": loc.degreesLongitude, "caption": loc.caption or None,
                   "sequence": loc.sequenceNumber}
        return Content(MessageKind.LIVE_LOCATION, loc.caption, payload, _quote(loc))
    if message.HasField("contactMessage"):
        part = message.contactMessage
        return Content(MessageKind.CONTACTS, payload={"contacts": _cards(part.displayName, [part.vcard])},
                       quoted_id=_quote(part))
    if message.HasField("contactsArrayMessage"):
        part = message.contactsArrayMessage
        cards = [card for c in part.contacts for card in _cards(c.displayName, [c.vcard])]
        return Content(MessageKind.CONTACTS, payload={"contacts": cards}, quoted_id=_quote(part))
    for field in _POLLS:
        if message.HasField(field):
            poll = getattr(message, field)
            payload = {"name": poll.name, "options": [o.optionName for o in poll.options],
                       "selectable": poll.selectableOptionsCount}
            return Content(MessageKind.POLL, payload=payload, quoted_id=_quote(poll))
    if message.HasField("pollUpdateMessage"):
        return _vote(message, decrypt_vote)
    if message.HasField("buttonsResponseMessage"):
        part = message.buttonsResponseMessage
        payload = {"id": part.selectedButtonID, "text": part.selectedDisplayText}
        return Content(MessageKind.BUTTON_REPLY, payload=payload, quoted_id=_quote(part))
    if message.HasField("templateButtonReplyMessage"):
        part = message.templateButtonReplyMessage
        payload = {"id": part.selectedID, "text": part.selectedDisplayText}
        return Content(MessageKind.BUTTON_REPLY, payload=payload, quoted_id=_quote(part))
    if message.HasField("listResponseMessage"):
        part = message.listResponseMessage
        payload = {"id": part.singleSelectReply.selectedRowID, "title": part.title,
                   "description": part.description or None}
        return Content(MessageKind.LIST_REPLY, payload=payload, quoted_id=_quote(part))
    if message.HasField("reactionMessage"):
        part = message.reactionMessage
        return Content(MessageKind.REACTION, payload={"emoji": part.text}, target_id=part.key.ID or None)
    if message.HasField("protocolMessage"):
        return _protocol(message)
    return _unknown(message)
