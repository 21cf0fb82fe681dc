"""Small builders shared by the store tests."""

from __future__ import annotations

from actors.store import Contact, NewMessage, Store


async def seed(store: Store, *, tenant: str = "acme", session: str = "s1", jid: str = "5511@s.whatsapp.net") -> Contact:
    """A tenant, a session and one contact; returns the contact."""
    await store.upsert_tenant(tenant, tenant.title())
    await store.upsert_session(session, tenant, "main")
    return await store.upsert_contact(tenant, jid, "Bob")


def message(contact: Contact, wa_id: str, *, ticket_id: int | None = None, session: str = "s1",
            body: str = "hi", sent_at: float = 1.0, from_me: bool = False) -> NewMessage:
    return NewMessage(
        tenant_id=contact.tenant_id, session_id=session, wa_id=wa_id, contact_id=contact.id,
        ticket_id=ticket_id, from_me=from_me, body=body, sent_at=sent_at,
    )
