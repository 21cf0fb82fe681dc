"""The publish hook: how the flows tell the realtime hub what just happened.

The hook is the hub's :class:`~actors.hub.Publisher` protocol,
``emit(tenant_id, type, payload, *, ticket_id=None)``: the event goes to the ``tenant:<id>``
room, to ``ticket:<id>`` when given, and to the tenant's webhooks. The flows call it *after*
the change is committed; it never blocks. :data:`no_publisher` drops everything (no hub).
"""

from __future__ import annotations

from typing import Any

import attrs

from actors.hub import Publisher
from actors.store import Message, OutboxItem, Ticket

MESSAGE_CREATED = "message.created"
MESSAGE_UPDATED = "message.updated"  # media stored, delivery status moved, edited, deleted, reacted to, re-sent
MESSAGE_SEND_UNKNOWN = "message.send_unknown"  # a send's outcome is unknown: never re-sent without an admin retry
TICKET_CREATED = "ticket.created"
TICKET_UPDATED = "ticket.updated"  # accepted, transferred, closed, reopened
OUTBOX_UPDATED = "outbox.updated"  # sending, sent, failed, unknown, delivered, read
OUTBOX_PAUSED = "outbox.paused"  # a session's sends wait (banned, logged out, disconnected)
OUTBOX_RESUMED = "outbox.resumed"


class NoPublisher:
    """A :class:`Publisher` with no hub behind it: events go nowhere."""

    def emit(self, tenant_id: str, type: str, payload: dict, *, ticket_id: int | str | None = None) -> None:
        return None


no_publisher: Publisher = NoPublisher()


def ticket_payload(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id, "tenant_id": ticket.tenant_id, "session_id": ticket.session_id,
        "contact_id": ticket.contact_id, "status": str(ticket.status), "user_id": ticket.user_id,
        "queue": ticket.queue, "unread": ticket.unread, "last_message": ticket.last_message,
        "last_message_at": ticket.last_message_at,
    }


DELETED_TEXT = "🚫 This message was deleted"
"""What agents read instead of a message deleted for everyone (unless ``tickets.show_deleted_text``)."""


def as_seen(message: Message, *, show_deleted_text: bool) -> Message:
    """``message`` as an agent sees it: deleted for everyone, its text and payload are withheld
    (admins, or everyone with ``show_deleted_text``, still read them)."""
    if message.deleted_at is None or show_deleted_text:
        return message
    return attrs.evolve(message, body=DELETED_TEXT, raw_body=None, payload=None)


def message_payload(message: Message) -> dict[str, Any]:
    return {
        "id": message.id, "wa_id": message.wa_id, "session_id": message.session_id,
        "ticket_id": message.ticket_id, "contact_id": message.contact_id, "from_me": message.from_me,
        "body": message.body, "media_type": message.media_type, "media_path": message.media_path,
        "status": str(message.status), "sent_at": message.sent_at, "quoted_wa_id": message.quoted_wa_id,
        "kind": message.kind, "payload": message.payload, "edited_at": message.edited_at,
        "deleted": message.deleted_at is not None, "reactions": message.reactions,
    }


def outbox_payload(item: OutboxItem) -> dict[str, Any]:
    return {
        "id": item.id, "session_id": item.session_id, "ticket_id": item.ticket_id,
        "idempotency_key": item.idempotency_key, "message_id": item.message_id, "to": item.to_jid,
        "wa_id": item.wa_id, "status": str(item.status), "delivery": str(item.delivery),
        "attempts": item.attempts, "last_error": item.last_error,
    }
