"""The :class:`Supervisor` actor: starts children, watches them, restarts them.

A supervisor is an actor whose mailbox carries control requests
(:class:`StartChild`, :class:`TerminateChild`, ...) and the runtime's own
notes (a child exited, a restart is due). It handles them one at a time, so
its bookkeeping needs no locks. Decisions come from the pure functions in
``_decide``; this module only carries them out.

Semantics are OTP's ``supervisor`` (see DESIGN §2), plus per-child backoff,
per-child circuit breakers (an open breaker *suspends* the child without
burning the supervisor's intensity), classified exits, a shared restart
limiter and liveness checks.
"""

from __future__ import annotations

import heapq
import logging
import itertools
import math
from typing import Any

import trio

from ._actor import Actor
from ._breaker import BreakerMode
from ._cell import Cell
from ._decide import Action, add_restart, decide, intensity_exceeded, restart_delay, restart_group
from ._errors import (
    ActorFailed,
    AlreadyPresent,
    AlreadyStarted,
    ChildError,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    Escalated,
    IntensityExceeded,
    SpecError,
    StartFailed,
)
from ._events import EventKind
from ._exits import ActorExit, Exit, ExitKind, classify, unwrap
from ._records import (
    WORKER_SHUTDOWN,
    WORKER_START_TIMEOUT,
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
    _ChildExited,
    _LivenessCheck,
    _RestartDue,
    _RestartNow,
    _StableCheck,
)
from ._ref import Ask
from ._spec import ChildSpec, Restart, Strategy

_LOG = logging.getLogger("zapvisor.supervisor")


def _check_flags(strategy: Any, intensity: Any, period: Any) -> None:
    if not isinstance(strategy, Strategy):
        raise SpecError(f"Supervisor.strategy must be a Strategy, got {strategy!r}")
    if not (isinstance(intensity, int) and intensity >= 0):
        raise SpecError(f"Supervisor.intensity must be an int >= 0, got {intensity!r}")
    if not (isinstance(period, (int, float)) and period > 0 and math.isfinite(period)):
        raise SpecError(f"Supervisor.period must be a finite number of seconds > 0, got {period!r}")


class Supervisor(Actor):
    """Supervise ``children`` with ``strategy``; give up after more than
    ``intensity`` restarts within ``period`` seconds."""

    def __init__(
        self,
        children: "list[ChildSpec] | tuple[ChildSpec, ...]" = (),
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        intensity: int = 3,
        period: float = 5.0,
    ) -> None:
        _check_flags(strategy, intensity, period)
        ids = [spec.id for spec in children]
        if len(set(ids)) != len(ids):
            raise SpecError(f"Supervisor children ids must be unique, got {ids}")
        for spec in children:
            if not isinstance(spec, ChildSpec):
                raise SpecError(f"Supervisor children must be ChildSpec, got {spec!r}")
        self.strategy = strategy
        self.intensity = intensity
        self.period = float(period)
        self._initial = tuple(children)
        self._children: dict[str, ChildRecord] = {}
        self._restarts: tuple[float, ...] = ()
        self._nursery: trio.Nursery | None = None
        self._timers: list[tuple[float, int, Any]] = []
        self._timer_seq = itertools.count()
        self._timer_wakeup = trio.Event()

    # -- lifecycle -------------------------------------------------------------

    async def _begin(self) -> None:
        """Start the children in order; they live in this supervisor's nursery."""
        self._nursery = self.ctx.nursery
        self._nursery.start_soon(self._timer_loop)
        for spec in self._initial:
            child = self._add(spec, dynamic=False)
            try:
                await self._start(child)
            except StartFailed:
                await self._stop_all()
                raise

    async def _end(self) -> None:
        await self._stop_all()

    def _ended(self) -> None:
        """This incarnation is over (stopped, failed or killed): its children's paths go with it.

        Each child supervisor unregisters its own children when it ends, so the
        whole dead subtree disappears from the registry.
        """
        for child in self._children.values():
            self.ctx.system._unregister(child)

    async def _dispatch(self, item: Any) -> None:
        match item:
            case _ChildExited(cell):
                await self._on_exit(cell)
            case _RestartDue(members, failed):
                self._restart_when_allowed(members, failed)
            case _RestartNow(members, failed, done):
                try:
                    await self._restart(members, failed)
                finally:
                    done.set()
            case _LivenessCheck(cell):
                self._check_liveness(cell)
            case _StableCheck(cell):
                self._mark_stable(cell)
            case Ask(request, reply):
                try:
                    value = await self._control(request)
                except (ChildError, StartFailed, SpecError) as exc:
                    reply.fail(exc)
                except Exception as exc:
                    reply.fail(ActorFailed(self.ctx.path, exc))
                    raise
                else:
                    reply.set(value)
            case _:
                # OTP logs unexpected messages and carries on: a stray tell must not restart a subtree.
                _LOG.warning("supervisor %s ignored an unexpected message %r", self.ctx.path, item)

    # -- control requests ------------------------------------------------------

    async def _control(self, request: Any) -> Any:
        match request:
            case StartChild(spec):
                if not isinstance(spec, ChildSpec):
                    raise SpecError(f"start_child needs a ChildSpec, got {spec!r}")
                if spec.id in self._children:
                    existing = self._children[spec.id]
                    if existing.cell is not None:
                        raise AlreadyStarted(f"{existing.path} is already running")
                    raise AlreadyPresent(f"{existing.path} is present (state {existing.state.value})")
                child = self._add(spec, dynamic=True)
                try:
                    await self._start(child)
                except StartFailed:
                    self._remove(child)
                    raise
                return self.ctx.system.ref(child.path)
            case TerminateChild(child_id):
                child = self._get(child_id)
                await self._stop_child(child)
                self._set_stopped(child, "terminated")
                if child.spec.restart is Restart.TEMPORARY:
                    self._remove(child)
                return None
            case RestartChild(child_id):
                child = self._get(child_id)
                self._refuse_if_busy(child)
                await self._start(child)
                return self.ctx.system.ref(child.path)
            case DeleteChild(child_id):
                child = self._get(child_id)
                self._refuse_if_busy(child)
                self._remove(child)
                return None
            case Breaker(child_id, action):
                return await self._breaker_command(self._get(child_id), action)
            case _:
                raise SpecError(f"supervisor {self.ctx.path} does not handle {type(request).__name__} requests")

    def _get(self, child_id: str) -> ChildRecord:
        try:
            return self._children[child_id]
        except KeyError:
            raise ChildNotFound(f"{self.ctx.path} has no child {child_id!r}") from None

    @staticmethod
    def _refuse_if_busy(child: ChildRecord) -> None:
        if child.state in (ChildState.RUNNING, ChildState.STARTING, ChildState.STOPPING):
            raise ChildRunning(f"{child.path} is {child.state.value}")
        if child.state in (ChildState.BACKOFF, ChildState.SUSPENDED):
            raise ChildRestarting(f"{child.path} is {child.state.value}")

    async def _breaker_command(self, child: ChildRecord, action: BreakerAction) -> str:
        breaker = child.breaker
        if breaker is None:
            raise SpecError(f"{child.path} has no circuit breaker")
        match action:
            case BreakerAction.OPEN:
                breaker.force_open()
                if child.cell is not None:
                    await self._stop_child(child)
                child.generation += 1
                self._suspend(child, "breaker forced open")
            case BreakerAction.CLOSE | BreakerAction.RESET:
                if action is BreakerAction.CLOSE:
                    breaker.force_closed()
                else:
                    breaker.reset()
                if child.state is ChildState.SUSPENDED:
                    child.generation += 1
                    self._post(_RestartDue(((child, child.generation),), child))
        self._emit(EventKind.BREAKER, child, breaker=breaker.mode.value, reason=f"operator {action.value}")
        return breaker.mode.value

    # -- starting and stopping -------------------------------------------------

    def _add(self, spec: ChildSpec, *, dynamic: bool) -> ChildRecord:
        path = f"{self.ctx.path.rstrip('/')}/{spec.id}"
        child = ChildRecord(spec, path, self.ctx.system, dynamic=dynamic)
        self._children[spec.id] = child
        self.ctx.system._register(child)
        return child

    def _remove(self, child: ChildRecord) -> None:
        child.generation += 1
        child.state = ChildState.STOPPED
        if self._children.get(child.spec.id) is child:
            del self._children[child.spec.id]
        self.ctx.system._unregister(child)

    async def _start(self, child: ChildRecord, *, restart: bool = False) -> None:
        """Start one incarnation and wait for its readiness. Raises StartFailed."""
        spec = child.spec
        child.state = ChildState.STARTING
        child.stop_reason = ""
        try:
            actor = spec.factory()
            if not isinstance(actor, Actor):
                raise TypeError(f"factory returned {actor!r}, not an Actor")
            child.is_supervisor = isinstance(actor, Supervisor)
            child.grace = spec.shutdown if spec.shutdown is not None else (
                math.inf if child.is_supervisor else WORKER_SHUTDOWN
            )
            timeout = spec.start_timeout if spec.start_timeout is not None else (
                math.inf if child.is_supervisor else WORKER_START_TIMEOUT
            )
            cell = Cell(child, actor, math.inf if child.is_supervisor else spec.mailbox)
            child.cell = cell
            with trio.fail_after(timeout):
                await self._nursery.start(cell.run, self._child_exited)
        except trio.TooSlowError:
            self._start_failed(child, f"no readiness within {timeout} s")
        except Exception as exc:
            self._start_failed(child, unwrap(exc))
        child.state = ChildState.RUNNING
        child.backoff_until = None
        now = trio.current_time()
        if restart:
            child.restarts += 1
        self._emit(EventKind.RESTARTED if restart else EventKind.STARTED, child)
        if spec.liveness_timeout is not None:
            self._schedule(now + spec.liveness_timeout, _LivenessCheck(cell))
        if child.breaker is not None and child.breaker.mode is BreakerMode.HALF_OPEN:
            self._schedule(now + spec.backoff.reset_after, _StableCheck(cell))

    def _start_failed(self, child: ChildRecord, cause: BaseException | str) -> None:
        child.cell = None
        child.state = ChildState.STOPPED
        error = StartFailed(child.spec.id, cause)
        self._emit(EventKind.START_FAILED, child, reason=str(error))
        raise error from (cause if isinstance(cause, BaseException) else None)

    async def _stop_child(self, child: ChildRecord) -> None:
        """Stop the running incarnation within its grace; cancels pending restarts."""
        child.generation += 1
        cell = child.cell
        if cell is None:
            return
        child.state = ChildState.STOPPING
        child.cell = None  # its exit report is now expected, not a failure
        cell.request_stop(child.grace)
        await cell.wait_ended()
        child.state = ChildState.STOPPED

    async def _stop_all(self) -> None:
        """Dynamic children concurrently, then static ones in reverse start order."""
        order = list(self._children.values())
        async with trio.open_nursery() as nursery:
            for child in order:
                if child.dynamic and child.cell is not None:
                    nursery.start_soon(self._stop_child, child)
        for child in reversed(order):
            await self._stop_child(child)
        for child in order:
            if child.state is not ChildState.STOPPED:
                child.generation += 1
                child.state = ChildState.STOPPED

    # -- exits, restarts, breakers ---------------------------------------------

    def _child_exited(self, cell: Cell) -> None:
        """Called by a cell as it ends (synchronously): queue the note for the loop."""
        try:
            self.ctx._cell.send_channel.send_nowait(_ChildExited(cell))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # this supervisor is gone; nobody is left to act on the exit

    async def _on_exit(self, cell: Cell) -> None:
        child = cell.child
        if child.cell is not cell:
            return  # a stop we asked for, already accounted for
        child.cell = None
        now = trio.current_time()
        self._emit(EventKind.EXITED, child, reason=_describe(cell.exit))
        stable = cell.started and now - cell.started_at >= child.spec.backoff.reset_after
        await self._handle_exit(child, cell.exit, now, stable=stable)

    async def _handle_exit(self, child: ChildRecord, exit: Exit, now: float, *, stable: bool) -> None:
        """Carry out the decision for a child that exited (or failed to restart) with ``exit``.

        ``stable``: it had run for ``reset_after``, so its backoff starts over and its
        breaker records a success before this exit is judged.
        """
        if exit.kind is not ExitKind.NORMAL:
            child.last_failure, child.last_failure_at = exit, now
        if stable:
            child.attempt = 0
            self._breaker_success(child)
        elif exit.kind is ExitKind.NORMAL:
            self._breaker_success(child)
        match decide(child.spec.restart, exit):
            case Action.ESCALATE:
                await self._give_up(Escalated(f"{child.path} escalated: {exit.message}"))
            case Action.REMOVE:
                self._remove(child)
                self._emit(EventKind.STOPPED, child, reason=_describe(exit))
            case Action.KEEP_STOPPED:
                self._set_stopped(child, _describe(exit))
            case Action.RESTART:
                await self._plan_restart(child, exit, now)

    async def _plan_restart(self, child: ChildRecord, exit: Exit, now: float) -> None:
        breaker = child.breaker
        if breaker is not None and exit.kind is not ExitKind.RETRY_AFTER:
            before = breaker.mode
            mode = breaker.record_failure(now)
            if mode is not before:
                self._emit(EventKind.BREAKER, child, breaker=mode.value, reason=_describe(exit))
            if mode in (BreakerMode.OPEN, BreakerMode.FORCED_OPEN):
                members = await self._stop_group(child)
                self._suspend(child, "breaker open")
                if math.isfinite(breaker.reopens_at):
                    self._schedule(breaker.reopens_at, _RestartDue(members, child))
                return
        delay = restart_delay(child.spec.backoff, child.attempt, child.last_delay, exit, self.ctx.system.rng)
        child.attempt += 1
        child.last_delay = delay
        members = await self._stop_group(child)
        for member, _ in members:
            member.state = ChildState.BACKOFF
            member.backoff_until = now + delay
        self._emit(EventKind.RESTART_SCHEDULED, child, delay=delay, reason=_describe(exit))
        if delay > 0:
            self._schedule(now + delay, _RestartDue(members, child))
        else:
            self._post(_RestartDue(members, child))

    async def _stop_group(self, failed: ChildRecord) -> tuple[tuple[ChildRecord, int], ...]:
        """Stop the failed child's strategy group (reverse order); return it with generations.

        Siblings stopped on purpose earlier (terminated, stopped for good) stay
        stopped: a deliberate deviation from OTP, whose one_for_all/rest_for_one
        restart starts every child in the group again, an operator's
        ``terminate_child`` included. Here an operator's stop (or a logged-out
        session's stop for good) is never undone by a sibling's crash; start it
        again with ``restart_child``. Temporary siblings are dropped, as in OTP.
        """
        ids = restart_group(self.strategy, tuple(self._children), failed.spec.id)
        group = [self._children[i] for i in ids]
        live = [m for m in group if m is failed or m.state is not ChildState.STOPPED]
        for member in reversed(live):
            if member is not failed:
                await self._stop_child(member)
        restart = []
        for member in live:
            if member is not failed and member.spec.restart is Restart.TEMPORARY:
                self._remove(member)  # a temporary bystander is never restarted (OTP)
                self._emit(EventKind.STOPPED, member, reason="temporary bystander")
                continue
            member.generation += 1
            restart.append((member, member.generation))
        return tuple(restart)

    def _restart_when_allowed(self, members: tuple[tuple[ChildRecord, int], ...], failed: ChildRecord) -> None:
        live = tuple((m, g) for m, g in members if m.generation == g)
        if not live:
            return
        limiter = failed.spec.limiter
        if limiter is None:
            self._post(_RestartNow(live, failed, trio.Event()))
        else:
            self._nursery.start_soon(self._restart_through_limiter, limiter, live, failed)

    async def _restart_through_limiter(self, limiter, members, failed: ChildRecord) -> None:
        async with limiter.slot():
            done = trio.Event()
            self._post(_RestartNow(members, failed, done))
            await done.wait()

    async def _restart(self, members: tuple[tuple[ChildRecord, int], ...], failed: ChildRecord) -> None:
        """Restart a group now; this is where restart intensity is counted.

        Counting restarts when they are performed (OTP's add_restart in restart/2)
        rather than when failures are seen keeps the guarantee meaningful with
        backoff and a shared limiter: a mass failure is restarted as a ramp, and
        the window sees the ramp, not the burst of failures.
        """
        now = trio.current_time()
        live = []
        for child, generation in members:
            if child.generation != generation or child.cell is not None:
                continue  # terminated, deleted or restarted meanwhile
            if child.state is ChildState.SUSPENDED or _in_trial(child):
                # A half-open breaker counts every trial, the one after a failed trial included.
                if not child.breaker.allows_restart(now):
                    continue
                if child.state is ChildState.SUSPENDED:
                    self._emit(EventKind.RESUMED, child, breaker=child.breaker.mode.value)
            live.append(child)
        if not live:
            return
        self._restarts = add_restart(self._restarts, now, self.period)
        if intensity_exceeded(self._restarts, self.intensity):
            last = _describe(failed.last_failure) if failed.last_failure else "unknown"
            self._emit(EventKind.INTENSITY_EXCEEDED, failed, reason=f"more than {self.intensity} restarts in {self.period} s")
            await self._give_up(
                IntensityExceeded(
                    f"{self.ctx.path}: more than {self.intensity} restarts in {self.period} s"
                    f" (last: {failed.path} {last})"
                )
            )
        for child in live:
            try:
                await self._start(child, restart=True)
            except StartFailed as exc:
                # An exit reason raised by on_start (a ban learnt while connecting, a logout)
                # means what it means anywhere else; other start failures are abnormal.
                cause = exc.cause
                exit = classify(cause) if isinstance(cause, ActorExit) else Exit(ExitKind.ABNORMAL, "StartFailed", str(exc))
                await self._handle_exit(child, exit, trio.current_time(), stable=False)
                return

    def _suspend(self, child: ChildRecord, reason: str) -> None:
        child.state = ChildState.SUSPENDED
        child.backoff_until = child.breaker.reopens_at if child.breaker else None
        self._emit(EventKind.SUSPENDED, child, reason=reason, breaker=child.breaker.mode.value)

    def _breaker_success(self, child: ChildRecord) -> None:
        breaker = child.breaker
        if breaker is None:
            return
        before = breaker.mode
        if breaker.record_success() is not before:
            self._emit(EventKind.BREAKER, child, breaker=breaker.mode.value, reason="healthy run")

    def _mark_stable(self, cell: Cell) -> None:
        child = cell.child
        if child.cell is not cell:
            return
        child.attempt = 0
        if child.breaker is not None and child.breaker.mode is BreakerMode.HALF_OPEN:
            child.breaker.record_success()
            self._emit(EventKind.BREAKER, child, breaker=child.breaker.mode.value, reason="stable")

    def _check_liveness(self, cell: Cell) -> None:
        child = cell.child
        if child.cell is not cell or cell.stopping:
            return
        timeout = child.spec.liveness_timeout
        due = cell.last_beat + timeout
        if trio.current_time() >= due:
            cell.kill_hung(child.grace if math.isfinite(child.grace) else 0.0)
        else:
            self._schedule(due, _LivenessCheck(cell))

    def _set_stopped(self, child: ChildRecord, reason: str) -> None:
        child.state = ChildState.STOPPED
        child.stop_reason = reason
        child.backoff_until = None
        self._emit(EventKind.STOPPED, child, reason=reason)

    async def _give_up(self, error: Exception) -> None:
        await self._stop_all()
        raise error

    # -- timers ----------------------------------------------------------------

    def _post(self, item: Any) -> None:
        self.ctx._cell.send_channel.send_nowait(item)

    def _schedule(self, when: float, item: Any) -> None:
        heapq.heappush(self._timers, (when, next(self._timer_seq), item))
        if self._timers[0][2] is item:
            self._timer_wakeup.set()

    async def _timer_loop(self) -> None:
        """One task per supervisor fires every backoff, liveness and stability timer."""
        while True:
            self._timer_wakeup = trio.Event()
            deadline = self._timers[0][0] if self._timers else math.inf
            with trio.move_on_at(deadline):
                await self._timer_wakeup.wait()
            now = trio.current_time()
            while self._timers and self._timers[0][0] <= now:
                _, _, item = heapq.heappop(self._timers)
                self._post(item)

    # -- reading ---------------------------------------------------------------

    def which_children(self) -> tuple[ChildInfo, ...]:
        return tuple(
            ChildInfo(c.spec.id, c.path, c.state, "supervisor" if c.is_supervisor else "worker")
            for c in self._children.values()
        )

    def count_children(self) -> ChildCounts:
        children = self._children.values()
        supervisors = sum(1 for c in children if c.is_supervisor)
        return ChildCounts(
            specs=len(self._children),
            active=sum(1 for c in children if c.cell is not None),
            supervisors=supervisors,
            workers=len(self._children) - supervisors,
        )

    def records(self) -> tuple[ChildRecord, ...]:
        return tuple(self._children.values())

    def _emit(self, kind: EventKind, child: ChildRecord, **fields: Any) -> None:
        self.ctx.system._emit(kind, child.path, **fields)


def _in_trial(child: ChildRecord) -> bool:
    return child.breaker is not None and child.breaker.mode is BreakerMode.HALF_OPEN


def _describe(exit: Exit) -> str:
    if exit.kind is ExitKind.NORMAL and not exit.error_type:
        return "normal"
    text = f"{exit.kind.value}: {exit.error_type}"
    return f"{text}: {exit.message}" if exit.message else text
