"""What the store needs from a database backend, and what both backends share.

A backend runs *transaction functions*: ``async def fn(tx)`` coroutines that only await the
``tx`` adapter (``fetch``, ``fetchrow``, ``fetchval``, ``execute``, ``executemany`` with ``$n``
placeholders, plus ``tx.dialect``). That contract is what lets one body of SQL-and-logic run on
both engines: SQLite drives the coroutine synchronously on its worker thread (:func:`drive`),
PostgreSQL awaits it inside its asyncio loop.

Interface (duck-typed, see :class:`~._sqlite.SqliteBackend` and :class:`~._postgres.PostgresBackend`):

- ``dialect`` — ``"sqlite"`` or ``"postgres"``.
- ``open()`` — async context manager: connect (and, for PostgreSQL, open the asyncio loop).
- ``await run_batch(fn)`` — run ``fn`` in one transaction on the writer connection and COMMIT.
  Raises :class:`Disconnected` when the connection was lost; any other exception means the
  transaction was rolled back and the connection is usable.
- ``await read(fn)`` — run ``fn`` on a reader connection (no explicit transaction).
- ``await reconnect()`` — after :class:`Disconnected`: reconnect with backoff until it works.
- ``await resolve(token)`` — after reconnecting: did the transaction ``token`` commit?
- ``connected`` — whether the writer connection was usable at its last use.
- ``healthy`` — whether it is usable right now (PostgreSQL notices a server shutdown at once).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Coroutine, Iterator
from typing import Any

import attrs


class Disconnected(Exception):
    """Internal: the writer connection broke during a batch.

    ``commit_sent`` — the COMMIT had been sent, so the outcome is unknown until :meth:`resolve`
    answers for ``token``; ``result`` is what the batch function returned (valid if it committed).
    """

    def __init__(self, cause: BaseException, *, commit_sent: bool, token: Any = None, result: Any = None):
        super().__init__(f"connection lost ({type(cause).__name__}: {cause})")
        self.commit_sent = commit_sent
        self.token = token
        self.result = result


def drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a transaction function's coroutine to completion synchronously.

    Valid only for coroutines that never suspend (they await only the SQLite adapter, whose
    methods complete without suspending).

    Raises:
        RuntimeError: the coroutine tried to suspend (awaited something real).
    """
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("a store transaction function awaited something other than its adapter")


@attrs.define(eq=False)
class ReconnectBackoff:
    """Exponential backoff with full jitter for reconnect attempts (so many nodes do not stampede).

    ``next_delay()`` grows ``initial * 2**n`` up to ``maximum``; ``reset()`` after a success.
    """

    initial: float = 0.05
    maximum: float = 2.0
    _attempt: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * 2**self._attempt)
        self._attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempt = 0


@contextlib.contextmanager
def single_errors() -> Iterator[None]:
    """Re-raise an exception group holding exactly one exception as that exception (recursively).

    trio nurseries (ours and trio-asyncio's loop) wrap errors in groups; callers of the store's
    context managers should see ``SchemaTooNew``, not a group of a group of it.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        inner: BaseException = group
        while isinstance(inner, BaseExceptionGroup) and len(inner.exceptions) == 1:
            inner = inner.exceptions[0]
        if inner is group:
            raise
        raise inner from None
