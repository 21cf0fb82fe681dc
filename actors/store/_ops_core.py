"""Write operations on the core tables (tenants, users, sessions, contacts, tickets, messages, audit).

Every write is a frozen op with ``async def apply(self, tx, now)``; the group-commit writer runs
many of them inside one transaction. ``tx`` is a backend adapter (``fetch``/``fetchrow``/
``fetchval``/``execute``/``executemany`` with ``$n`` placeholders); op code never awaits anything
else, which is what lets the SQLite backend drive it synchronously on its worker thread and the
PostgreSQL backend run it inside its asyncio loop.

Rule for ops that can fail on purpose (raise a :class:`StoreError`): decide from what was read,
or from a conditional write that wrote nothing, *before* anything is written — a refused op must
leave no trace, because its batch commits anyway for the other callers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs

from ._errors import Conflict, FencedOut, NotFound
from ._lid import resolve_jid
from ._records import (
    AlreadyStored,
    AuditEntry,
    Contact,
    DeliveryStatus,
    Fence,
    FoundTicket,
    Inserted,
    NewMessage,
    SessionRecord,
    Tenant,
    Ticket,
    TicketOutcome,
    User,
    from_row,
    statuses_below,
)


async def check_fence(tx: Any, fence: Fence | None) -> None:
    """Record ``fence`` as the newest token for its resource, or refuse it.

    A token equal to the stored one passes (the same holder writes several times); a lower one
    raises :class:`FencedOut` and writes nothing. A passing token stays recorded even if the op
    then refuses for another reason (Conflict): the lock did issue it, so remembering it only
    fences out older holders sooner — the one exception to "a refused op leaves no trace".
    """
    if fence is None:
        return
    row = await tx.fetchrow(
        "INSERT INTO fence (resource, token) VALUES ($1, $2) ON CONFLICT (resource) "
        "DO UPDATE SET token = excluded.token WHERE fence.token <= excluded.token RETURNING token",
        fence.resource, fence.token,
    )
    if row is None:
        current = await tx.fetchval("SELECT token FROM fence WHERE resource = $1", fence.resource)
        raise FencedOut(fence.resource, fence.token, current)


async def _ticket_or_raise(tx: Any, ticket_id: int) -> Ticket:
    row = await tx.fetchrow("SELECT * FROM tickets WHERE id = $1", ticket_id)
    if row is None:
        raise NotFound(f"ticket {ticket_id} does not exist")
    return from_row(Ticket, row)


@attrs.frozen
class UpsertTenant:
    id: str
    name: str

    async def apply(self, tx: Any, now: float) -> Tenant:
        row = await tx.fetchrow(
            "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING *",
            self.id, self.name, now,
        )
        return from_row(Tenant, row)


@attrs.frozen
class CreateUser:
    tenant_id: str
    email: str
    name: str
    role: str

    async def apply(self, tx: Any, now: float) -> User:
        row = await tx.fetchrow(
            "INSERT INTO users (tenant_id, email, name, role, created_at) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (tenant_id, email) DO NOTHING RETURNING *",
            self.tenant_id, self.email, self.name, self.role, now,
        )
        if row is None:
            raise Conflict(f"email: {self.email!r} is already a user of tenant {self.tenant_id!r}")
        return from_row(User, row)


@attrs.frozen
class UpsertSession:
    id: str
    tenant_id: str
    name: str
    allow_groups: bool

    async def apply(self, tx: Any, now: float) -> SessionRecord:
        row = await tx.fetchrow(
            "INSERT INTO sessions (id, tenant_id, name, status, allow_groups, created_at, updated_at) "
            "VALUES ($1, $2, $3, 'stopped', $4, $5, $5) ON CONFLICT (id) DO UPDATE SET "
            "name = excluded.name, allow_groups = excluded.allow_groups, updated_at = excluded.updated_at "
            "RETURNING *",
            self.id, self.tenant_id, self.name, int(self.allow_groups), now,
        )
        return from_row(SessionRecord, row)


@attrs.frozen
class SetSessionStatus:
    id: str
    status: str
    reason: str | None

    async def apply(self, tx: Any, now: float) -> SessionRecord:
        row = await tx.fetchrow(
            "UPDATE sessions SET status = $2, reason = $3, updated_at = $4 WHERE id = $1 RETURNING *",
            self.id, self.status, self.reason, now,
        )
        if row is None:
            raise NotFound(f"session {self.id!r} does not exist")
        return from_row(SessionRecord, row)


@attrs.frozen
class SetSessionStatuses:
    """Many sessions' statuses in one statement (``executemany``: one round trip, however many
    rows). A debounced flush of a node bringing hundreds of sessions up is one write, not
    hundreds; unknown sessions are skipped (a session that exists only in the tree)."""

    statuses: tuple[tuple[str, str, str | None], ...]  # (session id, status, reason)

    async def apply(self, tx: Any, now: float) -> None:
        await tx.executemany(
            "UPDATE sessions SET status = $2, reason = $3, updated_at = $4 WHERE id = $1",
            [(session_id, status, reason, now) for session_id, status, reason in self.statuses],
        )


@attrs.frozen
class SetSessionDevice:
    id: str
    device_jid: str | None

    async def apply(self, tx: Any, now: float) -> SessionRecord:
        row = await tx.fetchrow(
            "UPDATE sessions SET device_jid = $2, updated_at = $3 WHERE id = $1 RETURNING *",
            self.id, self.device_jid, now,
        )
        if row is None:
            raise NotFound(f"session {self.id!r} does not exist")
        return from_row(SessionRecord, row)


@attrs.frozen
class SetCredentials:
    session_id: str
    driver: str
    creds: str

    async def apply(self, tx: Any, now: float) -> None:
        await tx.execute(
            "INSERT INTO driver_credentials (session_id, driver, creds, updated_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (session_id, driver) DO UPDATE SET creds = excluded.creds, updated_at = excluded.updated_at",
            self.session_id, self.driver, self.creds, now,
        )


@attrs.frozen
class DeleteCredentials:
    session_id: str
    driver: str

    async def apply(self, tx: Any, now: float) -> None:
        await tx.execute("DELETE FROM driver_credentials WHERE session_id = $1 AND driver = $2",
                         self.session_id, self.driver)


@attrs.frozen
class UpsertContact:
    """``name`` is already storable; ``raw_name`` is what WhatsApp sent when it was not (see _text)."""

    tenant_id: str
    jid: str
    name: str
    is_group: bool
    raw_name: str | None = None

    async def apply(self, tx: Any, now: float) -> Contact:
        jid = await resolve_jid(tx, self.tenant_id, self.jid, now)  # a mapped LID is its phone's contact
        # A known contact whose name does not change is not written: an upsert locks its row until
        # COMMIT, and a contact writing to sessions on several nodes then made their batches wait
        # for one another, in whatever order their messages came: deadlocks, each costing a second
        # and a batch re-run one write at a time (bench.failover, 1,000 sessions).
        known = await tx.fetchrow("SELECT * FROM contacts WHERE tenant_id = $1 AND jid = $2", self.tenant_id, jid)
        if known is not None and (self.name == "" or (known["name"], known["raw_name"]) == (self.name, self.raw_name)):
            return from_row(Contact, known)
        # an empty name (WhatsApp did not send a push name) never erases a known one
        row = await tx.fetchrow(
            "INSERT INTO contacts (tenant_id, jid, name, is_group, created_at, updated_at, raw_name) "
            "VALUES ($1, $2, $3, $4, $5, $5, $6) ON CONFLICT (tenant_id, jid) DO UPDATE SET "
            "name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE contacts.name END, "
            "raw_name = CASE WHEN excluded.name <> '' THEN excluded.raw_name ELSE contacts.raw_name END, "
            "updated_at = excluded.updated_at RETURNING *",
            self.tenant_id, jid, self.name, int(self.is_group), now, self.raw_name,
        )
        return from_row(Contact, row)


_ACTIVE = "status IN ('open', 'pending')"


@attrs.frozen
class OpenConversation:
    """A contact writes to a session: upsert the contact, then find or create its ticket, in one
    transaction (a new conversation's first message waits for one commit, not two)."""

    contact: UpsertContact
    session_id: str
    reopen_window: float

    async def apply(self, tx: Any, now: float) -> tuple[Contact, FoundTicket]:
        contact = await self.contact.apply(tx, now)
        found = await FindOrCreateTicket(contact.tenant_id, self.session_id, contact.id, self.reopen_window).apply(
            tx, now
        )
        return contact, found


@attrs.frozen
class FindOrCreateTicket:
    tenant_id: str
    session_id: str
    contact_id: int
    reopen_window: float

    async def apply(self, tx: Any, now: float) -> FoundTicket:
        active = await tx.fetchrow(
            f"SELECT * FROM tickets WHERE session_id = $1 AND contact_id = $2 AND {_ACTIVE}",
            self.session_id, self.contact_id,
        )
        if active is not None:
            return FoundTicket(from_row(Ticket, active), TicketOutcome.EXISTING)
        if self.reopen_window > 0:
            reopened = await tx.fetchrow(
                "UPDATE tickets SET status = 'pending', user_id = NULL, closed_at = NULL, updated_at = $3 "
                "WHERE id = (SELECT id FROM tickets WHERE session_id = $1 AND contact_id = $2 "
                "AND status = 'closed' AND closed_at >= $4 ORDER BY closed_at DESC LIMIT 1) RETURNING *",
                self.session_id, self.contact_id, now, now - self.reopen_window,
            )
            if reopened is not None:
                return FoundTicket(from_row(Ticket, reopened), TicketOutcome.REOPENED)
        # the partial unique index arbitrates with other nodes: losing the race inserts nothing
        created = await tx.fetchrow(
            "INSERT INTO tickets (tenant_id, session_id, contact_id, status, created_at, updated_at) "
            "VALUES ($1, $2, $3, 'pending', $4, $4) "
            f"ON CONFLICT (session_id, contact_id) WHERE {_ACTIVE} DO NOTHING RETURNING *",
            self.tenant_id, self.session_id, self.contact_id, now,
        )
        if created is not None:
            return FoundTicket(from_row(Ticket, created), TicketOutcome.CREATED)
        winner = await tx.fetchrow(
            f"SELECT * FROM tickets WHERE session_id = $1 AND contact_id = $2 AND {_ACTIVE}",
            self.session_id, self.contact_id,
        )
        return FoundTicket(from_row(Ticket, winner), TicketOutcome.EXISTING)


@attrs.frozen
class AcceptTicket:
    ticket_id: int
    user_id: int
    fence: Fence | None

    async def apply(self, tx: Any, now: float) -> Ticket:
        await check_fence(tx, self.fence)
        row = await tx.fetchrow(
            "UPDATE tickets SET status = 'open', user_id = $2, unread = 0, updated_at = $3 WHERE id = $1 "
            "AND status <> 'closed' AND (status = 'pending' OR user_id IS NULL OR user_id = $2) RETURNING *",
            self.ticket_id, self.user_id, now,
        )
        if row is not None:
            return from_row(Ticket, row)
        ticket = await _ticket_or_raise(tx, self.ticket_id)
        if ticket.status == "closed":
            raise Conflict(f"ticket {self.ticket_id} is closed: reopen it before accepting")
        raise Conflict(f"ticket {self.ticket_id} is already accepted by user {ticket.user_id}")


@attrs.frozen
class TransferTicket:
    ticket_id: int
    queue: str | None
    user_id: int | None
    fence: Fence | None

    async def apply(self, tx: Any, now: float) -> Ticket:
        await check_fence(tx, self.fence)
        status = "pending" if self.user_id is None else "open"
        row = await tx.fetchrow(
            "UPDATE tickets SET queue = $2, user_id = $3, status = $4, updated_at = $5 "
            "WHERE id = $1 AND status <> 'closed' RETURNING *",
            self.ticket_id, self.queue, self.user_id, status, now,
        )
        if row is not None:
            return from_row(Ticket, row)
        await _ticket_or_raise(tx, self.ticket_id)
        raise Conflict(f"ticket {self.ticket_id} is closed: it cannot be transferred")


@attrs.frozen
class CloseTicket:
    """Close a ticket; closing a closed ticket is a no-op that returns it (idempotent)."""

    ticket_id: int
    fence: Fence | None

    async def apply(self, tx: Any, now: float) -> Ticket:
        await check_fence(tx, self.fence)
        row = await tx.fetchrow(
            "UPDATE tickets SET status = 'closed', closed_at = $2, unread = 0, updated_at = $2 "
            "WHERE id = $1 AND status <> 'closed' RETURNING *",
            self.ticket_id, now,
        )
        return from_row(Ticket, row) if row is not None else await _ticket_or_raise(tx, self.ticket_id)


@attrs.frozen
class ReopenTicket:
    """Reopen a closed ticket: ``open`` with ``user_id``, else back to ``pending``.

    Raises Conflict when the contact already has another open-or-pending ticket in the session.
    """

    ticket_id: int
    user_id: int | None
    fence: Fence | None

    async def apply(self, tx: Any, now: float) -> Ticket:
        ticket = await _ticket_or_raise(tx, self.ticket_id)
        if ticket.status != "closed":
            return ticket
        other = await tx.fetchval(
            f"SELECT id FROM tickets WHERE session_id = $1 AND contact_id = $2 AND {_ACTIVE}",
            ticket.session_id, ticket.contact_id,
        )
        if other is not None:
            raise Conflict(f"ticket {self.ticket_id} cannot reopen: ticket {other} is already active")
        await check_fence(tx, self.fence)
        row = await tx.fetchrow(
            "UPDATE tickets SET status = $2, user_id = $3, closed_at = NULL, updated_at = $4 "
            "WHERE id = $1 RETURNING *",
            self.ticket_id, "pending" if self.user_id is None else "open", self.user_id, now,
        )
        return from_row(Ticket, row)


@attrs.frozen
class MarkTicketRead:
    ticket_id: int

    async def apply(self, tx: Any, now: float) -> Ticket:
        row = await tx.fetchrow(
            "UPDATE tickets SET unread = 0, updated_at = $2 WHERE id = $1 RETURNING *", self.ticket_id, now
        )
        if row is None:
            raise NotFound(f"ticket {self.ticket_id} does not exist")
        return from_row(Ticket, row)


@attrs.frozen
class InsertMessages:
    """Store a run of messages, in order; consecutive runs in a batch are inserted together
    (:func:`insert_messages`). The op's result is one Inserted / AlreadyStored per message."""

    messages: tuple[NewMessage, ...]


_MESSAGE_COLUMNS = (
    "tenant_id", "session_id", "wa_id", "contact_id", "ticket_id", "from_me", "body",
    "media_type", "status", "sent_at", "created_at", "raw_body", "quoted_wa_id", "kind", "payload",
)
_PG_MESSAGE_TYPES = (
    "text", "text", "text", "bigint", "bigint", "bigint", "text", "text", "text", "float8", "float8",
    "text", "text", "text", "text",
)
_NOW = f"${len(_PG_MESSAGE_TYPES) + 2}"  # the parameter after the column arrays and media_source
_BUMP = (  # applied to tickets t from per-ticket aggregates b (unread, body, at); $N = now
    "unread = t.unread + b.unread, "
    "last_message = CASE WHEN t.last_message_at IS NULL OR t.last_message_at <= b.at THEN b.body "
    "ELSE t.last_message END, "
    "last_message_at = CASE WHEN t.last_message_at IS NULL OR t.last_message_at <= b.at THEN b.at "
    "ELSE t.last_message_at END"
)
_COLUMNS = ", ".join(_MESSAGE_COLUMNS)
#: The whole of a run of messages in one statement, one round trip: insert the new ones (in
#: order; a key seen before, or earlier in the batch, is skipped), bump each ticket once for its
#: new messages (unread: the inbound ones; last message: the latest, ties to the later one), and
#: queue a media job for each new message with a media source. Returns each new row's id and
#: its position in the run (``ord``, from 1): two integers to decode per row, not its text keys.
#: (Tickets are locked in the planner's order, not sorted: a deadlock needs two nodes writing the
#: same session's tickets at once, which its ownership lease prevents; PostgreSQL would abort one
#: and the writer would re-run that batch op by op.)
_PG_INSERT_MESSAGES = (
    "WITH batch AS (SELECT * FROM unnest("
    + ", ".join(f"${i}::{t}[]" for i, t in enumerate((*_PG_MESSAGE_TYPES, "text"), 1))
    + f") WITH ORDINALITY AS b ({_COLUMNS}, media_source, ord)), "
    f"inserted AS (INSERT INTO messages ({_COLUMNS}) SELECT {_COLUMNS} FROM batch ORDER BY ord "
    "ON CONFLICT (session_id, wa_id) DO NOTHING RETURNING id, session_id, wa_id), "
    "fresh AS (SELECT DISTINCT ON (i.id) i.id, b.* FROM inserted i JOIN batch b USING (session_id, wa_id) "
    "ORDER BY i.id, b.ord), "
    "bumps AS (SELECT ticket_id, count(*) FILTER (WHERE from_me = 0) AS unread, "
    "(array_agg(body ORDER BY sent_at DESC, ord DESC))[1] AS body, max(sent_at) AS at "
    "FROM fresh WHERE ticket_id IS NOT NULL GROUP BY ticket_id), "
    f"bumped AS (UPDATE tickets t SET {_BUMP}, updated_at = {_NOW} FROM bumps b WHERE t.id = b.ticket_id), "
    "media AS (INSERT INTO media_jobs (tenant_id, message_id, status, next_attempt_at, created_at, updated_at, "
    f"source) SELECT tenant_id, id, 'queued', {_NOW}, {_NOW}, {_NOW}, media_source FROM fresh "
    "WHERE media_source IS NOT NULL ON CONFLICT (message_id) DO NOTHING) "
    "SELECT id, ord FROM fresh"
)
_PG_FIND_MESSAGES = (
    "SELECT m.id, m.session_id, m.wa_id FROM messages m "
    "JOIN unnest($1::text[], $2::text[]) AS k (session_id, wa_id) USING (session_id, wa_id)"
)
_SQLITE_INSERT_MESSAGE = (
    f"INSERT INTO messages ({_COLUMNS}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(_MESSAGE_COLUMNS) + 1))}) "
    "ON CONFLICT (session_id, wa_id) DO NOTHING"
)
_SQLITE_TOP_MESSAGE = "SELECT coalesce(max(id), 0) FROM messages"
_SQLITE_FIND_MESSAGE = "SELECT id, session_id, wa_id FROM messages WHERE session_id = $1 AND wa_id = $2"
_SQLITE_BUMP_TICKET = (
    f"UPDATE tickets AS t SET {_BUMP}, updated_at = $5 "
    "FROM (SELECT $1 AS id, $2 AS unread, $3 AS body, $4 AS at) AS b WHERE t.id = b.id"
)
#: A new message with an attachment gets its download job in the same transaction.
_SQLITE_QUEUE_MEDIA = (
    "INSERT INTO media_jobs (tenant_id, message_id, status, next_attempt_at, created_at, updated_at, source) "
    "VALUES ($1, $2, 'queued', $3, $3, $3, $4) ON CONFLICT (message_id) DO NOTHING"
)


async def _sqlite_insert(
    tx: Any, messages: list[NewMessage], rows: list[tuple], now: float
) -> list[int | None]:
    """SQLite's :data:`_PG_INSERT_MESSAGES`: statements cost no round trip here, so plainly.
    Returns each message's new id, None for one not inserted (stored before, or earlier in the run).

    ``executemany`` (its loop runs in C, ~25 % cheaper than one multi-row INSERT ... RETURNING,
    measured), then the new rows are those above the previous highest id — exact because the
    writer holds SQLite's write lock (BEGIN IMMEDIATE) so nobody else inserts meanwhile, and an
    INTEGER PRIMARY KEY (no AUTOINCREMENT) hands out the current maximum + 1. So when the maximum
    grew by exactly the number of rows, every row was inserted, in order, with the ids in between:
    the usual case costs no read-back (a tenth of a 100-row batch, measured); only a
    run with duplicates reads its new rows back.
    """
    top = await tx.fetchval(_SQLITE_TOP_MESSAGE)
    await tx.executemany(_SQLITE_INSERT_MESSAGE, rows)
    new_ids: list[int | None]
    if await tx.fetchval(_SQLITE_TOP_MESSAGE) == top + len(rows):
        new_ids = list(range(top + 1, top + 1 + len(rows)))
    else:
        inserted = await tx.fetch("SELECT id, session_id, wa_id FROM messages WHERE id > $1", top)
        unclaimed = {(row["session_id"], row["wa_id"]): row["id"] for row in inserted}
        # the first of a key in the run is the one inserted; a repeat finds it claimed
        new_ids = [unclaimed.pop((m.session_id, m.wa_id), None) for m in messages]
    bumps: dict[int, list[Any]] = {}  # ticket id -> [unread delta, last body, last sent_at]
    media = []
    for m, message_id in zip(messages, new_ids):
        if message_id is None:
            continue  # stored before, or earlier in this run
        if m.ticket_id is not None:
            bump = bumps.setdefault(m.ticket_id, [0, m.body, m.sent_at])
            bump[0] += 0 if m.from_me else 1
            if m.sent_at >= bump[2]:
                bump[1:] = [m.body, m.sent_at]
        if m.media_source is not None:
            media.append((m.tenant_id, message_id, now, m.media_source))
    if bumps:
        await tx.executemany(
            _SQLITE_BUMP_TICKET,
            [(ticket_id, n, body, float(at), now) for ticket_id, (n, body, at) in sorted(bumps.items())],
        )
    if media:
        await tx.executemany(_SQLITE_QUEUE_MEDIA, media)
    return new_ids


def _pg_array(column: Sequence[Any]) -> list[Any] | None:
    """A column of a run as :data:`_PG_INSERT_MESSAGES`' array parameter: NULL (``None``) when every
    value is NULL, which ``unnest`` pads to a NULL per row like an array of NULLs — but asyncpg
    encodes an array with two ``isinstance(..., collections.abc.Iterable/Sized)`` checks, run in
    Python, per element (issue 18: 226k such calls for 10k rows under cProfile, 7 % of the
    profiled client time), and most optional columns (ticket, media, quote, payload, raw body)
    are empty in many runs: 6 of the 16 arrays of a run of plain texts without tickets."""
    return None if column.count(None) == len(column) else list(column)


async def _find_rows(tx: Any, keys: list[tuple[str, str]]) -> list[Any]:
    """The (id, session_id, wa_id) of stored messages among ``keys`` = (session_id, wa_id) pairs.

    One statement on PostgreSQL (a round trip each would make a burst of redelivered duplicates
    slow); one lookup per key on SQLite, where a statement costs no round trip.
    """
    if tx.dialect == "postgres":
        return await tx.fetch(_PG_FIND_MESSAGES, *(list(column) for column in zip(*keys)))
    return [row for key in keys for row in await tx.fetch(_SQLITE_FIND_MESSAGE, *key)]


async def insert_messages(
    tx: Any, ops: list[InsertMessages], now: float
) -> list[list[Inserted | AlreadyStored]]:
    """Insert the messages of consecutive ops together, in submit order (see
    :data:`_PG_INSERT_MESSAGES`: one statement on PostgreSQL).

    A message whose (session, WhatsApp id) exists — stored before, or earlier in the same run — is
    reported :class:`AlreadyStored` and changes nothing. For the new ones, their tickets' unread
    counters (inbound only) and last message move forward in the same transaction, and those
    with a ``media_source`` get their media job. Returns each op's results.
    """
    messages = [m for op in ops for m in op.messages]
    rows = [
        (m.tenant_id, m.session_id, m.wa_id, m.contact_id, m.ticket_id, int(m.from_me), m.body,
         m.media_type, str(m.status), float(m.sent_at), now, m.raw_body, m.quoted_wa_id, str(m.kind),
         None if m.payload is None else json.dumps(m.payload))
        for m in messages
    ]
    new_ids: list[int | None]
    if tx.dialect == "postgres":
        columns = [_pg_array(column) for column in zip(*rows)]
        inserted = await tx.fetch(_PG_INSERT_MESSAGES, *columns, _pg_array([m.media_source for m in messages]), now)
        new_ids = [None] * len(messages)
        for message_id, position in inserted:
            new_ids[position - 1] = message_id
    else:
        new_ids = await _sqlite_insert(tx, messages, rows, now)
    # None: not inserted (stored before, or earlier in this run), looked up below
    results: list[Inserted | AlreadyStored | None] = [
        None if message_id is None else Inserted(message_id) for message_id in new_ids
    ]
    missing = {(m.session_id, m.wa_id) for m, r in zip(messages, results) if r is None}
    if missing:
        found = await _find_rows(tx, sorted(missing))
        stored = {(row["session_id"], row["wa_id"]): row["id"] for row in found}
        results = [
            AlreadyStored(stored[(m.session_id, m.wa_id)]) if r is None else r
            for m, r in zip(messages, results)
        ]
    per_op, start = [], 0
    for op in ops:
        per_op.append(results[start:start + len(op.messages)])
        start += len(op.messages)
    return per_op


EARLY_RECEIPT_TTL = 3600.0
"""Seconds a receipt for an id no stored message has is kept for the send's answer to be recorded
(normally milliseconds later). Receipts that never match (a group message sent from the phone,
which the helpdesk does not store) are swept after it, so the table holds at most this much."""


@attrs.frozen
class UpdateMessageStatus:
    """Move a message's delivery status forward (a receipt); returns False when it changed nothing.

    A receipt for an id no stored message has is kept in ``early_receipts`` (the highest status
    wins): WhatsApp may report a sent message delivered before the send's answer, which carries
    the id, is recorded; storing that message then applies it (``OutboxSent``).
    """

    session_id: str
    wa_id: str
    status: DeliveryStatus

    async def apply(self, tx: Any, now: float) -> bool:
        listed = statuses_below(self.status)
        if not listed:
            return False
        row = await tx.fetchrow(
            f"UPDATE messages SET status = $3 WHERE session_id = $1 AND wa_id = $2 AND status IN ({listed}) "
            "RETURNING id",
            self.session_id, self.wa_id, str(self.status),
        )
        if row is not None:
            return True
        stored = await tx.fetchval(
            "SELECT 1 FROM messages WHERE session_id = $1 AND wa_id = $2", self.session_id, self.wa_id
        )
        if stored is None:
            await tx.execute("DELETE FROM early_receipts WHERE at < $1", now - EARLY_RECEIPT_TTL)
            await tx.execute(
                "INSERT INTO early_receipts (session_id, wa_id, status, at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (session_id, wa_id) DO UPDATE SET status = excluded.status, at = excluded.at "
                f"WHERE early_receipts.status IN ({listed})",
                self.session_id, self.wa_id, str(self.status), now,
            )
        return False


@attrs.frozen
class AppendAudit:
    who: str
    action: str
    target: str
    result: str
    detail: str | None

    async def apply(self, tx: Any, now: float) -> AuditEntry:
        row = await tx.fetchrow(
            "INSERT INTO audit (at, who, action, target, result, detail) VALUES ($1, $2, $3, $4, $5, $6) "
            "RETURNING *",
            now, self.who, self.action, self.target, self.result, self.detail,
        )
        return from_row(AuditEntry, row)
