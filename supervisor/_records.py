"""The supervisor's data: child states, control requests, the runtime's notes, and records.

Everything here is a value or a plain record; the behaviour lives in
``_supervisor``. Requests are sent with ``ask`` through a SupervisorRef; notes are
what cells and timers post to a supervisor's own mailbox.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import attrs

from ._breaker import BreakerState
from ._exits import Exit
from ._spec import ChildSpec

if TYPE_CHECKING:
    import trio

    from ._cell import Cell
    from ._system import ActorSystem

WORKER_SHUTDOWN = 5.0
"""Default grace of a worker child (OTP's 5000 ms); supervisors default to infinity."""

WORKER_START_TIMEOUT = 5.0
"""Default wait for a worker's readiness; supervisors have none (OTP): their children's timeouts bound them."""


class ChildState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"  # waiting to restart
    SUSPENDED = "suspended"  # breaker open: parked, not restarted
    STOPPING = "stopping"
    STOPPED = "stopped"  # not running; spec kept (terminated, normal exit, stop for good)


class BreakerAction(enum.Enum):
    RESET = "reset"
    OPEN = "open"
    CLOSE = "close"


# -- control requests (sent with ``ask`` through a SupervisorRef) -------------


@attrs.frozen
class StartChild:
    spec: ChildSpec


@attrs.frozen
class TerminateChild:
    id: str


@attrs.frozen
class RestartChild:
    id: str


@attrs.frozen
class DeleteChild:
    id: str


@attrs.frozen
class Breaker:
    id: str
    action: BreakerAction


# -- the runtime's own notes to a supervisor ---------------------------------


@attrs.frozen
class _ChildExited:
    cell: Cell


@attrs.frozen
class _RestartDue:
    members: tuple[tuple["ChildRecord", int], ...]  # (child, generation when planned)
    failed: "ChildRecord"  # whose failure this restart answers (named if intensity is exceeded)


@attrs.frozen
class _RestartNow:
    """A limiter slot was granted: restart, then set ``done`` to free the slot."""

    members: tuple[tuple["ChildRecord", int], ...]
    failed: "ChildRecord"
    done: trio.Event


@attrs.frozen
class _LivenessCheck:
    cell: Cell


@attrs.frozen
class _StableCheck:
    cell: Cell


@attrs.define(eq=False, slots=True)
class ChildRecord:
    """A supervisor's bookkeeping for one child, across its incarnations."""

    spec: ChildSpec
    path: str
    system: "ActorSystem"
    dynamic: bool = False
    state: ChildState = ChildState.STOPPED
    cell: Cell | None = None
    grace: float = WORKER_SHUTDOWN
    is_supervisor: bool = False
    restarts: int = 0
    attempt: int = 0
    last_delay: float = 0.0
    last_failure: Exit | None = None
    last_failure_at: float | None = None
    backoff_until: float | None = None
    breaker: BreakerState | None = None
    generation: int = 0
    stop_reason: str = ""

    def __attrs_post_init__(self) -> None:
        if self.spec.breaker is not None:
            self.breaker = BreakerState(self.spec.breaker)


@attrs.frozen
class ChildInfo:
    """One row of ``which_children``."""

    id: str
    path: str
    state: ChildState
    kind: str


@attrs.frozen
class ChildCounts:
    """``count_children``: specs, running ones, and how many are supervisors/workers."""

    specs: int
    active: int
    supervisors: int
    workers: int
