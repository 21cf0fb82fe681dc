"""The store-backed :class:`~actors.sessions.InboundSink`: the inbound half of DESIGN §6.

driver events → SessionActor (a batch: the messages waiting together) → :meth:`TicketInbound.deliver`:

1. drop broadcasts, and status updates and newsletters unless the session's options take them
   (``_identity``); drop group messages unless the *session* allows groups (its
   ``allow_groups`` in the store, re-read every ``POLICY_TTL`` seconds);
2. the contact (cached by JID) and its ticket (cached; atomic find-or-create in the store, with
   the reopen window) → the :class:`~actors.tickets.TicketActor` appends the contact's messages
   of the batch, in order: one idempotent insert, committed before the reply; a message with
   media gets its download job in the same transaction. The tickets of one batch work
   concurrently, so their inserts share group commits;
3. publish ``message.created`` (the ticket actor, after the commit) and ``ticket.created`` /
   ``ticket.updated`` for new and reopened tickets; nudge the media service;
4. return: only now does the session acknowledge the message to WhatsApp. A crash anywhere
   before this point means WhatsApp re-delivers it, and the store answers AlreadyStored.

Message kinds (:mod:`actors.drivers._kinds`): every message is stored with its kind and payload,
and a body agents can read (its text, else a summary: never empty). Operations - reactions,
edits, deletes for everyone - are no messages: after the batch's messages are stored they are
applied to their targets (:mod:`._operations`), never opening or reopening a ticket. An
undecryptable message is stored as a placeholder (the session turns the driver's ``Undecryptable``
into a message of kind ``undecryptable``, in its chat's order) that the re-sent message (same
WhatsApp id, answered AlreadyStored) fills.

Item isolation (DESIGN §10): what WhatsApp sends is never refused for its text (the store keeps
unstorable characters as U+FFFD with the raw form, see :func:`actors.store.storable`). Should the
store still refuse a batch for its content (a key no index can hold: an id or JID over
``MAX_KEY_CHARS``, which WhatsApp never sends), the batch is stored message by message and a
message the store refuses twice on its own is *quarantined*: logged at ERROR in full (its raw
form, so nothing is lost from sight), counted in ``quarantined``, and acknowledged with the rest —
the session never crash-loops on it and the messages around it are stored.

Receipts move stored messages and outbox items forward (delivered, read, played), matched by
WhatsApp's id (the outbox records it with each send), and are published.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence

import attrs
import trio

from actors.drivers import (
    OPERATIONS,
    CallOffer,
    HistoryChunk,
    LidMapped,
    Message,
    MessageKind,
    Presence,
    Receipt,
    ReceiptKind,
    summary,
)
from actors.flows import (
    MESSAGE_UPDATED,
    TICKET_CREATED,
    TICKET_UPDATED,
    Publisher,
    no_publisher,
    ticket_payload,
)
from actors.sessions import BoundedCache, ExpiringCache, SessionOptions
from actors.store import (
    DeliveryStatus,
    FoundTicket,
    Inserted,
    InvalidInput,
    NewMessage,
    Store,
    Ticket,
    TicketOutcome,
    WriteFailed,
    storable,
    storable_text,
)

from ._directory import TicketDirectory
from ._identity import (
    SessionFilters,
    call_received,
    conversation_cacheable,
    history_progress,
    history_wanted,
    learn,
    presence_updated,
)
from ._messages import Appended, AppendInbound, MovedTo, TicketRefused
from ._operations import apply_operation, fill_placeholder, name_votes

_LOG = logging.getLogger("zapvisor.tickets")

POLICY_TTL = 5.0
"""Seconds a session's group policy is cached: a change made through the API applies within this."""

CONTACT_CACHE = 50_000
"""Contacts remembered (JID → id, name): a busy node's active contacts, a few MB at most."""

TICKET_CACHE = 50_000
"""Active tickets remembered ((session, contact) → ticket id)."""

PRESENCE_TARGETS = 1000
"""Active contacts a session subscribes to at connect, at most (see ``actors.sessions`` MAX_SUBSCRIBED)."""

ISOLATED_TRIES = 2
"""Times a message is stored on its own before it is quarantined: the second rules out a write that
failed for a reason of the moment (a deadlock with another node) rather than for its content."""

_REFUSED = (InvalidInput, WriteFailed)
"""The store's answers to content it cannot take (everything else is an outage or a bug)."""


def _refused_content(exc: BaseException) -> bool:
    """Whether ``exc`` (maybe a nursery's group) is only the store refusing content."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(_REFUSED)[1] is None
    return isinstance(exc, _REFUSED)

_RECEIPT_STATUS = {
    ReceiptKind.DELIVERED: DeliveryStatus.DELIVERED,
    ReceiptKind.READ: DeliveryStatus.READ,
    ReceiptKind.PLAYED: DeliveryStatus.PLAYED,
}


def _name(message: Message) -> str:
    """The contact name a message gives its conversation (a group conversation's contact is the
    group: its members' names do not name it)."""
    return "" if message.is_group else (message.push_name or "")


def _new_message(tenant_id: str, session_id: str, contact_id: int, ticket_id: int, message: Message) -> NewMessage:
    """The message to store. WhatsApp's text (a body or a caption) is never refused: what no
    backend can store becomes U+FFFD and the original is kept (``raw_body``), here where it enters
    the flows, so everything downstream (the ticket, ``message.created``) sees what is stored."""
    body, raw_body = storable(summary(message.kind, message.payload, message.text))
    return NewMessage(
        tenant_id=tenant_id, session_id=session_id, wa_id=message.id, contact_id=contact_id, ticket_id=ticket_id,
        from_me=message.from_me, body=body, raw_body=raw_body, sent_at=message.timestamp,
        media_type=None if message.media is None else message.media.kind.value,
        media_source=media_source(session_id, message), quoted_wa_id=message.quoted_id,
        kind=str(message.kind), payload=message.payload or None,
    )


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
    show_deleted_text: bool = False  # tickets.show_deleted_text: agents read deleted messages' text
    _contacts: BoundedCache = attrs.field(factory=lambda: BoundedCache(CONTACT_CACHE))
    _tickets: BoundedCache = attrs.field(factory=lambda: BoundedCache(TICKET_CACHE))
    _groups: ExpiringCache = attrs.field(factory=lambda: ExpiringCache(POLICY_TTL))  # session -> allowed
    quarantined: int = 0  # inbound messages the store refused on their own (see the module docstring)
    _filters: SessionFilters = attrs.field(init=False)
    _history_chats: dict[str, set[str]] = attrs.field(factory=dict)  # session -> chats imported (history_chats)

    def __attrs_post_init__(self) -> None:
        self._filters = SessionFilters(self.store, POLICY_TTL)

    def forget_session(self, session_id: str) -> None:
        """A deleted session's entries go: its conversations' tickets and the history chats it
        imported (each deleted session left them behind for ever, found with ``bench/soak.py``).
        Contacts stay: they belong to the tenant, not to the session."""
        self._tickets.drop_where(lambda key: key[0] == session_id)
        self._history_chats.pop(session_id, None)

    async def learn(self, session_id: str, tenant_id: str, mapping: LidMapped) -> None:
        """A customer's LID and phone JID are one: store it and merge them (``_identity``)."""
        await learn(self.store, self.publisher, self._contacts, self._tickets, tenant_id, mapping)

    async def call(self, session_id: str, tenant_id: str, offer: CallOffer) -> SessionOptions:
        """Publish ``call.received``; returns the session's options (reject? reply?)."""
        options = await self._filters.options(session_id)
        call_received(self.publisher, tenant_id, session_id, offer, options)
        return options

    async def options(self, session_id: str) -> SessionOptions:
        """The session's options (cached ``POLICY_TTL`` seconds)."""
        return await self._filters.options(session_id)

    async def presence_targets(self, session_id: str) -> list[str]:
        """The contacts of the session's active tickets (one-to-one), whose presence agents want."""
        return await self.store.active_contacts(session_id, limit=PRESENCE_TARGETS)

    async def history(self, session_id: str, tenant_id: str, chunk: HistoryChunk) -> None:
        """Import a history sync chunk as the session's options say (``_identity``), one write per chat."""
        options = await self._filters.options(session_id)
        imported = self._history_chats.setdefault(session_id, set())
        chats = history_wanted(chunk, options, imported, self.store.clock())
        new = 0
        for chat in chats:
            messages = [attrs.evolve(_new_message(tenant_id, session_id, 0, None, m), media_source=None)
                        for m in chat.messages]  # old media is not downloaded: its type is kept
            new += await self.store.import_history(tenant_id, session_id, chat.jid, "" if chat.is_group else chat.name,
                                                   messages, is_group=chat.is_group)
        history_progress(self.publisher, tenant_id, session_id, chunk, len(chats), new)

    def presence(self, session_id: str, tenant_id: str, presence: Presence) -> None:
        """Publish a contact's presence (``presence.updated``) to the tenant's agents."""
        presence_updated(self.publisher, tenant_id, session_id, presence)

    async def deliver(self, session_id: str, tenant_id: str, messages: Sequence[Message]) -> None:
        """Store ``messages`` durably (see the module docstring); returns after their COMMIT,
        having quarantined any message the store refuses for its content (module docstring).

        Raises StoreUnavailable / ActorFailed / AskTimeout when they could not be stored: the
        session then fails without acknowledging, and WhatsApp re-delivers.
        """
        try:
            await self._deliver(session_id, tenant_id, messages)
        except Exception as exc:
            if not _refused_content(exc):
                raise
            for message in messages:  # the ones stored already answer AlreadyStored
                await self._deliver_alone(session_id, tenant_id, message)

    async def _deliver_alone(self, session_id: str, tenant_id: str, message: Message) -> None:
        for _ in range(ISOLATED_TRIES):
            try:
                await self._deliver(session_id, tenant_id, [message])
                return
            except Exception as exc:
                if not _refused_content(exc):
                    raise
                error = exc
        self.quarantined += 1
        _LOG.error("session %s: inbound message %s quarantined, acknowledged but not stored (%s): %r",
                   session_id, message.id, error, message)

    async def _deliver(self, session_id: str, tenant_id: str, messages: Sequence[Message]) -> None:
        """Store ``messages`` durably (see the module docstring), then apply the operations among
        them; returns after their COMMIT. Raises what :meth:`deliver` raises, and the store's
        refusals (InvalidInput, WriteFailed) for :meth:`deliver` to isolate.
        """
        wanted = await self._filters.wanted(session_id, messages)
        if any(m.is_group for m in wanted) and not await self._groups_allowed(session_id):
            wanted = [m for m in wanted if not m.is_group]
        operations = [m for m in wanted if m.kind in OPERATIONS]
        if operations:
            wanted = [m for m in wanted if m.kind not in OPERATIONS]
        if any(m.kind is MessageKind.POLL_VOTE for m in wanted):
            wanted = await name_votes(self.store, session_id, wanted)
        await self._store_messages(tenant_id, session_id, wanted)
        for operation in operations:  # after their targets, when those came in the same batch
            await apply_operation(self.store, self.publisher, tenant_id, session_id, operation,
                                  show_deleted_text=self.show_deleted_text)

    async def _store_messages(self, tenant_id: str, session_id: str, wanted: list[Message]) -> None:
        """Each conversation's messages form one run, appended in order by its ticket's actor in one
        write; the runs of different conversations are stored concurrently and share commits.
        Conversations this node knows (contact and ticket cached) go at once; a new one first
        upserts its contact and finds or creates its ticket, alongside, so it never holds the
        others up."""
        if not wanted:
            return
        runs: dict[str, list[Message]] = {}  # chat JID -> its messages, in arrival order
        for message in wanted:
            runs.setdefault(message.chat_jid, []).append(message)
        cached: dict[int, tuple[int, list[Message]]] = {}  # contact id -> (ticket id, run)
        new: list[list[Message]] = []
        for run in runs.values():
            contact_id = self._known_contact(tenant_id, run[-1])
            ticket_id = None if contact_id is None else self._tickets.get((session_id, contact_id))
            if ticket_id is None:
                new.append(run)
            else:
                cached[contact_id] = (ticket_id, run)
        if not new:
            await self._append(tenant_id, session_id, cached)
            return
        async with trio.open_nursery() as nursery:
            for run in new:
                nursery.start_soon(self._append_new, tenant_id, session_id, run)
            await self._append(tenant_id, session_id, cached)

    async def _append_new(self, tenant_id: str, session_id: str, run: list[Message]) -> None:
        """A conversation this node does not know yet: its contact and ticket first (one write)."""
        last = run[-1]
        contact, found = await self.store.open_conversation(
            tenant_id, session_id, last.chat_jid, _name(last), is_group=last.is_group,
            reopen_window=self.reopen_window,
        )
        self._contacts.put((tenant_id, contact.jid), (contact.id, contact.name))  # a LID resolves to its phone
        ticket_id = self._found(tenant_id, session_id, contact.id, found)
        await self._append(tenant_id, session_id, {contact.id: (ticket_id, run)}, found.ticket)

    async def _append(
        self, tenant_id: str, session_id: str, runs: dict[int, tuple[int, list[Message]]], known: Ticket | None = None,
    ) -> None:
        """Have each run appended by its ticket's actor (contact id -> (ticket id, run)); ``known``:
        the ticket of a single new conversation, as just found (its actor need not read it)."""
        pending = {
            contact_id: (ticket_id, AppendInbound(
                tuple(_new_message(tenant_id, session_id, contact_id, ticket_id, m) for m in run), known,
            ))
            for contact_id, (ticket_id, run) in runs.items()
        }
        media = False
        while pending:
            replies = await self.directory.ask_many(tenant_id, list(pending.values()))
            moved = {}
            for (contact_id, (_, append)), reply in zip(pending.items(), replies):
                match reply:
                    case Appended(results, _):
                        media = media or any(
                            isinstance(result, Inserted) and new.media_source is not None
                            for new, result in zip(append.messages, results)
                        )
                        for new, result in zip(append.messages, results):
                            if not isinstance(result, Inserted):  # a re-delivery, or a placeholder re-sent
                                media = await fill_placeholder(self.store, self.publisher, tenant_id, new) or media
                    case MovedTo(ticket):  # the cached ticket closed for good: a new one
                        self._tickets.put((session_id, contact_id), ticket.id)
                        moved[contact_id] = (ticket.id, attrs.evolve(append, known=ticket))
                    case TicketRefused("invalid", why):
                        raise InvalidInput(why)
                    case _:  # TicketRefused(not_found): the cached ticket is gone (deleted)
                        moved[contact_id] = (await self._find_or_create(tenant_id, session_id, contact_id), append)
            pending = moved
        if media:
            self.on_media()

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

    def _known_contact(self, tenant_id: str, message: Message) -> int | None:
        """The cached contact id of the message's conversation, unless its push name changed
        (then the contact is upserted again to refresh it)."""
        if not conversation_cacheable(message):
            return None
        cached = self._contacts.get((tenant_id, message.chat_jid))
        name = _name(message)
        return cached[0] if cached is not None and (not name or cached[1] == storable_text(name)) else None

    async def _find_or_create(self, tenant_id: str, session_id: str, contact_id: int) -> int:
        found = await self.store.find_or_create_ticket(tenant_id, session_id, contact_id,
                                                       reopen_window=self.reopen_window)
        return self._found(tenant_id, session_id, contact_id, found)

    def _found(self, tenant_id: str, session_id: str, contact_id: int, found: FoundTicket) -> int:
        """Remember the contact's active ticket; announce it if it is new or reopened."""
        if found.outcome is not TicketOutcome.EXISTING:
            event = TICKET_CREATED if found.outcome is TicketOutcome.CREATED else TICKET_UPDATED
            self.publisher.emit(tenant_id, event, ticket_payload(found.ticket), ticket_id=found.ticket.id)
        self._tickets.put((session_id, contact_id), found.ticket.id)
        return found.ticket.id

    async def _groups_allowed(self, session_id: str) -> bool:
        cached = self._groups.get(session_id)
        if cached is not None:
            return cached
        record = await self.store.get_session(session_id)
        allowed = bool(record is not None and record.allow_groups)
        self._groups.put(session_id, allowed)
        return allowed
