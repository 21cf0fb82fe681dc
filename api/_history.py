"""Status history per session, kept in memory from the status board's change stream.

The store keeps only a session's *latest* status (debounced writes, seed 002); the
``GET .../status-history`` endpoint shows the recent changes since this node
started, which is what an operator looks at while a session flaps.
"""

from __future__ import annotations

import collections

import attrs
import trio

from actors.sessions import SessionInfo, StatusBoard

PER_SESSION = 100
"""Changes kept per session: a few minutes of a flapping session, a bounded memory cost."""


@attrs.define(eq=False)
class StatusHistory:
    board: StatusBoard
    _changes: dict[str, collections.deque] = attrs.field(factory=dict)

    def of(self, session_id: str) -> tuple[SessionInfo, ...]:
        """Recorded changes of one session, oldest first (the current one included)."""
        recorded = self._changes.get(session_id)
        if recorded is None:
            current = self.board.get(session_id)
            return () if current is None else (current,)
        return tuple(recorded)

    def forget(self, session_id: str) -> None:
        self._changes.pop(session_id, None)

    def _record(self, info: SessionInfo) -> None:
        self._changes.setdefault(info.session_id, collections.deque(maxlen=PER_SESSION)).append(info)

    async def run(self, *, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Record every board change until cancelled (resubscribes if it ever falls behind)."""
        for info in self.board.all():
            self._record(info)
        first = True
        while True:
            changes = self.board.subscribe()
            if first:
                task_status.started()
                first = False
            async with changes:
                async for info in changes:
                    self._record(info)
