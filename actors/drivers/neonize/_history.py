"""neonize's ``HistorySync`` event → :class:`HistoryChunk` events (and the LID pairs it names).

After a first pairing WhatsApp sends the phone's recent chats in several ``HistorySync``
blobs (``INITIAL_BOOTSTRAP``, ``RECENT``, ``FULL``...), each a list of conversations holding
``WebMessageInfo`` records - not the ``MessageEv`` of live traffic:

* a record's chat is ``key.remoteJID``, its sender ``key.participant`` (groups) or the chat,
  ``key.fromMe`` marks the account's own, ``messageTimestamp`` is in **seconds**;
* the content is the same E2E ``Message`` as live traffic, read by the same
  :func:`._content.content` (every kind); stubs ("joined", "changed the subject"), protocol
  messages and operations on older messages (reactions, edits, revokes) are left out;
* a conversation under a LID may carry its phone JID (``pnJID``), and the blob a list of
  ``phoneNumberToLidMappings``: both become :class:`LidMapped` events, ahead of the chats.

A blob becomes chunks of at most :data:`CHUNK_MESSAGES` messages, so no frame to the daemon
grows with the size of a phone's history. Status posts (``status@broadcast``) are dropped.
"""

from __future__ import annotations

from typing import Final

from neonize.events import HistorySyncEv

from .._events import HistoryChat, HistoryChunk, LidMapped, Message
from .._kinds import OPERATIONS, MessageKind
from ._content import content
from ._convert import _media

CHUNK_MESSAGES: Final = 500
"""Messages per HistoryChunk event: ~100 KB frames at WhatsApp's typical message sizes."""


def _lid_pairs(data) -> list[LidMapped]:
    pairs = [(m.lidJID, m.pnJID) for m in data.phoneNumberToLidMappings]
    pairs += [(c.ID, c.pnJID) for c in data.conversations if c.ID.endswith("@lid") and c.pnJID]
    return [LidMapped(lid=lid, pn=pn) for lid, pn in pairs
            if lid.endswith("@lid") and pn.endswith("@s.whatsapp.net")]


def _bare(jid: str) -> str:
    """``user@server`` without a device part (``user:12@server``)."""
    user, _, server = jid.partition("@")
    return f"{user.split(':', 1)[0]}@{server}" if server else jid


def _record(chat: str, is_group: bool, info) -> Message | None:
    found = content(info.message) if info.HasField("message") else None
    if found is None or not info.key.ID or found.kind in OPERATIONS:
        return None  # a stub ("joined", "changed the subject") or an operation on an older message
    if found.kind is MessageKind.UNKNOWN and found.payload.get("type") == "empty":
        return None
    sender = _bare(info.key.participant or info.participant) if is_group else chat
    return Message(
        id=info.key.ID, chat_jid=chat, sender_jid=sender or chat, from_me=info.key.fromMe,
        timestamp=float(info.messageTimestamp), text=found.text, media=_media(found.media), is_group=is_group,
        push_name=info.pushName or None, quoted_id=found.quoted_id, kind=found.kind, payload=found.payload,
    )


def history_events(ev: HistorySyncEv) -> list[LidMapped | HistoryChunk]:
    """The LID pairs, then the chats in chunks, of one history blob (see the module docstring)."""
    data = ev.Data
    sync_type = type(data).HistorySyncType.Name(data.syncType) if data.HasField("syncType") else ""
    progress = data.progress if data.HasField("progress") else None
    events: list[LidMapped | HistoryChunk] = list(_lid_pairs(data))
    chats: list[HistoryChat] = []
    held = 0
    for conversation in data.conversations:
        jid = conversation.pnJID if conversation.ID.endswith("@lid") and conversation.pnJID else conversation.ID
        if not jid or jid.endswith("@broadcast"):
            continue
        is_group = jid.endswith("@g.us")
        records = [_record(jid, is_group, m.message) for m in conversation.messages]
        messages = sorted((m for m in records if m is not None), key=lambda m: m.timestamp)
        for start in range(0, len(messages), CHUNK_MESSAGES):
            part = messages[start:start + CHUNK_MESSAGES]
            if held + len(part) > CHUNK_MESSAGES and chats:
                events.append(HistoryChunk(chats, progress, sync_type))
                chats, held = [], 0
            chats.append(HistoryChat(jid=jid, messages=part, name=conversation.name or conversation.displayName,
                                     is_group=is_group))
            held += len(part)
    if chats:
        events.append(HistoryChunk(chats, progress, sync_type))
    return events
