"""Write operations on the persistent queues: outbox, media jobs, webhook deliveries; pauses; admin.

The three queues share one life cycle (:class:`JobStatus`): ``queued`` until ``next_attempt_at``,
``running`` once claimed (``attempts`` counts claims, so a crash mid-attempt still counts), then
``done`` or back to ``queued`` with a later ``next_attempt_at``, or ``dead`` (the dead letter,
visible and retryable through the admin ops). Retry *policy* (how many attempts, which backoff)
belongs to the actor that owns the queue: it passes ``retry_at=None`` to give up.

The outbox is claimed head-of-line per session — a session's next item is handed out only when
everything before it is finished — so per-session order survives retries and restarts. Its rows
have two more states (see :class:`JobStatus`): ``running`` → ``sending`` just before the driver
gets the send (:class:`MarkSending`), then ``done`` with WhatsApp's id (:class:`OutboxSent`),
back to ``queued``/``dead`` when WhatsApp certainly does not have it, or ``unknown``
(:class:`MarkSendsUnknown`) when nobody can tell; only an admin retry sends an ``unknown`` row
again. ``unknown`` and ``dead`` rows no longer hold their session's line.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import attrs

from ._errors import Conflict, NotFound
from ._ops_core import InsertMessages, UpsertContact, insert_messages
from ._records import (
    DELIVERY_RANK,
    QUEUE_RECORDS,
    DeliveryStatus,
    Enqueued,
    JobStatus,
    MediaJob,
    NewMessage,
    OutboxItem,
    OutboxSentRecord,
    Queue,
    Webhook,
    WebhookDelivery,
    from_row,
    statuses_below,
)
from ._text import storable

_WHOLE_QUEUE = ""  # queue_pauses.scope of a pause that covers the whole queue

QUARANTINE_AFTER_INTERRUPTIONS = 3
"""A job found ``running`` with no worker this many times is quarantined (``dead``) instead of
queued again: one interruption is a process killed mid-job, a few in a row mean the job is what
kills its worker. Three stays under the services supervisor's restart intensity (so a worker
crash-looping on one job never takes its supervisor down) while a job merely unlucky enough to be
in flight during two crashes of the node is still retried."""

#: What ``last_error`` of a job quarantined by RecoverRunning starts with (the admin's clue).
QUARANTINED = "quarantined"


def placeholders(first: int, count: int) -> str:
    """``$first, ..., $(first + count - 1)``: an ``IN`` list of ``count`` bound values."""
    return ", ".join(f"${n}" for n in range(first, first + count))


def _queue_paused(queue: Queue) -> str:
    return f"EXISTS (SELECT 1 FROM queue_pauses WHERE queue = '{queue}' AND scope = '{_WHOLE_QUEUE}')"


@attrs.frozen
class EnqueueOutbox:
    """Add a send request; a second request with the same (tenant, idempotency key) returns the first."""

    tenant_id: str
    session_id: str
    idempotency_key: str
    message_id: str
    to_jid: str
    payload: dict
    ticket_id: int | None

    async def apply(self, tx: Any, now: float) -> Enqueued:
        row = await tx.fetchrow(
            "INSERT INTO outbox (tenant_id, session_id, ticket_id, idempotency_key, message_id, to_jid, "
            "payload, status, delivery, next_attempt_at, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', 'pending', $8, $8, $8) "
            "ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING *",
            self.tenant_id, self.session_id, self.ticket_id, self.idempotency_key, self.message_id,
            self.to_jid, json.dumps(self.payload), now,
        )
        if row is not None:
            return Enqueued(from_row(OutboxItem, row), created=True)
        existing = await tx.fetchrow(
            "SELECT * FROM outbox WHERE tenant_id = $1 AND idempotency_key = $2",
            self.tenant_id, self.idempotency_key,
        )
        return Enqueued(from_row(OutboxItem, existing), created=False)


@attrs.frozen
class ClaimOutbox:
    """Claim the due head-of-line item of each session (or of one), skipping paused sessions."""

    session_id: str | None
    limit: int

    async def apply(self, tx: Any, now: float) -> list[OutboxItem]:
        only = "AND session_id = $3" if self.session_id is not None else ""
        args = (now, self.limit) + ((self.session_id,) if self.session_id is not None else ())
        rows = await tx.fetch(
            "UPDATE outbox SET status = 'running', attempts = attempts + 1, updated_at = $1 WHERE id IN ("
            "  SELECT id FROM outbox WHERE id IN ("
            f"    SELECT MIN(id) FROM outbox WHERE status IN ('queued', 'running', 'sending') {only} "
            "    GROUP BY session_id)"
            "  AND status = 'queued' AND next_attempt_at <= $1"
            "  AND session_id NOT IN (SELECT scope FROM queue_pauses WHERE queue = 'outbox')"
            f"  AND NOT {_queue_paused(Queue.OUTBOX)}"
            "  ORDER BY next_attempt_at, id LIMIT $2) RETURNING *",
            *args,
        )
        return sorted((from_row(OutboxItem, row) for row in rows), key=lambda item: item.id)


@attrs.frozen
class ClaimJobs:
    """Claim up to ``limit`` due media jobs or webhook deliveries (oldest due first)."""

    queue: Queue
    limit: int

    async def apply(self, tx: Any, now: float) -> list:
        table = self.queue.value
        rows = await tx.fetch(
            f"UPDATE {table} SET status = 'running', attempts = attempts + 1, updated_at = $1 "
            f"WHERE id IN (SELECT id FROM {table} WHERE status = 'queued' AND next_attempt_at <= $1 "
            f"AND NOT {_queue_paused(self.queue)} ORDER BY next_attempt_at, id LIMIT $2) RETURNING *",
            now, self.limit,
        )
        record = QUEUE_RECORDS[self.queue]
        return sorted((from_row(record, row) for row in rows), key=lambda job: job.id)


#: Extra assignments when a media job or webhook delivery finishes well (the outbox: OutboxSent).
_ON_DONE = {
    Queue.MEDIA: ", path = $3",
    Queue.WEBHOOKS: "",
}

#: The statuses in which a job's worker may report its outcome, per queue.
_IN_FLIGHT = {
    Queue.OUTBOX: "('running', 'sending')",
    Queue.MEDIA: "('running')",
    Queue.WEBHOOKS: "('running')",
}


@attrs.frozen
class CompleteJob:
    """Finish a running media job or webhook delivery. For a media job ``path`` is the stored
    file, also set on its message."""

    queue: Queue
    job_id: int
    path: str | None

    async def apply(self, tx: Any, now: float) -> Any:
        args = (self.job_id, now) + ((self.path,) if self.queue is Queue.MEDIA else ())
        row = await tx.fetchrow(
            f"UPDATE {self.queue.value} SET status = 'done', last_error = NULL, updated_at = $2"
            f"{_ON_DONE[self.queue]} WHERE id = $1 AND status = 'running' RETURNING *",
            *args,
        )
        if row is None:
            raise await _not_running(tx, self.queue, self.job_id)
        if self.queue is Queue.MEDIA:
            await tx.execute("UPDATE messages SET media_path = $2 WHERE id = $1", row["message_id"], self.path)
        return from_row(QUEUE_RECORDS[self.queue], row)


@attrs.frozen
class FailJob:
    """Record a failed attempt: back to ``queued`` at ``retry_at``, or ``dead`` when it is None."""

    queue: Queue
    job_id: int
    error: str
    retry_at: float | None

    async def apply(self, tx: Any, now: float) -> Any:
        status = JobStatus.DEAD if self.retry_at is None else JobStatus.QUEUED
        extra = ", delivery = 'failed'" if self.queue is Queue.OUTBOX and self.retry_at is None else ""
        row = await tx.fetchrow(
            f"UPDATE {self.queue.value} SET status = $2, last_error = $3, next_attempt_at = $4, "
            f"updated_at = $5{extra} WHERE id = $1 AND status IN {_IN_FLIGHT[self.queue]} RETURNING *",
            self.job_id, str(status), self.error,
            float(now if self.retry_at is None else self.retry_at), now,
        )
        if row is None:
            raise await _not_running(tx, self.queue, self.job_id)
        return from_row(QUEUE_RECORDS[self.queue], row)


async def _not_running(tx: Any, queue: Queue, job_id: int, expected: str = "running") -> Exception:
    status = await tx.fetchval(f"SELECT status FROM {queue.value} WHERE id = $1", job_id)
    if status is None:
        return NotFound(f"{queue.value} job {job_id} does not exist")
    return Conflict(f"{queue.value} job {job_id} is {status}, not {expected}")


@attrs.frozen
class MarkSending:
    """A claimed outbox item is about to be handed to the driver: ``running`` → ``sending``.

    Committed *before* the driver call, so a process that dies during the call leaves the row
    ``sending``, and the next start knows WhatsApp may have it (:class:`MarkSendsUnknown`).
    Raises Conflict if the row is not running (an admin removed it), NotFound if it is gone.
    """

    item_id: int

    async def apply(self, tx: Any, now: float) -> OutboxItem:
        row = await tx.fetchrow(
            "UPDATE outbox SET status = 'sending', updated_at = $2 WHERE id = $1 AND status = 'running' RETURNING *",
            self.item_id, now,
        )
        if row is None:
            raise await _not_running(tx, Queue.OUTBOX, self.item_id)
        return from_row(OutboxItem, row)


@attrs.frozen
class MarkSendsUnknown:
    """Sends whose outcome nobody knows: ``sending`` → ``unknown`` with ``error`` saying why.

    One item (``item_id``: its answer timed out, or its connection or worker died after it went
    out); some sessions' (``sessions``: a node takes them over, so the previous owner's sends in
    flight are not its own — except those in ``keep``, still in flight here); or every
    ``sending`` row (neither: at start-up, their process died mid-send). Returns the rows changed
    (none if the item was not ``sending``: it finished meanwhile).
    """

    item_id: int | None
    error: str
    sessions: tuple[str, ...] | None = None
    keep: tuple[int, ...] = ()

    async def apply(self, tx: Any, now: float) -> list[OutboxItem]:
        args: list[Any] = [self.error, now]
        where = ["status = 'sending'"]
        if self.item_id is not None:
            args.append(self.item_id)
            where.append(f"id = ${len(args)}")
        if self.sessions is not None:
            where.append(f"session_id IN ({placeholders(len(args) + 1, len(self.sessions))})")
            args.extend(self.sessions)
        for item_id in self.keep:
            args.append(item_id)
            where.append(f"id <> ${len(args)}")
        rows = await tx.fetch(
            f"UPDATE outbox SET status = 'unknown', last_error = $1, updated_at = $2 WHERE {' AND '.join(where)} "
            "RETURNING *",
            *args,
        )
        return sorted((from_row(OutboxItem, row) for row in rows), key=lambda item: item.id)


@attrs.frozen
class TakenOver:
    """What :class:`TakeOverOutbox` found: the sends it made ``unknown`` (to announce), and the
    sessions with a ``queued`` send (their senders claim at once; the others wait for a wake-up)."""

    unknown: tuple[OutboxItem, ...]
    waiting: frozenset[str]


TAKE_OVER_CHUNK = 500
"""Sessions named in one statement's ``IN`` list: few statements for a node's worth of sessions,
far below either engine's limit on bound parameters."""


@attrs.frozen
class TakeOverOutbox:
    """This node starts sending for ``sessions`` (they connected here): what their previous
    sender left is settled, a few statements for all of them, not three writes each (a node
    taking over hundreds of sessions flooded the store with those).

    Their ``sending`` rows not in ``keep`` become ``unknown`` (``error`` says why: another node,
    or an earlier life of this service, was sending them); with ``recover`` their ``running`` rows
    go back to ``queued`` (a node that died after claiming them: see :class:`RecoverRunning`);
    and it tells which of them have a ``queued`` send.
    """

    sessions: tuple[str, ...]
    error: str
    keep: tuple[int, ...]
    recover: bool

    async def apply(self, tx: Any, now: float) -> TakenOver:
        unknown: list[OutboxItem] = []
        waiting: set[str] = set()
        for start in range(0, len(self.sessions), TAKE_OVER_CHUNK):
            chunk = self.sessions[start:start + TAKE_OVER_CHUNK]
            unknown += await MarkSendsUnknown(None, self.error, chunk, self.keep).apply(tx, now)
            if self.recover:
                await RecoverRunning(Queue.OUTBOX, None, chunk).apply(tx, now)
            rows = await tx.fetch(
                f"SELECT DISTINCT session_id FROM outbox WHERE session_id IN ({placeholders(1, len(chunk))}) "
                "AND status = 'queued'",
                *chunk,
            )
            waiting.update(row["session_id"] for row in rows)
        return TakenOver(tuple(sorted(unknown, key=lambda item: item.id)), frozenset(waiting))


@attrs.frozen
class OutboxSent:
    """WhatsApp accepted a send and named it ``wa_id``: in one transaction the row is ``done``
    with that id, the contact exists, and the outbound message is stored under ``wa_id`` — with
    any receipt that arrived before this write (see :class:`~actors.store._ops_core.UpdateMessageStatus`).

    A row found ``unknown`` (its answer came after it was given up on) is resolved the same way.
    Raises Conflict if the row is in no such state (an admin removed or retried it), NotFound.
    """

    item_id: int
    wa_id: str
    sent_at: float
    media_type: str | None

    async def apply(self, tx: Any, now: float) -> OutboxSentRecord:
        row = await tx.fetchrow(
            "UPDATE outbox SET status = 'done', wa_id = $2, last_error = NULL, updated_at = $3, "
            "delivery = CASE WHEN delivery = 'pending' THEN 'sent' ELSE delivery END "
            "WHERE id = $1 AND status IN ('sending', 'unknown') RETURNING *",
            self.item_id, self.wa_id, now,
        )
        if row is None:
            raise await _not_running(tx, Queue.OUTBOX, self.item_id, "sending")
        item = from_row(OutboxItem, row)
        early = await tx.fetchval(
            "DELETE FROM early_receipts WHERE session_id = $1 AND wa_id = $2 RETURNING status",
            item.session_id, self.wa_id,
        )
        status = DeliveryStatus.SENT
        if early is not None and DELIVERY_RANK[DeliveryStatus(early)] > DELIVERY_RANK[status]:
            status = DeliveryStatus(early)
            row = await tx.fetchrow("UPDATE outbox SET delivery = $2 WHERE id = $1 RETURNING *", item.id, str(status))
            item = from_row(OutboxItem, row)
        contact = await UpsertContact(item.tenant_id, item.to_jid, "", False).apply(tx, now)
        body, raw_body = storable(str(item.payload.get("text", "")))  # WhatsApp has it: never refused now
        media = item.payload.get("media") or {}
        keys = ("mimetype", "file_name") if self.media_type == "document" else ("mimetype",)
        kind_payload = {key: media[key] for key in keys if media.get(key)} or None
        message = NewMessage(
            tenant_id=item.tenant_id, session_id=item.session_id, wa_id=self.wa_id, contact_id=contact.id,
            ticket_id=item.ticket_id, from_me=True, body=body, raw_body=raw_body, sent_at=self.sent_at,
            media_type=self.media_type, status=status,
            quoted_wa_id=(item.payload.get("quote") or {}).get("wa_id"),
            kind=self.media_type or "text", payload=kind_payload,  # an attachment's kind is its media type
        )
        [[stored]] = await insert_messages(tx, [InsertMessages((message,))], now)
        return OutboxSentRecord(item, stored.message_id, status)


@attrs.frozen
class RecoverRunning:
    """Jobs left ``running`` go back to ``queued`` (returns how many were taken back): all of them
    after a restart (``claimed_before`` None), or those claimed before a cut-off (a worker that
    vanished, a claim whose answer was lost).

    Each such job's ``interrupted`` count goes up; the one reaching
    QUARANTINE_AFTER_INTERRUPTIONS goes ``dead`` instead (an outbox item's delivery ``failed``),
    its ``last_error`` saying so: the job that keeps killing its worker is quarantined.

    Safe for the outbox because a ``running`` row never reached the driver (``sending`` rows,
    which may have, are left alone).
    """

    queue: Queue
    claimed_before: float | None
    sessions: tuple[str, ...] | None = None  # outbox only: these sessions' items (a node took them over)

    async def apply(self, tx: Any, now: float) -> int:
        cutoff = now if self.claimed_before is None else float(self.claimed_before)
        quarantine = f"interrupted + 1 >= {QUARANTINE_AFTER_INTERRUPTIONS}"
        error = (f"{QUARANTINED}: found running with no worker {QUARANTINE_AFTER_INTERRUPTIONS} times "
                 "(it crashed its worker or was in flight at each of its process's deaths); "
                 "retry it or remove it")
        delivery = (f", delivery = CASE WHEN {quarantine} THEN 'failed' ELSE delivery END"
                    if self.queue is Queue.OUTBOX else "")
        where, args = "status = 'running' AND updated_at <= $2", [now, cutoff, error]
        if self.sessions is not None:
            where += f" AND session_id IN ({placeholders(4, len(self.sessions))})"
            args.extend(self.sessions)
        rows = await tx.fetch(
            f"UPDATE {self.queue.value} SET status = CASE WHEN {quarantine} THEN 'dead' ELSE 'queued' END, "
            f"last_error = CASE WHEN {quarantine} THEN $3 ELSE last_error END{delivery}, "
            f"interrupted = interrupted + 1, updated_at = $1 WHERE {where} RETURNING id",
            *args,
        )
        return len(rows)


@attrs.frozen
class OutboxReceipt:
    """A receipt for a sent message (``wa_id``: WhatsApp's id): move the outbox item's delivery
    status forward (False if unknown)."""

    session_id: str
    wa_id: str
    delivery: DeliveryStatus

    async def apply(self, tx: Any, now: float) -> bool:
        lower = statuses_below(self.delivery)
        if not lower:
            return False
        row = await tx.fetchrow(
            f"UPDATE outbox SET delivery = $3, updated_at = $4 WHERE session_id = $1 AND wa_id = $2 "
            f"AND delivery IN ({lower}) RETURNING id",
            self.session_id, self.wa_id, str(self.delivery), now,
        )
        return row is not None


@attrs.frozen
class EnqueueMediaJob:
    """Queue the download of a message's media; one job per message (a second call returns it)."""

    tenant_id: str
    message_id: int

    async def apply(self, tx: Any, now: float) -> MediaJob:
        row = await tx.fetchrow(
            "INSERT INTO media_jobs (tenant_id, message_id, status, next_attempt_at, created_at, updated_at) "
            "VALUES ($1, $2, 'queued', $3, $3, $3) ON CONFLICT (message_id) DO NOTHING RETURNING *",
            self.tenant_id, self.message_id, now,
        )
        if row is None:
            row = await tx.fetchrow("SELECT * FROM media_jobs WHERE message_id = $1", self.message_id)
        return from_row(MediaJob, row)


@attrs.frozen
class CreateWebhook:
    tenant_id: str
    url: str
    events: tuple[str, ...]
    secret: str | None

    async def apply(self, tx: Any, now: float) -> Webhook:
        row = await tx.fetchrow(
            "INSERT INTO webhooks (tenant_id, url, events, secret, active, created_at) "
            "VALUES ($1, $2, $3, $4, 1, $5) RETURNING *",
            self.tenant_id, self.url, json.dumps(list(self.events)), self.secret, now,
        )
        return from_row(Webhook, row)


@attrs.frozen
class DeleteWebhook:
    webhook_id: int

    async def apply(self, tx: Any, now: float) -> bool:
        return await tx.fetchrow("DELETE FROM webhooks WHERE id = $1 RETURNING id", self.webhook_id) is not None


#: A webhook subscribed to this event name receives every event.
ALL_EVENTS = "*"


def webhook_wants(subscribed: Collection[str], event: str) -> bool:
    """Whether a webhook subscribed to ``subscribed`` receives ``event``: its exact name, ``*``
    (everything) or ``<family>.*`` (every event of that family: ``ticket.*`` takes
    ``ticket.created`` and ``ticket.updated``)."""
    return event in subscribed or ALL_EVENTS in subscribed or event.split(".", 1)[0] + ".*" in subscribed


@attrs.frozen
class EnqueueWebhookEvent:
    """Queue one delivery of ``event`` per active webhook of the tenant subscribed to it."""

    tenant_id: str
    event: str
    payload: dict

    async def apply(self, tx: Any, now: float) -> list[WebhookDelivery]:
        hooks = await tx.fetch(
            "SELECT id, events FROM webhooks WHERE tenant_id = $1 AND active = 1 ORDER BY id", self.tenant_id
        )
        body = json.dumps(self.payload)
        deliveries = []
        for hook in hooks:
            events = json.loads(hook["events"])
            if webhook_wants(events, self.event):
                row = await tx.fetchrow(
                    "INSERT INTO webhook_deliveries (webhook_id, tenant_id, event, payload, status, "
                    "next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, $4, 'queued', $5, $5, $5) "
                    "RETURNING *",
                    hook["id"], self.tenant_id, self.event, body, now,
                )
                deliveries.append(from_row(WebhookDelivery, row))
        return deliveries


@attrs.frozen
class RetryJob:
    """Admin: put a dead (or waiting) job back at the head of its queue with fresh attempt and
    interruption counts (a quarantined job gets its full chances again).

    An outbox row whose send outcome is ``unknown`` can be retried too: that is the deliberate
    re-send (WhatsApp may then have the message twice), the only way such a row is sent again.
    """

    queue: Queue
    job_id: int

    async def apply(self, tx: Any, now: float) -> Any:
        extra, retryable = "", "('queued', 'dead')"
        if self.queue is Queue.OUTBOX:
            extra, retryable = ", delivery = 'pending'", "('queued', 'dead', 'unknown')"
        row = await tx.fetchrow(
            f"UPDATE {self.queue.value} SET status = 'queued', attempts = 0, interrupted = 0, last_error = NULL, "
            f"next_attempt_at = $2, updated_at = $2{extra} WHERE id = $1 AND status IN {retryable} "
            "RETURNING *",
            self.job_id, now,
        )
        if row is None:
            raise await _not_retryable(tx, self.queue, self.job_id)
        return from_row(QUEUE_RECORDS[self.queue], row)


async def _not_retryable(tx: Any, queue: Queue, job_id: int) -> Exception:
    status = await tx.fetchval(f"SELECT status FROM {queue.value} WHERE id = $1", job_id)
    if status is None:
        return NotFound(f"{queue.value} job {job_id} does not exist")
    allowed = "queued, dead or unknown" if queue is Queue.OUTBOX else "queued or dead"
    return Conflict(f"{queue.value} job {job_id} is {status}: only {allowed} jobs can be retried")


@attrs.frozen
class RemoveJob:
    """Admin: delete a job that is not in flight (returns False if there was none to delete)."""

    queue: Queue
    job_id: int

    async def apply(self, tx: Any, now: float) -> bool:
        row = await tx.fetchrow(
            f"DELETE FROM {self.queue.value} WHERE id = $1 AND status NOT IN {_IN_FLIGHT[self.queue]} RETURNING id",
            self.job_id,
        )
        return row is not None


@attrs.frozen
class CleanJobs:
    """Admin: delete finished jobs (done, and dead when ``include_dead``) last touched before ``before``."""

    queue: Queue
    before: float
    include_dead: bool

    async def apply(self, tx: Any, now: float) -> int:
        statuses = "('done', 'dead')" if self.include_dead else "('done')"
        rows = await tx.fetch(
            f"DELETE FROM {self.queue.value} WHERE status IN {statuses} AND updated_at < $1 RETURNING id",
            float(self.before),
        )
        return len(rows)


@attrs.frozen
class SetPaused:
    """Pause or resume a queue (``scope`` ''), or one session's outbox (``scope`` = session id)."""

    queue: Queue
    scope: str
    paused: bool

    async def apply(self, tx: Any, now: float) -> bool:
        if self.paused:
            row = await tx.fetchrow(
                "INSERT INTO queue_pauses (queue, scope, paused_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (queue, scope) DO NOTHING RETURNING queue",
                str(self.queue), self.scope, now,
            )
        else:
            row = await tx.fetchrow(
                "DELETE FROM queue_pauses WHERE queue = $1 AND scope = $2 RETURNING queue",
                str(self.queue), self.scope,
            )
        return row is not None
