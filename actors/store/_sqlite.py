"""SQLite backend: a WAL-mode file driven through stdlib ``sqlite3`` off the trio thread.

Threads: one writer connection and one reader connection, each used only through
``trio.to_thread.run_sync`` under its own ``CapacityLimiter(1)``. The limiter makes each
connection single-threaded in effect (calls never overlap) while trio's thread cache supplies an
idle worker thread, so there is no long-lived thread of ours to start, feed and join; that is why
the connections are opened with ``check_same_thread=False``. A whole batch — BEGIN, every op,
COMMIT — is one thread hop. Worker calls are not abandoned on cancellation: a batch that started
always finishes (commits or rolls back) before the trio side moves on, so the file is never left
mid-transaction. WAL lets the reader run while the writer commits. Closing holds *both* limiters:
a read still running on another task's worker thread finishes before its connection is closed
(closing a connection under a running statement crashes the process in libsqlite3), and a call
that comes after the close raises StoreClosed instead of touching a closed connection.

Durability: ``synchronous`` defaults to FULL, so an acknowledged write survives power loss;
NORMAL survives a process crash (kill -9) but may lose the last commits on power loss.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine
from functools import lru_cache
from pathlib import Path
from typing import Any

import attrs
import trio

from ._backend import drive
from ._errors import StoreClosed

#: How long a connection waits for another process's lock before failing (only a second process
#: opening the same file, e.g. an admin CLI, can hold one).
_BUSY_TIMEOUT_MS = 5000

#: Prepared statements kept per connection: room for every statement the ops and reads use, so
#: the hot ones are never re-prepared.
_STATEMENT_CACHE = 512


@lru_cache(maxsize=512)
def _to_qmark(sql: str) -> str:
    """``$1`` placeholders (the shared dialect) to SQLite's numbered ``?1``."""
    return re.sub(r"\$(\d+)", r"?\1", sql)


@attrs.define(eq=False)
class _SqliteTx:
    """The transaction adapter over one sqlite3 connection (methods complete without suspending)."""

    conn: sqlite3.Connection
    dialect: str = "sqlite"

    async def fetch(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return self.conn.execute(_to_qmark(sql), args).fetchall()

    async def fetchrow(self, sql: str, *args: Any) -> sqlite3.Row | None:
        rows = self.conn.execute(_to_qmark(sql), args).fetchall()
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]

    async def execute(self, sql: str, *args: Any) -> None:
        self.conn.execute(_to_qmark(sql), args)

    async def executemany(self, sql: str, rows: list[tuple]) -> None:
        self.conn.executemany(_to_qmark(sql), rows)


TxFunction = Callable[[Any], Coroutine[Any, Any, Any]]


@attrs.define(eq=False)
class SqliteBackend:
    """The embedded backend. ``path`` is the database file (its directory is created)."""

    path: Path = attrs.field(converter=Path)
    synchronous: str = "FULL"
    dialect: str = "sqlite"
    connected: bool = False
    _writer: sqlite3.Connection | None = None
    _reader: sqlite3.Connection | None = None
    _write_limiter: trio.CapacityLimiter = attrs.field(factory=lambda: trio.CapacityLimiter(1))
    _read_limiter: trio.CapacityLimiter = attrs.field(factory=lambda: trio.CapacityLimiter(1))

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        """Open (creating if needed) the file in WAL mode; close both connections on exit."""
        await trio.to_thread.run_sync(self._open_sync, limiter=self._write_limiter)
        try:
            yield
        finally:
            with trio.CancelScope(shield=True):
                async with self._read_limiter:  # no read in flight on the reader while it closes
                    await trio.to_thread.run_sync(self._close_sync, limiter=self._write_limiter)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, cached_statements=_STATEMENT_CACHE
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        return conn

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = self._connect()
        self._writer.execute("PRAGMA journal_mode = WAL")
        self._reader = self._connect()
        self.connected = True

    def _close_sync(self) -> None:
        self.connected = False
        for conn in (self._reader, self._writer):
            if conn is not None:
                conn.close()
        self._writer = self._reader = None

    async def run_batch(self, fn: TxFunction) -> Any:
        """Run ``fn`` in one IMMEDIATE transaction on the writer thread; roll back if it raises."""
        return await trio.to_thread.run_sync(self._batch_sync, fn, limiter=self._write_limiter)

    def _batch_sync(self, fn: TxFunction) -> Any:
        conn = self._writer
        if conn is None:
            raise StoreClosed("the store is not running")
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = drive(fn(_SqliteTx(conn)))
        except Exception:
            if conn.in_transaction:  # some errors (disk full, I/O) already rolled it back
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def read(self, fn: TxFunction) -> Any:
        """Run ``fn`` on the reader connection (each statement sees the latest commit)."""
        return await trio.to_thread.run_sync(self._read_sync, fn, limiter=self._read_limiter)

    def _read_sync(self, fn: TxFunction) -> Any:
        if self._reader is None:
            raise StoreClosed("the store is not running")
        return drive(fn(_SqliteTx(self._reader)))

    @property
    def healthy(self) -> bool:
        """Whether the file is open (a file does not go away under us)."""
        return self.connected

    async def reconnect(self) -> None:
        """Nothing to do: a file does not disconnect (I/O errors fail their batch instead)."""

    async def resolve(self, token: Any) -> bool:
        """Never asked: SQLite reports a COMMIT's outcome synchronously."""
        raise AssertionError("SQLite batches never end in doubt")
