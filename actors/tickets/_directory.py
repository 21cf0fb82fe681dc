"""The :class:`TicketDirectory`: reach a ticket's actor, starting it on demand.

Ticket actors are temporary children of ``/tenants/<tenant>/tickets`` (a crash or a
passivation removes them; the next message starts a fresh one, rebuilt from the store).
:meth:`TicketDirectory.ask` hides that life cycle: when the actor stopped between the lookup
and the delivery (it was passivating), the message goes to a new incarnation. Every ticket
message is safe to deliver again: appends are idempotent by WhatsApp id, agent operations
are conditional updates in the store.

Host it with ``nursery.start(directory.run, system)`` (the node does, as ``/services/tickets``).
While it runs it offers passivation to every running ticket actor PASSIVATION_CHECKS times per
``idle_timeout``; an actor idle that long stops. One periodic pass over the tree instead of a
timer task per ticket: thousands of open tickets would be thousands of sleeping tasks, each
re-armed deadline a new entry in trio's deadline heap and new objects for the collector.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
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
    AskTimeout,
    ChildNotFound,
    ChildSpec,
    ChildState,
    MailboxFull,
    Restart,
    Reply,
    RestartLimiter,
)

from ._errors import TicketUnavailable
from ._messages import PassivateIfIdle
from ._ticket import TicketActor, TicketDeps

DELIVERY_TRIES = 5
"""Incarnations tried for one message: a passivation race costs one; more means something is wrong."""

REDELIVERY_PAUSE = 0.01
"""Seconds before the second try of a message whose actor had stopped, doubling after: a stopped
actor refuses messages a moment before its supervisor has removed it (and can start the next
incarnation); the pauses (150 ms in all) let the supervisor get there."""

TICKET_MAILBOX = 256
"""A ticket's mailbox: one conversation never has more than a burst of this many messages queued."""

TICKET_SHUTDOWN = 5.0
"""Grace for a ticket to finish the message in hand (one store write) on shutdown."""

PASSIVATION_CHECKS = 4
"""Passivation offers per ``idle_timeout``: a ticket is passivated after 1 to 1.25 times that idle time."""

ASK_TIMEOUT = 30.0
"""Seconds a ticket message may take: queueing behind the ticket's other messages plus the store's
own write timeout (10 s) with room to spare."""


def _path(tenant_id: str, ticket_id: int) -> str:
    return f"/tenants/{tenant_id}/tickets/{ticket_id}"


@attrs.define(eq=False)
class TicketDirectory:
    """Starts ticket actors on demand and delivers messages to them (see the module docstring)."""

    deps: TicketDeps
    limiter: RestartLimiter
    system: ActorSystem | None = None
    _ready: trio.Event = attrs.field(factory=trio.Event)

    async def run(self, system: ActorSystem, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve for as long as the hosting actor lives, offering passivation periodically."""
        self.system = system
        self._ready.set()
        task_status.started()
        while True:
            await trio.sleep(self.deps.idle_timeout / PASSIVATION_CHECKS)
            self.offer_passivation()

    def offer_passivation(self) -> int:
        """Tell every running ticket actor to stop if it has been idle for ``idle_timeout``
        (each decides from its own last activity); returns how many were asked. An actor with a
        full mailbox is busy, one that just stopped needs nothing: both are skipped."""
        try:
            tenants = self.system.supervisor("/tenants").which_children()
        except ChildNotFound:
            return 0
        asked = 0
        for tenant in tenants:
            for ticket_id in self.running(tenant.id):
                ref = self._running(tenant.id, int(ticket_id))
                if ref is None:
                    continue
                with contextlib.suppress(MailboxFull, ActorStopped):
                    ref.tell(PassivateIfIdle())
                    asked += 1
        return asked

    async def ask(self, tenant_id: str, ticket_id: int, message: Any, *, timeout: float = ASK_TIMEOUT) -> Any:
        """Deliver ``message`` to the ticket's actor (started if needed) and return its reply.

        Returns TicketRefused(not_found) for a ticket the store does not know.
        Raises:
            TicketUnavailable: no incarnation took the message within DELIVERY_TRIES.
            supervisor.AskTimeout: no reply within ``timeout`` (the message may still be handled).
            supervisor.ActorFailed: the handler crashed (the store was unavailable): the caller
                must not assume anything was done.
        """
        return (await self.ask_many(tenant_id, [(ticket_id, message)], timeout=timeout))[0]

    async def ask_many(
        self, tenant_id: str, requests: Sequence[tuple[int, Any]], *, timeout: float = ASK_TIMEOUT
    ) -> list[Any]:
        """:meth:`ask` for several ``(ticket_id, message)`` pairs at once; replies in order.

        Scatter-gather: every message is sent before any reply is awaited, so the tickets work
        concurrently (their store writes share commits), with no task per request and one
        deadline for all. Raises as :meth:`ask`; on an error no reply is returned, so the caller
        must treat every request as possibly done (every ticket message is safe to repeat).
        """
        await self._ready.wait()
        replies: list[Any] = [None] * len(requests)
        todo = list(range(len(requests)))
        with trio.move_on_after(timeout):
            for attempt in range(DELIVERY_TRIES):
                if attempt:  # let the supervisor take the stopped incarnation off its slot
                    await trio.sleep(REDELIVERY_PAUSE * 2 ** (attempt - 1))
                sent: list[tuple[int, Reply]] = []
                again: list[int] = []  # the actor stopped (passivated, crashed) before taking it
                for index in todo:
                    ticket_id, message = requests[index]
                    ref = self._running(tenant_id, ticket_id) or await self.ref(tenant_id, ticket_id)
                    try:
                        try:
                            reply = ref.request_nowait(message)  # the common case: no schedule point
                        except MailboxFull:
                            reply = await ref.request(message)
                    except ActorStopped:
                        again.append(index)
                    else:
                        sent.append((index, reply))
                for index, reply in sent:
                    try:
                        replies[index] = reply.result() if reply.event.is_set() else await reply.wait()
                    except ActorStopped:
                        again.append(index)
                if not again:
                    return replies
                todo = again  # the next incarnation takes them
            ticket_id, message = requests[todo[0]]
            raise TicketUnavailable(f"ticket {ticket_id}: no actor took {type(message).__name__}")
        names = ", ".join(sorted({type(message).__name__ for _, message in requests}))
        raise AskTimeout(f"tickets of {tenant_id}: no reply to {names} within {timeout} s")

    def _running(self, tenant_id: str, ticket_id: int) -> ActorRef | None:
        """The ticket's actor if it is known to the system right now (no waiting)."""
        if self.system is None:
            return None
        try:
            return self.system.ref(_path(tenant_id, ticket_id))
        except ChildNotFound:
            return None

    async def ref(self, tenant_id: str, ticket_id: int) -> ActorRef:
        """The ticket's actor, started if it is not running (an actor for a ticket the store does
        not know answers TicketRefused(not_found) and stops)."""
        await self._ready.wait()
        running = self._running(tenant_id, ticket_id)
        if running is not None:
            return running
        tickets = await self._tickets(tenant_id)
        spec = ChildSpec(
            id=str(ticket_id), factory=lambda: TicketActor(ticket_id, self.deps), restart=Restart.TEMPORARY,
            shutdown=TICKET_SHUTDOWN, mailbox=TICKET_MAILBOX,
        )
        try:
            return await tickets.start_child(spec)
        except (AlreadyStarted, AlreadyPresent):
            return self.system.ref(_path(tenant_id, ticket_id))

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
