"""The data-lifecycle half of :class:`~._store.Store`: retention settings, sweeps and purges.

Mixed into Store (which provides ``_write``, ``_fetch`` and ``clock``). The writes are the
bounded batches of :mod:`._ops_lifecycle`; the janitor (:mod:`actors.lifecycle`) decides what to
sweep, paces the batches and deletes the files they name.
"""

from __future__ import annotations

from typing import Any

from ._errors import InvalidInput
from ._ops_lifecycle import (
    DAY,
    MarkDeleted,
    PurgeSessionBatch,
    PurgeTenantBatch,
    Retention,
    RetentionKind,
    SetRetention,
    SweepBatch,
    Swept,
)
from ._records import SessionRecord, from_row

MAX_SWEEP_BATCH = 10_000
"""Largest batch a sweep or purge op takes: a bound on one transaction's size, whatever is configured."""


def _batch(limit: int) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_SWEEP_BATCH:
        raise InvalidInput(f"limit: must be an integer between 1 and {MAX_SWEEP_BATCH}, got {limit!r}")
    return limit


def _days(field: str, value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(f"{field}: must be a whole number of days >= 0 (0 = keep forever), got {value!r}")
    return value


class StoreLifecycle:
    """Retention and purge operations; mixed into Store."""

    _write: Any
    _fetch: Any

    async def get_retention(self, tenant_id: str) -> Retention:
        """The tenant's overrides (all None when it has none)."""
        rows = await self._fetch("SELECT * FROM tenant_retention WHERE tenant_id = $1", tenant_id)
        if not rows:
            return Retention()
        return Retention(**{kind.value: rows[0][kind.value] for kind in RetentionKind})

    async def set_retention(self, tenant_id: str, retention: Retention, *, timeout: float | None = None) -> Retention:
        """Replace the tenant's overrides. Raises InvalidInput for a negative or fractional number of days."""
        for kind in RetentionKind:
            _days(kind.value, retention.get(kind))
        return await self._write(SetRetention(tenant_id, retention), timeout)

    async def sweep(self, kind: RetentionKind, tenant_id: str | None, *, days: int, limit: int,
                    timeout: float | None = None) -> Swept:
        """Delete one batch (at most ``limit`` rows) of ``kind`` older than ``days`` of ``tenant_id``
        (``None``: node-wide audit lines). Call again until it returns fewer than ``limit`` rows."""
        kind = RetentionKind(kind)
        if not _days("days", days):
            raise InvalidInput(f"days: must be >= 1 to sweep (0 keeps forever), got {days!r}")
        if tenant_id is None and kind is not RetentionKind.AUDIT:
            raise InvalidInput(f"tenant_id: {kind.value} are swept per tenant")
        return await self._write(SweepBatch(kind, tenant_id, days * DAY, _batch(limit)), timeout)

    async def mark_session_deleted(self, session_id: str, reason: str, *, timeout: float | None = None) -> bool:
        """Status ``deleted`` and the time of deletion (kept from a first call); False for an unknown session."""
        return await self._write(MarkDeleted("sessions", session_id, reason), timeout)

    async def mark_tenant_deleted(self, tenant_id: str, *, timeout: float | None = None) -> bool:
        """Record the tenant's deletion time (kept from a first call); False for an unknown tenant."""
        return await self._write(MarkDeleted("tenants", tenant_id), timeout)

    async def tenant_deleted_at(self, tenant_id: str) -> float | None:
        """When the tenant was deleted (None: live, or unknown)."""
        rows = await self._fetch("SELECT deleted_at FROM tenants WHERE id = $1", tenant_id)
        return rows[0]["deleted_at"] if rows else None

    async def live_tenant_ids(self) -> list[str]:
        """Ids of the tenants not deleted, in order."""
        return [r["id"] for r in await self._fetch("SELECT id FROM tenants WHERE deleted_at IS NULL ORDER BY id")]

    async def due_for_purge(self, deleted_before: float) -> tuple[list[SessionRecord], list[str]]:
        """Sessions and tenants deleted at or before wall time ``deleted_before`` (their grace is over)."""
        sessions = await self._fetch("SELECT * FROM sessions WHERE status = 'deleted' AND deleted_at <= $1 "
                                     "ORDER BY deleted_at", deleted_before)
        tenants = await self._fetch("SELECT id FROM tenants WHERE deleted_at <= $1 ORDER BY deleted_at", deleted_before)
        return [from_row(SessionRecord, r) for r in sessions], [r["id"] for r in tenants]

    async def purge_session_batch(self, session_id: str, tenant_id: str, *, limit: int,
                                  timeout: float | None = None) -> Swept:
        """One bounded step of deleting everything of the session (``done`` once its row is gone)."""
        return await self._write(PurgeSessionBatch(session_id, tenant_id, _batch(limit)), timeout)

    async def purge_tenant_batch(self, tenant_id: str, *, limit: int, timeout: float | None = None) -> Swept:
        """One bounded step of deleting what is left of the tenant (purge its sessions first)."""
        return await self._write(PurgeTenantBatch(tenant_id, _batch(limit)), timeout)
