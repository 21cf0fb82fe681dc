"""Host a live component (store, bus, status board...) as an actor.

Components with a long-running ``run(*, task_status)`` are plain trio code so
they can be tested alone; :class:`Hosted` puts one in the supervision tree. Its
readiness is the component's (``on_start`` waits for ``task_status.started()``),
and its failure is the actor's, so the supervisor restarts it like any child.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from supervisor import Actor


class Hosted(Actor):
    """Runs ``run(*args, task_status=...)`` for as long as the actor lives."""

    def __init__(self, run: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self._target = run
        self._args = args

    async def on_start(self) -> None:
        await self.ctx.nursery.start(self._target, *self._args)


class HostedWithSystem(Hosted):
    """Like :class:`Hosted`, passing the actor system first (components that watch the tree)."""

    async def on_start(self) -> None:
        await self.ctx.nursery.start(self._target, self.ctx.system, *self._args)
