"""The :class:`Actor` base class and the context the runtime gives it.

Subclass :class:`Actor` and override what you need::

    class Counter(Actor):
        async def on_start(self):
            self.n = 0
        async def receive(self, msg):
            match msg:
                case Add(k):
                    self.n += k
                case Get():
                    return self.n   # the reply to an ``ask``

Messages are handled one at a time, in arrival order. A handler that raises
crashes the actor ("let it crash"): its supervisor decides what happens next,
and an ``ask`` waiting on it gets :class:`~supervisor.ActorFailed`. Return
expected outcomes (a conflict, "not found") as values instead of raising.

Long-running work goes in actor-scoped tasks: ``self.ctx.nursery.start_soon``.
If such a task raises, the actor fails; when the actor stops they are cancelled.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ._exits import Exit
from ._errors import ActorFailed
from ._ref import Ask, ActorRef, fail_pending

if TYPE_CHECKING:
    from ._cell import Cell
    from ._system import ActorSystem

_LOG = logging.getLogger("zapvisor.actor")


@attrs.define(eq=False, slots=True)
class ActorContext:
    """What an actor knows about its place in the system."""

    _cell: "Cell"
    nursery: trio.Nursery | None = None

    @property
    def ref(self) -> ActorRef:
        return ActorRef(self._cell.child)

    @property
    def path(self) -> str:
        return self._cell.child.path

    @property
    def system(self) -> "ActorSystem":
        return self._cell.child.system

    @property
    def log(self) -> logging.LoggerAdapter:
        return logging.LoggerAdapter(_LOG, {"actor": self._cell.child.path})

    def heartbeat(self) -> None:
        """Tell the runtime this actor is alive (required with a ``liveness_timeout``)."""
        self._cell.last_beat = trio.current_time()


class Actor:
    """Base class of every actor. See the module docstring."""

    ctx: ActorContext

    async def on_start(self) -> None:
        """Set up state and start tasks. Raising here fails the start."""

    async def receive(self, message: Any) -> Any:
        """Handle one message; the return value answers an ``ask``."""
        raise TypeError(f"{type(self).__name__} does not handle {type(message).__name__}")

    async def on_stop(self, reason: Exit) -> None:
        """Clean up; runs within the shutdown grace after the actor's tasks are cancelled.

        Not called after a brutal kill, a hung actor's cancellation, or a failed start.
        """

    async def _begin(self) -> None:
        """Runtime hook before readiness (the Supervisor starts its children here)."""
        await self.on_start()

    async def _end(self) -> None:
        """Runtime hook after the last message (the Supervisor stops its children here)."""

    def _ended(self) -> None:
        """Runtime hook once the incarnation is over, however it ended (must not block)."""

    async def _dispatch(self, item: Any) -> None:
        if type(item) is Ask:
            reply = item.reply
            try:
                value = await self.receive(item.message)
            except Exception as exc:
                reply.fail(ActorFailed(self.ctx.path, exc))
                raise
            else:
                reply.set(value)
            finally:
                if not reply.event.is_set():  # cancelled mid-handler: the asker must not hang
                    fail_pending(item, self.ctx.path)
        else:
            await self.receive(item)
