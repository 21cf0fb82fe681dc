"""Calls from trio tasks into one trio-asyncio loop, all ended before that loop closes.

asyncpg (the PostgreSQL store) and redis-py (the Redis bus) are asyncio libraries; each backend
runs them in a loop of its own (``trio_asyncio.open_loop()``) that lives as long as the backend,
while the callers are other trio tasks: sessions reading, the group-commit writer, lease
renewals. A caller waits on an asyncio future of that loop. If the loop closes while a caller
still waits (the backend restarted, and the future was not finished because its cancellation
was still cleaning up inside the library, as asyncpg does when it cancels a running query),
the caller's next cancellation — any deadline — makes trio-asyncio cancel the future through
the closed loop: ``RuntimeError: Event loop is closed`` inside trio's own scheduler, which ends
the whole daemon with ``TrioInternalError`` (seen once in a 1,000-session cluster run under
overload, right after a store restart).

:class:`LoopCalls` keeps the one invariant that rules this out: every call runs in a cancel
scope it tracks, and :meth:`LoopCalls.close`, awaited while the loop still runs, refuses new
calls, cancels those in flight and waits until they have all returned. The backend then lets
its loop close with nobody waiting on it.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import trio

#: Seconds :meth:`LoopCalls.close` waits for cancelled calls to unwind inside the loop. A call's
#: cancellation is normally done within a loop iteration; asyncpg's may send a cancel request
#: over a new connection first.
CLOSE_GRACE = 5.0


class LoopCalls:
    """The calls into one asyncio loop, made through :meth:`__call__`.

    ``closed`` builds the error a call gets once the backend is stopping: the backend's own
    "not running" error (``StoreClosed``, ``BusUnavailable``), so callers see no asyncio.
    """

    def __init__(self, closed: Callable[[], Exception]) -> None:
        self._closed = closed
        self._calls: set[trio.CancelScope] = set()
        self._all_returned = trio.Event()
        self._closing = False

    async def __call__(self, cross: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """``await cross(*args)``, where ``cross`` is the trio side of a crossing into the loop
        (``loop.run_aio_coroutine`` with a coroutine, ``aio_as_trio(proc, loop=loop)``).

        Raises:
            the backend's closed error: the backend is stopping, before or during the call.
        """
        if self._closing:
            for arg in args:
                if inspect.iscoroutine(arg):
                    arg.close()  # never awaited: no warning
            raise self._closed()
        with trio.CancelScope() as scope:
            self._calls.add(scope)
            try:
                return await cross(*args)
            finally:
                self._calls.discard(scope)
                if self._closing and not self._calls:
                    self._all_returned.set()
        raise self._closed()  # cancelled by close(), not by the caller's own deadline

    async def close(self, grace: float = CLOSE_GRACE) -> None:
        """Refuse new calls, cancel those in flight and wait (shielded, at most ``grace`` s)
        until every one has returned; call it while the loop still runs."""
        self._closing = True
        if not self._calls:
            return
        for scope in self._calls:
            scope.cancel()
        with trio.CancelScope(shield=True), trio.move_on_after(grace):
            await self._all_returned.wait()

