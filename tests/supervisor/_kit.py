"""Test actors and helpers shared by the runtime's tests.

A :class:`Plan` is the mutable script of one child *slot*: it outlives the
incarnations the supervisor creates, so a test can flip ``fail_start`` between
restarts and read what every incarnation did from its journal. A
:class:`Worker` follows its plan and obeys a closed set of frozen messages.

Time only through trio: every test runs under ``autojump_clock``
(``MockClock(autojump_threshold=0)``) and :func:`settle` lets the runtime finish
what it can do *now* without advancing the clock, so elapsed times are exact.
"""

from __future__ import annotations

import itertools
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import attrs
import trio
import trio.testing

from supervisor import Actor, ChildSpec, EventKind, Exit, Supervisor

_SERIALS = itertools.count(1)


async def settle() -> None:
    """Run every ready task until all are blocked; the mock clock does not move."""
    await trio.testing.wait_all_tasks_blocked()


WATCHDOG_SECONDS = 30.0
"""Real seconds a mock-clock test may run: far beyond a healthy run (well under 5 s)."""


@asynccontextmanager
async def wall_clock_limit(seconds: float = WATCHDOG_SECONDS) -> AsyncIterator[None]:
    """Fail the block with TimeoutError after ``seconds`` of *real* time.

    Under ``MockClock`` a task that keeps waking itself without letting virtual time
    pass never reaches a trio deadline, so only a wall-clock watchdog can end it.
    The watchdog sleeps in a worker thread (the one place real time is wanted);
    cancelling it abandons the thread, which ends on its own.
    """

    async def watchdog() -> None:
        await trio.to_thread.run_sync(time.sleep, seconds, abandon_on_cancel=True)
        raise TimeoutError(f"still running after {seconds} s of real time (busy loop?)")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watchdog)
        yield
        nursery.cancel_scope.cancel()


@attrs.define(eq=False)
class Plan:
    """How every incarnation of one child behaves, and what they did.

    ``journal`` is shared between plans when a test needs the global order.
    """

    name: str
    journal: list = attrs.field(factory=list)
    fail_start: bool = False  # on_start raises (a failed start)
    fail_starts: int = 0  # the next this many starts fail, then they succeed again
    start_delay: float = 0.0  # on_start sleeps this long before it is ready
    stop_delay: float = 0.0  # on_stop sleeps this long (math.inf: hangs)
    stop_raises: bool = False  # on_stop raises after its delay
    crash_after: float | None = None  # a ctx.nursery task raises this long after the start
    beats: int = 0  # heartbeat once a second this many times, then hang
    starts: list[float] = attrs.field(factory=list)  # trio time of each successful start
    stop_reasons: list[Exit] = attrs.field(factory=list)
    received: list = attrs.field(factory=list)  # every message handled, all incarnations

    def spec(self, **kwargs: Any) -> ChildSpec:
        return ChildSpec(self.name, lambda: Worker(self), **kwargs)


@attrs.frozen
class Raise:
    """Make the handler raise ``error`` (an exit reason or any exception)."""

    error: BaseException


@attrs.frozen
class Sleep:
    """Make the handler sleep, then reply ``"slept"``."""

    seconds: float


@attrs.frozen
class Who:
    """Reply with the incarnation's serial number (unique per Worker instance)."""


@attrs.frozen
class Echo:
    value: Any


class Worker(Actor):
    """An actor that follows a :class:`Plan`."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.serial = next(_SERIALS)

    async def on_start(self) -> None:
        plan = self.plan
        if plan.start_delay:
            await trio.sleep(plan.start_delay)
        if plan.fail_starts > 0:
            plan.fail_starts -= 1
            plan.journal.append(("start_failed", plan.name))
            raise RuntimeError(f"{plan.name} cannot start yet")
        if plan.fail_start:
            plan.journal.append(("start_failed", plan.name))
            raise RuntimeError(f"{plan.name} cannot start")
        plan.journal.append(("start", plan.name))
        plan.starts.append(trio.current_time())
        if plan.crash_after is not None:
            self.ctx.nursery.start_soon(self._crash, plan.crash_after)
        if plan.beats:
            self.ctx.heartbeat()
            self.ctx.nursery.start_soon(self._beat, plan.beats)

    async def _crash(self, after: float) -> None:
        await trio.sleep(after)
        raise RuntimeError(f"{self.plan.name} crashed")

    async def _beat(self, beats: int) -> None:
        for _ in range(beats):
            await trio.sleep(1)
            self.ctx.heartbeat()
        await trio.sleep_forever()

    async def receive(self, message: Any) -> Any:
        self.plan.received.append(message)
        match message:
            case Raise(error):
                raise error
            case Sleep(seconds):
                await trio.sleep(seconds)
                return "slept"
            case Who():
                return self.serial
            case Echo(value):
                return value
            case _:
                raise TypeError(f"unexpected message {message!r}")

    async def on_stop(self, reason: Exit) -> None:
        plan = self.plan
        plan.stop_reasons.append(reason)
        plan.journal.append(("stop", plan.name))
        if plan.stop_delay:
            await trio.sleep(plan.stop_delay)
        if plan.stop_raises:
            raise RuntimeError(f"{plan.name} on_stop failed")


def plans(*names: str, journal: list | None = None, **fields: Any) -> list[Plan]:
    """Plans sharing one journal (the global order of starts and stops)."""
    journal = [] if journal is None else journal
    return [Plan(name, journal, **fields) for name in names]


def sup_spec(sup_id: str = "sup", children=(), **flags: Any) -> ChildSpec:
    """A child supervisor (OTP's ``start_link({ok, {Flags, Children}})`` under a test root)."""
    return ChildSpec(sup_id, lambda: Supervisor(list(children), **flags))


def ids(sup) -> list[str]:
    """The ids a SupervisorRef's ``which_children`` lists, in order."""
    return [info.id for info in sup.which_children()]


def exits_of(system, path: str) -> list[str]:
    """Reasons of the ``exited`` events of the actor at ``path`` (how a parent sees it fail)."""
    return [e.reason for e in system.history() if e.kind is EventKind.EXITED and e.path == path]
