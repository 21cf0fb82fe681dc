"""Tickets of a tenant (agents' work): list by status, get, accept, transfer, close, reopen,
messages (paginated), and sending a message with an ``Idempotency-Key``.

Ticket changes are messages to the ticket's actor through the node's
:class:`~actors.tickets.TicketDirectory` (one actor per ticket serializes them);
sends are :class:`~actors.outbox.Send` messages to the outbox service, durable when
answered. Reads come from the store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

import trio
from pydantic import Field
from quart import Blueprint

from actors.drivers import MediaKind, MessageKind
from actors.flows import as_seen
from actors.media import detect_extension, write_atomically
from actors.outbox import MediaFile, Send
from actors.store import TicketStatus
from actors.tickets import Accept, Close, Reopen, TicketRefused, TicketUnavailable, Transfer
from supervisor import ActorFailed, ActorStopped, AskTimeout

from ._auth import Principal
from ._errors import BadRequest, Conflict, NotFound, Unavailable
from ._forward import forward_to_owner
from ._operations import operate
from ._routing import Auth, endpoint, path_param, state
from ._send import quote_of, send_target, submit, ticket_of
from ._validate import MAX_KEY, Body, Id, Key, Limit, Offset, Query, Text, text

bp = Blueprint("tickets", __name__)

path_param("ticket_id", Id)
path_param("message_id", Id)

STATUSES = tuple(s.value for s in TicketStatus)
MEDIA_KINDS = tuple(kind.value for kind in MediaKind)


class UserBody(Body):
    user_id: Annotated[Id, Field(description="default: the token's user")] = None


class TransferBody(Body):
    user_id: Annotated[Id, Field(description="none: back to pending")] = None
    queue: text(200) = None


class Media(Body):
    data: Annotated[str, Field(min_length=1, description="the file, base64")]
    mimetype: text(200)
    file_name: text(255) = None
    kind: Annotated[Literal[MEDIA_KINDS], Field(
        description="default: from the mimetype (image, video, audio, else document)")] = None


class SendBody(Body):
    text: Annotated[Text, Field(description="the message, or the attachment's caption; required without media")] = None
    media: Media = None
    quoted_message_id: Annotated[Id, Field(description="a message of the ticket this text replies to (quotes)")] = None


class SendHeaders(Query):
    idempotency_key: Annotated[Key, Field(alias="Idempotency-Key", description=(
        f"names the request (1 to {MAX_KEY} characters): a repeat returns the first send"))]


class ListQuery(Query):
    status: Literal[STATUSES] = None
    limit: Limit = 100


class MessagesQuery(Query):
    after_id: Annotated[Offset, Field(description="the last message id seen (0: from the start)")] = 0
    limit: Limit = 100


async def ticket_or_404(tenant_id: str, ticket_id: int):
    return await ticket_of(state().node.store, tenant_id, ticket_id)


async def _user(who: Principal, tenant_id: str, user_id: int | None, *, required: bool) -> int | None:
    """The acting user: ``user_id`` from the body (checked to be the tenant's), else the token's user."""
    if user_id is None:
        if who.user is None and required:
            raise BadRequest("user_id is required with the admin token", "user_id")
        return who.user
    user = await state().node.store.get_user(user_id)
    if user is None or user.tenant_id != tenant_id:
        raise NotFound(f"no user {user_id} in tenant {tenant_id!r}", "user_id")
    return user_id


async def _ask_ticket(tenant_id: str, ticket_id: int, message: Any) -> Any:
    directory = state().node.flows.directory
    try:
        reply = await directory.ask(tenant_id, ticket_id, message)
    except (TicketUnavailable, ActorFailed, ActorStopped, AskTimeout) as error:
        raise Unavailable(f"ticket {ticket_id} did not answer: {type(error).__name__}") from None
    if isinstance(reply, TicketRefused):
        error = {"not_found": NotFound, "busy": Unavailable}.get(reply.code, Conflict)
        raise error(reply.message, "ticket_id")
    return reply


@endpoint(bp, "GET", "/tenants/{tenant_id}/tickets", summary="The tenant's tickets, most recent first",
          auth=Auth.TENANT, query=ListQuery)
async def list_tickets(who: Principal, tenant_id: str, query: ListQuery):
    return await state().node.store.list_tickets(tenant_id, query.status, limit=query.limit)


@endpoint(bp, "GET", "/tenants/{tenant_id}/tickets/{ticket_id}", summary="Get a ticket", auth=Auth.TENANT)
async def get_ticket(who: Principal, tenant_id: str, ticket_id: int):
    return await ticket_or_404(tenant_id, ticket_id)


@endpoint(bp, "POST", "/tenants/{tenant_id}/tickets/{ticket_id}/accept",
          summary="Assign the ticket to a user (default: the token's) and open it; its unread count goes to 0",
          auth=Auth.TENANT, body=UserBody)
async def accept_ticket(who: Principal, tenant_id: str, ticket_id: int, body: UserBody):
    user_id = await _user(who, tenant_id, body.user_id, required=True)
    await ticket_or_404(tenant_id, ticket_id)
    return await _ask_ticket(tenant_id, ticket_id, Accept(user_id))  # one write: open, assigned, read


@endpoint(bp, "POST", "/tenants/{tenant_id}/tickets/{ticket_id}/transfer",
          summary="Move the ticket to a queue and/or a user (no user: back to pending)", auth=Auth.TENANT,
          body=TransferBody)
async def transfer_ticket(who: Principal, tenant_id: str, ticket_id: int, body: TransferBody):
    user_id = None if body.user_id is None else await _user(who, tenant_id, body.user_id, required=False)
    await ticket_or_404(tenant_id, ticket_id)
    return await _ask_ticket(tenant_id, ticket_id, Transfer(body.queue, user_id))


@endpoint(bp, "POST", "/tenants/{tenant_id}/tickets/{ticket_id}/close", summary="Close the ticket",
          auth=Auth.TENANT)
async def close_ticket(who: Principal, tenant_id: str, ticket_id: int):
    await ticket_or_404(tenant_id, ticket_id)
    return await _ask_ticket(tenant_id, ticket_id, Close())


@endpoint(bp, "POST", "/tenants/{tenant_id}/tickets/{ticket_id}/reopen",
          summary="Reopen a closed ticket (open with a user, else pending)", auth=Auth.TENANT, body=UserBody)
async def reopen_ticket(who: Principal, tenant_id: str, ticket_id: int, body: UserBody):
    user_id = None if body.user_id is None else await _user(who, tenant_id, body.user_id, required=False)
    await ticket_or_404(tenant_id, ticket_id)
    return await _ask_ticket(tenant_id, ticket_id, Reopen(user_id))


@endpoint(bp, "GET", "/tenants/{tenant_id}/tickets/{ticket_id}/messages",
          summary="The ticket's messages in arrival order, paged with after_id", auth=Auth.TENANT,
          query=MessagesQuery)
async def ticket_messages(who: Principal, tenant_id: str, ticket_id: int, query: MessagesQuery):
    await ticket_or_404(tenant_id, ticket_id)
    node = state().node
    messages = await node.store.list_messages(ticket_id, after_id=query.after_id, limit=query.limit)
    next_after_id = messages[-1].id if len(messages) == query.limit else None
    show = who.manages_tenant or node.settings.tickets.show_deleted_text
    return {"messages": [as_seen(m, show_deleted_text=show) for m in messages], "next_after_id": next_after_id}


@endpoint(bp, "GET", "/tenants/{tenant_id}/tickets/{ticket_id}/messages/{message_id}/versions",
          summary="The texts edits replaced on a message, oldest first (withheld from agents when it was deleted)",
          auth=Auth.TENANT)
async def message_versions(who: Principal, tenant_id: str, ticket_id: int, message_id: int):
    await ticket_or_404(tenant_id, ticket_id)
    node = state().node
    message = await node.store.get_message_by_id(message_id)
    if message is None or message.ticket_id != ticket_id:
        raise NotFound(f"no message {message_id} in ticket {ticket_id}", "message_id")
    hidden = message.deleted_at is not None and not (who.manages_tenant or node.settings.tickets.show_deleted_text)
    return {"versions": [] if hidden else await node.store.message_versions(message_id)}


class ReactionBody(Body):
    emoji: Annotated[str, Field(max_length=32, description='the reaction; "" removes the agents\' reaction')]


class EditBody(Body):
    text: Annotated[Text, Field(description="the message's new text")]


@endpoint(bp, "POST", "/tenants/{tenant_id}/tickets/{ticket_id}/messages/{message_id}/reaction",
          summary="React to a message of the ticket (\"\" removes the reaction); sent through the session at once",
          auth=Auth.TENANT, body=ReactionBody)
async def react_to_message(who: Principal, tenant_id: str, ticket_id: int, message_id: int, body: ReactionBody):
    return await _operate(tenant_id, ticket_id, message_id, MessageKind.REACTION, body.emoji)


@endpoint(bp, "PATCH", "/tenants/{tenant_id}/tickets/{ticket_id}/messages/{message_id}",
          summary="Edit an agent's sent message (the replaced text is kept: .../versions)", auth=Auth.TENANT,
          body=EditBody)
async def edit_message(who: Principal, tenant_id: str, ticket_id: int, message_id: int, body: EditBody):
    return await _operate(tenant_id, ticket_id, message_id, MessageKind.EDIT, body.text)


@endpoint(bp, "DELETE", "/tenants/{tenant_id}/tickets/{ticket_id}/messages/{message_id}",
          summary="Delete an agent's sent message for everyone", auth=Auth.TENANT)
async def delete_message(who: Principal, tenant_id: str, ticket_id: int, message_id: int):
    result = await _operate(tenant_id, ticket_id, message_id, MessageKind.REVOKE)
    return None if isinstance(result, dict) else result  # 204, or the owner node's answer


async def _operate(tenant_id: str, ticket_id: int, message_id: int, kind: MessageKind, text: str = ""):
    """Where the ticket's session runs (another node: the request goes there, :mod:`api._forward`)."""
    ticket = await ticket_or_404(tenant_id, ticket_id)
    if (forwarded := await forward_to_owner(ticket.session_id)) is not None:
        return forwarded
    return {"message": await operate(state().node, tenant_id, ticket_id, message_id, kind, text)}


@endpoint(bp, "POST", "/tenants/{tenant_id}/tickets/{ticket_id}/messages",
          summary="Send a text or an attachment to the ticket's contact (header Idempotency-Key: a repeat "
                  "sends nothing new); a closed ticket is a 409",
          auth=Auth.TENANT, body=SendBody, headers=SendHeaders, status=202)
async def send_message(who: Principal, tenant_id: str, ticket_id: int, body: SendBody, headers: SendHeaders):
    if body.text is None and body.media is None:
        raise BadRequest("text is required without media", "text")
    if body.media is not None and body.quoted_message_id is not None:
        raise BadRequest("a quote goes with a text reply, not an attachment", "quoted_message_id")
    node = state().node
    ticket, contact = await send_target(node.store, tenant_id, ticket_id, headers.idempotency_key)
    quote = await quote_of(node.store, ticket_id, body.quoted_message_id)
    attachment = None if body.media is None else await _store_attachment(tenant_id, body.media)
    send = Send(tenant_id, ticket.session_id, headers.idempotency_key, contact.jid, body.text or "", ticket_id,
                attachment, quote)
    reply = await submit(node, send)
    return {"created": reply.created, "item": reply.item}


async def _store_attachment(tenant_id: str, media: Media) -> MediaFile:
    """Decode an attachment and write it under ``<media.dir>/<tenant>/outbound/`` before the send.

    The file is named by its SHA-256, so a retried request finds the same file; the
    outbox row then keeps only its path (rows stay small, the bytes are written once).
    """
    try:
        data = base64.b64decode(media.data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("media.data must be base64", "media.data") from None
    limit = state().node.settings.media.max_bytes
    if not data or len(data) > limit:
        raise BadRequest(f"media.data must be 1 to {limit} bytes once decoded", "media.data")
    kind = media.kind or _kind_of(media.mimetype)
    name = f"{hashlib.sha256(data).hexdigest()}.{detect_extension(data, media.mimetype)}"
    root = Path(state().node.settings.media.dir)
    path = await trio.to_thread.run_sync(write_atomically, root, Path(tenant_id) / "outbound" / name, data)
    return MediaFile(str(path), kind, media.mimetype, media.file_name)


def _kind_of(mimetype: str) -> str:
    major = mimetype.split("/", 1)[0]
    return {"image": "image", "video": "video", "audio": "audio"}.get(major, "document")
