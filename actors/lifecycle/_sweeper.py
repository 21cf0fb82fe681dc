"""The sweeper: one janitor run (retention per tenant and kind, then due purges) and the purges.

:meth:`Sweeper.run_once` is what the janitor actor calls on its interval; :meth:`Sweeper.purge_session`
and :meth:`Sweeper.purge_tenant` are also called directly by the API's immediate purge.

Never blocking the hot path: every store call is one bounded batch (``retention.batch_size``
rows, see :mod:`actors.store._ops_lifecycle`) through the group-commit writer, where it takes its
turn with the inbound writes, and the sweeper sleeps ``retention.batch_pause`` between two batches.
Files are deleted on a worker thread.

Faults, each failing only itself (DESIGN §10):

* the store unreachable: every store call goes through the node's store gate, so the run waits
  there (no error, no crash) and goes on when the store is back;
* a bad row (a tenant's retention the store refuses, a media path outside the media directory or
  one that cannot be deleted): logged, counted in ``errors``, and the run goes on with the next
  tenant, kind or file.

Counters accumulate in the sweeper (``statistics()``) for ``/metrics``.
"""

from __future__ import annotations

import collections
import logging
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from actors.drivers.neonize import delete_device
from actors.store import RetentionKind, SessionRecord, Store, Swept
from config import RetentionSettings

_LOG = logging.getLogger("zapvisor.lifecycle")

PURGE = "purge"
"""The counters' kind for what a purge deleted (a deleted session's or tenant's data)."""

CREDENTIAL_FILES = ("{}.json", "{}.sqlite3", "{}.sqlite3-wal", "{}.sqlite3-shm")
"""A session's credential files under ``<data_dir>/auth``: the simulated driver's JSON, neonize's
SQLite device store (and its WAL files)."""


@attrs.frozen
class RunReport:
    """One janitor run: rows and files removed per kind, purges, errors, wall duration (seconds)."""

    rows: dict[str, int]
    files: dict[str, int]
    sessions_purged: int
    tenants_purged: int
    errors: int
    duration: float


@attrs.frozen
class LifecycleStatistics:
    """Counters since this process started (``/metrics``)."""

    rows: dict[str, int]
    files: dict[str, int]
    runs: int
    errors: int
    last_duration: float | None
    last_report: RunReport | None


@attrs.define(eq=False)
class Sweeper:
    """See the module docstring.

    ``gate`` is the node's store gate (anything with ``call(fn, *args)``); ``device_store`` the
    PostgreSQL DSN where neonize keeps its devices (None: they are files under ``auth_dir``);
    ``journal_dir`` where neonize sessions keep their inbound journals (``<id>.journal``).
    """

    settings: RetentionSettings
    store: Store
    media_dir: Path
    auth_dir: Path
    gate: Any = None
    device_store: str | None = None
    journal_dir: Path | None = None
    _rows: collections.Counter = attrs.field(init=False, factory=collections.Counter)
    _files: collections.Counter = attrs.field(init=False, factory=collections.Counter)
    _runs: int = attrs.field(init=False, default=0)
    _errors: int = attrs.field(init=False, default=0)
    _last: RunReport | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        for kind in (*(k.value for k in RetentionKind), PURGE):  # every kind shows in /metrics from the start
            self._rows[kind] = self._files[kind] = 0

    def statistics(self) -> LifecycleStatistics:
        return LifecycleStatistics(dict(self._rows), dict(self._files), self._runs, self._errors,
                                   None if self._last is None else self._last.duration, self._last)

    async def _call(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        """A store call through the gate (waits out an outage); plain without a gate (tests, tools)."""
        if kwargs:
            fn = _bind(fn, kwargs)
        return await (fn(*args) if self.gate is None else self.gate.call(fn, *args))

    # -- one run --------------------------------------------------------------------------

    async def run_once(self) -> RunReport:
        """Sweep every live tenant's data past its retention, then purge what is due; log and
        return the counts. Waits (at the gate) through a store outage."""
        started = trio.current_time()
        rows, files = collections.Counter(), collections.Counter()
        errors = 0
        for tenant_id in await self._call(self.store.live_tenant_ids):
            errors += await self._sweep_tenant(tenant_id, rows, files)
        if self.settings.audit_days:
            errors += await self._isolated(f"node-wide {RetentionKind.AUDIT}", self._sweep_kind(
                RetentionKind.AUDIT, None, self.settings.audit_days, rows, files))
        sessions, tenants = await self._call(self.store.due_for_purge, self.store.clock() - self.settings.purge_grace)
        purged = collections.Counter()
        for record in sessions:
            errors += await self._isolated(f"purge of session {record.id}", self._purge_session(record, purged))
        for tenant_id in tenants:
            errors += await self._isolated(f"purge of tenant {tenant_id}", self._purge_tenant(tenant_id, purged))
        report = RunReport(dict(+rows), dict(+files), purged["sessions"], purged["tenants"], errors,
                           trio.current_time() - started)
        self._runs += 1
        self._last = report
        _LOG.info("janitor run: %.2f s, rows %s, files %s, %d sessions and %d tenants purged, %d errors",
                  report.duration, report.rows, report.files, report.sessions_purged, report.tenants_purged,
                  report.errors)
        return report

    async def _sweep_tenant(self, tenant_id: str, rows: collections.Counter, files: collections.Counter) -> int:
        overrides = await self._call(self.store.get_retention, tenant_id)
        errors = 0
        for kind in RetentionKind:
            days = overrides.get(kind)
            days = getattr(self.settings, f"{kind.value}_days") if days is None else days
            if days:
                errors += await self._isolated(f"{kind} of tenant {tenant_id}",
                                               self._sweep_kind(kind, tenant_id, days, rows, files))
        return errors

    async def _sweep_kind(self, kind: RetentionKind, tenant_id: str | None, days: int,
                          rows: collections.Counter, files: collections.Counter) -> None:
        while True:
            swept = await self._call(self.store.sweep, kind, tenant_id, days=days, limit=self.settings.batch_size)
            await self._count(kind.value, swept, rows, files)
            if swept.rows < self.settings.batch_size:
                return
            await trio.sleep(self.settings.batch_pause)

    async def _isolated(self, what: str, work: Awaitable[None]) -> int:
        """Await ``work``; an error of its own (a bad row) is logged and counted, never raised:
        0 or 1 errors. Cancellation passes through."""
        try:
            await work
        except Exception as exc:  # one tenant's, kind's or purge's fault: the run goes on (DESIGN §10)
            self._errors += 1
            _LOG.error("janitor: %s failed: %s: %s", what, type(exc).__name__, exc)
            return 1
        return 0

    async def _count(self, kind: str, swept: Swept, rows: collections.Counter | None = None,
                     files: collections.Counter | None = None) -> None:
        """Delete the files ``swept`` names; count rows and files in the sweeper (and in the run's counters)."""
        deleted, failed = await trio.to_thread.run_sync(_remove_media, self.media_dir, swept.files)
        self._errors += failed
        if rows is not None and files is not None:
            rows[kind] += swept.rows
            files[kind] += deleted
        self._rows[kind] += swept.rows
        self._files[kind] += deleted

    # -- purges ---------------------------------------------------------------------------

    async def purge_session(self, record: SessionRecord) -> RunReport:
        """Delete everything of the (deleted) session now: credentials (files, rows, whatsmeow's
        device), media files, messages, outbox, tickets, the contacts only it used, its row."""
        return await self._purge_report(self._purge_session, record)

    async def purge_tenant(self, tenant_id: str) -> RunReport:
        """Delete everything of the (deleted) tenant now: each session as :meth:`purge_session`,
        then users, contacts, tickets, messages, webhooks and deliveries, audit lines, its media
        directory and its row."""
        return await self._purge_report(self._purge_tenant, tenant_id)

    async def _purge_report(self, purge: Callable[..., Awaitable[None]], what: Any) -> RunReport:
        started = trio.current_time()
        before = (dict(self._rows), dict(self._files))
        purged = collections.Counter()
        await purge(what, purged)
        return RunReport({PURGE: self._rows[PURGE] - before[0].get(PURGE, 0)},
                         {PURGE: self._files[PURGE] - before[1].get(PURGE, 0)},
                         purged["sessions"], purged["tenants"], 0, trio.current_time() - started)

    async def _purge_session(self, record: SessionRecord, purged: collections.Counter) -> None:
        files = await trio.to_thread.run_sync(_remove_credentials, self.auth_dir, self.journal_dir, record.id)
        if self.device_store is not None and record.device_jid:
            # DeviceStoreError (unreachable) fails this purge: the next run tries it again
            await trio.to_thread.run_sync(delete_device, self.device_store, record.device_jid)
            files += 1
        self._files[PURGE] += files
        await self._batches(self.store.purge_session_batch, record.id, record.tenant_id)
        purged["sessions"] += 1
        _LOG.info("purged session %s of tenant %s", record.id, record.tenant_id)

    async def _purge_tenant(self, tenant_id: str, purged: collections.Counter) -> None:
        for record in await self._call(self.store.list_sessions, tenant_id):
            await self._purge_session(record, purged)
        await self._batches(self.store.purge_tenant_batch, tenant_id)
        await trio.to_thread.run_sync(_remove_tree, self.media_dir, tenant_id)
        purged["tenants"] += 1
        _LOG.info("purged tenant %s", tenant_id)

    async def _batches(self, step: Callable[..., Awaitable[Swept]], *args: Any) -> None:
        while True:
            swept = await self._call(step, *args, limit=self.settings.batch_size)
            await self._count(PURGE, swept)
            if swept.done:
                return
            await trio.sleep(self.settings.batch_pause)


def _bind(fn: Callable[..., Awaitable[Any]], kwargs: dict) -> Callable[..., Awaitable[Any]]:
    async def bound(*args: Any) -> Any:
        return await fn(*args, **kwargs)
    return bound


def _inside(root: Path, relative: str) -> Path | None:
    """``root/relative`` if it stays inside ``root`` (a stored path is data: never trusted)."""
    target = (root / relative).resolve()
    return target if target.is_relative_to(root.resolve()) and target != root.resolve() else None


def _remove_media(root: Path, paths: tuple[str, ...]) -> tuple[int, int]:
    """Delete media files (blocking: a worker thread); returns (deleted, failed). A missing file
    is fine (deleted before, or never written); one that cannot be deleted, or a path leading out
    of ``root``, is logged, left and counted as failed."""
    deleted = failed = 0
    for relative in paths:
        target = _inside(root, relative)
        if target is None:
            _LOG.error("janitor: media path %r leads outside %s: left alone", relative, root)
            failed += 1
            continue
        try:
            target.unlink()
            deleted += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            _LOG.error("janitor: media file %s not deleted: %s", target, exc)
            failed += 1
    return deleted, failed


def _remove_credentials(auth_dir: Path, journal_dir: Path | None, session_id: str) -> int:
    """A session's credential files, and its neonize journal (unacknowledged messages it will never store)."""
    removed = 0
    paths = [auth_dir / pattern.format(session_id) for pattern in CREDENTIAL_FILES]
    if journal_dir is not None:
        paths.append(journal_dir / f"{session_id}.journal")
    for path in paths:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def _remove_tree(root: Path, tenant_id: str) -> None:
    target = _inside(root, tenant_id)
    if target is not None and target.is_dir():
        shutil.rmtree(target)
