"""Message kinds: what a :class:`~actors.drivers.Message` carries besides its text.

WhatsApp sends far more than text in a ``Message``: attachments, locations, contact
cards, polls and votes, button and list replies, and *operations on earlier messages*
(reactions, edits, deletes for everyone). Every driver names the kind of each message
with :class:`MessageKind` and describes it in a small JSON-ready ``payload`` (the keys
per kind are listed in :data:`PAYLOAD_KEYS`), so the store, the API, the websocket and
the webhooks see one shape whichever driver delivered it.

Operations (:data:`OPERATIONS`) carry ``target_id``: WhatsApp's id of the message they
act on. They never become messages of their own: the inbound flow applies them to the
stored target (and never opens or reopens a ticket for them).

Agents read :func:`summary`: the text of a message, or a readable line for a kind that
has none ("📍 location: Office (-22.9, -43.2)"), so no message is ever stored as empty
text; the structured payload is kept beside it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final


class MessageKind(enum.StrEnum):
    """The kind of a message (the ``kind`` column of stored messages)."""

    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    PTT = "ptt"  # a voice note (push-to-talk audio)
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    LIVE_LOCATION = "live_location"
    CONTACTS = "contacts"  # one or more contact cards (vCards)
    POLL = "poll"
    POLL_VOTE = "poll_vote"
    BUTTON_REPLY = "button_reply"
    LIST_REPLY = "list_reply"
    UNKNOWN = "unknown"  # a kind zapvisor does not know: the payload keeps its raw form
    UNDECRYPTABLE = "undecryptable"  # a placeholder until WhatsApp re-sends the message (store only)
    # operations on an earlier message (``target_id``): never stored as messages
    REACTION = "reaction"
    EDIT = "edit"
    REVOKE = "revoke"


OPERATIONS: Final = frozenset({MessageKind.REACTION, MessageKind.EDIT, MessageKind.REVOKE})
"""Kinds that act on the message named by ``target_id`` instead of being a message."""

MEDIA_KINDS: Final = frozenset({
    MessageKind.IMAGE, MessageKind.VIDEO, MessageKind.AUDIO, MessageKind.PTT, MessageKind.DOCUMENT,
    MessageKind.STICKER,
})

PAYLOAD_KEYS: Final[Mapping[MessageKind, tuple[str, ...]]] = {
    MessageKind.TEXT: (),
    MessageKind.IMAGE: ("mimetype", "view_once"),
    MessageKind.VIDEO: ("mimetype", "duration", "view_once"),
    MessageKind.AUDIO: ("mimetype", "duration", "view_once"),
    MessageKind.PTT: ("mimetype", "duration", "view_once"),
    MessageKind.DOCUMENT: ("mimetype", "file_name", "pages"),
    MessageKind.STICKER: ("mimetype", "animated"),
    MessageKind.LOCATION: ("latitude", "longitude", "name", "address", "url"),
    MessageKind.LIVE_LOCATION: ("latitude", "longitude", "caption", "sequence"),
    MessageKind.CONTACTS: ("contacts",),  # [{"name", "phones": [{"number", "wa_id", "type"}], "vcard"}]
    MessageKind.POLL: ("name", "options", "selectable"),
    MessageKind.POLL_VOTE: ("selected", "encrypted"),  # selected: option names, when decrypted
    MessageKind.BUTTON_REPLY: ("id", "text"),
    MessageKind.LIST_REPLY: ("id", "title", "description"),
    MessageKind.UNKNOWN: ("type", "raw"),  # the field's name and its JSON form
    MessageKind.UNDECRYPTABLE: ("unavailable",),
    MessageKind.REACTION: ("emoji",),  # "" removes the sender's reaction
    MessageKind.EDIT: (),  # the new text is the operation's text
    MessageKind.REVOKE: (),
}
"""The payload keys each kind may carry (absent keys are unknown; extra keys are refused)."""

PLACEHOLDER_TEXT: Final = "⏳ waiting for this message (it could not be decrypted; WhatsApp will re-send it)"
"""What agents read for an undecryptable message until WhatsApp re-sends it."""

_ICONS: Final[Mapping[MessageKind, str]] = {
    MessageKind.IMAGE: "🖼 image", MessageKind.VIDEO: "🎬 video", MessageKind.AUDIO: "🎵 audio",
    MessageKind.PTT: "🎤 voice note", MessageKind.DOCUMENT: "📄 document", MessageKind.STICKER: "🏷 sticker",
}


def check_payload(kind: MessageKind, payload: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` when ``payload`` has a key its kind does not define."""
    extra = set(payload) - set(PAYLOAD_KEYS[kind])
    if extra:
        raise ValueError(f"payload of a {kind} message has unknown keys {sorted(extra)}")


def _point(payload: Mapping[str, Any]) -> str:
    return f"({payload.get('latitude', 0.0):.6g}, {payload.get('longitude', 0.0):.6g})"


def _duration(payload: Mapping[str, Any]) -> str:
    seconds = payload.get("duration")
    return f" ({int(seconds) // 60}:{int(seconds) % 60:02d})" if seconds else ""


def summary(kind: MessageKind, payload: Mapping[str, Any], text: str = "") -> str:
    """The line agents read for a message: its text (a body or a caption) when it has one,
    else a readable description of its kind. Never empty."""
    if kind is MessageKind.UNDECRYPTABLE:
        return PLACEHOLDER_TEXT
    if text:
        return text
    match kind:
        case MessageKind.TEXT:
            return "(empty message)"
        case _ if kind in _ICONS:
            name = payload.get("file_name")
            once = " (view once)" if payload.get("view_once") else ""
            return f"{_ICONS[kind]}{once}{_duration(payload)}" + (f": {name}" if name else "")
        case MessageKind.LOCATION:
            label = " - ".join(part for part in (payload.get("name"), payload.get("address")) if part)
            return f"📍 location: {label + ' ' if label else ''}{_point(payload)}"
        case MessageKind.LIVE_LOCATION:
            return f"📍 live location {_point(payload)}"
        case MessageKind.CONTACTS:
            cards = payload.get("contacts") or []
            return "👤 contact: " + "; ".join(
                " ".join([card.get("name") or "?", *(phone["number"] for phone in card.get("phones", ()))])
                for card in cards
            ) if cards else "👤 contact card"
        case MessageKind.POLL:
            options = ", ".join(payload.get("options") or ())
            return f"📊 poll: {payload.get('name', '')} [{options}]"
        case MessageKind.POLL_VOTE:
            if payload.get("selected") is not None:
                return "🗳 poll vote: " + (", ".join(payload["selected"]) or "(vote withdrawn)")
            return "🗳 poll vote (encrypted)"
        case MessageKind.BUTTON_REPLY:
            return f"🔘 {payload.get('text') or payload.get('id', '')}"
        case MessageKind.LIST_REPLY:
            return f"📋 {payload.get('title') or payload.get('id', '')}"
        case MessageKind.REACTION:
            return f"reacted {payload.get('emoji')}" if payload.get("emoji") else "removed a reaction"
        case MessageKind.REVOKE:
            return "deleted a message"
    return f"❔ unsupported message ({payload.get('type', kind)})"
