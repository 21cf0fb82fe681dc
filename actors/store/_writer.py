"""Group commit: many callers' writes, one transaction, each caller answered after COMMIT.

Callers :meth:`GroupCommitter.submit` an op and wait on their own :class:`_Pending`. The writer
loop takes the first waiting op, drains whatever else is already queued (up to ``max_batch``;
optionally lingering ``linger`` seconds for more), and runs them in one transaction. Batches
therefore grow by themselves when the database is slow — ops pile up while the previous batch
commits — and stay single-op with no added delay when it is idle (``linger`` = 0).

Failure rules:
- An op refused on purpose (:class:`StoreError` from its own checks: FencedOut, Conflict,
  NotFound) fails only its caller; its batch commits for the others (ops never write before
  their checks, see :mod:`._ops_core`).
- Any other error aborts the transaction. The batch is then retried one op per transaction, so
  exactly the guilty op fails (:class:`WriteFailed`) and the innocent ones commit. Decided for
  that rather than failing the whole batch: with dozens of callers per batch, one malformed row
  must not become dozens of errors.
- Connection lost (PostgreSQL): the writer reconnects with backoff, then, if the COMMIT had been
  sent, asks the server whether it committed; a committed batch is acknowledged, otherwise the
  batch is run again. Ops whose callers gave up meanwhile are dropped from the retry.

Deadlines and cancellation (caller side): a caller waits at most its ``timeout``; then it gets
:class:`StoreUnavailable`. If its op had not been sent yet (still queued, or waiting for a
retry after a rolled-back attempt) it is withdrawn and will never be written. If it was inside a
transaction whose outcome is still open, ``outcome_unknown`` is True. Cancelling a caller
withdraws its op the same way. Most writes are idempotent (unique keys, conditional updates),
so "unknown" means "retry". The exceptions: an audit line or a webhook event may then be
recorded twice, and a claim may have marked jobs ``running`` that nobody works on —
``Store.recover_running(queue, stale_after=...)`` puts those back.

Mechanics, chosen for a low per-write cost (a write is the hot path of every flow): a caller
appends to a deque and parks (``wait_task_rescheduled``); the writer reschedules it with the
outcome. Deadlines are enforced by one sweeper task instead of a cancel scope per write; it sleeps
until the soonest outstanding deadline (a submit with an earlier one moves its alarm forward), so
it costs nothing while writes finish in time — no polling — and a timeout fires on time.
"""

from __future__ import annotations

import collections
import enum
import functools
import math
from collections.abc import Callable
from typing import Any

import attrs
import outcome
import trio

from ._backend import Disconnected
from ._errors import StoreClosed, StoreError, StoreUnavailable, WriteFailed
from ._ops_core import InsertMessages, insert_messages

#: How many recent op latencies feed the percentiles in statistics(): enough for a stable p99,
#: small enough to sort on every statistics() call.
_LATENCY_WINDOW = 2048


class _State(enum.Enum):
    QUEUED = "queued"  # waiting for the writer: withdrawing it is clean
    IN_FLIGHT = "in_flight"  # inside a running transaction
    RETRY_WAIT = "retry_wait"  # its transaction surely rolled back; waiting to run again
    IN_DOUBT = "in_doubt"  # COMMIT sent, connection lost, outcome being resolved
    DONE = "done"
    ABANDONED = "abandoned"  # the caller gave up (deadline or cancellation); the writer skips it


class _Pending:
    """One submitted op and the parked task waiting for it (plain slots: one per write)."""

    __slots__ = ("op", "enqueued_at", "deadline", "state", "task")

    def __init__(self, op: Any, now: float, deadline: float) -> None:
        self.op, self.enqueued_at, self.deadline = op, now, deadline
        self.state = _State.QUEUED
        self.task = trio.lowlevel.current_task()


@attrs.frozen
class StoreStatistics:
    """A snapshot of the store's writer.

    ``state``: starting | connected | disconnected (the connection dropped while idle: the next
    write reconnects) | reconnecting | stopped — what ``/readyz`` reads. ``batches``: transactions
    committed; ``ops``: writes acknowledged; ``failed_ops``: writes answered with an error;
    ``fallbacks``: batches re-run one op at a time after an error; ``reconnects``: connection
    losses survived; ``queued``: ops waiting for the writer; ``last_batch_*``: the newest commit;
    ``latency_p50/p99``: seconds from submit to acknowledgement over the recent ops.
    """

    state: str
    batches: int
    ops: int
    failed_ops: int
    fallbacks: int
    reconnects: int
    queued: int
    last_batch_size: int
    last_batch_seconds: float
    latency_p50: float
    latency_p99: float


async def apply_batch(tx: Any, ops: list[Any], now: float) -> list[tuple[bool, Any]]:
    """Run ``ops`` in order inside one transaction; consecutive message inserts go together.

    Returns one ``(ok, value_or_error)`` per op. Domain refusals (:class:`StoreError`) are
    returned, anything else propagates and aborts the transaction.
    """
    outcomes: list[tuple[bool, Any]] = []
    i = 0
    while i < len(ops):
        if isinstance(ops[i], InsertMessages):
            j = i
            while j < len(ops) and isinstance(ops[j], InsertMessages):
                j += 1
            outcomes.extend((True, r) for r in await insert_messages(tx, ops[i:j], now))
            i = j
            continue
        try:
            outcomes.append((True, await ops[i].apply(tx, now)))
        except StoreError as refused:
            outcomes.append((False, refused))
        i += 1
    return outcomes


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, math.ceil(fraction * len(sorted_values)) - 1)]


@attrs.define(eq=False)
class GroupCommitter:
    """The writer loop and the submission side (see the module docs).

    ``clock`` gives wall-clock seconds for the rows' timestamps (one reading per transaction).
    ``queue_capacity`` bounds the ops waiting for the writer: beyond it ``submit`` waits (within
    the caller's deadline), which is the backpressure that keeps a stalled database from
    turning into unbounded memory.
    """

    backend: Any
    clock: Callable[[], float]
    max_batch: int
    linger: float
    queue_capacity: int
    _queue: collections.deque = attrs.Factory(collections.deque)
    _outstanding: dict = attrs.Factory(dict)  # every unanswered _Pending, in submit order
    _work: trio.lowlevel.ParkingLot = attrs.Factory(trio.lowlevel.ParkingLot)  # the idle writer
    _room: trio.lowlevel.ParkingLot = attrs.Factory(trio.lowlevel.ParkingLot)  # callers facing a full queue
    _alarm: trio.CancelScope = attrs.Factory(trio.CancelScope)  # wakes the sweeper at the soonest deadline
    _alarm_at: float = math.inf  # _alarm's deadline, kept here: a float compare per write, not a property
    #: trio's clock, read directly: one call per read where ``trio.current_time()`` makes three (issue
    #: 18: a write read it once, the bench's writers twice more); run() binds the run's clock
    #: (MockClock in tests) before it takes any write.
    _now: Callable[[], float] = trio.current_time
    _state: str = "starting"
    _latencies: collections.deque = attrs.field(factory=lambda: collections.deque(maxlen=_LATENCY_WINDOW))
    _counts: collections.Counter = attrs.Factory(collections.Counter)
    _last_batch: tuple[int, float] = (0, 0.0)

    async def submit(self, op: Any, timeout: float) -> Any:
        """Queue ``op`` and wait until it is committed; return its result or raise its error.

        Raises:
            StoreUnavailable: not confirmed within ``timeout`` seconds (see module docs).
            StoreClosed: the writer is not running.
            StoreError: the op's own refusal, or WriteFailed.
        """
        if self._state == "stopped":
            raise StoreClosed("the store is stopped")
        now = self._now()
        pending = _Pending(op, now, now + timeout)
        if len(self._queue) >= self.queue_capacity:
            await self._wait_for_room(pending, timeout)
        self._queue.append(pending)
        self._outstanding[pending] = None
        if self._work:  # the writer is parked, idle
            self._work.unpark()
        if pending.deadline < self._alarm_at:
            self._alarm.deadline = self._alarm_at = pending.deadline

        def abort(_: Any) -> trio.lowlevel.Abort:  # the caller was cancelled: withdraw the op
            self._abandon(pending)
            return trio.lowlevel.Abort.SUCCEEDED

        return await trio.lowlevel.wait_task_rescheduled(abort)

    async def _wait_for_room(self, pending: _Pending, timeout: float) -> None:
        with trio.move_on_at(pending.deadline):
            while len(self._queue) >= self.queue_capacity and self._state != "stopped":
                await self._room.park()
        if self._state == "stopped":
            raise StoreClosed("the store stopped before taking this write")
        if len(self._queue) >= self.queue_capacity:
            self._counts["failed_ops"] += 1
            raise StoreUnavailable(
                f"{type(pending.op).__name__} not queued within {timeout} s: the writer is "
                f"{self._state} and {len(self._queue)} writes wait; it was not written"
            )

    def _abandon(self, pending: _Pending) -> bool:
        """Mark a caller's op as given up; return whether its outcome is unknown."""
        unknown = pending.state in (_State.IN_FLIGHT, _State.IN_DOUBT)
        pending.state = _State.ABANDONED
        del self._outstanding[pending]
        self._counts["failed_ops"] += 1
        return unknown

    def _finish(self, pending: _Pending, result: outcome.Outcome) -> None:
        if pending.state is _State.ABANDONED:
            return
        pending.state = _State.DONE
        del self._outstanding[pending]
        trio.lowlevel.reschedule(pending.task, result)

    async def _sweep(self) -> None:
        """Answer callers whose deadline passed with StoreUnavailable (see module docs)."""
        while True:
            soonest = min((p.deadline for p in self._outstanding), default=math.inf)
            self._alarm_at = soonest
            with trio.CancelScope(deadline=soonest) as self._alarm:
                await trio.sleep_forever()
            now = self._now()
            for pending in [p for p in self._outstanding if p.deadline <= now]:
                unknown = self._abandon(pending)
                waited = now - pending.enqueued_at
                trio.lowlevel.reschedule(pending.task, outcome.Error(StoreUnavailable(
                    f"{type(pending.op).__name__} not confirmed within {waited:.3g} s (store {self._state}); "
                    + ("it may or may not have been committed" if unknown else "it was not written"),
                    outcome_unknown=unknown,
                )))

    async def run(self) -> None:
        """The writer loop; runs until cancelled. On exit every waiting caller is answered."""
        self._state = "connected"
        self._now = trio.lowlevel.current_clock().current_time
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._sweep)
                while True:
                    while not self._queue:
                        await self._work.park()
                    if self.linger > 0 and len(self._queue) < self.max_batch:
                        await trio.sleep(self.linger)
                    batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
                    self._room.unpark(count=len(batch))
                    await self._commit(batch)
        finally:
            self._stop()

    def _stop(self) -> None:
        self._state = "stopped"
        for pending in list(self._outstanding):
            if pending.state is _State.QUEUED:
                error: StoreError = StoreClosed("the store stopped before taking this write")
            else:
                unknown = pending.state is not _State.RETRY_WAIT
                error = StoreUnavailable("the store stopped", outcome_unknown=unknown)
            self._finish(pending, outcome.Error(error))
        self._queue.clear()
        self._room.unpark_all()

    async def _commit(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if p.state is _State.QUEUED]
        for pending in live:
            pending.state = _State.IN_FLIGHT
        while live:
            started = self._now()
            try:
                # shielded: a started batch always finishes (commits or fails) so its callers get
                # a definite answer even at shutdown; the PostgreSQL backend bounds it with a deadline
                with trio.CancelScope(shield=True):
                    outcomes = await self.backend.run_batch(
                        functools.partial(apply_batch, ops=[p.op for p in live], now=self.clock())
                    )
            except Disconnected as lost:
                live = await self._recover(live, lost, started)
                continue
            except Exception as exc:
                await self._fail_or_split(live, exc)
                return
            self._deliver(live, outcomes, started)
            return

    async def _fail_or_split(self, live: list[_Pending], exc: Exception) -> None:
        if len(live) == 1:
            pending = live[0]
            self._counts["failed_ops"] += 1
            failure = WriteFailed(f"{type(pending.op).__name__} rejected: {type(exc).__name__}: {exc}")
            failure.__cause__ = exc
            self._finish(pending, outcome.Error(failure))
            return
        self._counts["fallbacks"] += 1
        for pending in live:
            pending.state = _State.QUEUED  # rolled back: withdrawing it now is clean
        for pending in live:
            await self._commit([pending])

    async def _recover(self, live: list[_Pending], lost: Disconnected, started: float) -> list[_Pending]:
        """Reconnect; resolve an in-doubt COMMIT; return the ops that must run again."""
        self._state = "reconnecting"
        self._counts["reconnects"] += 1
        for pending in live:
            if pending.state is _State.IN_FLIGHT:
                pending.state = _State.IN_DOUBT if lost.commit_sent else _State.RETRY_WAIT
        while True:
            await self.backend.reconnect()
            if not lost.commit_sent:
                break
            try:
                committed = await self.backend.resolve(lost.token)
            except Disconnected:
                continue
            if committed:
                self._state = "connected"
                self._deliver(live, lost.result, started)
                return []
            break
        self._state = "connected"
        again = [p for p in live if p.state in (_State.IN_DOUBT, _State.RETRY_WAIT)]
        for pending in again:
            pending.state = _State.IN_FLIGHT
        return again

    def _deliver(self, live: list[_Pending], outcomes: list[tuple[bool, Any]], started: float) -> None:
        now = self._now()
        self._counts["batches"] += 1
        self._last_batch = (len(live), now - started)
        answered = refused = 0  # counted once per batch: this loop runs for every write
        for pending, (ok, value) in zip(live, outcomes, strict=True):
            if pending.state is _State.ABANDONED:
                continue
            self._latencies.append(now - pending.enqueued_at)
            if ok:
                answered += 1
                self._finish(pending, outcome.Value(value))
            else:
                refused += 1
                self._finish(pending, outcome.Error(value))
        self._counts["ops"] += answered
        self._counts["failed_ops"] += refused

    def statistics(self) -> StoreStatistics:
        """A frozen snapshot of the writer's counters and latencies."""
        latencies = sorted(self._latencies)
        state = self._state
        if state == "connected" and not self.backend.healthy:
            state = "disconnected"
        return StoreStatistics(
            state=state,
            batches=self._counts["batches"],
            ops=self._counts["ops"],
            failed_ops=self._counts["failed_ops"],
            fallbacks=self._counts["fallbacks"],
            reconnects=self._counts["reconnects"],
            queued=len(self._queue),
            last_batch_size=self._last_batch[0],
            last_batch_seconds=self._last_batch[1],
            latency_p50=_percentile(latencies, 0.50),
            latency_p99=_percentile(latencies, 0.99),
        )
