"""zapvisor's actor runtime: OTP supervision on trio, plus backoff, breakers and limits.

Everything public is re-exported here; the modules behind it are private.
See DESIGN §2 for the semantics and ``tests/supervisor`` for them pinned down.
"""

from ._actor import Actor, ActorContext
from ._backoff import NO_BACKOFF, Backoff, Jitter
from ._breaker import BreakerMode, BreakerState, CircuitBreaker
from ._decide import Action, add_restart, decide, intensity_exceeded, restart_delay, restart_group
from ._errors import (
    ActorFailed,
    ActorStopped,
    AlreadyPresent,
    AlreadyStarted,
    AskTimeout,
    ChildError,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    Escalated,
    Hung,
    IntensityExceeded,
    MailboxFull,
    SpecError,
    StartFailed,
    SupervisorError,
)
from ._events import EventKind, LifecycleEvent, Subscription
from ._exits import ActorExit, Escalate, Exit, ExitKind, RetryAfter, Shutdown, StopForGood, classify, unwrap
from ._limiter import LimiterStatistics, RestartLimiter
from ._ref import ActorRef, Reply
from ._snapshot import ActorSnapshot, Failure
from ._spec import BRUTAL_KILL, ChildSpec, Restart, Strategy
from ._records import BreakerAction, ChildCounts, ChildInfo, ChildState
from ._supervisor import Supervisor
from ._system import ActorSystem, SupervisorRef, open_actor_system

__all__ = [
    "BRUTAL_KILL",
    "NO_BACKOFF",
    "Action",
    "Actor",
    "ActorContext",
    "ActorExit",
    "ActorFailed",
    "ActorRef",
    "ActorSnapshot",
    "ActorStopped",
    "ActorSystem",
    "AlreadyPresent",
    "AlreadyStarted",
    "AskTimeout",
    "Backoff",
    "BreakerAction",
    "BreakerMode",
    "BreakerState",
    "ChildCounts",
    "ChildError",
    "ChildInfo",
    "ChildNotFound",
    "ChildRestarting",
    "ChildRunning",
    "ChildSpec",
    "ChildState",
    "CircuitBreaker",
    "Escalate",
    "Escalated",
    "EventKind",
    "Exit",
    "ExitKind",
    "Failure",
    "Hung",
    "IntensityExceeded",
    "Jitter",
    "LifecycleEvent",
    "LimiterStatistics",
    "MailboxFull",
    "Reply",
    "Restart",
    "RestartLimiter",
    "RetryAfter",
    "Shutdown",
    "SpecError",
    "StartFailed",
    "StopForGood",
    "Strategy",
    "Subscription",
    "Supervisor",
    "SupervisorError",
    "SupervisorRef",
    "add_restart",
    "classify",
    "decide",
    "intensity_exceeded",
    "open_actor_system",
    "restart_delay",
    "restart_group",
    "unwrap",
]
