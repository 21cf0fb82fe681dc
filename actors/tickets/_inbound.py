"""The store-backed :class:`~actors.sessions.InboundSink`: the inbound half of DESIGN §6.

driver event → SessionActor → :meth:`TicketInbound.deliver`:

1. drop broadcasts and status updates; drop group messages unless the *session* allows groups
   (its ``allow_groups`` in the store, re-read every ``POLICY_TTL`` seconds);
2. the contact (cached by JID) and its ticket (cached; atomic find-or-create in the store, with
   the reopen window) → the :class:`~actors.tickets.TicketActor` appends the message: an
   idempotent insert, committed before the reply; a message with media gets its download job
   in the same transaction;
3. publish ``message.created`` (the ticket actor, after the commit) and ``ticket.created`` /
   ``ticket.updated`` for new and reopened tickets; nudge the media service;
4. return: only now does the session acknowledge the message to WhatsApp. A crash anywhere
   before this point means WhatsApp re-delivers it, and the store answers AlreadyStored.

Receipts move stored messages and outbox items forward (delivered, read) and are published.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import attrs
import trio

from actors.drivers import Message, Receipt, ReceiptKind
from actors.flows import (
    MESSAGE_UPDATED,
    TICKET_CREATED,
    TICKET_UPDATED,
    Publisher,
    no_publisher,
    ticket_payload,
)
from actors.sessions import BoundedCache
from actors.store import DeliveryStatus, NewMessage, Store, TicketOutcome

from ._directory import TicketDirectory
from ._messages import Appended, AppendInbound, MovedTo

POLICY_TTL = 5.0
"""Seconds a session's group policy is cached: a change made through the API applies within this."""

CONTACT_CACHE = 50_000
"""Contacts remembered (JID → id, name): a busy node's active contacts, a few MB at most."""

TICKET_CACHE = 50_000
"""Active tickets remembered ((session, contact) → ticket id)."""

_RECEIPT_STATUS = {
    ReceiptKind.DELIVERED: DeliveryStatus.DELIVERED,
    ReceiptKind.READ: DeliveryStatus.READ,
    ReceiptKind.PLAYED: DeliveryStatus.READ,
}


def is_status_or_broadcast(message: Message) -> bool:
    """Status updates and broadcast lists are never helpdesk conversations."""
    return message.is_broadcast or message.chat_jid.endswith("@broadcast")


def media_source(session_id: str, message: Message) -> str | None:
    """The JSON a media job needs to download the attachment later (None without media)."""
    media = message.media
    if media is None:
        return None
    return json.dumps({
        "session_id": session_id, "ref": media.ref, "kind": media.kind.value, "mimetype": media.mimetype,
        "size": media.size, "file_name": media.file_name, "sha256": media.sha256,
    })


@attrs.define(eq=False)
class TicketInbound:
    """See the module docstring. ``on_media`` is called after a message with media was stored."""

    store: Store
    directory: TicketDirectory
    reopen_window: float
    publisher: Publisher = no_publisher
    on_media: Callable[[], None] = lambda: None
    _contacts: BoundedCache = attrs.field(factory=lambda: BoundedCache(CONTACT_CACHE))
    _tickets: BoundedCache = attrs.field(factory=lambda: BoundedCache(TICKET_CACHE))
    _groups: dict[str, tuple[bool, float]] = attrs.field(factory=dict)  # session -> (allowed, read at)

    async def deliver(self, session_id: str, tenant_id: str, message: Message) -> None:
        """Store ``message`` durably (see the module docstring); returns after COMMIT.

        Raises StoreUnavailable / ActorFailed when it could not be stored: the session then
        fails without acknowledging, and WhatsApp re-delivers.
        """
        if is_status_or_broadcast(message):
            return
        if message.is_group and not await self._groups_allowed(session_id):
            return
        contact_id = await self._contact(tenant_id, message)
        source = media_source(session_id, message)
        new = NewMessage(
            tenant_id=tenant_id, session_id=session_id, wa_id=message.id, contact_id=contact_id, ticket_id=None,
            from_me=message.from_me, body=message.text, sent_at=message.timestamp,
            media_type=None if message.media is None else message.media.kind.value, media_source=source,
        )
        key = (session_id, contact_id)
        ticket_id = self._tickets.get(key)
        if ticket_id is None:
            ticket_id = await self._find_or_create(tenant_id, session_id, contact_id)
        while True:
            reply = await self.directory.ask(tenant_id, ticket_id, AppendInbound(new))
            match reply:
                case Appended(_, created, _):
                    self._tickets.put(key, ticket_id)
                    if created and source is not None:
                        self.on_media()
                    return
                case MovedTo(ticket):
                    ticket_id = ticket.id
                    self._tickets.put(key, ticket_id)
                case _:  # TicketRefused(not_found): the cached ticket is gone (deleted)
                    ticket_id = await self._find_or_create(tenant_id, session_id, contact_id)

    async def receipt(self, session_id: str, tenant_id: str, receipt: Receipt) -> None:
        """Move our sent messages forward (delivered, read) and publish the change."""
        status = _RECEIPT_STATUS[receipt.kind]
        for wa_id in receipt.message_ids:
            changed = await self.store.update_message_status(session_id, wa_id, status)
            await self.store.outbox_receipt(session_id, wa_id, status)
            if changed:
                stored = await self.store.get_message(session_id, wa_id)
                if stored is not None and stored.ticket_id is not None:
                    payload = {"id": stored.id, "wa_id": wa_id, "ticket_id": stored.ticket_id, "status": str(status)}
                    self.publisher.emit(tenant_id, MESSAGE_UPDATED, payload, ticket_id=stored.ticket_id)

    async def _contact(self, tenant_id: str, message: Message) -> int:
        jid = message.chat_jid  # a group conversation is one contact: the group
        name = "" if message.is_group else (message.push_name or "")
        cached = self._contacts.get((tenant_id, jid))
        if cached is not None and (not name or cached[1] == name):
            return cached[0]
        contact = await self.store.upsert_contact(tenant_id, jid, name, is_group=message.is_group)
        self._contacts.put((tenant_id, jid), (contact.id, contact.name))
        return contact.id

    async def _find_or_create(self, tenant_id: str, session_id: str, contact_id: int) -> int:
        found = await self.store.find_or_create_ticket(tenant_id, session_id, contact_id,
                                                       reopen_window=self.reopen_window)
        if found.outcome is not TicketOutcome.EXISTING:
            event = TICKET_CREATED if found.outcome is TicketOutcome.CREATED else TICKET_UPDATED
            self.publisher.emit(tenant_id, event, ticket_payload(found.ticket), ticket_id=found.ticket.id)
        self._tickets.put((session_id, contact_id), found.ticket.id)
        return found.ticket.id

    async def _groups_allowed(self, session_id: str) -> bool:
        now = trio.current_time()
        cached = self._groups.get(session_id)
        if cached is not None and now - cached[1] < POLICY_TTL:
            return cached[0]
        record = await self.store.get_session(session_id)
        allowed = bool(record is not None and record.allow_groups)
        self._groups[session_id] = (allowed, now)
        return allowed
