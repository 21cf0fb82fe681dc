"""The :class:`TicketDirectory`: reach a ticket's actor, starting it on demand.

Ticket actors are temporary children of ``/tenants/<tenant>/tickets`` (a crash or a
passivation removes them; the next message starts a fresh one, rebuilt from the store).
:meth:`TicketDirectory.ask` hides that life cycle: when the actor stopped between the lookup
and the delivery (it was passivating), the message goes to a new incarnation. Every ticket
message is safe to deliver again: appends are idempotent by WhatsApp id, agent operations
are conditional updates in the store.

Host it with ``nursery.start(directory.run, system)`` (the node does, as ``/services/tickets``).
"""

from __future__ import annotations

from typing import Any

import attrs
import trio

from actors.sessions import tenant_spec
from supervisor import (
    ActorRef,
    ActorStopped,
    ActorSystem,
    AlreadyPresent,
    AlreadyStarted,
    ChildNotFound,
    ChildSpec,
    ChildState,
    Restart,
    RestartLimiter,
    StartFailed,
)

from ._errors import TicketUnavailable
from ._messages import TicketRefused
from ._ticket import TicketActor, TicketDeps

DELIVERY_TRIES = 5
"""Incarnations tried for one message: a passivation race costs one; more means something is wrong."""

TICKET_MAILBOX = 256
"""A ticket's mailbox: one conversation never has more than a burst of this many messages queued."""

TICKET_SHUTDOWN = 5.0
"""Grace for a ticket to finish the message in hand (one store write) on shutdown."""

ASK_TIMEOUT = 30.0
"""Seconds a ticket message may take: queueing behind the ticket's other messages plus the store's
own write timeout (10 s) with room to spare."""


@attrs.define(eq=False)
class TicketDirectory:
    """Starts ticket actors on demand and delivers messages to them (see the module docstring)."""

    deps: TicketDeps
    limiter: RestartLimiter
    system: ActorSystem | None = None
    _ready: trio.Event = attrs.field(factory=trio.Event)

    async def run(self, system: ActorSystem, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve for as long as the hosting actor lives."""
        self.system = system
        self._ready.set()
        task_status.started()
        await trio.sleep_forever()

    async def ask(self, tenant_id: str, ticket_id: int, message: Any, *, timeout: float = ASK_TIMEOUT) -> Any:
        """Deliver ``message`` to the ticket's actor (started if needed) and return its reply.

        Returns TicketRefused(not_found) for a ticket the store does not know.
        Raises:
            TicketUnavailable: no incarnation took the message within DELIVERY_TRIES.
            supervisor.ActorFailed: the handler crashed (the store was unavailable): the caller
                must not assume anything was done.
        """
        await self._ready.wait()
        for _ in range(DELIVERY_TRIES):
            ref = await self.ref(tenant_id, ticket_id)
            if ref is None:
                return TicketRefused("not_found", f"ticket {ticket_id} does not exist")
            try:
                return await ref.ask(message, timeout)
            except ActorStopped:
                continue  # it passivated or crashed just now: the next incarnation takes it
        raise TicketUnavailable(f"ticket {ticket_id}: no actor took {type(message).__name__}")

    async def ref(self, tenant_id: str, ticket_id: int) -> ActorRef | None:
        """The ticket's actor, started if it is not running; None if the ticket does not exist."""
        await self._ready.wait()
        path = f"/tenants/{tenant_id}/tickets/{ticket_id}"
        try:
            return self.system.ref(path)
        except ChildNotFound:
            pass
        tickets = await self._tickets(tenant_id)
        spec = ChildSpec(
            id=str(ticket_id), factory=lambda: TicketActor(ticket_id, self.deps), restart=Restart.TEMPORARY,
            shutdown=TICKET_SHUTDOWN, mailbox=TICKET_MAILBOX,
        )
        try:
            return await tickets.start_child(spec)
        except (AlreadyStarted, AlreadyPresent):
            return self.system.ref(path)
        except StartFailed:
            if await self.deps.store.get_ticket(ticket_id) is None:
                return None
            raise

    def running(self, tenant_id: str) -> tuple[str, ...]:
        """Ids of the ticket actors running for a tenant (observability, tests)."""
        try:
            tickets = self.system.supervisor(f"/tenants/{tenant_id}/tickets")
        except ChildNotFound:
            return ()
        return tuple(child.id for child in tickets.which_children() if child.state is ChildState.RUNNING)

    async def _tickets(self, tenant_id: str):
        try:
            return self.system.supervisor(f"/tenants/{tenant_id}/tickets")
        except ChildNotFound:
            pass
        try:
            await self.system.supervisor("/tenants").start_child(tenant_spec(tenant_id, self.limiter))
        except (AlreadyStarted, AlreadyPresent):
            pass
        return self.system.supervisor(f"/tenants/{tenant_id}/tickets")
