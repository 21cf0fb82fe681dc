"""PostgreSQL backend: asyncpg inside a trio-asyncio loop that lives and dies with this backend.

Nothing outside this module sees asyncio: :meth:`PostgresBackend.open` opens the loop with
``trio_asyncio.open_loop()`` and every asyncpg coroutine is run through
``loop.run_aio_coroutine`` (asyncio-flavoured coroutine awaited from trio). A whole batch is one
such call, so the trio/asyncio crossing is paid per batch, not per statement.

Writes go through one dedicated writer connection (the group-commit writer is its only user);
reads use a small pool. Each batch records its transaction id (``pg_current_xact_id()``); if
the connection breaks after COMMIT was sent, the writer reconnects and asks
``pg_xact_status(xid)`` whether it committed — the documented way to resolve an in-doubt COMMIT —
so callers learn the truth instead of guessing. A transaction id the server does not know yet
("in the future" after a crash) never reached the WAL, so it did not commit.

A batch costs three round trips — BEGIN (which also learns the xid, see ``_BEGIN``), the batch's
statements (a run of messages is one statement), COMMIT — the same as a raw
``BEGIN; executemany; COMMIT``. Round trips, not bytes, are what a batch waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import asyncpg
import attrs
import trio
import trio_asyncio

from actors._aio import LoopCalls

from ._backend import Disconnected, ReconnectBackoff, single_errors
from ._errors import StoreClosed, StoreUnavailable

#: Errors that mean "the connection (or the server) is gone", as opposed to an SQL error.
_CONNECTION_ERRORS = (
    OSError,  # includes ConnectionError: refused, reset, broken pipe
    asyncio.TimeoutError,
    asyncpg.InterfaceError,  # includes ConnectionDoesNotExistError: "connection is closed"
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.OperatorInterventionError,  # class 57: admin/crash shutdown, cannot connect now
    asyncpg.exceptions.InternalClientError,
)

#: Seconds an attempt to open a connection may take before it counts as failed.
_CONNECT_TIMEOUT = 5.0

#: Seconds a read, or a whole batch on the writer, may take before it counts as lost: bounds how
#: long a shutdown waits for an in-flight batch and turns a hung server into a reconnect. Each is
#: one trio deadline, not asyncpg's per-statement ``command_timeout``: that arms an asyncio timer
#: per statement, and trio-asyncio keeps each cancelled timer (and what it references) until its
#: due time, 30 s later — tens of thousands of objects for the garbage collector to walk at full
#: load — and, while any timer is armed, puts a deadline on every one of its loop's steps.
_COMMAND_TIMEOUT = 30.0

#: Reader pool size: reads are short point lookups; four keep the API responsive without
#: crowding a small server's connection slots.
_READ_POOL_SIZE = 4

#: How long a resolve waits for the server to abort an in-doubt transaction's backend.
_RESOLVE_POLL = 0.05

#: Opens a writer transaction and learns its id in the same round trip. A simple query (no
#: parameters) may hold several statements but returns no rows, so the id travels back as the
#: transaction-local value of ``application_name``: a reported setting, whose new value the server
#: pushes (ParameterStatus) before the query completes and asyncpg records. Asking with a SELECT
#: instead costs one more round trip per batch — 15-30 % of a batch's time, measured. Side effect,
#: welcome: pg_stat_activity shows the writer's open transaction by id. COMMIT/ROLLBACK restore
#: the previous application_name.
_XID_LABEL = "zapvisor-store xid "
_BEGIN = f"BEGIN; SELECT set_config('application_name', '{_XID_LABEL}' || pg_current_xact_id(), true)"


def _reported_xid(conn: asyncpg.Connection) -> str:
    """The id of the transaction ``_BEGIN`` just opened on ``conn``.

    Raises:
        RuntimeError: the server's report did not arrive (something between us and PostgreSQL,
            e.g. a pooler, swallows ParameterStatus); in-doubt commits could not be resolved.
    """
    label = getattr(conn.get_settings(), "application_name", "")
    if not label.startswith(_XID_LABEL):
        raise RuntimeError(
            "PostgreSQL did not report the transaction's application_name (is a pooler in between?); "
            "the store needs it to resolve an interrupted COMMIT"
        )
    return label.removeprefix(_XID_LABEL)

TxFunction = Callable[[Any], Coroutine[Any, Any, Any]]


@attrs.define(eq=False)
class _Attempt:
    """How far one batch got: written by its asyncio coroutine, read if it has to be given up."""

    pid: int
    xid: str | None = None
    commit_sent: bool = False
    result: Any = None

    def lost(self, cause: BaseException) -> Disconnected:
        return Disconnected(cause, commit_sent=self.commit_sent, token=(self.xid, self.pid), result=self.result)


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    """The reader pool's reset: reads change no session state (no SET, LISTEN, advisory lock or
    cursor), so asyncpg's default reset query — one more round trip per read — has nothing to
    undo. asyncpg still rolls back a transaction left open before calling this."""


@attrs.define(eq=False)
class _PgTx:
    """The transaction adapter over one asyncpg connection (only awaited inside the asyncio loop)."""

    conn: asyncpg.Connection
    dialect: str = "postgres"

    async def fetch(self, sql: str, *args: Any) -> list:
        return await self.conn.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self.conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> None:
        await self.conn.execute(sql, *args)

    async def executemany(self, sql: str, rows: list[tuple]) -> None:
        await self.conn.executemany(sql, rows)


@attrs.define(eq=False)
class PostgresBackend:
    """The server backend. ``dsn`` is an asyncpg/libpq DSN.

    ``connect_deadline``: how long :meth:`open` keeps trying before it raises StoreUnavailable.
    ``command_timeout``: see :data:`_COMMAND_TIMEOUT`.
    """

    dsn: str
    connect_deadline: float = 10.0
    command_timeout: float = _COMMAND_TIMEOUT
    dialect: str = "postgres"
    connected: bool = False
    _loop: Any = None
    _calls: LoopCalls | None = None
    _writer: asyncpg.Connection | None = None
    _pool: asyncpg.Pool | None = None
    _backoff: ReconnectBackoff = attrs.field(factory=ReconnectBackoff)

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        """Open the asyncio loop, connect the writer and the reader pool; close all on exit.

        Raises:
            StoreUnavailable: no connection within ``connect_deadline``.
        """
        with single_errors():
            async with trio_asyncio.open_loop() as loop:
                self._loop = loop
                self._calls = LoopCalls(lambda: StoreClosed("the store is not running"))
                try:
                    with trio.move_on_after(self.connect_deadline):
                        await self.reconnect()
                    if not self.connected:
                        raise StoreUnavailable(
                            f"PostgreSQL at {self._safe_dsn()} unreachable for {self.connect_deadline} s"
                        )
                    self._pool = await self._aio(
                        asyncpg.create_pool(
                            self.dsn, min_size=0, max_size=_READ_POOL_SIZE, timeout=_CONNECT_TIMEOUT,
                            reset=_nothing_to_reset,
                            # no idle-expiry timer armed at every release (kept 300 s by
                            # trio-asyncio once cancelled); four idle connections cost nothing
                            max_inactive_connection_lifetime=0,
                        )
                    )
                    yield
                finally:
                    with trio.CancelScope(shield=True):
                        await self._calls.close()  # nobody may wait on the loop once it closes
                        await self._close()

    def _safe_dsn(self) -> str:
        """The DSN without its password, for messages."""
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", self.dsn)

    async def _aio(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return await self._calls(self._loop.run_aio_coroutine, coro)

    async def _close(self) -> None:
        """Close the pool and the writer (the calls into the loop have ended)."""
        self.connected = False
        if self._pool is not None:
            with trio.move_on_after(_CONNECT_TIMEOUT):
                await self._loop.run_aio_coroutine(self._pool.close())
            self._pool.terminate()
        if self._writer is not None:
            self._writer.terminate()

    @property
    def healthy(self) -> bool:
        """Whether the writer connection is open right now (the server closes it when it stops,
        so this turns False without a write having to fail first)."""
        return self.connected and self._writer is not None and not self._writer.is_closed()

    async def reconnect(self) -> None:
        """(Re)open the writer connection, retrying with backoff until it works (cancellable)."""
        self.connected = False
        if self._writer is not None:
            self._writer.terminate()
            self._writer = None
        while True:
            try:
                conn = await self._aio(asyncpg.connect(self.dsn, timeout=_CONNECT_TIMEOUT))
            except _CONNECTION_ERRORS:
                await trio.sleep(self._backoff.next_delay())
                continue
            self._writer = conn
            self._backoff.reset()
            self.connected = True
            return

    async def run_batch(self, fn: TxFunction) -> Any:
        """Run ``fn`` in one transaction on the writer connection and COMMIT.

        Raises:
            Disconnected: the connection broke (``commit_sent`` says whether the outcome is open).
        """
        writer = self._writer
        if writer is None or writer.is_closed():
            self.connected = False
            raise Disconnected(ConnectionError("writer connection closed"), commit_sent=False)
        attempt = _Attempt(writer.get_server_pid())
        try:
            with trio.move_on_after(self.command_timeout):
                return await self._aio(self._batch(writer, fn, attempt))
        except Disconnected:
            self.connected = False
            raise
        # The server did not finish the batch in time: give the connection up; the writer
        # reconnects and resolves the outcome as for a connection lost at this point.
        writer.terminate()
        self.connected = False
        raise attempt.lost(TimeoutError(f"batch not finished within {self.command_timeout} s"))

    async def _batch(self, conn: asyncpg.Connection, fn: TxFunction, attempt: _Attempt) -> Any:  # runs in asyncio
        try:
            try:
                await conn.execute(_BEGIN)
                attempt.xid = _reported_xid(conn)
                attempt.result = await fn(_PgTx(conn))
            except Exception:  # not on cancellation (run_batch's deadline): the connection goes
                if not conn.is_closed() and conn.is_in_transaction():
                    await conn.execute("ROLLBACK")
                raise
            attempt.commit_sent = True
            await conn.execute("COMMIT")
            return attempt.result
        except _CONNECTION_ERRORS as exc:
            raise attempt.lost(exc) from exc

    async def resolve(self, token: tuple[str, int]) -> bool:
        """Whether the transaction ``token`` = (xid, server pid) committed (call after :meth:`reconnect`).

        If the old session is still alive on the server (only our side saw the break), it is
        terminated first so the transaction cannot stay "in progress" for long.

        Raises:
            Disconnected: the connection broke again while asking.
        """
        xid, old_pid = token
        while True:
            try:
                status = await self._aio(self._xact_status(xid))
                if status == "in progress":
                    await self._aio(self._writer.execute(
                        "SELECT pg_terminate_backend($1)", old_pid, timeout=self.command_timeout
                    ))
            except _CONNECTION_ERRORS as exc:
                self.connected = False
                raise Disconnected(exc, commit_sent=False) from exc
            if status != "in progress":
                return status == "committed"
            await trio.sleep(_RESOLVE_POLL)

    async def _xact_status(self, xid: str) -> str | None:  # runs in asyncio
        try:
            return await self._writer.fetchval(
                "SELECT pg_xact_status($1::text::xid8)", xid, timeout=self.command_timeout
            )
        except asyncpg.InvalidParameterValueError:
            return "future"  # "transaction ID is in the future": it never reached the WAL

    async def read(self, fn: TxFunction) -> Any:
        """Run ``fn`` on a pooled reader connection.

        Raises:
            StoreUnavailable: the server could not be reached.
        """
        try:
            with trio.move_on_after(self.command_timeout):
                return await self._aio(self._read(fn))
        except _CONNECTION_ERRORS as exc:
            raise StoreUnavailable(f"PostgreSQL read failed: {type(exc).__name__}: {exc}") from exc
        raise StoreUnavailable(f"PostgreSQL read not answered within {self.command_timeout} s")

    async def _read(self, fn: TxFunction) -> Any:  # runs in asyncio
        async with self._pool.acquire() as conn:
            return await fn(_PgTx(conn))
