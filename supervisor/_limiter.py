"""A restart limiter shared by many children: smooth ramps instead of stampedes.

When WhatsApp itself goes down, every session fails at once. Per-child backoff
spreads their restarts, but a shared limiter *bounds* them: at most ``rate``
restarts per second (with a ``burst`` allowance) and at most ``max_concurrent``
starts in progress. Waiters are served in arrival order (trio locks are fair).
"""

from __future__ import annotations

import math
from contextlib import asynccontextmanager
from typing import AsyncIterator

import attrs
import trio

from ._errors import SpecError


@attrs.frozen
class LimiterStatistics:
    granted: int
    in_progress: int
    peak_in_progress: int
    waiting: int


@attrs.define(eq=False)
class RestartLimiter:
    """Token bucket (``rate`` per second, ``burst`` tokens) plus a concurrency cap."""

    rate: float = 20.0
    burst: int = 20
    max_concurrent: int = 50
    _tat: float = attrs.field(init=False, default=-math.inf)  # GCRA's theoretical arrival time
    _queue: trio.Lock = attrs.field(init=False, factory=trio.Lock)
    _slots: trio.Semaphore = attrs.field(init=False)
    _granted: int = attrs.field(init=False, default=0)
    _peak: int = attrs.field(init=False, default=0)
    _waiting: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        if not (isinstance(self.rate, (int, float)) and self.rate > 0 and math.isfinite(self.rate)):
            raise SpecError(f"RestartLimiter.rate must be a finite number > 0, got {self.rate!r}")
        for name in ("burst", "max_concurrent"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise SpecError(f"RestartLimiter.{name} must be an int >= 1, got {value!r}")
        self._slots = trio.Semaphore(self.max_concurrent)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a token and a free slot; hold the slot while the restart runs.

        Cancellation while waiting gives nothing back and takes nothing.
        """
        self._waiting += 1
        try:
            async with self._queue:
                await self._slots.acquire()
                try:
                    await self._take_token()
                except BaseException:
                    self._slots.release()
                    raise
        finally:
            self._waiting -= 1
        self._granted += 1
        self._peak = max(self._peak, self.in_progress)
        try:
            yield
        finally:
            self._slots.release()

    @property
    def in_progress(self) -> int:
        return self.max_concurrent - self._slots.value

    def statistics(self) -> LimiterStatistics:
        return LimiterStatistics(self._granted, self.in_progress, self._peak, self._waiting)

    async def _take_token(self) -> None:
        """GCRA (the token bucket as a schedule): no float refills, so no drift and no spin.

        Each grant moves the theoretical arrival time ``_tat`` one interval on; a
        request may go ``burst - 1`` intervals ahead of it. Waiting is an
        absolute deadline, so the wake-up always lands exactly on a grant.
        """
        interval = 1.0 / self.rate
        tolerance = (self.burst - 1) * interval
        while True:
            now = trio.current_time()
            tat = max(now, self._tat)
            allowed_at = tat - tolerance
            if allowed_at <= now:
                self._tat = tat + interval
                return
            await trio.sleep_until(allowed_at)
