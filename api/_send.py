"""Sending to a ticket's contact: the one path of ``POST .../tickets/{id}/messages`` and the
websocket's ``send`` (:class:`api._ws.NodeOutbox`), so both refuse and answer alike.

:func:`send_target` checks the ticket before anything is written: the tenant's (else 404), not
closed (else 409, unless the key was accepted before the close: a repeat still answers with the
first send), with a contact. :func:`submit` hands the :class:`~actors.outbox.Send` to the node's
outbox service, which answers once the row is committed (a repeat of the key creates nothing).
"""

from __future__ import annotations

from typing import Any

from actors.drivers import Quote
from actors.outbox import OutboxRefused, Send
from actors.store import Contact, Enqueued, Ticket, TicketStatus
from supervisor import ActorFailed, ActorStopped, AskTimeout

from ._errors import BadRequest, Conflict, NotFound, Unavailable

SEND_TIMEOUT = 30.0
"""Seconds the outbox may take to answer: it answers once the row is committed (one group-commit
batch, far below this)."""


async def ticket_of(store: Any, tenant_id: str, ticket_id: int) -> Ticket:
    """The tenant's ticket. Raises NotFound (field ``ticket_id``): none, or another tenant's."""
    ticket = await store.get_ticket(ticket_id)
    if ticket is None or ticket.tenant_id != tenant_id:
        raise NotFound(f"no ticket {ticket_id}", "ticket_id")
    return ticket


async def send_target(store: Any, tenant_id: str, ticket_id: int, idempotency_key: str) -> tuple[Ticket, Contact]:
    """The ticket a send with ``idempotency_key`` may go to, and its contact.

    Raises:
        NotFound: no such ticket for the tenant, or it has no contact (field ``ticket_id``).
        Conflict: the ticket is closed and the key was not accepted before (field ``ticket_id``).
    """
    ticket = await ticket_of(store, tenant_id, ticket_id)
    if ticket.status is TicketStatus.CLOSED and await store.find_outbox(tenant_id, idempotency_key) is None:
        raise Conflict(f"ticket {ticket_id} is closed: reopen it (POST .../reopen) before sending", "ticket_id")
    contact = await store.get_contact(ticket.contact_id)
    if contact is None:
        raise NotFound(f"ticket {ticket_id} has no contact", "ticket_id")
    return ticket, contact


async def quote_of(store: Any, ticket_id: int, message_id: int | None) -> Quote | None:
    """The :class:`~actors.drivers.Quote` of the ticket's message ``message_id`` a reply quotes
    (None without one). Raises NotFound (field ``quoted_message_id``): not a message of the ticket."""
    if message_id is None:
        return None
    message = await store.get_message_by_id(message_id)
    if message is None or message.ticket_id != ticket_id:
        raise NotFound(f"no message {message_id} in ticket {ticket_id} to quote", "quoted_message_id")
    text = "" if message.deleted_at is not None else message.body
    return Quote(message.wa_id, message.from_me, text)


async def submit(node: Any, send: Send) -> Enqueued:
    """Queue ``send`` with the node's outbox service; its answer once the row is committed (``created``
    False for a repeat of the key: nothing new is sent).

    Raises:
        Unavailable: the outbox did not answer within :data:`SEND_TIMEOUT` (or is stopping).
        BadRequest: the outbox refused the send (the field it names).
    """
    try:
        reply = await node.system.ref("/services/outbox").ask(send, timeout=SEND_TIMEOUT)
    except (AskTimeout, ActorStopped, ActorFailed) as error:
        raise Unavailable(f"the outbox did not answer: {type(error).__name__}") from None
    if isinstance(reply, OutboxRefused):
        raise BadRequest(reply.message, reply.field)
    return reply
