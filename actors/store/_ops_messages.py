"""Operations on stored messages: edits (with their history), deletes for everyone, reactions,
and the re-sent content of an undecryptable message's placeholder.

Each is one write op (``apply(tx, now)``, run by the group committer) on the message found by
(session, WhatsApp id), answering ``None`` when no such message is stored (an operation on a
message from before zapvisor, or on a conversation it does not keep). None of them touches the
ticket: an operation is no new customer message (no unread, no reopen, no last message).
The :class:`~actors.store.Store` methods ``edit_message``, ``revoke_message``,
``react_to_message``, ``fill_placeholder`` and ``message_versions`` are their face.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from ._records import Message, NewMessage, from_row

PLACEHOLDER_KIND = "undecryptable"
"""The kind of a placeholder row (``actors.drivers.MessageKind.UNDECRYPTABLE``)."""

_FIND = "SELECT * FROM messages WHERE session_id = $1 AND wa_id = $2"


@attrs.frozen
class Edited:
    """The message after an edit, and the text the edit replaced (kept in ``message_versions``)."""

    message: Message
    previous_body: str


@attrs.frozen
class EditMessage:
    """Replace a message's text, keeping the old one. ``None``: not stored. An edit to the text it
    already has changes nothing (a re-delivered edit) and answers ``Edited`` with that text."""

    session_id: str
    wa_id: str
    body: str
    raw_body: str | None
    from_me: bool  # only a message's author edits it: an edit from the other side changes nothing

    async def apply(self, tx: Any, now: float) -> Edited | None:
        row = await tx.fetchrow(_FIND, self.session_id, self.wa_id)
        if row is None or bool(row["from_me"]) != self.from_me:
            return None
        previous = row["body"]
        if previous == self.body:
            return Edited(from_row(Message, row), previous)
        await tx.execute(
            "INSERT INTO message_versions (message_id, body, replaced_at) VALUES ($1, $2, $3)", row["id"], previous, now
        )
        row = await tx.fetchrow(
            "UPDATE messages SET body = $2, raw_body = $3, edited_at = $4 WHERE id = $1 RETURNING *",
            row["id"], self.body, self.raw_body, now,
        )
        return Edited(from_row(Message, row), previous)


@attrs.frozen
class RevokeMessage:
    """Mark a message deleted for everyone (idempotent: the first delete's time stays)."""

    session_id: str
    wa_id: str

    async def apply(self, tx: Any, now: float) -> Message | None:
        row = await tx.fetchrow(
            "UPDATE messages SET deleted_at = COALESCE(deleted_at, $3) WHERE session_id = $1 AND wa_id = $2 "
            "RETURNING *",
            self.session_id, self.wa_id, now,
        )
        return None if row is None else from_row(Message, row)


@attrs.frozen
class ReactToMessage:
    """Set ``sender_jid``'s reaction on a message (one per sender, as WhatsApp shows them);
    ``emoji`` ``""`` removes it."""

    session_id: str
    wa_id: str
    sender_jid: str
    emoji: str

    async def apply(self, tx: Any, now: float) -> Message | None:
        row = await tx.fetchrow(_FIND, self.session_id, self.wa_id)
        if row is None:
            return None
        reactions = json.loads(row["reactions"]) if row["reactions"] else {}
        if self.emoji:
            reactions[self.sender_jid] = self.emoji
        else:
            reactions.pop(self.sender_jid, None)
        row = await tx.fetchrow(
            "UPDATE messages SET reactions = $2 WHERE id = $1 RETURNING *",
            row["id"], json.dumps(reactions, ensure_ascii=False) if reactions else None,
        )
        return from_row(Message, row)


@attrs.frozen
class FillPlaceholder:
    """WhatsApp re-sent a message stored as an undecryptable placeholder: the placeholder takes
    its content (kind, text, payload, media, and the media job). ``None`` when the stored message
    is no placeholder (an ordinary re-delivery: nothing changes)."""

    message: NewMessage

    async def apply(self, tx: Any, now: float) -> Message | None:
        m = self.message
        row = await tx.fetchrow(
            "UPDATE messages SET kind = $3, body = $4, raw_body = $5, payload = $6, media_type = $7, quoted_wa_id = $8 "
            f"WHERE session_id = $1 AND wa_id = $2 AND kind = '{PLACEHOLDER_KIND}' RETURNING *",
            m.session_id, m.wa_id, str(m.kind), m.body, m.raw_body,
            None if m.payload is None else json.dumps(m.payload), m.media_type, m.quoted_wa_id,
        )
        if row is None:
            return None
        if m.media_source is not None:
            await tx.execute(
                "INSERT INTO media_jobs (tenant_id, message_id, status, next_attempt_at, created_at, updated_at, "
                "source) VALUES ($1, $2, 'queued', $3, $3, $3, $4) ON CONFLICT (message_id) DO NOTHING",
                m.tenant_id, row["id"], now, m.media_source,
            )
        return from_row(Message, row)
