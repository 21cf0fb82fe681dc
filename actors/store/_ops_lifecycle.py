"""Write operations of the data lifecycle: retention sweeps and purges, a bounded batch at a time.

Every op here deletes **at most ``limit`` rows of one table** (plus the handful of rows that
hang off them: a ticket's fence, a message's media job by cascade) and returns a :class:`Swept`.
The janitor calls them one after another with a pause in between, so each transaction the
group-commit writer runs for it is short and the hot path's writes (inbound messages, receipts)
interleave with the sweep instead of waiting behind one long ``DELETE``. Rows are chosen with
``id IN (SELECT id ... LIMIT n)`` (both engines take it; neither has ``DELETE ... LIMIT`` in
its default build), walking the indexes of ``_V_RETENTION``.

Cutoffs are computed from the transaction's wall time (``now``), so a sweep is deterministic
under the store's clock.

A purge walks a fixed list of steps (tables in dependency order); each op runs the first step
that still finds rows, and the last step deletes the session's or tenant's own row: ``done`` is
True then. Files (media) are the caller's to delete: ops return their paths (relative to the
media directory) and never touch the disk.
"""

from __future__ import annotations

import enum
import json
from typing import Any

import attrs

from ._records import JobStatus

DAY = 86400.0
"""Seconds in a day: retention settings are whole days."""


class RetentionKind(enum.StrEnum):
    """What retention applies to (each one an age in days per tenant; see README "Data lifecycle")."""

    MESSAGES = "messages"
    """Messages (inbound and outbound) by their ``created_at``; their media files go with them."""
    MEDIA = "media"
    """Media files of messages by the message's ``created_at``; the message stays, without its file."""
    CLOSED_TICKETS = "closed_tickets"
    """Closed tickets by ``closed_at``, with their messages (and files)."""
    WEBHOOK_DELIVERIES = "webhook_deliveries"
    """Finished webhook deliveries (done or dead) by their last update."""
    AUDIT = "audit"
    """Audit lines by ``at``: those whose target is under ``/tenants/<id>``, per tenant; the others
    (node-wide actions) by the configured default."""


@attrs.frozen
class Retention:
    """A tenant's retention overrides: days per kind, ``None`` = the configured default, 0 = forever."""

    messages: int | None = None
    media: int | None = None
    closed_tickets: int | None = None
    webhook_deliveries: int | None = None
    audit: int | None = None

    def get(self, kind: RetentionKind) -> int | None:
        return getattr(self, kind.value)


@attrs.frozen
class Swept:
    """What one batch removed: ``rows`` deleted (or media detached), ``files`` to delete (paths
    relative to the media directory), and for a purge whether the last step ran (``done``)."""

    rows: int = 0
    files: tuple[str, ...] = ()
    done: bool = False


FINISHED = (str(JobStatus.DONE), str(JobStatus.DEAD))
"""Webhook delivery statuses retention may delete: nothing queued or in flight is touched."""


def _target(prefix: str) -> tuple[str, str, int]:
    """Arguments of :data:`_UNDER` matching audit targets under ``prefix``: itself, or ``<prefix>/...``
    (``substr`` rather than LIKE: an id may hold ``_``, a LIKE wildcard)."""
    return prefix, prefix + "/", len(prefix) + 1


def _tenant_target(tenant_id: str) -> tuple[str, str, int]:
    return _target(f"/tenants/{tenant_id}")


_UNDER = "(target = $1 OR substr(target, 1, $3) = $2)"


async def _delete_ids(tx: Any, table: str, where: str, args: tuple, limit: int, returning: str = "id") -> list:
    """Delete at most ``limit`` rows of ``table`` matching ``where`` (placeholders $1..$k over
    ``args``); returns the ``returning`` column of each deleted row."""
    n = len(args) + 1
    rows = await tx.fetch(
        f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {where} LIMIT ${n}) RETURNING {returning}",
        *args, limit,
    )
    return rows


async def _delete_messages(tx: Any, where: str, args: tuple, limit: int) -> Swept:
    rows = await _delete_ids(tx, "messages", where, args, limit, "media_path")
    return Swept(len(rows), tuple(r["media_path"] for r in rows if r["media_path"]))


async def _delete_tickets(tx: Any, where: str, args: tuple, limit: int) -> Swept:
    rows = await _delete_ids(tx, "tickets", where, args, limit)
    if rows:  # the tickets' fencing tokens (ticket locks are named ticket:<id>)
        await tx.executemany("DELETE FROM fence WHERE resource = $1", [(f"ticket:{r['id']}",) for r in rows])
    return Swept(len(rows))


@attrs.frozen
class SweepBatch:
    """Delete (or, for media, detach) at most ``limit`` rows of ``kind`` older than ``age``
    seconds: of ``tenant_id``, or (audit only, ``tenant_id`` None) node-wide audit lines."""

    kind: RetentionKind
    tenant_id: str | None
    age: float
    limit: int

    async def apply(self, tx: Any, now: float) -> Swept:
        before, tenant, limit = now - self.age, self.tenant_id, self.limit
        match self.kind:
            case RetentionKind.MESSAGES:
                return await _delete_messages(tx, "tenant_id = $1 AND created_at < $2", (tenant, before), limit)
            case RetentionKind.MEDIA:
                return await self._detach_media(tx, tenant, before, limit)
            case RetentionKind.CLOSED_TICKETS:
                closed = "SELECT id FROM tickets WHERE tenant_id = $1 AND status = 'closed' AND closed_at < $2"
                swept = await _delete_messages(tx, f"ticket_id IN ({closed})", (tenant, before), limit)
                if swept.rows:  # their messages first, a batch at a time; the tickets once none is left
                    return swept
                return await _delete_tickets(tx, "tenant_id = $1 AND status = 'closed' AND closed_at < $2",
                                             (tenant, before), limit)
            case RetentionKind.WEBHOOK_DELIVERIES:
                rows = await _delete_ids(tx, "webhook_deliveries",
                                         "tenant_id = $1 AND status IN ($2, $3) AND updated_at < $4",
                                         (tenant, *FINISHED, before), limit)
                return Swept(len(rows))
            case RetentionKind.AUDIT if tenant is None:
                rows = await _delete_ids(tx, "audit", "target NOT LIKE '/tenants/%' AND at < $1", (before,), limit)
                return Swept(len(rows))
            case RetentionKind.AUDIT:
                rows = await _delete_ids(tx, "audit", f"{_UNDER} AND at < $4", (*_tenant_target(tenant), before), limit)
                return Swept(len(rows))
        raise ValueError(f"unknown retention kind {self.kind!r}")

    @staticmethod
    async def _detach_media(tx: Any, tenant: str, before: float, limit: int) -> Swept:
        rows = await tx.fetch(
            "SELECT id, media_path FROM messages WHERE tenant_id = $1 AND created_at < $2 "
            "AND media_path IS NOT NULL LIMIT $3", tenant, before, limit,
        )
        if not rows:
            return Swept()
        ids = [(r["id"],) for r in rows]
        await tx.executemany("UPDATE messages SET media_path = NULL WHERE id = $1", ids)
        await tx.executemany("UPDATE media_jobs SET path = NULL WHERE message_id = $1", ids)
        return Swept(len(rows), tuple(r["media_path"] for r in rows))


@attrs.frozen
class SetRetention:
    """Replace a tenant's overrides (every column: what is None falls back to the default)."""

    tenant_id: str
    retention: Retention

    async def apply(self, tx: Any, now: float) -> Retention:
        r = self.retention
        await tx.execute(
            "INSERT INTO tenant_retention (tenant_id, messages, media, closed_tickets, webhook_deliveries, audit, "
            "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id) DO UPDATE SET "
            "messages = excluded.messages, media = excluded.media, closed_tickets = excluded.closed_tickets, "
            "webhook_deliveries = excluded.webhook_deliveries, audit = excluded.audit, updated_at = excluded.updated_at",
            self.tenant_id, r.messages, r.media, r.closed_tickets, r.webhook_deliveries, r.audit, now,
        )
        return r


@attrs.frozen
class MarkDeleted:
    """Mark a session (``table`` sessions: status ``deleted``) or a tenant deleted at ``now``;
    its data is purged a grace period later. Marking again keeps the first time."""

    table: str
    id: str
    reason: str | None = None

    async def apply(self, tx: Any, now: float) -> bool:
        if self.table == "sessions":
            row = await tx.fetchrow(
                "UPDATE sessions SET status = 'deleted', reason = $2, updated_at = $3, "
                "deleted_at = COALESCE(deleted_at, $3) WHERE id = $1 RETURNING id", self.id, self.reason, now)
        else:
            row = await tx.fetchrow("UPDATE tenants SET deleted_at = COALESCE(deleted_at, $2) WHERE id = $1 "
                                    "RETURNING id", self.id, now)
        return row is not None


async def _small(tx: Any, statements: list[tuple[str, tuple]]) -> int:
    """Run deletes of rows that are few per session or tenant (no batching needed); how many went."""
    count = 0
    for sql, args in statements:
        count += len(await tx.fetch(sql + " RETURNING 1", *args))
    return count


async def _detach_campaigns(tx: Any, tenant_id: str, session_id: str) -> None:
    """The tenant's campaigns forget a purged session: it leaves their session lists, and their
    recipients sent through it keep their state without naming it (a campaign's counts are the
    tenant's record, the session's data is what goes)."""
    await tx.execute("UPDATE campaign_recipients SET session_id = NULL WHERE session_id = $1", session_id)
    for row in await tx.fetch("SELECT id, sessions FROM campaigns WHERE tenant_id = $1", tenant_id):
        sessions = json.loads(row["sessions"])
        if session_id in sessions:
            await tx.execute("UPDATE campaigns SET sessions = $2 WHERE id = $1", row["id"],
                             json.dumps([s for s in sessions if s != session_id]))


@attrs.frozen
class PurgeSessionBatch:
    """One step of purging a session's data (see the module docstring): messages, outbox, tickets,
    audit lines about it, then its few small rows and the sessions row. Contacts belong to the
    tenant (one address book shared by its sessions): they go with the tenant's purge."""

    session_id: str
    tenant_id: str
    limit: int

    async def apply(self, tx: Any, now: float) -> Swept:
        sid, limit = self.session_id, self.limit
        swept = await _delete_messages(tx, "session_id = $1", (sid,), limit)
        if swept.rows:
            return swept
        if rows := await _delete_ids(tx, "outbox", "session_id = $1", (sid,), limit):
            return Swept(len(rows))
        if (swept := await _delete_tickets(tx, "session_id = $1", (sid,), limit)).rows:
            return swept
        if rows := await _delete_ids(tx, "audit", _UNDER, _target(f"/tenants/{self.tenant_id}/sessions/{sid}"), limit):
            return Swept(len(rows))
        await _detach_campaigns(tx, self.tenant_id, sid)
        count = await _small(tx, [
            ("DELETE FROM early_receipts WHERE session_id = $1", (sid,)),
            ("DELETE FROM driver_credentials WHERE session_id = $1", (sid,)),
            ("DELETE FROM queue_pauses WHERE scope = $1", (sid,)),
            ("DELETE FROM fence WHERE resource = $1", (f"session:{sid}",)),
            ("DELETE FROM session_options WHERE session_id = $1", (sid,)),
            ("DELETE FROM sessions WHERE id = $1", (sid,)),
        ])
        return Swept(count, done=True)


@attrs.frozen
class PurgeTenantBatch:
    """One step of purging a tenant (its sessions first, each by :class:`PurgeSessionBatch` with
    its files and credentials): whatever of the tenant is left, table by table, then its row."""

    tenant_id: str
    limit: int

    async def apply(self, tx: Any, now: float) -> Swept:
        tid, limit = self.tenant_id, self.limit
        swept = await _delete_messages(tx, "tenant_id = $1", (tid,), limit)
        if swept.rows:
            return swept
        for table in ("outbox", "webhook_deliveries", "media_jobs"):
            if rows := await _delete_ids(tx, table, "tenant_id = $1", (tid,), limit):
                return Swept(len(rows))
        if (swept := await _delete_tickets(tx, "tenant_id = $1", (tid,), limit)).rows:
            return swept
        if rows := await _delete_ids(tx, "campaign_recipients",
                                     "campaign_id IN (SELECT id FROM campaigns WHERE tenant_id = $1)", (tid,), limit):
            return Swept(len(rows))
        for table in ("campaigns", "contacts", "users", "webhooks"):
            if rows := await _delete_ids(tx, table, "tenant_id = $1", (tid,), limit):
                return Swept(len(rows))
        if rows := await _delete_ids(tx, "audit", _UNDER, _tenant_target(tid), limit):
            return Swept(len(rows))
        if rows := await tx.fetch("DELETE FROM lid_map WHERE tenant_id = $1 AND lid IN (SELECT lid FROM lid_map "
                                  "WHERE tenant_id = $1 LIMIT $2) RETURNING 1", tid, limit):
            return Swept(len(rows))  # its customers' LID mappings (no id column: keyed by tenant and LID)
        count = await _small(tx, [
            ("DELETE FROM tenant_retention WHERE tenant_id = $1", (tid,)),
            ("DELETE FROM campaign_optouts WHERE tenant_id = $1", (tid,)),
            ("DELETE FROM sessions WHERE tenant_id = $1", (tid,)),
            ("DELETE FROM tenants WHERE id = $1", (tid,)),
        ])
        return Swept(count, done=True)
