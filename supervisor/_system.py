"""The actor system: the root supervisor, the path registry, events and snapshots.

Open it with :func:`open_actor_system`; it owns a nursery and the root
supervisor (path ``/``). Leaving the ``async with`` block, by cancellation too,
stops the whole tree gracefully (children in reverse start order, each within
its grace). If the
root supervisor itself fails (its restart intensity was exceeded), the block is
cancelled and :class:`~supervisor.SupervisorError` is raised from it: the
daemon exits and systemd restarts it.
"""

from __future__ import annotations

import math
import random
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Iterable

import attrs
import trio

from ._errors import ActorStopped, ChildNotFound, SupervisorError
from ._events import EventHub, EventKind, LifecycleEvent, Subscription
from ._ref import DEFAULT_ASK_TIMEOUT, ActorRef
from ._snapshot import ActorSnapshot, snapshot
from ._spec import ChildSpec, Strategy
from ._records import (
    Breaker,
    BreakerAction,
    ChildCounts,
    ChildInfo,
    ChildRecord,
    ChildState,
    DeleteChild,
    RestartChild,
    StartChild,
    TerminateChild,
)
from ._supervisor import Supervisor

CONTROL_TIMEOUT = 60.0
"""Seconds a control request may take: a start (with its timeout) or a stop (with its grace).

A deliberate deviation from OTP, whose supervisor calls wait forever: an API
handler or CLI must get an answer. On AskTimeout the request is *not* undone:
the supervisor carries it out all the same (a slow start still completes, a
stop still ends), only the caller stopped waiting. Pass ``timeout=math.inf``
for OTP's behaviour."""


class SupervisorRef(ActorRef):
    """A ref to a supervisor, with OTP's dynamic-children API.

    The async methods are requests handled in the supervisor's own task, one at
    a time; they raise the ``ChildError`` outcomes (AlreadyStarted,
    AlreadyPresent, ChildNotFound, ChildRunning, ChildRestarting) or
    StartFailed. The reading methods are synchronous snapshots. They wait
    ``CONTROL_TIMEOUT`` (60 s) by default and raise AskTimeout past it, where
    OTP waits forever (see ``CONTROL_TIMEOUT``).
    """

    __slots__ = ()

    async def start_child(self, spec: ChildSpec, timeout: float = CONTROL_TIMEOUT) -> ActorRef:
        return await self.ask(StartChild(spec), timeout)

    async def terminate_child(self, child_id: str, timeout: float = CONTROL_TIMEOUT) -> None:
        await self.ask(TerminateChild(child_id), timeout)

    async def restart_child(self, child_id: str, timeout: float = CONTROL_TIMEOUT) -> ActorRef:
        return await self.ask(RestartChild(child_id), timeout)

    async def delete_child(self, child_id: str, timeout: float = CONTROL_TIMEOUT) -> None:
        await self.ask(DeleteChild(child_id), timeout)

    async def breaker(self, child_id: str, action: BreakerAction, timeout: float = DEFAULT_ASK_TIMEOUT) -> str:
        """Reset, force open or force closed a child's breaker; returns the new mode."""
        return await self.ask(Breaker(child_id, action), timeout)

    def which_children(self) -> tuple[ChildInfo, ...]:
        return self._supervisor().which_children()

    def count_children(self) -> ChildCounts:
        return self._supervisor().count_children()

    def _supervisor(self) -> Supervisor:
        cell = self._child.cell
        if cell is None:
            raise ActorStopped(f"{self._child.path} is not running")
        return cell.actor


@attrs.define(eq=False)
class ActorSystem:
    """Registry of live paths, lifecycle events and tree snapshots."""

    rng: random.Random
    hub: EventHub = attrs.field(factory=EventHub)
    root: ChildRecord | None = None
    failure: BaseException | None = None
    _registry: dict[str, ChildRecord] = attrs.field(factory=dict)
    _epoch_trio: float = attrs.field(factory=trio.current_time)
    _epoch_wall: float = attrs.field(factory=time.time)  # read once, to label trio times for humans

    def ref(self, path: str) -> ActorRef:
        """The ref of the actor at ``path`` (a SupervisorRef for supervisors). Raises ChildNotFound."""
        try:
            child = self._registry[path]
        except KeyError:
            raise ChildNotFound(f"no actor at {path!r}") from None
        return SupervisorRef(child) if child.is_supervisor else ActorRef(child)

    def supervisor(self, path: str) -> SupervisorRef:
        """The SupervisorRef at ``path``. Raises ChildNotFound (also when it is a worker)."""
        ref = self.ref(path)
        if not isinstance(ref, SupervisorRef):
            raise ChildNotFound(f"{path!r} is not a supervisor")
        return ref

    def paths(self) -> Iterable[str]:
        return self._registry.keys()

    def tree(self) -> ActorSnapshot:
        """A frozen snapshot of the whole tree."""
        return snapshot(self.root, trio.current_time())

    def events(self, buffer: int | None = None) -> Subscription:
        """Subscribe to lifecycle events; a subscriber that falls ``buffer`` behind is dropped."""
        return self.hub.subscribe() if buffer is None else self.hub.subscribe(buffer)

    def history(self) -> tuple[LifecycleEvent, ...]:
        """Recent lifecycle events, oldest first."""
        return tuple(self.hub.history)

    def wall_time(self, at: float) -> float:
        """Convert a trio time from a snapshot or event to a Unix timestamp."""
        return self._epoch_wall + (at - self._epoch_trio)

    def _register(self, child: ChildRecord) -> None:
        self._registry[child.path] = child

    def _unregister(self, child: ChildRecord) -> None:
        if self._registry.get(child.path) is child:
            del self._registry[child.path]

    def _emit(self, kind: EventKind, path: str, **fields) -> None:
        self.hub.publish(LifecycleEvent(kind, path, trio.current_time(), **fields))


async def _run_root(cell, on_exit, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Run the root cell; once it is started, shield the whole tree from the owner's cancellation.

    Every actor task descends from this one, so the shield keeps a cancelled
    owner from killing them mid-message: the owner's ``finally`` asks the root
    to stop instead, and the tree stops gracefully. Before readiness there is no
    shield, so cancelling a start still cuts it short.
    """
    with trio.CancelScope() as guard:
        await cell.run(on_exit, task_status=_ShieldWhenStarted(guard, task_status))


@attrs.frozen
class _ShieldWhenStarted:
    """A ``task_status`` that shields ``guard`` the moment the task reports readiness."""

    guard: trio.CancelScope
    task_status: Any

    def started(self, value: Any = None) -> None:
        self.guard.shield = True
        self.task_status.started(value)


@asynccontextmanager
async def open_actor_system(
    children: Iterable[ChildSpec] = (),
    *,
    strategy: Strategy = Strategy.ONE_FOR_ONE,
    intensity: int = 3,
    period: float = 5.0,
    seed: int | None = None,
) -> AsyncIterator[ActorSystem]:
    """Start a root supervisor over ``children``; yield the system; stop it on exit.

    Raises StartFailed if a child fails to start (the started ones are stopped
    first), and SupervisorError if the root supervisor fails while running.
    ``seed`` makes backoff jitter reproducible (tests).

    Cancellation: leaving the block by cancellation (the owner's scope
    cancelled, a deadline, Ctrl-C turned into a cancel) still stops the tree
    gracefully: the stop runs shielded, children in reverse start order, each
    ``on_stop`` within its own ``shutdown`` grace, so it is bounded by those
    graces (a child with ``shutdown=math.inf`` can hold it for as long as its
    ``on_stop`` takes). The ``Cancelled`` is re-raised once the tree is down.
    """
    from ._cell import Cell

    children = tuple(children)
    system = ActorSystem(random.Random(seed))
    spec = ChildSpec("root", lambda: Supervisor(children, strategy=strategy, intensity=intensity, period=period))
    root = ChildRecord(spec, "/", system, is_supervisor=True, grace=math.inf)
    system.root = root
    system._register(root)
    try:
        async with trio.open_nursery() as nursery:

            def root_exited(cell: Cell) -> None:
                root.cell = None
                root.state = ChildState.STOPPED
                if cell.exit.is_failure:
                    system.failure = SupervisorError(f"root supervisor failed: {cell.exit.error_type}: {cell.exit.message}")
                    nursery.cancel_scope.cancel()

            cell = Cell(root, spec.factory(), math.inf)
            root.cell = cell
            root.state = ChildState.STARTING
            await nursery.start(_run_root, cell, root_exited)
            root.state = ChildState.RUNNING
            system._emit(EventKind.STARTED, "/")
            try:
                yield system
            finally:
                if root.cell is cell:
                    root.state = ChildState.STOPPING
                    cell.request_stop(math.inf)
                    with trio.CancelScope(shield=True):  # the owner's cancellation included
                        await cell.wait_ended()
                system.hub.close()
    except BaseExceptionGroup as group:
        # The body runs inside our nursery; hand its error back unwrapped, as if
        # no nursery were there (trio's advice for context managers that own one).
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    if system.failure is not None:
        raise system.failure
