"""The read half of :class:`~._store.Store`: direct queries, no batching.

Reads do not wait for the writer: they run on the backend's reader connection(s) and see every
write acknowledged before they started (an acknowledgement is sent only after COMMIT).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ._errors import InvalidInput, StoreClosed
from ._ops_queues import TAKE_OVER_CHUNK, placeholders
from ._records import (
    QUEUE_RECORDS,
    AuditEntry,
    Contact,
    JobStatus,
    Message,
    MessageVersion,
    OutboxItem,
    Queue,
    SessionRecord,
    Tenant,
    Ticket,
    TicketStatus,
    User,
    Webhook,
    from_row,
)

_R = TypeVar("_R")

#: Upper bound on rows one list call returns: callers page with ``after_id``/``limit``.
MAX_LIMIT = 1000


def check_limit(limit: int) -> int:
    """Validate a ``limit`` argument (1..MAX_LIMIT)."""
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit: must be an integer between 1 and {MAX_LIMIT}, got {limit!r}")
    return limit


class StoreReads:
    """Queries; mixed into Store, which provides ``_backend`` and ``_running``."""

    _backend: Any
    _running: bool
    clock: Callable[[], float]  # wall-clock seconds, as the writes' timestamps

    async def _fetch(self, sql: str, *args: Any) -> list:
        if not self._running:
            raise StoreClosed("the store is not running")

        async def query(tx: Any) -> list:
            return await tx.fetch(sql, *args)

        return await self._backend.read(query)

    async def _one(self, cls: type[_R], sql: str, *args: Any) -> _R | None:
        rows = await self._fetch(sql, *args)
        return from_row(cls, rows[0]) if rows else None

    async def _all(self, cls: type[_R], sql: str, *args: Any) -> list[_R]:
        return [from_row(cls, row) for row in await self._fetch(sql, *args)]

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        return await self._one(Tenant, "SELECT * FROM tenants WHERE id = $1", tenant_id)

    async def list_tenants(self) -> list[Tenant]:
        return await self._all(Tenant, "SELECT * FROM tenants ORDER BY id")

    async def get_user(self, user_id: int) -> User | None:
        return await self._one(User, "SELECT * FROM users WHERE id = $1", user_id)

    async def list_users(self, tenant_id: str) -> list[User]:
        return await self._all(User, "SELECT * FROM users WHERE tenant_id = $1 ORDER BY id", tenant_id)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        return await self._one(SessionRecord, "SELECT * FROM sessions WHERE id = $1", session_id)

    async def session_options(self, session_id: str) -> str | None:
        """The session's options as stored (JSON), None when never set."""
        rows = await self._fetch("SELECT options FROM session_options WHERE session_id = $1", session_id)
        return rows[0]["options"] if rows else None

    async def active_contacts(self, session_id: str, *, limit: int = 100) -> list[str]:
        """JIDs of the one-to-one contacts with an open or pending ticket in the session, most recent first."""
        check_limit(limit)
        rows = await self._fetch(
            "SELECT c.jid FROM tickets t JOIN contacts c ON c.id = t.contact_id WHERE t.session_id = $1 "
            "AND t.status IN ('open', 'pending') AND c.is_group = 0 ORDER BY t.updated_at DESC LIMIT $2",
            session_id, limit,
        )
        return [row["jid"] for row in rows]

    async def lid_mapping(self, tenant_id: str, lid: str) -> str | None:
        """The phone JID known for ``lid`` in the tenant, None when unknown."""
        rows = await self._fetch("SELECT pn FROM lid_map WHERE tenant_id = $1 AND lid = $2", tenant_id, lid)
        return rows[0]["pn"] if rows else None

    async def list_sessions(self, tenant_id: str | None = None) -> list[SessionRecord]:
        if tenant_id is None:
            return await self._all(SessionRecord, "SELECT * FROM sessions ORDER BY id")
        return await self._all(
            SessionRecord, "SELECT * FROM sessions WHERE tenant_id = $1 ORDER BY id", tenant_id
        )

    async def get_credentials(self, session_id: str, driver: str) -> str | None:
        """``driver``'s credentials of the session, None when it has none (it must pair)."""
        rows = await self._fetch("SELECT creds FROM driver_credentials WHERE session_id = $1 AND driver = $2",
                                 session_id, driver)
        return rows[0]["creds"] if rows else None

    async def get_contact(self, contact_id: int) -> Contact | None:
        return await self._one(Contact, "SELECT * FROM contacts WHERE id = $1", contact_id)

    async def find_contact(self, tenant_id: str, jid: str) -> Contact | None:
        return await self._one(
            Contact, "SELECT * FROM contacts WHERE tenant_id = $1 AND jid = $2", tenant_id, jid
        )

    async def get_ticket(self, ticket_id: int) -> Ticket | None:
        return await self._one(Ticket, "SELECT * FROM tickets WHERE id = $1", ticket_id)

    async def find_active_ticket(self, session_id: str, contact_id: int) -> Ticket | None:
        """The open-or-pending ticket of a contact in a session, if any (at most one exists)."""
        return await self._one(
            Ticket,
            "SELECT * FROM tickets WHERE session_id = $1 AND contact_id = $2 AND status IN ('open', 'pending')",
            session_id, contact_id,
        )

    async def list_tickets(
        self, tenant_id: str, status: TicketStatus | None = None, *, limit: int = 100
    ) -> list[Ticket]:
        """A tenant's tickets, most recently updated first, optionally of one status."""
        check_limit(limit)
        if status is None:
            return await self._all(
                Ticket, "SELECT * FROM tickets WHERE tenant_id = $1 ORDER BY updated_at DESC, id DESC LIMIT $2",
                tenant_id, limit,
            )
        return await self._all(
            Ticket,
            "SELECT * FROM tickets WHERE tenant_id = $1 AND status = $2 ORDER BY updated_at DESC, id DESC "
            "LIMIT $3",
            tenant_id, str(TicketStatus(status)), limit,
        )

    async def get_message(self, session_id: str, wa_id: str) -> Message | None:
        return await self._one(
            Message, "SELECT * FROM messages WHERE session_id = $1 AND wa_id = $2", session_id, wa_id
        )

    async def get_message_by_id(self, message_id: int) -> Message | None:
        return await self._one(Message, "SELECT * FROM messages WHERE id = $1", message_id)

    async def message_versions(self, message_id: int) -> list[MessageVersion]:
        """The texts edits replaced on a message, oldest first."""
        return await self._all(
            MessageVersion,
            "SELECT message_id, body, replaced_at FROM message_versions WHERE message_id = $1 ORDER BY id",
            message_id,
        )

    async def list_messages(self, ticket_id: int, *, after_id: int = 0, limit: int = 100) -> list[Message]:
        """A ticket's messages in storage order (= arrival order), paged by ``after_id``."""
        check_limit(limit)
        return await self._all(
            Message, "SELECT * FROM messages WHERE ticket_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            ticket_id, after_id, limit,
        )

    async def count_messages(self, session_id: str | None = None) -> int:
        if session_id is None:
            rows = await self._fetch("SELECT COUNT(*) AS n FROM messages")
        else:
            rows = await self._fetch("SELECT COUNT(*) AS n FROM messages WHERE session_id = $1", session_id)
        return rows[0]["n"]

    async def find_outbox(self, tenant_id: str, idempotency_key: str) -> OutboxItem | None:
        return await self._one(
            OutboxItem, "SELECT * FROM outbox WHERE tenant_id = $1 AND idempotency_key = $2",
            tenant_id, idempotency_key,
        )

    async def get_job(self, queue: Queue, job_id: int) -> Any:
        """One job of a queue (OutboxItem, MediaJob or WebhookDelivery), or None."""
        queue = Queue(queue)
        return await self._one(QUEUE_RECORDS[queue], f"SELECT * FROM {queue.value} WHERE id = $1", job_id)

    async def list_jobs(
        self, queue: Queue, status: JobStatus | None = None, *, tenant_id: str | None = None,
        limit: int = 100,
    ) -> list:
        """A queue's jobs, oldest first, filtered by status and/or tenant (dead letters: status=dead)."""
        queue, record = Queue(queue), QUEUE_RECORDS[Queue(queue)]
        check_limit(limit)
        where, args = [], []
        if status is not None:
            args.append(str(JobStatus(status)))
            where.append(f"status = ${len(args)}")
        if tenant_id is not None:
            args.append(tenant_id)
            where.append(f"tenant_id = ${len(args)}")
        args.append(limit)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return await self._all(
            record, f"SELECT * FROM {queue.value} {clause} ORDER BY id LIMIT ${len(args)}", *args
        )

    async def next_due(self, queue: Queue, *, session_id: str | None = None) -> float | None:
        """The earliest ``next_attempt_at`` (wall-clock) of a queued job — when the queue's worker
        should look again — or None when nothing waits. ``session_id`` narrows the outbox."""
        queue = Queue(queue)
        if session_id is not None and queue is not Queue.OUTBOX:
            raise InvalidInput("session_id: only the outbox is kept per session")
        where, args = "status = 'queued'", []
        if session_id is not None:
            where, args = "status = 'queued' AND session_id = $1", [session_id]
        rows = await self._fetch(f"SELECT MIN(next_attempt_at) AS due FROM {queue.value} WHERE {where}", *args)
        return rows[0]["due"]

    async def outbox_due(self, session_ids: Sequence[str]) -> frozenset[str]:
        """Those of ``session_ids`` with a queued send due now (a read: an idle outbox looks for
        work this way, every sender of a node in one query, instead of claiming for each)."""
        due: set[str] = set()
        for start in range(0, len(session_ids), TAKE_OVER_CHUNK):
            chunk = session_ids[start:start + TAKE_OVER_CHUNK]
            rows = await self._fetch(
                "SELECT DISTINCT session_id FROM outbox WHERE status = 'queued' AND next_attempt_at <= $1 "
                f"AND session_id IN ({placeholders(2, len(chunk))})",
                self.clock(), *chunk,
            )
            due.update(row["session_id"] for row in rows)
        return frozenset(due)

    async def paused(self, queue: Queue) -> frozenset[str]:
        """The pause scopes of a queue: '' when the whole queue is paused, else session ids."""
        rows = await self._fetch("SELECT scope FROM queue_pauses WHERE queue = $1", str(Queue(queue)))
        return frozenset(row["scope"] for row in rows)

    async def list_webhooks(self, tenant_id: str) -> list[Webhook]:
        return await self._all(Webhook, "SELECT * FROM webhooks WHERE tenant_id = $1 ORDER BY id", tenant_id)

    async def list_audit(self, *, target: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Audit entries, newest first, optionally about one target."""
        check_limit(limit)
        if target is None:
            return await self._all(AuditEntry, "SELECT * FROM audit ORDER BY id DESC LIMIT $1", limit)
        return await self._all(
            AuditEntry, "SELECT * FROM audit WHERE target = $1 ORDER BY id DESC LIMIT $2", target, limit
        )

    async def fence_token(self, resource: str) -> int | None:
        """The newest fencing token seen for ``resource`` (None if never)."""
        rows = await self._fetch("SELECT token FROM fence WHERE resource = $1", resource)
        return rows[0]["token"] if rows else None
