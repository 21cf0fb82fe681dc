"""Restart backoff: how long a failed child waits before its next start.

The policy is a frozen value; :meth:`Backoff.delay` is a pure function of the
attempt number, the previous delay and a random source, so it is tested without
an event loop. Jitter modes follow the AWS architecture blog's definitions
("Exponential Backoff And Jitter"): spreading restarts keeps thousands of
sessions that failed together from reconnecting together.
"""

from __future__ import annotations

import enum
import math
import random

import attrs

from ._errors import SpecError


class Jitter(enum.Enum):
    NONE = "none"  # exactly min * multiplier**attempt, capped at max
    FULL = "full"  # uniform in [0, capped]: best spread, the default
    EQUAL = "equal"  # capped/2 + uniform in [0, capped/2]: never less than half
    DECORRELATED = "decorrelated"  # uniform in [min, previous*3], capped: grows from the last delay


def _non_negative(name: str):
    def check(instance, attribute, value) -> None:
        if not (isinstance(value, (int, float)) and value >= 0 and math.isfinite(value)):
            raise SpecError(f"Backoff.{name} must be a finite number >= 0, got {value!r}")

    return check


@attrs.frozen
class Backoff:
    """Exponential backoff with jitter, reset after a stable run.

    Defaults are the seeds': 2 s → 4 → 8 → 16 → 30 s cap. ``reset_after``: a child
    that has been running this long is considered healthy again, so its next
    failure starts over at ``min`` (and its breaker records a success).
    """

    min: float = attrs.field(default=2.0, validator=_non_negative("min"))
    max: float = attrs.field(default=30.0, validator=_non_negative("max"))
    multiplier: float = attrs.field(default=2.0)
    jitter: Jitter = attrs.field(default=Jitter.FULL)
    reset_after: float = attrs.field(default=60.0, validator=_non_negative("reset_after"))

    def __attrs_post_init__(self) -> None:
        if self.max < self.min:
            raise SpecError(f"Backoff.max ({self.max}) must be >= Backoff.min ({self.min})")
        if not (isinstance(self.multiplier, (int, float)) and self.multiplier >= 1):
            raise SpecError(f"Backoff.multiplier must be >= 1, got {self.multiplier!r}")
        if not isinstance(self.jitter, Jitter):
            raise SpecError(f"Backoff.jitter must be a Jitter, got {self.jitter!r}")

    def capped(self, attempt: int) -> float:
        """The un-jittered delay for ``attempt`` (0-based), capped at ``max``."""
        if self.min == 0:
            return 0.0
        if self.multiplier > 1 and attempt > math.log(self.max / self.min, self.multiplier):
            return self.max  # reached the cap; also keeps huge attempt counts from overflowing
        return min(self.max, self.min * self.multiplier**attempt)

    def delay(self, attempt: int, previous: float, rng: random.Random) -> float:
        """The delay before restart number ``attempt`` (0-based) after ``previous``."""
        capped = self.capped(attempt)
        match self.jitter:
            case Jitter.NONE:
                return capped
            case Jitter.FULL:
                return rng.uniform(0.0, capped)
            case Jitter.EQUAL:
                return capped / 2 + rng.uniform(0.0, capped / 2)
            case Jitter.DECORRELATED:
                upper = max(self.min, previous * 3)
                return min(self.max, rng.uniform(self.min, upper))


NO_BACKOFF = Backoff(min=0.0, max=0.0, jitter=Jitter.NONE)
"""Restart at once (OTP's behaviour); the intensity limit is the only brake."""
