"""The janitor (``/services/janitor``): runs the sweeper every ``retention.interval``, one node at a time.

A permanent child of ``/services``. Its loop waits ``retention.interval`` (the first run comes
sooner: :data:`FIRST_RUN_DELAY`), then takes the cluster-wide lease :data:`LEASE_RESOURCE` on the
bus (the same fenced lease sessions use; see :mod:`actors.bus._lease`) and runs
:meth:`~actors.lifecycle.Sweeper.run_once` inside the tenure's cancel scope. A node that finds
the lease held by another skips the run: with several nodes exactly one sweeps at a time, and
when it dies another takes over at the next interval after the lease lapses. The lease is
released after each run, so nodes take turns as their timers fall.

A run waits at the store gate through a store outage, and a bad row fails only itself (see
:mod:`._sweeper`); anything else that escapes a run is logged and the loop waits for the next
interval — a janitor never crashes over its data.

Messages: :class:`RunNow` (run at once, whatever the interval; reply: the
:class:`~actors.lifecycle.RunReport`, or :class:`Skipped` when another node holds the lease).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import attrs
import trio

from actors.bus import Bus, Lease
from supervisor import Actor

from ._sweeper import RunReport, Sweeper

_LOG = logging.getLogger("zapvisor.lifecycle")

LEASE_RESOURCE = "janitor"
"""The bus lease only the running janitor holds."""

LEASE_TTL = 30.0
"""Seconds the janitor's lease outlives a janitor that stopped renewing it (its node died)."""

FIRST_RUN_DELAY = 60.0
"""Seconds after start before the first run (or the interval, if shorter): a node restarted more
often than ``retention.interval`` still sweeps, and not in the middle of its restore."""


@attrs.frozen
class RunNow:
    """Run the janitor now (admin, tests); reply: a RunReport or Skipped."""


@attrs.frozen
class Skipped:
    """A run that did not happen: ``reason`` (another node holds the lease, the bus is unreachable)."""

    reason: str


class Janitor(Actor):
    """See the module docstring."""

    def __init__(self, sweeper: Sweeper, bus: Bus, node_id: str) -> None:
        self.sweeper = sweeper
        self.bus = bus
        self.node_id = node_id

    async def on_start(self) -> None:
        self.ctx.nursery.start_soon(self._every_interval)

    async def receive(self, message: Any) -> Any:
        match message:
            case RunNow():
                return await self.run()
        raise TypeError(f"janitor got an unknown message {message!r}")

    async def run(self) -> RunReport | Skipped:
        """One run under the lease, or Skipped."""
        async with trio.open_nursery() as nursery:
            lease = Lease(self.bus, LEASE_RESOURCE, self.node_id, LEASE_TTL)
            await nursery.start(lease.run)  # started after its first acquire attempt
            tenure = lease.tenure
            try:
                if tenure is None:
                    return Skipped(f"lease not taken: {lease.state.reason}")
                with tenure.cancel_scope:
                    return await self.sweeper.run_once()
                return Skipped(f"lease lost during the run: {tenure.reason}")
            except Exception as exc:  # the actor's boundary: a failed run waits for the next interval
                _LOG.exception("janitor run failed")
                return Skipped(f"run failed: {type(exc).__name__}: {exc}")
            finally:
                nursery.cancel_scope.cancel()  # the lease task releases the lease

    async def _every_interval(self) -> None:
        interval = self.sweeper.settings.interval
        await trio.sleep(min(FIRST_RUN_DELAY, interval))
        while True:
            reply = await self.ctx.ref.ask(RunNow(), timeout=math.inf)
            if isinstance(reply, Skipped):
                _LOG.info("janitor run skipped: %s", reply.reason)
            await trio.sleep(interval)
