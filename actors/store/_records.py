"""The store's values: frozen rows handed out to callers, and the results of idempotent writes.

Rows are built from database rows with :func:`from_row`, which maps columns to fields by name;
flags are stored as integers and JSON documents as text, the converters below undo that.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _json_tuple(value: Any) -> tuple[str, ...]:
    return tuple(_json(value))


class TicketStatus(enum.StrEnum):
    OPEN = "open"
    PENDING = "pending"
    CLOSED = "closed"


class TicketOutcome(enum.StrEnum):
    """How :meth:`Store.find_or_create_ticket` found its ticket."""

    CREATED = "created"
    REOPENED = "reopened"
    EXISTING = "existing"


class JobStatus(enum.StrEnum):
    """States shared by the three persistent queues (outbox, media jobs, webhook deliveries).

    ``queued`` waits for ``next_attempt_at``; ``running`` is claimed by a worker; ``done``
    finished well; ``dead`` gave up (the outbox calls it *failed*, it is the same dead letter).

    The outbox has two more: ``sending`` — handed to the driver, WhatsApp may have it from here
    on — and ``unknown`` — a send whose outcome nobody knows (no answer in time, the connection
    or the worker died after it went out, the process died while it was ``sending``). An
    ``unknown`` row is never sent again by itself: only an operator's retry does (it may then
    reach the contact twice). The outbox additionally tracks receipts in :class:`DeliveryStatus`.

    A job's ``interrupted`` counts the times it was found ``running`` with no worker left (the
    worker crashed on it, or its process died) and was taken back; at
    ``QUARANTINE_AFTER_INTERRUPTIONS`` it goes ``dead`` instead, its ``last_error`` starting with
    ``quarantined:`` — a job that keeps killing its worker is set aside, not handed out again.
    An admin retry (which gives it a fresh count) or removal decides its fate.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SENDING = "sending"
    UNKNOWN = "unknown"
    DONE = "done"
    DEAD = "dead"


class DeliveryStatus(enum.StrEnum):
    """A message's delivery state; receipts only ever move it forward (see :data:`DELIVERY_RANK`)."""

    RECEIVED = "received"
    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"  # a voice note or video the contact played (after reading)
    FAILED = "failed"


#: Receipts can arrive out of order (read before delivered): a status never moves to a lower rank.
DELIVERY_RANK = {
    DeliveryStatus.RECEIVED: 0,
    DeliveryStatus.PENDING: 0,
    DeliveryStatus.FAILED: 1,
    DeliveryStatus.SENT: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.READ: 4,
    DeliveryStatus.PLAYED: 5,
}


def statuses_below(status: DeliveryStatus) -> str:
    """An SQL list literal of the statuses a receipt for ``status`` may overwrite ('' if none).

    The values are this enum's own constants, never caller input, so inlining them is safe.
    """
    return ", ".join(f"'{s}'" for s, rank in DELIVERY_RANK.items() if rank < DELIVERY_RANK[status])


class Queue(enum.StrEnum):
    """The persistent job queues, for the queue administration calls."""

    OUTBOX = "outbox"
    MEDIA = "media_jobs"
    WEBHOOKS = "webhook_deliveries"


@attrs.frozen
class Tenant:
    id: str
    name: str
    created_at: float


@attrs.frozen
class User:
    id: int
    tenant_id: str
    email: str
    name: str
    role: str
    created_at: float


@attrs.frozen
class Contact:
    id: int
    tenant_id: str
    jid: str
    name: str
    is_group: bool = attrs.field(converter=bool)
    created_at: float
    updated_at: float
    #: the name WhatsApp sent, as a JSON string literal, when it could not be stored as is (see ``name``)
    raw_name: str | None = None


@attrs.frozen
class SessionRecord:
    id: str
    tenant_id: str
    name: str
    status: str
    reason: str | None
    allow_groups: bool = attrs.field(converter=bool)
    created_at: float
    updated_at: float
    device_jid: str | None = None
    """The WhatsApp device the session is paired as (``user:device@server``); None until paired."""


def _delivery_status(value: Any) -> DeliveryStatus:
    """DeliveryStatus(value), skipping the enum lookup for what already is one (every new message)."""
    return value if value.__class__ is DeliveryStatus else DeliveryStatus(value)


@attrs.frozen
class Ticket:
    id: int
    tenant_id: str
    session_id: str
    contact_id: int
    status: TicketStatus = attrs.field(converter=TicketStatus)
    user_id: int | None
    queue: str | None
    unread: int
    last_message: str | None
    last_message_at: float | None
    created_at: float
    updated_at: float
    closed_at: float | None


@attrs.frozen
class NewMessage:
    """A message to store (inbound, or outbound once sent). ``wa_id`` is WhatsApp's id for it."""

    tenant_id: str
    session_id: str
    wa_id: str
    contact_id: int
    ticket_id: int | None
    from_me: bool
    body: str
    sent_at: float
    media_type: str | None = None
    status: DeliveryStatus = attrs.field(default=DeliveryStatus.RECEIVED, converter=_delivery_status)
    #: Where to download the attachment (JSON, driver-specific); when set, storing the message also
    #: queues its media job in the same transaction, so a stored message never lacks its download.
    media_source: str | None = None
    #: The original ``body`` as a JSON string literal when it held characters no backend can store
    #: (lone surrogates, NUL), which ``body`` then has as U+FFFD: :func:`~._text.storable` gives
    #: both; the store sets them itself for a body that still holds such characters.
    raw_body: str | None = None
    #: WhatsApp's id of the message this one quotes (replies to); resolve it with ``get_message``.
    quoted_wa_id: str | None = None
    #: What the message is (``actors.drivers.MessageKind``) and its description (JSON-ready dict;
    #: the keys per kind: ``actors.drivers._kinds.PAYLOAD_KEYS``).
    kind: str = "text"
    payload: dict[str, Any] | None = None


def _json_or_none(value: Any) -> Any:
    return None if value is None else _json(value)


@attrs.frozen
class Message:
    id: int
    tenant_id: str
    session_id: str
    wa_id: str
    contact_id: int
    ticket_id: int | None
    from_me: bool = attrs.field(converter=bool)
    body: str
    media_type: str | None
    media_path: str | None
    status: DeliveryStatus = attrs.field(converter=_delivery_status)
    sent_at: float
    created_at: float
    raw_body: str | None = None  # see NewMessage.raw_body
    quoted_wa_id: str | None = None  # WhatsApp's id of the quoted message (see NewMessage)
    kind: str = "text"  # see NewMessage
    payload: dict[str, Any] | None = attrs.field(default=None, converter=_json_or_none)
    edited_at: float | None = None  # the last edit (the texts it replaced: Store.message_versions)
    deleted_at: float | None = None  # deleted for everyone (the body is kept; the API decides who reads it)
    reactions: dict[str, str] | None = attrs.field(default=None, converter=_json_or_none)  # sender JID -> emoji


@attrs.frozen
class MessageVersion:
    """A text an edit replaced (``replaced_at``: when the edit was stored)."""

    message_id: int
    body: str
    replaced_at: float


@attrs.frozen
class Inserted:
    """The message was new and is now stored (durably: the caller was answered after COMMIT)."""

    message_id: int


@attrs.frozen
class AlreadyStored:
    """The message (same session and WhatsApp id) was stored before; nothing was written."""

    message_id: int


@attrs.frozen
class FoundTicket:
    ticket: Ticket
    outcome: TicketOutcome


@attrs.frozen
class OutboxItem:
    """A send request. ``message_id`` is zapvisor's own name for it, fixed at enqueue (the
    driver's request key); ``wa_id`` is the id WhatsApp gave the message, known once it
    answered the send (None before, and for a send whose outcome is unknown)."""

    id: int
    tenant_id: str
    session_id: str
    ticket_id: int | None
    idempotency_key: str
    message_id: str
    to_jid: str
    payload: dict = attrs.field(converter=_json)
    status: JobStatus = attrs.field(converter=JobStatus)
    delivery: DeliveryStatus = attrs.field(converter=_delivery_status)
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: float
    updated_at: float
    interrupted: int = 0  # see JobStatus: times found running with no worker left
    wa_id: str | None = None


@attrs.frozen
class OutboxSentRecord:
    """Result of :meth:`Store.outbox_sent`: the finished row, and the outbound message stored with
    it (``message_id``, its status: ``sent``, or further when a receipt arrived first)."""

    item: OutboxItem
    message_id: int
    status: DeliveryStatus


@attrs.frozen
class Enqueued:
    """Result of :meth:`Store.enqueue_outbox`: the row, and whether this call created it."""

    item: OutboxItem
    created: bool


@attrs.frozen
class MediaJob:
    id: int
    tenant_id: str
    message_id: int
    status: JobStatus = attrs.field(converter=JobStatus)
    attempts: int
    next_attempt_at: float
    last_error: str | None
    path: str | None
    created_at: float
    updated_at: float
    source: str | None = None  # the message's media_source (see NewMessage)
    interrupted: int = 0  # see JobStatus


@attrs.frozen
class Webhook:
    id: int
    tenant_id: str
    url: str
    events: tuple[str, ...] = attrs.field(converter=_json_tuple)
    secret: str | None
    active: bool = attrs.field(converter=bool)
    created_at: float


@attrs.frozen
class WebhookDelivery:
    id: int
    webhook_id: int
    tenant_id: str
    event: str
    payload: dict = attrs.field(converter=_json)
    status: JobStatus = attrs.field(converter=JobStatus)
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: float
    updated_at: float
    interrupted: int = 0  # see JobStatus


@attrs.frozen
class AuditEntry:
    id: int
    at: float
    who: str
    action: str
    target: str
    result: str
    detail: str | None


@attrs.frozen
class Fence:
    """A fencing token issued by a lock for ``resource``; writes carrying an older one are refused."""

    resource: str
    token: int


#: The record type of each queue, for the queue administration reads.
QUEUE_RECORDS: dict[Queue, type] = {
    Queue.OUTBOX: OutboxItem,
    Queue.MEDIA: MediaJob,
    Queue.WEBHOOKS: WebhookDelivery,
}

_R = TypeVar("_R")


def from_row(cls: type[_R], row: Mapping[str, Any]) -> _R:
    """Build a record from a database row (sqlite3.Row or asyncpg.Record), matching columns by name."""
    return cls(**{field.name: row[field.name] for field in attrs.fields(cls)})
