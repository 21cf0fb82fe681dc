"""Write operations on the persistent queues: outbox, media jobs, webhook deliveries; pauses; admin.

The three queues share one life cycle (:class:`JobStatus`): ``queued`` until ``next_attempt_at``,
``running`` once claimed (``attempts`` counts claims, so a crash mid-attempt still counts), then
``done`` or back to ``queued`` with a later ``next_attempt_at``, or ``dead`` (the dead letter,
visible and retryable through the admin ops). Retry *policy* (how many attempts, which backoff)
belongs to the actor that owns the queue: it passes ``retry_at=None`` to give up.

The outbox is claimed head-of-line per session — a session's next item is handed out only when
everything before it is finished — so per-session order survives retries and restarts.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import attrs

from ._errors import Conflict, NotFound
from ._records import (
    QUEUE_RECORDS,
    DeliveryStatus,
    Enqueued,
    JobStatus,
    MediaJob,
    OutboxItem,
    Queue,
    Webhook,
    WebhookDelivery,
    from_row,
    statuses_below,
)

_WHOLE_QUEUE = ""  # queue_pauses.scope of a pause that covers the whole queue


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
            f"    SELECT MIN(id) FROM outbox WHERE status IN ('queued', 'running') {only} GROUP BY session_id)"
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


#: Extra assignments when a job finishes well, per queue.
_ON_DONE = {
    Queue.OUTBOX: ", delivery = CASE WHEN delivery = 'pending' THEN 'sent' ELSE delivery END",
    Queue.MEDIA: ", path = $3",
    Queue.WEBHOOKS: "",
}


@attrs.frozen
class CompleteJob:
    """Finish a running job. For a media job ``path`` is the stored file, also set on its message."""

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
            f"updated_at = $5{extra} WHERE id = $1 AND status = 'running' RETURNING *",
            self.job_id, str(status), self.error,
            float(now if self.retry_at is None else self.retry_at), now,
        )
        if row is None:
            raise await _not_running(tx, self.queue, self.job_id)
        return from_row(QUEUE_RECORDS[self.queue], row)


async def _not_running(tx: Any, queue: Queue, job_id: int) -> Exception:
    status = await tx.fetchval(f"SELECT status FROM {queue.value} WHERE id = $1", job_id)
    if status is None:
        return NotFound(f"{queue.value} job {job_id} does not exist")
    return Conflict(f"{queue.value} job {job_id} is {status}, not running")


@attrs.frozen
class RecoverRunning:
    """Jobs left ``running`` go back to ``queued`` (returns how many): all of them after a
    restart (``claimed_before`` None), or those claimed before a cut-off (a worker that vanished,
    a claim whose answer was lost).

    Safe for the outbox because a resend reuses the item's stable message id.
    """

    queue: Queue
    claimed_before: float | None
    session_id: str | None = None  # outbox only: one session's items (a node took the session over)

    async def apply(self, tx: Any, now: float) -> int:
        cutoff = now if self.claimed_before is None else float(self.claimed_before)
        where, args = "status = 'running' AND updated_at <= $2", [now, cutoff]
        if self.session_id is not None:
            where, args = where + " AND session_id = $3", [*args, self.session_id]
        rows = await tx.fetch(f"UPDATE {self.queue.value} SET status = 'queued', updated_at = $1 WHERE {where} RETURNING id",
                              *args)
        return len(rows)


@attrs.frozen
class OutboxReceipt:
    """A receipt for a sent message: move the outbox item's delivery status forward (False if unknown)."""

    session_id: str
    message_id: str
    delivery: DeliveryStatus

    async def apply(self, tx: Any, now: float) -> bool:
        lower = statuses_below(self.delivery)
        if not lower:
            return False
        row = await tx.fetchrow(
            f"UPDATE outbox SET delivery = $3, updated_at = $4 WHERE session_id = $1 AND message_id = $2 "
            f"AND delivery IN ({lower}) RETURNING id",
            self.session_id, self.message_id, str(self.delivery), now,
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
    """Admin: put a dead (or waiting) job back at the head of its queue with a fresh attempt count."""

    queue: Queue
    job_id: int

    async def apply(self, tx: Any, now: float) -> Any:
        extra = ", delivery = 'pending'" if self.queue is Queue.OUTBOX else ""
        row = await tx.fetchrow(
            f"UPDATE {self.queue.value} SET status = 'queued', attempts = 0, last_error = NULL, "
            f"next_attempt_at = $2, updated_at = $2{extra} WHERE id = $1 AND status IN ('queued', 'dead') "
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
    return Conflict(f"{queue.value} job {job_id} is {status}: only queued or dead jobs can be retried")


@attrs.frozen
class RemoveJob:
    """Admin: delete a job that is not running (returns False if there was none to delete)."""

    queue: Queue
    job_id: int

    async def apply(self, tx: Any, now: float) -> bool:
        row = await tx.fetchrow(
            f"DELETE FROM {self.queue.value} WHERE id = $1 AND status <> 'running' RETURNING id", self.job_id
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
