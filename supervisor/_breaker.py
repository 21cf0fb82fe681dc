"""Per-child circuit breaker: stop restarting a child that keeps failing.

:class:`CircuitBreaker` is the frozen policy; :class:`BreakerState` is the live
state machine the supervisor keeps per child. Transitions take ``now`` as an
argument (trio time), so the machine is tested without an event loop:

    CLOSED --threshold failures within window--> OPEN
    OPEN --cooldown elapsed--> HALF_OPEN (allows ``half_open_trials`` restarts)
    HALF_OPEN --success--> CLOSED;  HALF_OPEN --failure--> OPEN (new cooldown)

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

    ``window``: only failures within this many seconds of each other count as
    consecutive; an older streak starts over.
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
    failures: int = 0
    first_failure_at: float = 0.0
    opened_at: float = 0.0
    trials_left: int = 0

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
                self._open(now)
                return self.mode
        if self.failures == 0 or now - self.first_failure_at > self.policy.window:
            self.failures, self.first_failure_at = 0, now
        self.failures += 1
        if self.failures >= self.policy.threshold:
            self._open(now)
        return self.mode

    def record_success(self) -> BreakerMode:
        """A run was healthy (stable uptime or normal exit): close, forget failures."""
        if self.mode in (BreakerMode.CLOSED, BreakerMode.HALF_OPEN):
            self.mode = BreakerMode.CLOSED
            self.failures = 0
        return self.mode

    def force_open(self) -> None:
        self.mode = BreakerMode.FORCED_OPEN

    def force_closed(self) -> None:
        self.mode = BreakerMode.FORCED_CLOSED
        self.failures = 0

    def reset(self) -> None:
        self.mode, self.failures, self.trials_left = BreakerMode.CLOSED, 0, 0

    def _open(self, now: float) -> None:
        self.mode, self.opened_at, self.failures, self.trials_left = BreakerMode.OPEN, now, 0, 0
