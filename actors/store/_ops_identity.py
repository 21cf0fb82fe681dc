"""Customer identity: a LID (``...@lid``) and a phone-number JID are one contact (DESIGN §9).

WhatsApp hides some customers' phone numbers behind a LID; the same customer may write under
either form, and which one an event carries depends on the client, the chat and the moment. The
rule kept here, per tenant:

* **Resolution.** A contact written under a LID whose phone JID is known (``lid_map``) is the
  phone JID's contact: :func:`~._lid.resolve_jid` runs inside every contact upsert, so a conversation
  opened under the LID after the mapping was learned lands on the phone number's contact and
  ticket.
* **Merge.** A mapping learned later (:class:`LearnLid`) folds the LID's contact into the phone
  JID's contact — the phone contact is kept (its id is what every cache of ``jid -> contact``
  already holds), created from the LID contact's name if there was none. Per session, when both
  had an active (open or pending) ticket, the **older** ticket (lower id) is kept: the newer one's
  messages move into it (unread counts add up, the later last message wins) and it is closed,
  empty. Every other ticket and message of the LID contact moves to the phone contact, and the
  LID contact is deleted. Deterministic (the same inputs always keep the same rows) and
  idempotent: learning a known mapping again finds no LID contact and changes nothing.
* **Concurrency.** Both paths first upsert the ``(tenant, lid)`` row of ``lid_map`` (a
  conversation opened under an unknown LID inserts it with ``pn`` NULL): on PostgreSQL the
  upsert locks that row, so a merge and a conversation opened under the same LID on another
  node run one after the other, and the later one sees what the earlier committed (READ
  COMMITTED re-reads per statement). The phone contact is upserted, never inserted blindly, so a
  conversation opened under the phone JID meanwhile waits on its row and is merged, not
  duplicated. SQLite has one writer: every op is already serialized.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._ops_core import InsertMessages, UpsertContact, insert_messages
from ._records import Contact, Inserted, NewMessage, from_row

@attrs.frozen
class LidMerge:
    """What :class:`LearnLid` did: ``contact`` is the phone contact (None: the LID had no contact,
    nothing moved); ``merged_contact`` the deleted LID contact's id; ``kept`` maps each session
    whose two active tickets were joined to the ticket kept, ``closed`` lists the emptied ones;
    ``moved`` every ticket id that changed contact."""

    contact: Contact | None = None
    merged_contact: int | None = None
    kept: dict[str, int] = attrs.field(factory=dict)
    closed: tuple[int, ...] = ()
    moved: tuple[int, ...] = ()


_ACTIVE = "status IN ('open', 'pending')"


@attrs.frozen
class LearnLid:
    """Record that ``lid`` is ``pn`` in ``tenant_id`` and merge their contacts (module docstring)."""

    tenant_id: str
    lid: str
    pn: str

    async def apply(self, tx: Any, now: float) -> LidMerge:
        await tx.execute(
            "INSERT INTO lid_map (tenant_id, lid, pn, updated_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (tenant_id, lid) DO UPDATE SET pn = excluded.pn, updated_at = excluded.updated_at",
            self.tenant_id, self.lid, self.pn, now,
        )
        lid_row = await tx.fetchrow("SELECT * FROM contacts WHERE tenant_id = $1 AND jid = $2", self.tenant_id, self.lid)
        if lid_row is None:
            return LidMerge()
        lid_contact = from_row(Contact, lid_row)
        # the phone contact: upserted (a concurrent writer of it waits, or is waited for); a name
        # only fills an empty one
        phone_row = await tx.fetchrow(
            "INSERT INTO contacts (tenant_id, jid, name, is_group, created_at, updated_at, raw_name) "
            "VALUES ($1, $2, $3, 0, $4, $4, $5) ON CONFLICT (tenant_id, jid) DO UPDATE SET "
            "name = CASE WHEN contacts.name = '' THEN excluded.name ELSE contacts.name END, "
            "updated_at = excluded.updated_at RETURNING *",
            self.tenant_id, self.pn, lid_contact.name, now, lid_contact.raw_name,
        )
        phone = from_row(Contact, phone_row)
        keep, drop = phone.id, lid_contact.id
        # lock both contacts' tickets before reading them: an insert bumping one waits for us
        await tx.execute("UPDATE tickets SET updated_at = updated_at WHERE contact_id IN ($1, $2)", keep, drop)
        active = await tx.fetch(
            f"SELECT * FROM tickets WHERE contact_id IN ($1, $2) AND {_ACTIVE} ORDER BY session_id, id", keep, drop,
        )
        by_session: dict[str, list[Any]] = {}
        for row in active:
            by_session.setdefault(row["session_id"], []).append(row)
        kept, closed = {}, []
        for session_id, rows in by_session.items():
            if len(rows) < 2:
                continue
            older, newer = rows[0], rows[1]  # ORDER BY id: the older ticket is kept
            await _join(tx, older, newer, now)
            kept[session_id], closed = older["id"], [*closed, newer["id"]]
        moved = await tx.fetch("UPDATE tickets SET contact_id = $1 WHERE contact_id = $2 RETURNING id", keep, drop)
        await tx.execute("UPDATE messages SET contact_id = $1 WHERE contact_id = $2", keep, drop)
        await tx.execute("DELETE FROM contacts WHERE id = $1", drop)
        return LidMerge(phone, drop, kept, tuple(closed), tuple(row["id"] for row in moved))


async def _join(tx: Any, older: Any, newer: Any, now: float) -> None:
    """Move ``newer``'s messages into ``older`` (unread added, the later last message kept) and close it."""
    await tx.execute("UPDATE messages SET ticket_id = $1 WHERE ticket_id = $2", older["id"], newer["id"])
    newer_last = newer["last_message_at"] is not None and (
        older["last_message_at"] is None or newer["last_message_at"] >= older["last_message_at"]
    )
    source = newer if newer_last else older
    await tx.execute(
        "UPDATE tickets SET unread = $2, last_message = $3, last_message_at = $4, updated_at = $5 WHERE id = $1",
        older["id"], older["unread"] + newer["unread"], source["last_message"], source["last_message_at"], now,
    )
    await tx.execute(
        "UPDATE tickets SET status = 'closed', closed_at = $2, unread = 0, last_message = NULL, "
        "last_message_at = NULL, updated_at = $2 WHERE id = $1",
        newer["id"], now,
    )


@attrs.frozen
class SetSessionOptions:
    """Replace a session's options (a JSON document, validated by the caller)."""

    session_id: str
    options: str

    async def apply(self, tx: Any, now: float) -> None:
        await tx.execute(
            "INSERT INTO session_options (session_id, options, updated_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (session_id) DO UPDATE SET options = excluded.options, updated_at = excluded.updated_at",
            self.session_id, self.options, now,
        )


@attrs.frozen
class ImportHistory:
    """Store one chat's past messages (history sync) without opening or reopening a ticket.

    The messages go to the contact's latest ticket in the session, whatever its status, or to a
    new **closed** ticket; the ticket's unread count is left as it was (history is not news) and
    its last message only moves to a later one. Idempotent with live traffic: a message stored
    before (live or by an earlier import) is skipped by the (session, WhatsApp id) key. The
    messages' ``contact_id``/``ticket_id`` are filled here. Returns how many were new.
    """

    contact: UpsertContact
    session_id: str
    messages: tuple[NewMessage, ...]

    async def apply(self, tx: Any, now: float) -> int:
        contact = await self.contact.apply(tx, now)
        ticket = await tx.fetchrow(
            "SELECT id, unread FROM tickets WHERE session_id = $1 AND contact_id = $2 ORDER BY id DESC LIMIT 1",
            self.session_id, contact.id,
        )
        if ticket is None:
            ticket = await tx.fetchrow(
                "INSERT INTO tickets (tenant_id, session_id, contact_id, status, created_at, updated_at, closed_at) "
                "VALUES ($1, $2, $3, 'closed', $4, $4, $4) RETURNING id, unread",
                contact.tenant_id, self.session_id, contact.id, now,
            )
        run = tuple(attrs.evolve(m, contact_id=contact.id, ticket_id=ticket["id"]) for m in self.messages)
        [results] = await insert_messages(tx, [InsertMessages(run)], now)
        await tx.execute("UPDATE tickets SET unread = $2 WHERE id = $1", ticket["id"], ticket["unread"])
        return sum(1 for result in results if isinstance(result, Inserted))
