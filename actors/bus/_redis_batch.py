"""Commands that share round trips: concurrent calls go to Redis as one pipeline.

A node that stops 500 sessions releases 500 leases at once; one that takes them over acquires
as many (and looks up their holders first), and 1,000 running sessions renew 200 leases a
second. One round trip each is 1,000 commands bridged one by one into asyncio for a burst
(0.6 s of a quiet core for 1,000 acquires, and redis-py's pool refused 901 of them:
MaxConnectionsError); one pipeline of them is a few hundred microseconds on the server and
0.15 s here. So the Redis bus sends every command through a :class:`Batcher` (the same idea
as ioredis's auto-pipelining):

* a call queues and waits for its own reply (bounded by ``op_timeout``, like any operation);
* up to :data:`PIPELINES_IN_FLIGHT` pipelines are in flight at once, each carrying up to
  :data:`MAX_BATCH` calls that queued while the previous ones were out. A call that finds a
  pipeline free and nobody queued sends itself at once, from its own task (a pipeline of one:
  nothing lingers for company, and no hand-off to the batcher's task costs a scheduling round);
  in a burst, calls queue behind the pipelines in flight and leave together.

The command connections in use are therefore bounded by construction (``in_flight``, plus
the health probe's): a burst queues here, in trio, and never exhausts redis-py's pool. Each
command (a lock script too) is atomic on the server whatever shares its pipeline (a pipeline is
not a transaction: every call succeeds or fails on its own). A pipeline that fails as a whole (Redis
gone, no answer in time) fails every call in it with :class:`BusUnavailable`, exactly what each
would have got alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import trio

from ._errors import BusError, BusUnavailable, BusValueError

#: Calls per pipeline at most: one reply of a few hundred kilobytes at worst, parsed in one go.
MAX_BATCH = 256

#: Pipelines in flight at once: calls queue (and so batch) only while all of them are out. Not
#: fewer: a call that finds every pipeline out waits for one to come back before its own goes,
#: twice the round trip when a starved Redis or node makes round trips long; a burst still
#: leaves in a few pipelines (the calls queued by the time the batcher runs go together).
PIPELINES_IN_FLIGHT = 16


@attrs.define(eq=False)
class Command:
    """One queued command (a redis-py pipeline method and its arguments) and, once its
    pipeline is back, its reply or error."""

    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    refused: str = ""  # why Redis would refuse it, in the caller's terms (else a generic BusError)
    script: str = ""  # the lock script an EVALSHA runs (loaded when Redis lacks it)
    done: trio.Event = attrs.field(factory=trio.Event)
    abandoned: bool = False  # the caller gave up (timed out, cancelled): not sent if still queued
    reply: Any = None
    error: BusError | None = None


Send = Callable[[Sequence[Command]], Awaitable[list[Any]]]
"""Runs the calls as one pipeline, bounded in time; returns one reply per call, in order (an
exception object for a call Redis refused). Raises BusError (BusUnavailable) for the whole batch."""


@attrs.define(eq=False)
class Batcher:
    """Queue commands and send them in pipelines (see the module docstring).

    ``run()`` lives in the Redis bus's nursery; ``call()`` fails with BusUnavailable while it
    does not run.
    """

    send: Send
    op_timeout: float
    max_batch: int = MAX_BATCH
    in_flight: int = PIPELINES_IN_FLIGHT
    pipelines: int = attrs.field(init=False, default=0)  # sent so far (statistics and tests)
    _queue: deque[Command] = attrs.field(init=False, factory=deque)
    _queued: trio.Event = attrs.field(init=False, factory=trio.Event)
    _running: bool = attrs.field(init=False, default=False)
    _slots: trio.Semaphore = attrs.field(init=False, default=attrs.Factory(
        lambda self: trio.Semaphore(self.in_flight), takes_self=True))

    async def call(self, command: Command) -> Any:
        """The command's reply, once its pipeline is back.

        Raises:
            BusUnavailable: the batcher is not running, its pipeline failed, or no reply
                within ``op_timeout`` (the call may or may not have run).
            BusValueError: Redis refused this call and ``command.refused`` says why.
            BusError: Redis refused this call otherwise.
        """
        if not self._running:
            raise BusUnavailable("the Redis bus is not running")
        if not self._queue:
            try:
                self._slots.acquire_nowait()
            except trio.WouldBlock:
                pass
            else:  # a pipeline free and nobody waiting: go now, from this task (no hand-off to the batcher)
                await self._flush([command])
                return self._outcome(command)
        self._queue.append(command)
        self._queued.set()
        try:
            with trio.move_on_after(self.op_timeout):
                await command.done.wait()
        finally:
            command.abandoned = not command.done.is_set()
        if command.abandoned:
            raise BusUnavailable(f"Redis unavailable (no answer within {self.op_timeout}s)")
        return self._outcome(command)

    @staticmethod
    def _outcome(command: Command) -> Any:
        if command.error is not None:  # a fresh exception per caller: one may be shared by a batch
            raise type(command.error)(*command.error.args)
        return command.reply

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Send queued calls, up to ``in_flight`` pipelines at once, until cancelled; then fail
        whatever is still queued. Reports started at once."""
        self._running = True
        task_status.started()
        try:
            async with trio.open_nursery() as nursery:
                while True:
                    await self._slots.acquire()
                    while not (batch := self._take()):
                        await self._queued.wait()
                        self._queued = trio.Event()
                    nursery.start_soon(self._flush, batch)
        finally:
            self._running = False
            while self._queue:
                self._settle(self._queue.popleft(), error=BusUnavailable("the Redis bus stopped"))

    def _take(self) -> list[Command]:
        batch: list[Command] = []
        while self._queue and len(batch) < self.max_batch:
            pending = self._queue.popleft()
            if not pending.abandoned:
                batch.append(pending)
        return batch

    async def _flush(self, batch: list[Command]) -> None:
        """Send ``batch`` (holding one of ``_slots``, released here) and settle every command in it."""
        self.pipelines += 1
        try:
            replies = await self.send(batch)
        except BusError as exc:
            for pending in batch:
                self._settle(pending, error=exc)
        else:
            for pending, reply in zip(batch, replies, strict=True):
                if isinstance(reply, Exception):
                    refused = BusValueError(pending.refused) if pending.refused else None
                    self._settle(pending, error=refused or BusError(f"Redis refused the command: {reply}"))
                else:
                    self._settle(pending, reply=reply)
        finally:
            self._slots.release()
            for pending in batch:
                if not pending.done.is_set():  # cancelled mid-send (its caller, or the bus stopping)
                    self._settle(pending, error=BusUnavailable("the Redis bus stopped"))

    @staticmethod
    def _settle(pending: Command, *, reply: Any = None, error: BusError | None = None) -> None:
        pending.reply, pending.error = reply, error
        pending.done.set()
