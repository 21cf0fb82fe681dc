"""whatsmeow's device store, read and pruned from the worker without going through Go.

Worker-side only. whatsmeow keeps each paired device as a row of
``whatsmeow_device``, keyed by its full JID ``user:device@server`` (its keys,
sessions and pre-keys hang off that row with ``ON DELETE CASCADE``). Two facts
of neonize 0.5.2 make this module necessary:

* ``Neonize()`` resumes a device with ``GetDevice(jid)``, which returns *nil* for
  a JID it does not hold, and hands it to ``whatsmeow.NewClient``: the first use
  dereferences nil and the **whole worker aborts** (SIGABRT), taking every
  co-hosted session with it. whatsmeow deletes a device by itself (a logout, a
  ``LoggedOut`` on connect), so a remembered JID can go stale while its session
  is not looking. :func:`device_exists` is asked before every connect that names
  a device.
* neonize has no call that deletes a device without a live connection
  (``Logout`` needs one). :func:`delete_device` does what whatsmeow's
  ``Container.DeleteDevice`` does: delete the row, the cascade takes the rest.

A store is what neonize was given: a SQLite file path or a PostgreSQL DSN (the
same test neonize's Go side applies: the ``postgres`` prefix). Both functions
block (run them on a call thread) and raise :class:`DeviceStoreError` when the
store cannot be read.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from typing import Final

_EXISTS: Final = "SELECT 1 FROM whatsmeow_device WHERE jid = {}"
_DELETE: Final = "DELETE FROM whatsmeow_device WHERE jid = {}"

PG_CONNECT_TIMEOUT_S: Final = 10.0
"""Bound on reaching the PostgreSQL device store; a connect waits no longer for it."""


class DeviceStoreError(Exception):
    """The device store could not be read or written (unreachable server, unreadable file)."""


def is_postgres(store: str) -> bool:
    """True for a PostgreSQL DSN (neonize's own test: the ``postgres`` prefix)."""
    return store.startswith("postgres")


def device_exists(store: str, jid: str) -> bool:
    """Whether the store holds device ``jid`` (a store without whatsmeow's tables holds none)."""
    if is_postgres(store):
        return bool(_postgres(store, _EXISTS.format("$1"), jid, fetch=True))
    if not os.path.exists(store):
        return False
    try:
        with _sqlite(store, readonly=True) as conn:
            return conn.execute(_EXISTS.format("?"), (jid,)).fetchone() is not None
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return False
        raise DeviceStoreError(f"device store {store}: {exc}") from exc


def delete_device(store: str, jid: str) -> None:
    """Delete device ``jid`` and everything whatsmeow keeps for it (a no-op for an unknown JID)."""
    if is_postgres(store):
        _postgres(store, _DELETE.format("$1"), jid, fetch=False)
        return
    if not os.path.exists(store):
        return
    try:
        with _sqlite(store, readonly=False) as conn:
            conn.execute("PRAGMA foreign_keys = ON")  # per connection in SQLite: the cascade needs it
            conn.execute(_DELETE.format("?"), (jid,))
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise DeviceStoreError(f"device store {store}: {exc}") from exc


class _sqlite:
    """A short-lived connection that commits (or rolls back) and always closes."""

    def __init__(self, path: str, *, readonly: bool) -> None:
        uri = f"file:{path}?mode={'ro' if readonly else 'rw'}"
        self._conn = sqlite3.connect(uri, uri=True, timeout=10.0)

    def __enter__(self) -> sqlite3.Connection:
        return self._conn.__enter__()

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._conn.__exit__(*exc_info)
        finally:
            self._conn.close()


def _postgres(dsn: str, query: str, jid: str, *, fetch: bool) -> object:
    import asyncpg  # only workers with a PostgreSQL store pay for the import

    async def run() -> object:
        conn = await asyncpg.connect(dsn, timeout=PG_CONNECT_TIMEOUT_S)
        try:
            if fetch:
                return await conn.fetchval(query, jid)
            return await conn.execute(query, jid)
        except asyncpg.UndefinedTableError:
            return None  # neonize has not created its tables yet: no device
        finally:
            await conn.close()

    try:
        return asyncio.run(run())
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DeviceStoreError(f"PostgreSQL device store: {exc}") from exc
