"""One incarnation of an actor: its mailbox, its cancel scope, its exit report.

A :class:`Cell` runs inside its supervisor's nursery. It catches whatever the
actor raises (trio would otherwise cancel every sibling), classifies it and
reports the :class:`~supervisor._exits.Exit` to the supervisor. Cancellation is
never caught: a cancelled cell is *killed*, which its own cancel scope absorbs.

Stopping is cooperative first: :meth:`Cell.request_stop` lets the message in
hand finish, stops taking new ones, runs ``on_stop``, all under the shutdown
grace as a cancel-scope deadline; when the deadline passes the cell is
cancelled. ``BRUTAL_KILL`` cancels at once.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import attrs
import trio

from ._actor import Actor, ActorContext
from ._errors import Hung
from ._exits import Exit, ExitKind, Shutdown, classify
from ._ref import fail_pending

if TYPE_CHECKING:
    from ._supervisor import ChildRecord

_LOG = logging.getLogger("zapvisor.supervisor")

SHUTDOWN = classify(Shutdown("shutdown"))


@attrs.define(eq=False, slots=True)
class Cell:
    child: "ChildRecord"
    actor: Actor
    capacity: float
    send_channel: trio.MemorySendChannel = attrs.field(init=False)
    receive_channel: trio.MemoryReceiveChannel = attrs.field(init=False)
    scope: trio.CancelScope = attrs.field(init=False, factory=trio.CancelScope)
    done: trio.Event = attrs.field(init=False, factory=trio.Event)
    started: bool = False
    started_at: float = 0.0
    last_beat: float = 0.0
    processed: int = 0
    stopping: bool = False
    hung: bool = False
    idle: bool = False
    exit: Exit | None = None
    _idle_scope: trio.CancelScope | None = None

    def __attrs_post_init__(self) -> None:
        self.send_channel, self.receive_channel = trio.open_memory_channel(self.capacity)
        self.actor.ctx = ActorContext(self)

    @property
    def mailbox_depth(self) -> int:
        return self.send_channel.statistics().current_buffer_used

    def mark_started(self) -> None:
        self.started = True
        self.started_at = self.last_beat = trio.current_time()

    async def run(self, on_exit: Callable[["Cell"], None], *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Start the actor, serve it, report its exit through ``on_exit``.

        Raises (instead of reporting) when the actor fails before it is started,
        so ``nursery.start`` hands the error to whoever started it.
        """
        error: BaseException | None = None
        try:
            with self.scope:
                try:
                    await self.actor._run(self, task_status)
                except Exception as exc:
                    if not self.started:
                        raise
                    error = exc
                await self._stopped(error)
            self.exit = self._classify(error)
        finally:
            self._close_mailbox()
            self.done.set()
        on_exit(self)

    async def serve(self, dispatch: Callable[[Any], Awaitable[None]]) -> None:
        """Hand mailbox items to ``dispatch`` one at a time until asked to stop."""
        receive = self.receive_channel.receive
        with trio.CancelScope() as self._idle_scope:
            while not self.stopping:
                self.idle = True
                item = await receive()
                self.idle = False
                await dispatch(item)
                self.processed += 1

    def request_stop(self, grace: float) -> None:
        """Begin a graceful stop with ``grace`` seconds (0 = cancel now)."""
        self.stopping = True
        if grace <= 0:
            self.scope.cancel()
            return
        if not math.isinf(grace):
            self.scope.deadline = min(self.scope.deadline, trio.current_time() + grace)
        if self.idle and self._idle_scope is not None:
            self._idle_scope.cancel()

    def kill_hung(self, grace: float) -> None:
        """The actor missed its heartbeat: stop it as a failure."""
        self.hung = True
        self.request_stop(grace)

    async def _stopped(self, error: BaseException | None) -> None:
        reason = SHUTDOWN if self.stopping and error is None and not self.hung else self._classify(error)
        try:
            await self.actor.on_stop(reason)
        except Exception:
            _LOG.exception("%s: on_stop raised", self.child.path)

    def _classify(self, error: BaseException | None) -> Exit:
        if self.hung:
            return Exit(ExitKind.ABNORMAL, Hung.__name__, "missed its heartbeat")
        if error is None and self.scope.cancelled_caught:
            return SHUTDOWN if self.stopping else Exit(ExitKind.KILLED, "Cancelled", "killed")
        if error is None and self.stopping:
            return SHUTDOWN
        return classify(error)

    def _close_mailbox(self) -> None:
        """Answer asks still queued, then close: later sends raise ActorStopped."""
        while True:
            try:
                fail_pending(self.receive_channel.receive_nowait(), self.child.path)
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        self.receive_channel.close()
