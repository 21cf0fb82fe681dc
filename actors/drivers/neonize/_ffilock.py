"""The one lock around neonize's Go core inside a worker (see ``_host`` for who takes which mode)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Final

READER_SETTLE_S: Final = 1.0
"""After this long inside a Go call, a reader is past its client-map lookup (done
at the call's entry, in nanoseconds): a writer no longer needs to wait for it."""


class FfiLock:
    """Readers share, a writer excludes; a writer waits only for readers that just entered.

    A call into Go reads the client map in its first instructions, then may
    block for a long time on the network (whatsmeow's IQ timeout is 75 s; a
    ``PairPhone`` during a hung dial waits for the dial's 60 s deadline). A
    writer therefore waits until every reader inside has been there for
    :data:`READER_SETTLE_S` - past its map lookup - not until it leaves, so one
    slow send never stalls every stop and start of the worker. New readers wait
    while a writer waits or holds (no writer starvation).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers: dict[object, float] = {}  # token -> monotonic entry time
        self._writer = False
        self._writers_waiting = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        token = object()
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers[token] = time.monotonic()
        try:
            yield
        finally:
            with self._cond:
                del self._readers[token]
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while True:
                settle = self._youngest_reader_settles_in()
                if not self._writer and settle <= 0:
                    break
                self._cond.wait(timeout=None if self._writer else settle)
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()

    @property
    def readers(self) -> int:
        """Calls inside Go right now (holding the lock shared)."""
        with self._cond:
            return len(self._readers)

    def _youngest_reader_settles_in(self) -> float:
        if not self._readers:
            return 0.0
        return READER_SETTLE_S - (time.monotonic() - max(self._readers.values()))
