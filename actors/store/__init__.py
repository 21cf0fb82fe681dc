"""The store: the one owner of the database (DESIGN §5).

One repository API (:class:`Store`) over two backends with the same semantics — an embedded
SQLite file (:class:`SqliteBackend`, the default) and PostgreSQL through asyncpg bridged into
trio with trio-asyncio (:class:`PostgresBackend`). Writes are batched by group commit: callers
from many actors share one transaction and each is answered after COMMIT. Reads are direct.

The constraints that make the flows idempotent live in the schema: messages are unique per
(session, WhatsApp id) (:class:`AlreadyStored`), one open-or-pending ticket per
(session, contact), one outbox row per (tenant, idempotency key), fencing tokens per locked
resource (:class:`FencedOut`).

Text from WhatsApp is never refused: what no backend can store (lone surrogates, NUL) is stored
with U+FFFD and its raw form kept (:func:`storable`, ``raw_body``/``raw_name``); text from
our own callers that cannot be stored is refused with :class:`InvalidInput` naming the field.
Queue jobs found ``running`` with no worker too often are quarantined (see :class:`JobStatus`).

Host it with ``await nursery.start(store.run)`` (or :func:`open_store`).
"""

from ._errors import (
    Conflict,
    FencedOut,
    InvalidInput,
    NotFound,
    SchemaTooNew,
    StoreClosed,
    StoreError,
    StoreUnavailable,
    WriteFailed,
)
from ._lid import is_lid
from ._ops_identity import LidMerge
from ._ops_queues import ALL_EVENTS, QUARANTINED, webhook_wants
from ._ops_messages import Edited
from ._postgres import PostgresBackend
from ._records import (
    AlreadyStored,
    AuditEntry,
    Contact,
    DeliveryStatus,
    Enqueued,
    Fence,
    FoundTicket,
    Inserted,
    JobStatus,
    MediaJob,
    Message,
    MessageVersion,
    NewMessage,
    OutboxItem,
    OutboxSentRecord,
    Queue,
    SessionRecord,
    Tenant,
    Ticket,
    TicketOutcome,
    TicketStatus,
    User,
    Webhook,
    WebhookDelivery,
)
from ._schema import CURRENT_VERSION
from ._sqlite import SqliteBackend
from ._store import Store, open_store
from ._text import storable, storable_text
from ._writer import StoreStatistics

__all__ = [
    "is_lid",
    "ALL_EVENTS",
    "CURRENT_VERSION",
    "QUARANTINED",
    "AlreadyStored",
    "AuditEntry",
    "Conflict",
    "Contact",
    "DeliveryStatus",
    "Edited",
    "Enqueued",
    "Fence",
    "FencedOut",
    "FoundTicket",
    "Inserted",
    "InvalidInput",
    "JobStatus",
    "LidMerge",
    "MediaJob",
    "Message",
    "MessageVersion",
    "NewMessage",
    "NotFound",
    "OutboxItem",
    "OutboxSentRecord",
    "PostgresBackend",
    "Queue",
    "SchemaTooNew",
    "SessionRecord",
    "SqliteBackend",
    "Store",
    "StoreClosed",
    "StoreError",
    "StoreStatistics",
    "StoreUnavailable",
    "Tenant",
    "Ticket",
    "TicketOutcome",
    "TicketStatus",
    "User",
    "Webhook",
    "WebhookDelivery",
    "WriteFailed",
    "open_store",
    "storable",
    "storable_text",
    "webhook_wants",
]
