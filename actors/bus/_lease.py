"""Leases: one node at a time owns a resource (a WhatsApp session), with fast, safe hand-over.

A lease is a fenced lock (owner = node id) renewed in the background. The timeline of a tenure,
with ``t`` the trio time just before the last successful acquire/renew request was *sent*:

    t ............ t + ttl/3 ............ t + 2·ttl/3 ............ t + ttl
    (renew sent)   next renewal sent      valid_until: the holder   the server can expire the
                                          has stopped by now        key; another node may take it

* Renewals are sent every ``ttl/3``. Each must be confirmed before ``valid_until = t + 2·ttl/3``
  (computed from the send time, so network and server delays only shorten our own window).
* The moment a renewal fails (bus unavailable, lock gone or held by another node) or is not
  confirmed by ``valid_until`` (a confirmation read after it counts as none), the tenure ends: ``tenure.lost`` is set and
  ``tenure.cancel_scope`` is cancelled. Failure detection therefore happens at the latest at
  ``t + 2·ttl/3``, strictly before the earliest expiry ``t + ttl``.
* **Margin: ttl/3** between the holder's last permitted moment and the earliest moment another
  node can acquire. It absorbs clock-rate differences between nodes, the delay until the holder's
  code reaches its next checkpoint after the cancellation, and in-flight I/O. The cancel scope
  also carries ``valid_until`` as its deadline, so the holder stops in time even if this lease's
  own task were starved. For a process paused longer than that (SIGSTOP, swap), fencing is the
  last line: its token is lower than the next holder's and the store refuses its writes.

After losing the lease the node keeps trying to acquire it every ``retry_interval`` (default
``ttl/3``): it takes over when the holder is gone, and re-acquires after a Redis outage.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import attrs
import trio

from ._codec import check_name, check_ttl
from ._errors import BusError, BusUnavailable, LockBusy
from ._protocol import Bus
from ._values import LeasePhase, LeaseState, LeaseStatistics, LockToken

#: Renewal period as a fraction of the TTL (see the module docstring for the timeline).
RENEW_FRACTION = 1 / 3

#: Seconds between attempts to release a lock on stop (within ttl/3 in all).
RELEASE_RETRY = 0.1

#: Fraction of the TTL, counted from the last confirmed request's send time, during which the
#: holder may use the resource. 1 - 2/3 = 1/3 of the TTL is the safety margin.
VALID_FRACTION = 2 / 3


@attrs.define(eq=False)
class Tenure:
    """One uninterrupted period of holding a lease.

    Use the resource only inside ``with tenure.cancel_scope:`` (enter it at most once): the lease
    cancels it the moment the tenure ends, and its deadline tracks ``valid_until``. ``lost`` is
    set when the tenure ends; ``reason`` then says why. ``token`` is the fencing token to pass to
    every store write made on behalf of this tenure.
    """

    lock: LockToken
    valid_until: float
    cancel_scope: trio.CancelScope
    lost: trio.Event = attrs.field(factory=trio.Event)
    reason: str = ""

    @property
    def token(self) -> int:
        return self.lock.token


@attrs.define(eq=False)
class Lease:
    """Hold ``resource`` for ``node_id`` on ``bus``; ``run()`` acquires, renews and re-acquires.

    Read ``state`` at any time, ``await wait_held()`` for the next tenure, or iterate ``watch()``
    for phase changes. ``run()`` reports started after the first acquire attempt; on cancellation
    it ends the tenure and releases the lock (best effort, bounded by ttl/3).
    """

    bus: Bus
    resource: str = attrs.field(validator=lambda _i, _a, v: check_name("resource", v))
    node_id: str = attrs.field(validator=lambda _i, _a, v: check_name("node_id", v))
    ttl: float = attrs.field(converter=lambda v: check_ttl("ttl", v))
    retry_interval: float = attrs.field(
        default=attrs.Factory(lambda self: self.ttl * RENEW_FRACTION, takes_self=True),
        converter=lambda v: check_ttl("retry_interval", v),
    )
    _state: LeaseState = attrs.field(init=False)
    _changed: trio.Event = attrs.field(init=False, factory=trio.Event)
    _retry: trio.Event = attrs.field(init=False, factory=trio.Event)
    _tenure: Tenure | None = attrs.field(init=False, default=None)
    _tenures: int = attrs.field(init=False, default=0)
    _renewals: int = attrs.field(init=False, default=0)
    _losses: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        self._state = LeaseState(self.resource, self.node_id, LeasePhase.STANDBY, -math.inf, "not started")

    @property
    def state(self) -> LeaseState:
        """The latest snapshot."""
        return self._state

    def statistics(self) -> LeaseStatistics:
        """A frozen snapshot: the state and the tenure/renewal/loss counters."""
        return LeaseStatistics(self._state, self._tenures, self._renewals, self._losses)

    @property
    def tenure(self) -> Tenure | None:
        """The current tenure, None unless HELD."""
        return self._tenure

    def retry_now(self) -> None:
        """Cut the wait before the next acquire attempt short (the bus is known to be back).

        No effect while the lease is held; a call between attempts makes the next one at once.
        """
        self._retry.set()

    async def wait_held(self) -> Tenure:
        """Wait until this node holds the lease; return the tenure (at once if already held).

        Raises:
            BusError: the lease was stopped.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        while self._tenure is None:
            if self._state.phase is LeasePhase.STOPPED:
                raise BusError(f"lease on {self.resource!r} is stopped")
            await self._changed.wait()
        return self._tenure

    async def watch(self) -> AsyncIterator[LeaseState]:
        """Yield the current state, then each phase change (latest only if the reader is slow);
        ends after STOPPED."""
        seen: tuple[object, ...] | None = None
        while True:
            state = self._state
            if _identity(state) != seen:
                seen = _identity(state)
                yield state
            if state.phase is LeasePhase.STOPPED:
                return
            if _identity(self._state) == seen:
                await self._changed.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Acquire, renew every ttl/3, step down on failure, retry every ``retry_interval``. Never
        returns; cancel it to stop (the lease is then released)."""
        started = False
        try:
            while True:
                tenure = await self._attempt()
                if not started:
                    task_status.started()
                    started = True
                if tenure is not None:
                    await self._hold(tenure)
                with trio.move_on_after(self.retry_interval):
                    await self._retry.wait()
                self._retry = trio.Event()
        finally:
            tenure = self._tenure
            if tenure is None:
                self._set(LeasePhase.STOPPED, "the lease task stopped")
            else:
                self._end(tenure, LeasePhase.STOPPED, "the lease task stopped")
                with trio.CancelScope(shield=True), trio.move_on_after(self.ttl * RENEW_FRACTION):
                    # retried: when a node stops hundreds of sessions at once, a release that
                    # times out in the burst would leave the next owner waiting for the TTL
                    while not await self._release_quietly(tenure.lock):
                        await trio.sleep(RELEASE_RETRY)

    async def _attempt(self) -> Tenure | None:
        """One acquire attempt; returns the new tenure, or None (state says why)."""
        try:
            lock = await self.bus.acquire(self.resource, self.ttl, owner=self.node_id)
        except LockBusy as exc:
            self._set(LeasePhase.STANDBY, f"held by {exc.holder!r}", holder=exc.holder)
            return None
        except BusUnavailable as exc:
            self._set(LeasePhase.UNAVAILABLE, str(exc))
            return None
        valid_until = lock.acquired_at + self.ttl * VALID_FRACTION
        if trio.current_time() >= valid_until:  # the acquire itself took too long to be safe
            await self._release_quietly(lock)
            self._set(LeasePhase.STANDBY, "acquired too late to be safe; retrying")
            return None
        tenure = Tenure(lock, valid_until, trio.CancelScope(deadline=valid_until))
        self._tenure = tenure
        self._tenures += 1
        self._set(LeasePhase.HELD, "acquired", token=lock.token, holder=self.node_id, valid_until=valid_until)
        return tenure

    async def _hold(self, tenure: Tenure) -> None:
        """Renew until a renewal fails or misses ``valid_until``; then end the tenure and return."""
        sent_at = tenure.lock.acquired_at
        while True:
            await trio.sleep_until(sent_at + self.ttl * RENEW_FRACTION)
            sent_at = trio.current_time()
            phase, reason, holder = LeasePhase.UNAVAILABLE, "renewal not confirmed before valid_until", None
            with trio.move_on_at(tenure.valid_until):
                try:
                    if await self.bus.renew(tenure.lock):
                        if not tenure.cancel_scope.cancel_called:
                            tenure.valid_until = sent_at + self.ttl * VALID_FRACTION
                            tenure.cancel_scope.deadline = tenure.valid_until
                            self._state = attrs.evolve(self._state, valid_until=tenure.valid_until)
                            self._renewals += 1
                            continue
                        # Confirmed, but after valid_until (a starved process): the holder's scope
                        # has fired and it stopped using the resource. The tenure ends here, so that
                        # the holder never finds a spent scope in a tenure that looks alive.
                        reason = "renewal confirmed after valid_until"
                    else:
                        holder = await self.bus.lock_owner(self.resource)
                        phase = LeasePhase.STANDBY
                        reason = "lock expired" if holder is None else f"held by {holder!r}"
                except BusUnavailable as exc:
                    reason = f"renewal failed: {exc}"
            self._losses += 1
            self._end(tenure, phase, reason, holder=holder)
            with trio.move_on_after(self.ttl * RENEW_FRACTION):
                await self._release_quietly(tenure.lock)
            return

    def _end(self, tenure: Tenure, phase: LeasePhase, reason: str, holder: str | None = None) -> None:
        tenure.reason = reason
        tenure.cancel_scope.cancel()
        tenure.lost.set()
        self._tenure = None
        self._set(phase, reason, holder=holder)

    async def _release_quietly(self, lock: LockToken) -> bool:
        """Release a lock we are giving up, so another node need not wait for the TTL; False
        when the bus did not answer (the lock then expires by itself, or a retry releases it).

        Failures are expected here (Redis down, lock already gone) and change nothing.
        """
        try:
            await self.bus.release(lock)
        except BusUnavailable:
            return False
        return True

    def _set(
        self,
        phase: LeasePhase,
        reason: str,
        *,
        token: int | None = None,
        holder: str | None = None,
        valid_until: float | None = None,
    ) -> None:
        old = self._state
        since = old.since if old.phase is phase else trio.current_time()
        self._state = LeaseState(
            self.resource, self.node_id, phase, since, reason, token, holder, valid_until
        )
        if _identity(old) != _identity(self._state):
            self._changed.set()
            self._changed = trio.Event()


def _identity(state: LeaseState) -> tuple[object, ...]:
    """What makes a state change worth waking watchers: phase, tenure token, known holder
    (renewals only move ``valid_until``; retries in the same phase only refresh ``reason``)."""
    return (state.phase, state.token, state.holder)
