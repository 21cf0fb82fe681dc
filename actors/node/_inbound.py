"""The node's default inbound sink: every inbound message is durable before it is acknowledged.

contact (upsert) → ticket (atomic find-or-create, reopen window) → message
(idempotent insert: a re-delivery is ``AlreadyStored``, not a duplicate). Only
then does ``deliver`` return, and only then does the session ack WhatsApp.
"""

from __future__ import annotations

import attrs

from actors.drivers import Message, Receipt, ReceiptKind
from actors.store import DeliveryStatus, NewMessage, Store

REOPEN_WINDOW = 7200.0
"""A contact writing within 2 h of a closed ticket reopens it (Whaticket's rule)."""

_RECEIPT_STATUS = {
    ReceiptKind.DELIVERED: DeliveryStatus.DELIVERED,
    ReceiptKind.READ: DeliveryStatus.READ,
    ReceiptKind.PLAYED: DeliveryStatus.READ,
}


@attrs.define(eq=False)
class StoreInbound:
    store: Store
    reopen_window: float = REOPEN_WINDOW

    async def deliver(self, session_id: str, tenant_id: str, message: Message) -> None:
        contact = await self.store.upsert_contact(tenant_id, message.chat_jid, message.push_name or "",
                                                  is_group=message.is_group)
        found = await self.store.find_or_create_ticket(tenant_id, session_id, contact.id,
                                                       reopen_window=self.reopen_window)
        await self.store.insert_message(NewMessage(
            tenant_id=tenant_id, session_id=session_id, wa_id=message.id, contact_id=contact.id,
            ticket_id=found.ticket.id, from_me=message.from_me, body=message.text, sent_at=message.timestamp,
            media_type=message.media.kind.value if message.media is not None else None,
        ))

    async def receipt(self, session_id: str, tenant_id: str, receipt: Receipt) -> None:
        for wa_id in receipt.message_ids:
            await self.store.update_message_status(session_id, wa_id, _RECEIPT_STATUS[receipt.kind])
