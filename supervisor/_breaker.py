"""Per-child circuit breaker: stop restarting a child that keeps failing.

:class:`CircuitBreaker` is the frozen policy; :class:`BreakerState` is the live
state machine the supervisor keeps per child. Transitions take ``now`` as an
argument (trio time), so the machine is tested without an event loop:

    CLOSED --threshold failures within any window--> OPEN
    OPEN --cooldown elapsed--> HALF_OPEN (allows ``half_open_trials`` trial restarts)
    HALF_OPEN --success--> CLOSED
    HALF_OPEN --failed trial, trials left--> HALF_OPEN (next trial after the child's backoff)
    HALF_OPEN --failed last trial--> OPEN (new cooldown)

The window slides: the breaker keeps the times of the failures of the last
``window`` seconds and opens when they number ``threshold``, however the
older ones fell (failures at 1, 7, 13, 15 with window 10 and threshold 3
open it at 15: 7, 13 and 15 are within 10 s).

An operator may force it OPEN (child parked until released) or CLOSED (never
trips), or reset it (CLOSED, history cleared).
"""

from __future__ import annotations

import enum
import math

import attrs

from ._errors import SpecError


class BreakerMode(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    FORCED_CLOSED = "forced_closed"


@attrs.frozen
class CircuitBreaker:
    """Breaker policy. Defaults are the seeds': 5 failures, 5 min cooldown, 1 trial.

    ``window``: a sliding window; ``threshold`` failures within any ``window``
    seconds open the breaker (a failure counts while it is at most ``window``
    old, as restarts do in the supervisor's intensity window).
    ``half_open_trials``: restarts allowed once the cooldown has passed. A trial
    that runs stably (the child's ``backoff.reset_after``) or exits normally
    closes the breaker; a failed trial uses one up and the next runs after the
    child's backoff; the last failed trial reopens it for another cooldown.
    """

    threshold: int = 5
    window: float = 600.0
    cooldown: float = 300.0
    half_open_trials: int = 1

    def __attrs_post_init__(self) -> None:
        if not (isinstance(self.threshold, int) and self.threshold >= 1):
            raise SpecError(f"CircuitBreaker.threshold must be an int >= 1, got {self.threshold!r}")
        for name in ("window", "cooldown"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0 and not math.isnan(value)):
                raise SpecError(f"CircuitBreaker.{name} must be > 0, got {value!r}")
        if not (isinstance(self.half_open_trials, int) and self.half_open_trials >= 1):
            raise SpecError(f"CircuitBreaker.half_open_trials must be an int >= 1, got {self.half_open_trials!r}")


@attrs.define(eq=False)
class BreakerState:
    """The live breaker of one child. Pure: every method takes ``now``."""

    policy: CircuitBreaker
    mode: BreakerMode = BreakerMode.CLOSED
    failure_times: tuple[float, ...] = ()  # failures still inside the window, oldest first
    opened_at: float = 0.0
    trials_left: int = 0

    @property
    def failures(self) -> int:
        """Failures counted in the window as of the last one recorded."""
        return len(self.failure_times)

    @property
    def reopens_at(self) -> float:
        """When an OPEN breaker lets a trial through (``inf`` when forced open)."""
        if self.mode is BreakerMode.OPEN:
            return self.opened_at + self.policy.cooldown
        if self.mode is BreakerMode.FORCED_OPEN:
            return math.inf
        return self.opened_at

    def refresh(self, now: float) -> BreakerMode:
        """Move OPEN to HALF_OPEN once the cooldown has passed; return the mode."""
        if self.mode is BreakerMode.OPEN and now >= self.reopens_at:
            self.mode = BreakerMode.HALF_OPEN
            self.trials_left = self.policy.half_open_trials
        return self.mode

    def allows_restart(self, now: float) -> bool:
        """May the child be restarted now? Consumes a half-open trial when it may."""
        match self.refresh(now):
            case BreakerMode.CLOSED | BreakerMode.FORCED_CLOSED:
                return True
            case BreakerMode.HALF_OPEN if self.trials_left > 0:
                self.trials_left -= 1
                return True
            case _:
                return False

    def record_failure(self, now: float) -> BreakerMode:
        """Count a failed run; may open the breaker. Returns the new mode."""
        match self.refresh(now):
            case BreakerMode.FORCED_OPEN | BreakerMode.FORCED_CLOSED | BreakerMode.OPEN:
                return self.mode
            case BreakerMode.HALF_OPEN:
                if self.trials_left == 0:
                    self._open(now)
                return self.mode
        window = self.policy.window
        self.failure_times = tuple(t for t in self.failure_times if now - t <= window) + (now,)
        if len(self.failure_times) >= self.policy.threshold:
            self._open(now)
        return self.mode

    def record_success(self) -> BreakerMode:
        """A run was healthy (stable uptime or normal exit): close, forget failures."""
        if self.mode in (BreakerMode.CLOSED, BreakerMode.HALF_OPEN):
            self.mode = BreakerMode.CLOSED
            self.failure_times = ()
        return self.mode

    def force_open(self) -> None:
        self.mode = BreakerMode.FORCED_OPEN

    def force_closed(self) -> None:
        self.mode = BreakerMode.FORCED_CLOSED
        self.failure_times = ()

    def reset(self) -> None:
        self.mode, self.failure_times, self.trials_left = BreakerMode.CLOSED, (), 0

    def _open(self, now: float) -> None:
        self.mode, self.opened_at, self.failure_times, self.trials_left = BreakerMode.OPEN, now, (), 0
