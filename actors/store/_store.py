"""The Store: one object that owns the database — writes batched by group commit, reads direct.

Life cycle: construct with a backend, then run :meth:`Store.run` in a nursery
(``await nursery.start(store.run)``): it connects, migrates, reports ready and runs the
group-commit writer until cancelled. :func:`open_store` does that for you as a context manager.

Timestamps written to rows are wall-clock seconds (they must mean something after a restart and
on another node), read from the ``clock`` callable given at construction, once per transaction;
everything about *waiting* goes through trio.

Fencing: ticket writes accept ``fence=Fence(resource, token)``, the token a bus lock issued
with the lock on ``resource``. The store remembers the highest token per resource (table
``fence``) and refuses an older one with :class:`FencedOut`, so a holder that was paused past
its lock's TTL cannot write after the next holder did.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import attrs
import trio

from . import _ops_core as core
from . import _ops_messages as msg_ops
from . import _ops_identity as identity
from . import _ops_queues as queues
from ._backend import single_errors
from ._campaigns import CampaignStore
from ._errors import InvalidInput, StoreClosed
from ._lid import is_lid
from ._lifecycle import StoreLifecycle
from ._reads import StoreReads, check_limit
from ._records import (
    AlreadyStored,
    AuditEntry,
    Contact,
    DeliveryStatus,
    Enqueued,
    Fence,
    FoundTicket,
    Inserted,
    MediaJob,
    NewMessage,
    OutboxItem,
    OutboxSentRecord,
    Queue,
    SessionRecord,
    Tenant,
    Ticket,
    User,
    Webhook,
    WebhookDelivery,
)
from ._ops_messages import Edited
from ._schema import migrate
from ._text import storable
from ._writer import GroupCommitter, StoreStatistics

#: Default batch bound: big enough to amortise a commit over many callers, small enough that one
#: transaction stays short (locks held briefly, a failed batch re-runs quickly).
DEFAULT_MAX_BATCH = 256

#: Default linger: 0 = no added latency; batches still grow by themselves under load because
#: ops queue up while the previous batch commits.
DEFAULT_LINGER = 0.0

#: Ops allowed to wait for the writer before submit() applies backpressure: a few batches' worth.
DEFAULT_QUEUE_CAPACITY = 4 * DEFAULT_MAX_BATCH

#: How long a write may take (queueing + commit + reconnects) before its caller gets StoreUnavailable.
DEFAULT_TIMEOUT = 10.0

_ROLES = ("agent", "admin")
_DEVICE_JID = re.compile(r"[^@:\s]+:[1-9][0-9]*@[^@:\s]+")
"""A linked device's JID: ``user[.agent]:device@server`` (a companion's device number is never 0)."""

#: Longest key (a JID, a WhatsApp message id, an idempotency key) the store takes. The unique
#: indexes hold them, and a PostgreSQL btree entry holds at most ~2.7 KB: 512 characters are
#: 2 KB even if every one takes 4 bytes in UTF-8. Checked on both backends so they agree (SQLite
#: has no such limit), before anything is written: InvalidInput, not a write the engine rejects.
MAX_KEY_CHARS = 512


def _present(field: str, value: Any, max_chars: int | None) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{field}: must be a non-empty string, got {value!r}")
    if max_chars is not None and len(value) > max_chars:
        raise InvalidInput(f"{field}: at most {max_chars} characters, got {len(value)}")
    return value


def _text(field: str, value: Any, max_chars: int | None = None) -> str:
    """A non-empty string both backends can store, from our own callers (the API, the services):
    one they cannot (a lone surrogate, NUL) is refused with InvalidInput naming the field — on
    both backends alike, before anything is written."""
    _present(field, value, max_chars)
    if storable(value)[1] is not None:
        raise InvalidInput(f"{field}: must be valid Unicode text without NUL "
                           "(a lone surrogate or NUL cannot be stored)")
    return value


def _wa_key(field: str, value: Any) -> str:
    """A key WhatsApp gave (a JID, a message id): never refused for its characters, which are
    replaced (see _text.py: deterministic, so the same id always maps to the same stored key),
    only for being empty or longer than MAX_KEY_CHARS."""
    return storable(_present(field, value, MAX_KEY_CHARS))[0]


def _receipt_key(value: str) -> str | None:
    """The stored form of a message id a receipt names, or None when no stored message can have
    it (empty or over MAX_KEY_CHARS): a receipt is WhatsApp's too, never an error for its id."""
    if not isinstance(value, str) or not value or len(value) > MAX_KEY_CHARS:
        return None
    return storable(value)[0]


def _upsert_contact(tenant_id: str, jid: str, name: str, is_group: bool) -> core.UpsertContact:
    clean, raw = storable(name or "")
    return core.UpsertContact(_text("tenant_id", tenant_id), _wa_key("jid", jid), clean, bool(is_group), raw)


def _storable_message(message: NewMessage) -> NewMessage:
    """``message`` as both backends can store it: its body cleaned (raw kept), its id checked.

    Raises:
        InvalidInput: not a NewMessage, or its wa_id or session_id unusable.
    """
    if not isinstance(message, NewMessage):
        raise InvalidInput(f"message: must be a NewMessage, got {type(message).__name__}")
    _present("wa_id", message.wa_id, MAX_KEY_CHARS)
    _present("session_id", message.session_id, None)
    if not isinstance(message.body, str):  # may be empty, never missing
        raise InvalidInput(f"body: must be a string, got {type(message.body).__name__}")
    # The usual case, every inbound message's: all three storable as they are, found in one scan
    # (a string is storable iff it has no NUL and no surrogate code point, so their concatenation is
    # iff each is) instead of one per field (issue 18: 62.5k -> 59k instructions per write, callgrind).
    if storable(message.session_id + message.wa_id + message.body)[1] is None:
        return message
    wa_id = _wa_key("wa_id", message.wa_id)
    _text("session_id", message.session_id)
    body, raw = storable(message.body)
    if raw is None and wa_id is message.wa_id:
        return message
    return attrs.evolve(message, wa_id=wa_id, body=body, raw_body=raw or message.raw_body)


def _reopen_window(seconds: float) -> float:
    if seconds < 0:
        raise InvalidInput(f"reopen_window: must be >= 0 seconds, got {seconds!r}")
    return float(seconds)


def _message_id() -> str:
    """A WhatsApp-Web-style message id, fixed when the outbox row is created and reused by retries."""
    return "3EB0" + secrets.token_hex(10).upper()


@attrs.define(eq=False)
class Store(CampaignStore, StoreReads, StoreLifecycle):
    """The repository API over one backend (:class:`SqliteBackend` or :class:`PostgresBackend`).

    Every write method accepts ``timeout`` (seconds, default ``default_timeout``) and raises
    :class:`StoreUnavailable` when it could not be confirmed in time, :class:`StoreClosed` when
    the store is not running, :class:`InvalidInput` for malformed arguments (named), plus the
    refusals documented per method. Cancellation withdraws a write not yet sent to the database.
    """

    backend: Any
    max_batch: int = DEFAULT_MAX_BATCH
    linger: float = DEFAULT_LINGER
    queue_capacity: int = DEFAULT_QUEUE_CAPACITY
    default_timeout: float = DEFAULT_TIMEOUT
    clock: Callable[[], float] = time.time
    _writer: GroupCommitter = attrs.field(init=False)
    _running: bool = attrs.field(init=False, default=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.max_batch, int) or self.max_batch < 1:
            raise InvalidInput(f"max_batch: must be a positive integer, got {self.max_batch!r}")
        if self.linger < 0:
            raise InvalidInput(f"linger: must be >= 0 seconds, got {self.linger!r}")
        if self.default_timeout <= 0:
            raise InvalidInput(f"default_timeout: must be > 0 seconds, got {self.default_timeout!r}")
        self._writer = GroupCommitter(
            self.backend, self.clock, self.max_batch, self.linger, self.queue_capacity
        )

    @property
    def _backend(self) -> Any:
        return self.backend

    async def run(self, *, task_status: trio.TaskStatus[Store] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, migrate, report ready (``task_status.started(self)``), then commit until cancelled.

        Raises:
            StoreUnavailable: the database was unreachable at start.
            SchemaTooNew: the database belongs to a newer release.
        """
        async with self.backend.open():
            await migrate(self.backend, self.clock)
            self._running = True
            try:
                task_status.started(self)
                await self._writer.run()
            finally:
                self._running = False

    def statistics(self) -> StoreStatistics:
        """A frozen snapshot: writer state, batches, ops, latencies."""
        return self._writer.statistics()

    async def _write(self, op: Any, timeout: float | None) -> Any:
        return await self._writer.submit(op, self._admit(timeout))

    def _admit(self, timeout: float | None) -> float:
        """The checks every write passes before it is queued; returns its timeout in seconds."""
        timeout = self.default_timeout if timeout is None else timeout
        if timeout <= 0:
            raise InvalidInput(f"timeout: must be > 0 seconds, got {timeout!r}")
        if not self._running:
            raise StoreClosed("the store is not running")
        return timeout

    # -- tenants, users, sessions, contacts ---------------------------------------------------

    async def upsert_tenant(self, tenant_id: str, name: str, *, timeout: float | None = None) -> Tenant:
        return await self._write(core.UpsertTenant(_text("tenant_id", tenant_id), _text("name", name)), timeout)

    async def create_user(
        self, tenant_id: str, email: str, name: str, role: str = "agent", *, timeout: float | None = None
    ) -> User:
        """Raises Conflict if the email is already a user of the tenant."""
        if role not in _ROLES:
            raise InvalidInput(f"role: must be one of {_ROLES}, got {role!r}")
        op = core.CreateUser(_text("tenant_id", tenant_id), _text("email", email), _text("name", name), role)
        return await self._write(op, timeout)

    async def upsert_session(
        self, session_id: str, tenant_id: str, name: str, *, allow_groups: bool = False,
        timeout: float | None = None,
    ) -> SessionRecord:
        """Create a session row (status ``stopped``) or update its name and group policy."""
        op = core.UpsertSession(
            _text("session_id", session_id), _text("tenant_id", tenant_id), _text("name", name),
            bool(allow_groups),
        )
        return await self._write(op, timeout)

    async def set_session_status(
        self, session_id: str, status: str, reason: str | None = None, *, timeout: float | None = None
    ) -> SessionRecord:
        """Raises NotFound for an unknown session."""
        # a reason may quote what a driver or WhatsApp said: kept, cleaned, never a failed write
        reason = None if reason is None else storable(reason)[0]
        op = core.SetSessionStatus(_text("session_id", session_id), _text("status", status), reason)
        return await self._write(op, timeout)

    async def set_session_statuses(
        self, statuses: Sequence[tuple[str, str, str | None]], *, timeout: float | None = None
    ) -> None:
        """Set many sessions' ``(session_id, status, reason)`` in one write (a debounced flush);
        unknown sessions are skipped."""
        rows = tuple(
            (_text("session_id", sid), _text("status", status), None if reason is None else storable(reason)[0])
            for sid, status, reason in statuses
        )
        if rows:
            await self._write(core.SetSessionStatuses(rows), timeout)

    async def set_session_device(
        self, session_id: str, device_jid: str | None, *, timeout: float | None = None
    ) -> SessionRecord:
        """Record the WhatsApp device the session is paired as (``user:device@server``), or forget it
        (``None``: logged out, the device is gone). Raises NotFound for an unknown session, InvalidInput
        for a JID without its device part."""
        if device_jid is not None and not _DEVICE_JID.fullmatch(device_jid):
            raise InvalidInput(f"device_jid: must look like 'user:device@server', got {device_jid!r}")
        return await self._write(core.SetSessionDevice(_text("session_id", session_id), device_jid), timeout)

    async def set_credentials(self, session_id: str, driver: str, creds: str, *,
                              timeout: float | None = None) -> None:
        """Keep ``driver``'s credentials of the session (replacing earlier ones)."""
        op = core.SetCredentials(_text("session_id", session_id), _text("driver", driver), _text("creds", creds))
        await self._write(op, timeout)

    async def delete_credentials(self, session_id: str, driver: str, *, timeout: float | None = None) -> None:
        """Forget ``driver``'s credentials of the session (logged out); nothing to forget is fine."""
        await self._write(core.DeleteCredentials(_text("session_id", session_id), _text("driver", driver)), timeout)

    async def upsert_contact(
        self, tenant_id: str, jid: str, name: str = "", *, is_group: bool = False,
        timeout: float | None = None,
    ) -> Contact:
        """Find or create a contact by (tenant, jid); a non-empty ``name`` refreshes the stored one.

        A name no backend can store as is is kept cleaned, its original in ``raw_name`` (as
        message bodies, see :meth:`insert_messages`). Raises InvalidInput for an over-long
        (MAX_KEY_CHARS) ``jid``."""
        return await self._write(_upsert_contact(tenant_id, jid, name, is_group), timeout)

    async def learn_lid(self, tenant_id: str, lid: str, pn: str, *, timeout: float | None = None) -> identity.LidMerge:
        """Record that the customer ``lid`` (``...@lid``) is ``pn`` (their phone JID) and merge
        their two contacts and tickets, if both exist (rules: ``_ops_identity``). Idempotent.
        Raises InvalidInput unless ``lid`` is a LID and ``pn`` a phone JID."""
        if not isinstance(lid, str) or not is_lid(lid):
            raise InvalidInput(f"lid: must be a '...@lid' JID, got {lid!r}")
        if not isinstance(pn, str) or not pn.endswith("@s.whatsapp.net"):
            raise InvalidInput(f"pn: must be a '...@s.whatsapp.net' JID, got {pn!r}")
        return await self._write(identity.LearnLid(_text("tenant_id", tenant_id), _wa_key("lid", lid),
                                                   _wa_key("pn", pn)), timeout)

    async def import_history(
        self, tenant_id: str, session_id: str, jid: str, name: str, messages: Sequence[NewMessage], *,
        is_group: bool = False, timeout: float | None = None,
    ) -> int:
        """Store a chat's past messages without opening a ticket (rules: ``_ops_identity.ImportHistory``);
        returns how many were new. ``messages``' contact and ticket ids are ignored (filled in)."""
        op = identity.ImportHistory(
            _upsert_contact(tenant_id, jid, name, is_group), _text("session_id", session_id),
            tuple(_storable_message(m) for m in messages),
        )
        return await self._write(op, timeout)

    async def set_session_options(self, session_id: str, options: str, *, timeout: float | None = None) -> None:
        """Replace the session's options, a JSON document (see ``actors.sessions.SessionOptions``)."""
        await self._write(identity.SetSessionOptions(_text("session_id", session_id), _text("options", options)),
                          timeout)

    # -- tickets ------------------------------------------------------------------------------

    async def find_or_create_ticket(
        self, tenant_id: str, session_id: str, contact_id: int, *, reopen_window: float,
        timeout: float | None = None,
    ) -> FoundTicket:
        """The contact's open-or-pending ticket; else reopen (as pending) the last one closed within
        ``reopen_window`` seconds; else a new pending ticket. Atomic: concurrent calls (any node)
        end with one ticket.
        """
        op = core.FindOrCreateTicket(
            _text("tenant_id", tenant_id), _text("session_id", session_id), contact_id, _reopen_window(reopen_window)
        )
        return await self._write(op, timeout)

    async def open_conversation(
        self, tenant_id: str, session_id: str, jid: str, name: str = "", *, is_group: bool = False,
        reopen_window: float, timeout: float | None = None,
    ) -> tuple[Contact, FoundTicket]:
        """:meth:`upsert_contact` then :meth:`find_or_create_ticket` for it, in one transaction."""
        op = core.OpenConversation(
            _upsert_contact(tenant_id, jid, name, is_group), _text("session_id", session_id),
            _reopen_window(reopen_window),
        )
        return await self._write(op, timeout)

    async def accept_ticket(
        self, ticket_id: int, user_id: int, *, fence: Fence | None = None, timeout: float | None = None
    ) -> Ticket:
        """Assign ``user_id`` and open the ticket; unread goes to 0 in the same write (the agent who
        takes the conversation has it in front of them). Raises Conflict if another user holds it or
        it is closed, NotFound, FencedOut."""
        return await self._write(core.AcceptTicket(ticket_id, user_id, fence), timeout)

    async def transfer_ticket(
        self, ticket_id: int, *, queue: str | None = None, user_id: int | None = None,
        fence: Fence | None = None, timeout: float | None = None,
    ) -> Ticket:
        """Move to ``queue`` and/or ``user_id`` (no user → back to pending). Raises Conflict if closed."""
        queue = None if queue is None else _text("queue", queue)
        return await self._write(core.TransferTicket(ticket_id, queue, user_id, fence), timeout)

    async def close_ticket(
        self, ticket_id: int, *, fence: Fence | None = None, timeout: float | None = None
    ) -> Ticket:
        """Close (idempotent); resets unread. Raises NotFound, FencedOut."""
        return await self._write(core.CloseTicket(ticket_id, fence), timeout)

    async def reopen_ticket(
        self, ticket_id: int, *, user_id: int | None = None, fence: Fence | None = None,
        timeout: float | None = None,
    ) -> Ticket:
        """Reopen a closed ticket. Raises Conflict if the contact has another active ticket."""
        return await self._write(core.ReopenTicket(ticket_id, user_id, fence), timeout)

    async def mark_ticket_read(self, ticket_id: int, *, timeout: float | None = None) -> Ticket:
        return await self._write(core.MarkTicketRead(ticket_id), timeout)

    # -- messages -----------------------------------------------------------------------------

    async def insert_message(
        self, message: NewMessage, *, timeout: float | None = None
    ) -> Inserted | AlreadyStored:
        """Store a message once: a second insert of the same (session, wa_id) is a no-op answered
        :class:`AlreadyStored`. A new message bumps its ticket's last message (and unread, if inbound).
        The answer comes after COMMIT: acknowledge to WhatsApp only then.

        Text is never refused: a body holding characters no backend can store (lone surrogates,
        NUL) is stored with U+FFFD in their place and the original in ``raw_body`` (see
        :mod:`._text`); both backends store the same. Raises InvalidInput for a missing or
        over-long (MAX_KEY_CHARS) ``wa_id``.

        The hot path of every inbound message, so it goes to the writer directly rather than
        through :meth:`insert_messages` and :meth:`_write`: each coroutine layer between a caller
        and its parked write is resumed again when the write is answered (issue 18)."""
        op = core.InsertMessages((_storable_message(message),))
        [answer] = await self._writer.submit(op, self._admit(timeout))
        return answer

    async def insert_messages(
        self, messages: Sequence[NewMessage], *, timeout: float | None = None
    ) -> list[Inserted | AlreadyStored]:
        """:meth:`insert_message` for a run of messages, in order, as one write (one commit):
        one answer per message."""
        if not messages:
            return []
        return await self._write(core.InsertMessages(tuple(map(_storable_message, messages))), timeout)

    async def edit_message(
        self, session_id: str, wa_id: str, body: str, *, from_me: bool, timeout: float | None = None,
    ) -> Edited | None:
        """Replace the text of a stored message by its author (``from_me``), keeping the old text
        (:meth:`message_versions`); ``None``: no such message of that author. Never refused for
        the text (see :meth:`insert_message`)."""
        clean, raw = storable(body)
        return await self._write(msg_ops.EditMessage(session_id, _wa_key("wa_id", wa_id), clean, raw, from_me), timeout)

    async def revoke_message(self, session_id: str, wa_id: str, *, timeout: float | None = None) -> Message | None:
        """Mark a stored message deleted for everyone (its text is kept); ``None``: not stored."""
        return await self._write(msg_ops.RevokeMessage(session_id, _wa_key("wa_id", wa_id)), timeout)

    async def react_to_message(
        self, session_id: str, wa_id: str, sender_jid: str, emoji: str, *, timeout: float | None = None,
    ) -> Message | None:
        """Set (``""``: remove) ``sender_jid``'s reaction on a stored message; ``None``: not stored."""
        op = msg_ops.ReactToMessage(session_id, _wa_key("wa_id", wa_id), _wa_key("sender_jid", sender_jid),
                                    storable(emoji)[0])
        return await self._write(op, timeout)

    async def fill_placeholder(self, message: NewMessage, *, timeout: float | None = None) -> Message | None:
        """Give a stored undecryptable placeholder the content WhatsApp re-sent (same id); ``None``
        when the stored message is no placeholder (nothing changes)."""
        return await self._write(msg_ops.FillPlaceholder(_storable_message(message)), timeout)

    async def update_message_status(
        self, session_id: str, wa_id: str, status: DeliveryStatus, *, timeout: float | None = None
    ) -> bool:
        """Apply a receipt; statuses only move forward. Returns False if nothing changed (an id no
        stored message can have included: see :func:`_receipt_key`)."""
        key = _receipt_key(wa_id)
        if key is None:
            return False
        return await self._write(core.UpdateMessageStatus(session_id, key, DeliveryStatus(status)), timeout)

    # -- outbox -------------------------------------------------------------------------------

    async def enqueue_outbox(
        self, tenant_id: str, session_id: str, idempotency_key: str, to_jid: str, payload: dict, *,
        ticket_id: int | None = None, message_id: str | None = None, timeout: float | None = None,
    ) -> Enqueued:
        """Queue a send. The same (tenant, idempotency_key) again returns the existing row
        (``created`` False) — even if its payload differs: the key names the request."""
        if not isinstance(payload, dict):
            raise InvalidInput(f"payload: must be a JSON object (dict), got {type(payload).__name__}")
        op = queues.EnqueueOutbox(
            _text("tenant_id", tenant_id), _text("session_id", session_id),
            _text("idempotency_key", idempotency_key, MAX_KEY_CHARS), message_id or _message_id(),
            _text("to_jid", to_jid, MAX_KEY_CHARS), payload, ticket_id,
        )
        return await self._write(op, timeout)

    async def claim_outbox(
        self, *, session_id: str | None = None, limit: int = 100, timeout: float | None = None
    ) -> list[OutboxItem]:
        """Claim due items, at most one per session: its oldest unfinished item, and only when that
        one is queued and due (per-session order). Paused sessions and a paused outbox get nothing."""
        return await self._write(queues.ClaimOutbox(session_id, check_limit(limit)), timeout)

    async def outbox_sending(self, item_id: int, *, timeout: float | None = None) -> OutboxItem:
        """A claimed item goes to the driver now (``sending``); call it before the send, so a
        death during the send is known to be one. Raises Conflict if the item is not running."""
        return await self._write(queues.MarkSending(item_id), timeout)

    async def outbox_sent(
        self, item_id: int, wa_id: str, *, sent_at: float, media_type: str | None = None,
        timeout: float | None = None,
    ) -> OutboxSentRecord:
        """WhatsApp accepted the send and named it ``wa_id``: the item is done with that id and
        the outbound message is stored under it, in one transaction (an ``unknown`` item whose
        answer came late is resolved too). Raises Conflict if the item is in neither state."""
        return await self._write(queues.OutboxSent(item_id, _wa_key("wa_id", wa_id), float(sent_at), media_type), timeout)

    async def outbox_unknown(
        self, error: str, *, item_id: int | None = None, timeout: float | None = None,
    ) -> list[OutboxItem]:
        """Mark sends whose outcome is unknown (``sending`` → ``unknown``, ``error`` says why):
        one item, or every ``sending`` one (none given: at start-up). Returns those changed."""
        return await self._write(queues.MarkSendsUnknown(item_id, _text("error", error)), timeout)

    async def take_over_outbox(
        self, session_ids: Sequence[str], error: str, *, keep: tuple[int, ...] = (), recover: bool = False,
        timeout: float | None = None,
    ) -> queues.TakenOver:
        """This node starts sending for ``session_ids``, in one write: their ``sending`` rows but
        those in ``keep`` become ``unknown`` (``error`` says why), with ``recover`` their
        ``running`` ones are queued again (see :meth:`recover_running`); returns those made
        unknown and which of the sessions have a queued send."""
        op = queues.TakeOverOutbox(tuple(_text("session_id", sid) for sid in session_ids), _text("error", error),
                                   tuple(keep), bool(recover))
        return await self._write(op, timeout)

    async def outbox_receipt(
        self, session_id: str, wa_id: str, delivery: DeliveryStatus, *, timeout: float | None = None
    ) -> bool:
        """A receipt for a sent item, by WhatsApp's id (forward only). False if nothing changed."""
        key = _receipt_key(wa_id)
        if key is None:
            return False
        return await self._write(queues.OutboxReceipt(session_id, key, DeliveryStatus(delivery)), timeout)

    # -- media jobs ---------------------------------------------------------------------------

    async def enqueue_media_job(self, tenant_id: str, message_id: int, *, timeout: float | None = None) -> MediaJob:
        """One download job per message (a second call returns the existing job)."""
        return await self._write(queues.EnqueueMediaJob(_text("tenant_id", tenant_id), message_id), timeout)

    async def media_done(self, job_id: int, path: str, *, timeout: float | None = None) -> MediaJob:
        """The file is stored at ``path``; also set on the message."""
        return await self._write(queues.CompleteJob(Queue.MEDIA, job_id, _text("path", path)), timeout)

    # -- webhooks -----------------------------------------------------------------------------

    async def create_webhook(
        self, tenant_id: str, url: str, events: tuple[str, ...] | list[str], *, secret: str | None = None,
        timeout: float | None = None,
    ) -> Webhook:
        """Subscribe ``url`` to ``events`` ("*" = all)."""
        if not events or not all(isinstance(e, str) and e for e in events):
            raise InvalidInput(f"events: must be a non-empty list of event names, got {events!r}")
        if secret:
            _text("secret", secret)
        op = queues.CreateWebhook(_text("tenant_id", tenant_id), _text("url", url), tuple(events), secret)
        return await self._write(op, timeout)

    async def delete_webhook(self, webhook_id: int, *, timeout: float | None = None) -> bool:
        return await self._write(queues.DeleteWebhook(webhook_id), timeout)

    async def enqueue_webhook_event(
        self, tenant_id: str, event: str, payload: dict, *, timeout: float | None = None
    ) -> list[WebhookDelivery]:
        """Queue one delivery per active webhook of the tenant subscribed to ``event``."""
        op = queues.EnqueueWebhookEvent(_text("tenant_id", tenant_id), _text("event", event), payload)
        return await self._write(op, timeout)

    # -- the three queues: claim, finish, administer ------------------------------------------

    async def claim_jobs(self, queue: Queue, *, limit: int = 100, timeout: float | None = None) -> list:
        """Claim due media jobs or webhook deliveries (the outbox has :meth:`claim_outbox`)."""
        queue = Queue(queue)
        if queue is Queue.OUTBOX:
            raise InvalidInput("queue: the outbox is claimed per session, use claim_outbox()")
        return await self._write(queues.ClaimJobs(queue, check_limit(limit)), timeout)

    async def job_done(self, queue: Queue, job_id: int, *, timeout: float | None = None) -> Any:
        """Finish a running webhook delivery (media: :meth:`media_done`; outbox: :meth:`outbox_sent`)."""
        queue = Queue(queue)
        if queue is Queue.MEDIA:
            raise InvalidInput("queue: a media job finishes with its file, use media_done()")
        if queue is Queue.OUTBOX:
            raise InvalidInput("queue: an outbox item finishes with WhatsApp's id, use outbox_sent()")
        return await self._write(queues.CompleteJob(queue, job_id, None), timeout)

    async def job_failed(
        self, queue: Queue, job_id: int, error: str, *, retry_at: float | None,
        timeout: float | None = None,
    ) -> Any:
        """Record a failed attempt: queued again at wall-clock ``retry_at``, or dead when None
        (an outbox item's delivery becomes ``failed``). Raises Conflict if the job is not running
        (or, for the outbox, sending): only for a send WhatsApp certainly does not have."""
        return await self._write(queues.FailJob(Queue(queue), job_id, str(error), retry_at), timeout)

    async def recover_running(
        self, queue: Queue, *, stale_after: float | None = None, timeout: float | None = None,
    ) -> int:
        """Put ``running`` jobs back to ``queued``; returns how many. At start-up (``stale_after``
        None) all of them: their worker died with the old process. While running, only those
        claimed more than ``stale_after`` seconds ago (a lost worker or a lost claim answer).
        Outbox rows already ``sending`` are not touched: see :meth:`outbox_unknown`. A node that
        takes sessions over from a dead one recovers what it had claimed with :meth:`take_over_outbox`."""
        if stale_after is not None and stale_after < 0:
            raise InvalidInput(f"stale_after: must be >= 0 seconds, got {stale_after!r}")
        claimed_before = None if stale_after is None else self.clock() - stale_after
        return await self._write(queues.RecoverRunning(Queue(queue), claimed_before), timeout)

    async def retry_job(self, queue: Queue, job_id: int, *, timeout: float | None = None) -> Any:
        """Admin: a dead or waiting job runs again now with a fresh attempt count; an outbox item
        whose outcome is ``unknown`` is deliberately sent again (WhatsApp may then have it twice)."""
        return await self._write(queues.RetryJob(Queue(queue), job_id), timeout)

    async def remove_job(self, queue: Queue, job_id: int, *, timeout: float | None = None) -> bool:
        """Admin: delete a job that is not running."""
        return await self._write(queues.RemoveJob(Queue(queue), job_id), timeout)

    async def clean_jobs(
        self, queue: Queue, *, older_than: float, include_dead: bool = False, timeout: float | None = None
    ) -> int:
        """Admin: delete finished jobs untouched for ``older_than`` seconds; returns how many."""
        if older_than < 0:
            raise InvalidInput(f"older_than: must be >= 0 seconds, got {older_than!r}")
        op = queues.CleanJobs(Queue(queue), self.clock() - older_than, include_dead)
        return await self._write(op, timeout)

    async def set_paused(
        self, queue: Queue, paused: bool, *, session_id: str | None = None, timeout: float | None = None
    ) -> bool:
        """Pause/resume a queue, or (outbox only) one session's sends. Returns False if unchanged.
        A paused queue keeps accepting jobs; claims skip it."""
        queue = Queue(queue)
        if session_id is not None and queue is not Queue.OUTBOX:
            raise InvalidInput("session_id: only the outbox can be paused per session")
        scope = "" if session_id is None else _text("session_id", session_id)
        return await self._write(queues.SetPaused(queue, scope, bool(paused)), timeout)

    # -- audit --------------------------------------------------------------------------------

    async def append_audit(
        self, who: str, action: str, target: str, result: str, detail: str | None = None, *,
        timeout: float | None = None,
    ) -> AuditEntry:
        """Record a supervision action (who did what to which target, and how it ended)."""
        op = core.AppendAudit(
            _text("who", who), _text("action", action), _text("target", target), _text("result", result),
            None if detail is None else storable(detail)[0],  # may quote a refused request: kept, cleaned
        )
        return await self._write(op, timeout)


@contextlib.asynccontextmanager
async def open_store(backend: Any, **options: Any) -> AsyncIterator[Store]:
    """Run a :class:`Store` for the duration of the block (for tools, tests and benchmarks).

    Raises what :meth:`Store.run` raises at start, and what the block raises, unwrapped from the
    nursery's exception group when it is the only error.
    """
    with single_errors():
        async with trio.open_nursery() as nursery:
            store = await nursery.start(Store(backend, **options).run)
            try:
                yield store
            finally:
                nursery.cancel_scope.cancel()
