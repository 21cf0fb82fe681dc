"""What of WhatsApp's traffic reaches tickets, per session, and who a customer is.

* **Filters** (:class:`SessionFilters`): status broadcasts (``status@broadcast``) and channel posts
  (``@newsletter``) never open tickets unless the session's options say so
  (:class:`~actors.sessions.SessionOptions`): a status post allowed in is stored in its poster's
  conversation, a newsletter post in the channel's own. Other broadcasts (broadcast lists) never
  do. Options are read from the store at most every ``POLICY_TTL`` seconds per session, and only
  for a batch that holds such a message.
* **Identity** (:func:`learn`): a learned LID ↔ phone mapping is stored and the customer's two
  contacts merged (the rule: ``actors.store._ops_identity``); the caches of the inbound path are
  corrected and the change announced: ``contact.merged`` (tenant room and webhooks), and
  ``ticket.updated`` for each ticket kept or emptied.
* **Calls** (:func:`call_received`): ``call.received`` is published with what the session will do
  (its options): reject, and reply.
* **History** (:func:`history_wanted`): a history sync chunk is imported within the session's
  date range and chat limit (groups and newsletters by option) without opening any ticket
  (``actors.store._ops_identity.ImportHistory``); ``history.progress`` and a log line follow each chunk.
* **Presence** (:func:`presence_updated`): a contact's availability or typing, as the session
  received it, is published as ``presence.updated`` (never stored).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import attrs

from actors.drivers import CallOffer, HistoryChat, HistoryChunk, LidMapped, Message, Presence
from actors.flows import TICKET_UPDATED, Publisher, ticket_payload
from actors.sessions import BoundedCache, ExpiringCache, SessionOptions
from actors.store import Store, is_lid

_LOG = logging.getLogger("zapvisor.tickets")

CONTACT_MERGED = "contact.merged"
CALL_RECEIVED = "call.received"
PRESENCE_UPDATED = "presence.updated"
HISTORY_PROGRESS = "history.progress"


STATUS_CHAT = "status@broadcast"
NEWSLETTER_SERVER = "@newsletter"


def is_newsletter(message: Message) -> bool:
    return message.chat_jid.endswith(NEWSLETTER_SERVER)


def is_status_or_broadcast(message: Message) -> bool:
    """Status updates and broadcast lists (never a conversation of their own)."""
    return message.is_broadcast or message.chat_jid.endswith("@broadcast")


def is_filtered(message: Message) -> bool:
    """Whether the message's fate depends on the session's options (see the module docstring)."""
    return is_newsletter(message) or is_status_or_broadcast(message)


@attrs.define(eq=False)
class SessionFilters:
    """The per-session filters of the module docstring; ``ttl`` seconds between option reads."""

    store: Store
    ttl: float
    _options: ExpiringCache = attrs.field(init=False)  # session -> options

    def __attrs_post_init__(self) -> None:
        self._options = ExpiringCache(self.ttl)

    async def options(self, session_id: str) -> SessionOptions:
        cached = self._options.get(session_id)
        if cached is not None:
            return cached
        options = SessionOptions.from_json(await self.store.session_options(session_id))
        self._options.put(session_id, options)
        return options

    async def wanted(self, session_id: str, messages: Sequence[Message]) -> list[Message]:
        """The messages that go to tickets, a status post re-addressed to its poster's conversation."""
        if not any(is_filtered(m) for m in messages):
            return list(messages)
        options = await self.options(session_id)
        wanted = []
        for message in messages:
            if is_newsletter(message):
                if options.newsletters:
                    wanted.append(message)
            elif message.chat_jid == STATUS_CHAT and not message.from_me:
                if options.status_broadcasts:
                    wanted.append(attrs.evolve(message, chat_jid=message.sender_jid, is_broadcast=False))
            elif not is_status_or_broadcast(message):
                wanted.append(message)
        return wanted


async def learn(store: Store, publisher: Publisher, contacts: BoundedCache, tickets: BoundedCache,
                tenant_id: str, mapping: LidMapped) -> None:
    """Store ``mapping``, merge the customer's contacts, correct the caches and announce it."""
    merge = await store.learn_lid(tenant_id, mapping.lid, mapping.pn)
    if merge.contact is None:
        return
    _LOG.info("tenant %s: %s is %s: contact %s merged into %s", tenant_id, mapping.lid, mapping.pn,
              merge.merged_contact, merge.contact.id)
    contacts.put((tenant_id, mapping.pn), (merge.contact.id, merge.contact.name))
    for session_id, ticket_id in merge.kept.items():
        tickets.put((session_id, merge.contact.id), ticket_id)
    publisher.emit(tenant_id, CONTACT_MERGED, {
        "contact_id": merge.contact.id, "jid": merge.contact.jid, "merged_contact_id": merge.merged_contact,
        "lid": mapping.lid, "kept_tickets": merge.kept, "closed_tickets": list(merge.closed),
        "moved_tickets": list(merge.moved),
    })
    for ticket_id in sorted({*merge.kept.values(), *merge.closed}):
        ticket = await store.get_ticket(ticket_id)
        if ticket is not None:
            publisher.emit(tenant_id, TICKET_UPDATED, ticket_payload(ticket), ticket_id=ticket_id)


def call_received(publisher: Publisher, tenant_id: str, session_id: str, offer: CallOffer,
                  options: SessionOptions) -> None:
    publisher.emit(tenant_id, CALL_RECEIVED, {
        "session_id": session_id, "call_id": offer.call_id, "caller": offer.caller, "at": offer.timestamp,
        "video": offer.is_video, "group": offer.is_group, "rejected": options.reject_calls,
        "reply": options.call_reply if options.reject_calls else "",
    })


def history_wanted(chunk: HistoryChunk, options: SessionOptions, imported: set[str], now: float) -> list[HistoryChat]:
    """The chats of ``chunk`` to import, their messages cut to the date range; ``imported`` (the
    session's chats imported so far) enforces the chat limit and grows with the new ones."""
    cutoff = now - options.history_days * 86400.0
    wanted = []
    for chat in chunk.chats:
        if options.history_days <= 0 or (chat.is_group and not options.history_groups):
            continue
        if chat.jid.endswith(NEWSLETTER_SERVER) and not options.newsletters:
            continue
        messages = tuple(m for m in chat.messages if m.timestamp >= cutoff)
        if not messages:
            continue
        if chat.jid not in imported:
            if len(imported) >= options.history_chats:
                continue
            imported.add(chat.jid)
        wanted.append(attrs.evolve(chat, messages=messages))
    return wanted


def history_progress(publisher: Publisher, tenant_id: str, session_id: str, chunk: HistoryChunk,
                     chats: int, messages: int) -> None:
    _LOG.info("session %s: history %s (%s%%): %d chats, %d new messages imported", session_id,
              chunk.sync_type or "sync", "?" if chunk.progress is None else chunk.progress, chats, messages)
    publisher.emit(tenant_id, HISTORY_PROGRESS, {
        "session_id": session_id, "sync_type": chunk.sync_type, "progress": chunk.progress, "chats": chats,
        "messages": messages,
    })


def presence_updated(publisher: Publisher, tenant_id: str, session_id: str, presence: Presence) -> None:
    publisher.emit(tenant_id, PRESENCE_UPDATED, {
        "session_id": session_id, "jid": presence.jid, "state": presence.state.value, "chat": presence.chat_jid,
        "last_seen": presence.last_seen,
    })


def conversation_cacheable(message: Message) -> bool:
    """Whether the message's conversation may be found in the inbound caches: never for a LID chat,
    which the store resolves on every message (a mapping learned on another node changes it)."""
    return not is_lid(message.chat_jid)
