"""The node's session pool: at most ``max_sessions`` connected at once, the rest queue.

Seed 002's ``SessionPool``: a fixed capacity, a first-come first-served waiting
queue, and statistics (active, max, waiting, utilisation). A session holds its
slot for as long as it has (or is trying to have) a connection.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import attrs
import trio


@attrs.frozen
class PoolStatistics:
    active: int
    max_sessions: int
    waiting: int
    utilisation: float  # active / max_sessions, 0..1
    waiting_ids: tuple[str, ...]
    active_ids: tuple[str, ...]

    def to_dict(self) -> dict:
        return attrs.asdict(self)


@attrs.define(eq=False)
class SessionPool:
    max_sessions: int
    _slots: trio.Semaphore = attrs.field(init=False)
    _active: dict[str, None] = attrs.field(init=False, factory=dict)
    _waiting: dict[str, None] = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        if not (isinstance(self.max_sessions, int) and self.max_sessions >= 1):
            raise ValueError(f"max_sessions must be an int >= 1, got {self.max_sessions!r}")
        self._slots = trio.Semaphore(self.max_sessions)

    @asynccontextmanager
    async def slot(self, session_id: str) -> AsyncIterator[None]:
        """Hold a slot for ``session_id``; waits in FIFO order (trio's semaphore is fair)."""
        self._waiting[session_id] = None
        try:
            await self._slots.acquire()
        finally:
            self._waiting.pop(session_id, None)
        self._active[session_id] = None
        try:
            yield
        finally:
            self._active.pop(session_id, None)
            self._slots.release()

    def statistics(self) -> PoolStatistics:
        active = len(self._active)
        return PoolStatistics(
            active=active,
            max_sessions=self.max_sessions,
            waiting=len(self._waiting),
            utilisation=active / self.max_sessions,
            waiting_ids=tuple(self._waiting),
            active_ids=tuple(self._active),
        )
