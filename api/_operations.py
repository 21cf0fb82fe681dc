"""Agents' operations on a ticket's messages: react, edit, delete for everyone.

The one path of the REST endpoints (``POST .../messages/{id}/reaction``, ``PATCH`` and ``DELETE
.../messages/{id}``) and the websocket's ``react`` / ``edit`` / ``delete`` ops, so both refuse
and answer alike. :func:`operate` checks the ticket and the message, asks the session's actor
to send the operation (:class:`~actors.sessions.SendOperation`), then records it in the store
and publishes ``message.updated`` with the ``change`` (as for a contact's operations).

Not through the outbox: WhatsApp applies each operation idempotently (the same reaction, the
same new text, the same delete again change nothing), so a request whose answer was lost is
simply repeated by the agent; there is no duplicate message to prevent. The session must be
connected (else 503, nothing changed). Edits and deletes apply to the agents' own messages only
(WhatsApp allows nothing else); reactions to any message of a one-to-one ticket (a group
message's author is not stored, and WhatsApp's key needs it).
"""

from __future__ import annotations

import secrets
from typing import Any

from actors.drivers import MessageKind, OutboundOperation
from actors.flows import as_seen
from actors.sessions import RequestFailed, SendOperation
from actors.store import Message
from actors.tickets import publish_change
from supervisor import ActorFailed, ActorStopped, AskTimeout, ChildNotFound

from ._errors import Conflict, NotFound, Unavailable
from ._send import ticket_of

OPERATION_TIMEOUT = 30.0
"""Seconds the session may take to have WhatsApp answer (as for a send)."""

_CHANGES = {MessageKind.REACTION: "reaction", MessageKind.EDIT: "edited", MessageKind.REVOKE: "deleted"}


async def _target(store: Any, tenant_id: str, ticket_id: int, message_id: int, kind: MessageKind):
    ticket = await ticket_of(store, tenant_id, ticket_id)
    message = await store.get_message_by_id(message_id)
    if message is None or message.ticket_id != ticket_id:
        raise NotFound(f"no message {message_id} in ticket {ticket_id}", "message_id")
    contact = await store.get_contact(ticket.contact_id)
    if contact is None:
        raise NotFound(f"ticket {ticket_id} has no contact", "ticket_id")
    if kind is not MessageKind.REACTION and not message.from_me:
        raise Conflict(f"only the agents' own messages can be {_CHANGES[kind]}; message {message_id} is the "
                       "contact's", "message_id")
    if kind is MessageKind.REACTION and contact.is_group and not message.from_me:
        raise Conflict("reactions to a group member's message are not supported (its author is not stored)",
                       "message_id")
    if message.deleted_at is not None:
        raise Conflict(f"message {message_id} was deleted for everyone", "message_id")
    return ticket, contact, message


async def operate(node: Any, tenant_id: str, ticket_id: int, message_id: int, kind: MessageKind, text: str = "") -> Message:
    """Send the operation through the ticket's session, record it and publish it; returns the
    message as it is now. Raises NotFound, Conflict (see the module docstring) or Unavailable."""
    store = node.store
    ticket, contact, message = await _target(store, tenant_id, ticket_id, message_id, kind)
    operation = OutboundOperation(kind=kind, target_id=message.wa_id, target_from_me=message.from_me, text=text)
    request = SendOperation(contact.jid, operation, secrets.token_hex(8))
    try:
        reply = await node.system.ref(f"/tenants/{tenant_id}/sessions/{ticket.session_id}").ask(
            request, timeout=OPERATION_TIMEOUT)
    except (AskTimeout, ActorStopped, ActorFailed, ChildNotFound) as error:
        raise Unavailable(f"the session did not answer: {type(error).__name__}") from None
    if isinstance(reply, RequestFailed):
        raise Unavailable(f"WhatsApp did not take the {kind}: {reply.error_type}: {reply.message}", "session_id")
    show = node.settings.tickets.show_deleted_text
    extra: dict[str, Any] = {}
    match kind:
        case MessageKind.EDIT:
            edited = await store.edit_message(ticket.session_id, message.wa_id, text, from_me=True)
            updated, extra["previous_body"] = edited.message, edited.previous_body
        case MessageKind.REVOKE:
            updated = await store.revoke_message(ticket.session_id, message.wa_id)
        case _:
            me = node.board.get(ticket.session_id)
            sender = (me.jid if me is not None and me.jid else None) or "me"
            updated = await store.react_to_message(ticket.session_id, message.wa_id, sender, text)
            extra["reaction"] = {"sender": sender, "emoji": text}
    if updated is None:  # deleted from the store meanwhile
        raise NotFound(f"no message {message_id} in ticket {ticket_id}", "message_id")
    publish_change(node.hub, tenant_id, updated, _CHANGES[kind], show_deleted_text=show, **extra)
    return as_seen(updated, show_deleted_text=show)
