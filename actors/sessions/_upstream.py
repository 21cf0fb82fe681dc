"""The gate: one breaker for "is this dependency reachable at all?", shared by a node's sessions.

The node has three: WhatsApp (the upstream gate, around each connect), the
store and the bus (dependency gates, around each write a session makes on its
messages' behalf: see :meth:`UpstreamGate.call`). The text below tells the
WhatsApp story; the store's is the same with "a write" for "a connect".

Per-session backoff and breakers answer "is *this* session broken?". When
WhatsApp (or the network to it) is down, every session fails for the same
reason, and per-session backoff turns the outage into thousands of timers that
keep firing and, once WhatsApp is back, into a long tail (each session waits out
its own grown delay, up to 30 s). The gate answers the shared question once:

    UP   --``threshold`` unreachable connects in a row (any sessions)-->  DOWN
    DOWN --after a backoff delay, ONE trial connect is let through-->     trial
    trial: reached WhatsApp → UP (every waiting session is released at once,
           through the connect limiter's ramp); unreachable → DOWN, longer delay

"Unreachable" means no answer from WhatsApp (dial failed, connection refused).
An answer with a reason code (401, 503...) proves WhatsApp is up: it counts as
reached, and the session's own policy handles the code.

Usage, around each connect::

    async with gate.attempt() as attempt:   # waits while DOWN
        ...connect...
        attempt.reached()  |  attempt.unreachable(cause)   # neither: no verdict

An unreachable verdict with a ``cause`` (the URL and the OS error, in words) is logged as a
WARNING, at most once per ``log_every`` seconds per gate (an outage fails every session's connect,
again and again): the line after a quiet interval counts the failures it left out.

or, around a call whose errors say by themselves whether the dependency was
unreachable (``unavailable``, e.g. the store's StoreUnavailable)::

    result = await gate.call(store_write, *args)   # retried at the gate while unavailable

A caller waiting at a gate spends nothing: no backoff of its own, no breaker
count, no crash and so no re-delivery. When the trial succeeds every waiter
goes at once (the trial spacing, ``backoff``, bounds how late after the
dependency's return that is).
"""

from __future__ import annotations

import enum
import logging
import math
import random
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

import attrs
import trio

from supervisor import Backoff, Jitter


_LOG = logging.getLogger("zapvisor.upstream")

LOG_EVERY = 30.0
"""Seconds between two reports of an unreachable dependency by one gate: enough to see an outage
begin and go on in the log, without a line per session per retry."""


class UpstreamMode(enum.StrEnum):
    UP = "up"
    DOWN = "down"


@attrs.define(eq=False)
class Attempt:
    """The verdict of one connect attempt, given by the caller."""

    verdict: str | None = None  # "reached" | "unreachable"
    cause: str | None = None  # why it was unreachable, for the log

    def reached(self) -> None:
        self.verdict = "reached"

    def unreachable(self, cause: str | None = None) -> None:
        """No answer from the dependency; ``cause`` (naming where and why) is logged, rate-limited."""
        self.verdict = "unreachable"
        self.cause = cause


@attrs.frozen
class UpstreamStatistics:
    name: str
    mode: UpstreamMode
    consecutive_unreachable: int
    trials: int
    reopens_at: float | None  # trio time of the next trial while DOWN
    waiting: int
    outages: int
    trial_running: bool = False  # a trial (connect, write) is under way while DOWN


@attrs.define(eq=False)
class UpstreamGate:
    """See the module docstring. ``backoff`` spaces the trial connects while DOWN.

    ``name`` says what the gate guards (status reasons, ``/readyz``).
    ``unavailable`` tells :meth:`call` which errors mean "unreachable".
    ``log_every``: seconds between two WARNINGs about unreachable attempts (trio time).
    """

    threshold: int = 3
    backoff: Backoff = attrs.field(factory=lambda: Backoff(min=1.0, max=30.0, jitter=Jitter.EQUAL))
    rng: random.Random = attrs.field(factory=random.Random)
    name: str = "WhatsApp"
    unavailable: Callable[[BaseException], bool] = lambda exc: False
    log_every: float = LOG_EVERY
    _mode: UpstreamMode = UpstreamMode.UP
    _unreachable: int = 0
    _attempt: int = 0
    _last_delay: float = 0.0
    _reopens_at: float = math.inf
    _trial_taken: bool = False
    _changed: trio.Event = attrs.field(factory=trio.Event)
    _waiting: int = 0
    _trials: int = 0
    _outages: int = 0
    _reported_at: float = -math.inf
    _unreported: int = 0

    def __attrs_post_init__(self) -> None:
        if not (isinstance(self.threshold, int) and self.threshold >= 1):
            raise ValueError(f"UpstreamGate.threshold must be an int >= 1, got {self.threshold!r}")

    @property
    def mode(self) -> UpstreamMode:
        return self._mode

    @property
    def reopens_at(self) -> float | None:
        return self._reopens_at if self._mode is UpstreamMode.DOWN else None

    @asynccontextmanager
    async def attempt(self) -> AsyncIterator[Attempt]:
        """Wait until a connect may be tried; record its verdict on exit.

        Cancellation while waiting takes nothing; a trial whose holder leaves
        without a verdict is handed to the next waiter.
        """
        trial = await self._admit()
        attempt = Attempt()
        try:
            yield attempt
        finally:
            if trial:
                self._trial_taken = False
            match attempt.verdict:
                case "reached":
                    self._up()
                case "unreachable":
                    self._record_unreachable(trial)
                    if attempt.cause is not None:
                        self._report(attempt.cause)
                case _:
                    self._notify()

    async def call(
        self, fn: Callable[..., Awaitable[Any]], *args: Any,
        on_unavailable: Callable[[BaseException], None] | None = None,
    ) -> Any:
        """``await fn(*args)`` through the gate; while it fails as ``unavailable``, wait and retry.

        Returns what ``fn`` returns; raises what it raises when that is not an
        unavailability. ``fn`` must be safe to run again (the store's writes are:
        unique keys make a re-insert a no-op). ``on_unavailable`` hears each
        unavailability (to log it, or say why the caller waits). Cancellation
        while waiting or calling takes nothing away from the gate.
        """
        while True:
            async with self.attempt() as attempt:
                try:
                    result = await fn(*args)
                except Exception as exc:
                    if not self.unavailable(exc):
                        raise
                    attempt.unreachable()
                    if on_unavailable is not None:
                        on_unavailable(exc)
                    continue
                attempt.reached()
                return result

    def statistics(self) -> UpstreamStatistics:
        return UpstreamStatistics(
            self.name,
            self._mode, self._unreachable, self._trials, self.reopens_at, self._waiting, self._outages,
            self._trial_taken,
        )

    async def _admit(self) -> bool:
        """Return when admitted; True when admitted as the trial of a DOWN gate."""
        await trio.lowlevel.checkpoint_if_cancelled()
        self._waiting += 1
        try:
            while True:
                if self._mode is UpstreamMode.UP:
                    return False
                if not self._trial_taken and trio.current_time() >= self._reopens_at:
                    self._trial_taken = True
                    self._trials += 1
                    return True
                wake_at = math.inf if self._trial_taken else self._reopens_at
                with trio.move_on_at(wake_at):
                    await self._changed.wait()
        finally:
            self._waiting -= 1

    def _record_unreachable(self, trial: bool) -> None:
        if self._mode is UpstreamMode.UP:
            self._unreachable += 1
            if self._unreachable >= self.threshold:
                self._outages += 1
                self._down()
        elif trial:
            self._down()
        # An attempt admitted before the gate went down adds nothing new: ignore it.

    def _report(self, cause: str) -> None:
        """Log an unreachable attempt's cause, unless this gate logged one less than ``log_every`` ago."""
        now = trio.current_time()
        if now - self._reported_at < self.log_every:
            self._unreported += 1
            return
        left_out = f" ({self._unreported} more unreachable attempts since the last report)" if self._unreported else ""
        _LOG.warning("%s unreachable: %s%s", self.name, cause, left_out,
                     extra={"gate": self.name, "mode": str(self._mode)})
        self._reported_at, self._unreported = now, 0

    def _down(self) -> None:
        self._mode = UpstreamMode.DOWN
        delay = self.backoff.delay(self._attempt, self._last_delay, self.rng)
        self._attempt += 1
        self._last_delay = delay
        self._reopens_at = trio.current_time() + delay
        self._notify()

    def _up(self) -> None:
        was_down = self._mode is UpstreamMode.DOWN
        self._mode, self._unreachable, self._attempt, self._reopens_at = UpstreamMode.UP, 0, 0, math.inf
        if was_down:
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
