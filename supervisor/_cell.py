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
from typing import TYPE_CHECKING, Callable

import attrs
import trio

from ._actor import Actor, ActorContext
from ._errors import Hung
from ._exits import Exit, ExitKind, Shutdown, classify, unwrap
from ._ref import fail_pending

if TYPE_CHECKING:
    from ._records import ChildRecord

_LOG = logging.getLogger("zapvisor.supervisor")

SHUTDOWN = classify(Shutdown("shutdown"))


_STOP = object()
"""Put in an idle actor's (hence empty) mailbox to end its serve loop."""


@attrs.define(eq=False, slots=True)
class Cell:
    child: "ChildRecord"
    actor: Actor
    capacity: float
    send_channel: trio.MemorySendChannel = attrs.field(init=False)
    receive_channel: trio.MemoryReceiveChannel = attrs.field(init=False)
    scope: trio.CancelScope | None = None  # the actor nursery's scope: deadline and kill switch
    ended: bool = False
    _done: trio.Event | None = None  # made only when someone waits: most actors never stop
    started: bool = False
    started_at: float = 0.0
    last_beat: float = 0.0
    processed: int = 0
    stopping: bool = False
    finished: bool = False  # the serve loop returned; cancelling now only ends the actor's tasks
    hung: bool = False
    idle: bool = False
    exit: Exit | None = None

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
        """Start the actor, hand it mailbox items one at a time, report its exit.

        One nursery per actor holds its tasks; its cancel scope doubles as the
        actor's deadline (shutdown grace) and kill switch. Raises (instead of
        reporting) when the actor fails before it is started, so
        ``nursery.start`` hands the error to whoever started it.
        """
        error: BaseException | None = None
        try:
            try:
                async with trio.open_nursery() as nursery:
                    self.scope = nursery.cancel_scope
                    actor = self.actor
                    actor.ctx.nursery = nursery
                    await actor._begin()
                    self.mark_started()
                    task_status.started()
                    # The serve loop lives here, not in a method: one frame less per actor.
                    dispatch, receive = actor._dispatch, self.receive_channel.receive
                    while not self.stopping:
                        self.idle = True
                        item = await receive()
                        self.idle = False
                        if item is _STOP:
                            break
                        await dispatch(item)
                        item = None  # an idle actor keeps nothing of its last message alive
                        self.processed += 1
                    await actor._end()
                    self.finished = True
                    nursery.cancel_scope.cancel()  # the actor's own tasks end with it
            except Exception as exc:
                if not self.started:
                    raise unwrap(exc) from None
                error = exc
            # Killed = cancelled by us with nothing raised. trio also cancels the scope to unwind
            # siblings when a task fails: that is a failure, and on_stop still runs.
            killed = error is None and self.scope.cancelled_caught and not self.finished
            if not killed:
                with trio.move_on_at(self.scope.deadline):  # what is left of the grace
                    await self._stopped(error)
            self.exit = self._classify(error, killed)
            if error is not None and self.exit.kind is ExitKind.ABNORMAL:  # its cause, with every inner one
                _LOG.error("%s failed: %s: %s", self.child.path, self.exit.error_type, self.exit.message,
                           exc_info=error)
        finally:
            self.idle = False
            self._close_mailbox()
            self.actor._ended()
            self.ended = True
            if self._done is not None:
                self._done.set()
        on_exit(self)

    async def wait_ended(self) -> None:
        """Wait until this incarnation has fully ended (``on_stop`` included)."""
        if not self.ended:
            if self._done is None:
                self._done = trio.Event()
            await self._done.wait()

    def request_stop(self, grace: float) -> None:
        """Begin a graceful stop with ``grace`` seconds (0 = cancel now).

        The message in hand is finished, no new one is taken, then ``on_stop``
        runs; all of it within the grace, after which the actor is cancelled.
        """
        self.stopping = True
        if self.scope is None or self.ended:
            return  # still starting (the serve loop will not begin), or already gone
        if grace <= 0:
            self.scope.cancel()
            return
        if not math.isinf(grace):
            self.scope.deadline = min(self.scope.deadline, trio.current_time() + grace)
        if self.idle:
            try:
                self.send_channel.send_nowait(_STOP)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # not idle after all (it sees ``stopping`` after this message), or ending now

    def kill_hung(self, grace: float) -> None:
        """The actor missed its heartbeat: stop it as a failure."""
        self.hung = True
        self.request_stop(grace)

    async def _stopped(self, error: BaseException | None) -> None:
        reason = SHUTDOWN if self.stopping and error is None and not self.hung else self._classify(error, False)
        try:
            await self.actor.on_stop(reason)
        except Exception:
            _LOG.exception("%s: on_stop raised", self.child.path)

    def _classify(self, error: BaseException | None, killed: bool) -> Exit:
        if self.hung:
            return Exit(ExitKind.ABNORMAL, Hung.__name__, "missed its heartbeat")
        if error is None and killed and not self.stopping:
            return Exit(ExitKind.KILLED, "Cancelled", "killed")
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
