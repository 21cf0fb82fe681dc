"""Inbound operations on stored messages, poll votes named, and placeholders filled.

The inbound flow (:class:`~actors.tickets.TicketInbound`) stores new messages; this module
handles what *changes* a stored one, and publishes ``message.updated`` with a ``change``:

* ``edited`` - an edit by the message's author: the text changes, the replaced text is kept
  (``Store.message_versions``) and published as ``previous_body``;
* ``deleted`` - a delete for everyone: the message is marked, its text kept for admins (agents
  read :data:`~actors.flows.DELETED_TEXT` unless ``tickets.show_deleted_text``);
* ``reaction`` - a reaction added, changed or removed (``""``), one per sender;
* ``resent`` - WhatsApp re-sent a message stored as an undecryptable placeholder.

An operation never opens or reopens a ticket, never counts as unread and never becomes the
ticket's last message: it touches only its target. An operation on a message the store does not
have (sent before zapvisor kept the conversation) is dropped, logged at DEBUG.

A poll vote is a message of its own (the customer's answer), but the driver can only give the
SHA-256 hashes of the options chosen: :func:`name_votes` names them from the stored poll.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import attrs

from actors.drivers import Message, MessageKind
from actors.flows import MESSAGE_UPDATED, Publisher, as_seen, message_payload
from actors.store import Message as StoredMessage
from actors.store import Store

_LOG = logging.getLogger("zapvisor.tickets")


def publish_change(publisher: Publisher, tenant_id: str, stored: StoredMessage, change: str, *,
                   show_deleted_text: bool, **extra: Any) -> None:
    """Publish ``message.updated`` for a stored message that changed (``change``: edited, deleted,
    reaction, resent; ``extra``: the change's details), as agents may see it."""
    if stored.ticket_id is None:
        return
    payload = message_payload(as_seen(stored, show_deleted_text=show_deleted_text))
    payload.update(change=change, **extra)
    publisher.emit(tenant_id, MESSAGE_UPDATED, payload, ticket_id=stored.ticket_id)


async def apply_operation(
    store: Store, publisher: Publisher, tenant_id: str, session_id: str, op: Message, *, show_deleted_text: bool,
) -> None:
    """Apply one reaction, edit or delete for everyone to its stored target, and publish it."""
    assert op.target_id is not None  # an operation always names its target (the driver Message checks)
    hidden = {"show_deleted_text": show_deleted_text}
    match op.kind:
        case MessageKind.EDIT:
            edited = await store.edit_message(session_id, op.target_id, op.text, from_me=op.from_me)
            if edited is not None and edited.previous_body != edited.message.body:
                previous = edited.previous_body if edited.message.deleted_at is None or show_deleted_text else None
                publish_change(publisher, tenant_id, edited.message, "edited", previous_body=previous, **hidden)
            found = edited
        case MessageKind.REVOKE:
            found = await store.revoke_message(session_id, op.target_id)
            if found is not None:
                publish_change(publisher, tenant_id, found, "deleted", **hidden)
        case MessageKind.REACTION:
            emoji = op.payload.get("emoji", "")
            found = await store.react_to_message(session_id, op.target_id, op.sender_jid, emoji)
            if found is not None:
                publish_change(publisher, tenant_id, found, "reaction", reaction={"sender": op.sender_jid, "emoji": emoji},
                      **hidden)
        case _:
            raise ValueError(f"not an operation: {op.kind}")
    if found is None:
        _LOG.debug("session %s: %s %s for a message not stored (%s): dropped", session_id, op.kind, op.id, op.target_id)


async def name_votes(store: Store, session_id: str, messages: Sequence[Message]) -> list[Message]:
    """``messages`` with every decrypted poll vote's option hashes replaced by the option names of
    the stored poll (a hash no option of it has, or a poll not stored, stays a hash)."""
    named = []
    for message in messages:
        selected = message.payload.get("selected") if message.kind is MessageKind.POLL_VOTE else None
        if selected and message.target_id is not None:
            poll = await store.get_message(session_id, message.target_id)
            options = (poll.payload or {}).get("options", []) if poll is not None else []
            names = {hashlib.sha256(option.encode()).hexdigest(): option for option in options}
            message = attrs.evolve(message, payload={**message.payload, "selected": [
                names.get(choice, choice) for choice in selected
            ]})
        named.append(message)
    return named


async def fill_placeholder(store: Store, publisher: Publisher, tenant_id: str, new: Any) -> bool:
    """A message stored before (``AlreadyStored``) may be an undecryptable placeholder WhatsApp
    now re-sent: give it its content and publish it. Returns True when it was one and its media
    now waits for download (the media service is to be nudged)."""
    if new.kind == MessageKind.UNDECRYPTABLE:
        return False
    filled = await store.fill_placeholder(new)
    if filled is None:
        return False
    publish_change(publisher, tenant_id, filled, "resent", show_deleted_text=True)
    return new.media_source is not None
