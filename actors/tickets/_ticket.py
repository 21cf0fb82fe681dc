"""The :class:`TicketActor`: one open (or recently closed) ticket, serializing everything done to it.

Started on demand by the :class:`~actors.tickets.TicketDirectory` under
``/tenants/<tenant>/tickets/<id>``, rebuilt from the store with its first message, passivated (a normal stop)
after ``idle_timeout`` seconds without a message (the directory asks, see
:class:`~actors.tickets._messages.PassivateIfIdle`). Because one actor handles one ticket's
messages one at a time, per-ticket order is arrival order, and an agent operation never
interleaves with an inbound append.

Agent operations (accept, transfer, close, reopen) also hold the bus lock ``ticket:<id>`` and
hand its fencing token to the store: across nodes, a holder paused past its lock's TTL cannot
overwrite the next holder's change (seed ``ticketLock.ts`` released locks it no longer owned).
"""

from __future__ import annotations

import contextlib
from typing import Any

import attrs
import trio

from actors.bus import Bus, LockBusy
from actors.store import (
    Conflict,
    Fence,
    Inserted,
    InvalidInput,
    NewMessage,
    NotFound,
    Store,
    Ticket,
    TicketOutcome,
    TicketStatus,
    WriteFailed,
)
from actors.flows import (
    MESSAGE_CREATED,
    TICKET_CREATED,
    TICKET_UPDATED,
    Publisher,
    no_publisher,
    ticket_payload,
)
from supervisor import Actor, MailboxFull, Shutdown, StopForGood

from ._messages import (
    Accept,
    Appended,
    AppendInbound,
    Close,
    GetTicket,
    MarkTicketRead,
    MovedTo,
    PassivateIfIdle,
    Reopen,
    TicketRefused,
    Transfer,
)

LOCK_TTL = 10.0
"""Seconds a ticket lock is held at most: far above one store write, short enough that a dead
node's lock frees itself quickly."""

LOCK_WAIT = 2.0
"""How long an agent operation waits for another node's hold on the ticket before answering busy."""

LOCK_RETRY = 0.05
"""Pause between two tries of a busy ticket lock."""


@attrs.define(eq=False)
class TicketDeps:
    """What every ticket actor of a node shares."""

    store: Store
    bus: Bus
    idle_timeout: float
    reopen_window: float
    publisher: Publisher = no_publisher
    node_id: str = "node-1"


@attrs.frozen
class _Vanished:
    """Sent to itself when the store does not know its ticket: stop, after the messages before."""


def message_payload_of(message: NewMessage, message_id: int) -> dict[str, Any]:
    """The ``message.created`` payload, built from what was inserted (no read back)."""
    return {
        "id": message_id, "wa_id": message.wa_id, "session_id": message.session_id,
        "ticket_id": message.ticket_id, "contact_id": message.contact_id, "from_me": message.from_me,
        "body": message.body, "media_type": message.media_type, "media_path": None,
        "status": str(message.status), "sent_at": message.sent_at, "quoted_wa_id": message.quoted_wa_id,
        "kind": str(message.kind), "payload": message.payload, "edited_at": None, "deleted": False, "reactions": None,
    }


class TicketActor(Actor):
    """See the module docstring."""

    def __init__(self, ticket_id: int, deps: TicketDeps) -> None:
        self.ticket_id = ticket_id
        self.deps = deps
        self.ticket: Ticket | None = None
        self._last_activity = 0.0

    async def on_start(self) -> None:
        """No I/O here: the ticket is read with the first message (:meth:`_load`), so the
        tenant's ticket supervisor, which starts its children one at a time, starts a burst of
        new conversations' actors without waiting on the store for each. No timer task either:
        thousands of idle tickets would be thousands of sleeping tasks and trio deadlines."""
        self._last_activity = trio.current_time()

    async def receive(self, message: Any) -> Any:
        if type(message) is PassivateIfIdle:
            if trio.current_time() - self._last_activity >= self.deps.idle_timeout:
                raise Shutdown(f"ticket {self.ticket_id} idle for {self.deps.idle_timeout} s: passivated")
            return None
        if type(message) is _Vanished:
            raise StopForGood(f"ticket {self.ticket_id} does not exist")
        self._last_activity = trio.current_time()
        if self.ticket is None and not await self._load(message):
            return TicketRefused("not_found", f"ticket {self.ticket_id} does not exist")
        match message:
            case AppendInbound(run):
                return await self._append(run)
            case Accept(user_id):
                return await self._locked(lambda fence: self.deps.store.accept_ticket(
                    self.ticket_id, user_id, fence=fence))
            case Transfer(queue, user_id):
                return await self._locked(lambda fence: self.deps.store.transfer_ticket(
                    self.ticket_id, queue=queue, user_id=user_id, fence=fence))
            case Close():
                return await self._locked(lambda fence: self.deps.store.close_ticket(self.ticket_id, fence=fence))
            case Reopen(user_id):
                return await self._locked(lambda fence: self.deps.store.reopen_ticket(
                    self.ticket_id, user_id=user_id, fence=fence))
            case MarkTicketRead():
                return self._changed(await self.deps.store.mark_ticket_read(self.ticket_id))
            case GetTicket():
                return self.ticket
        raise TypeError(f"ticket {self.ticket_id} got an unknown message {message!r}")

    async def _load(self, message: Any) -> bool:
        """Rebuild the actor's state from the store (or from the ticket an AppendInbound brings);
        False (and stop soon) if the ticket is gone."""
        known = message.known if type(message) is AppendInbound else None
        if known is not None and known.id == self.ticket_id:
            self.ticket = known
            return True
        self.ticket = await self.deps.store.get_ticket(self.ticket_id)
        if self.ticket is None:
            with contextlib.suppress(MailboxFull):  # a full mailbox: the next message asks again
                self.ctx.ref.tell(_Vanished())
        return self.ticket is not None

    # -- inbound ---------------------------------------------------------------

    async def _append(self, run: tuple[NewMessage, ...]) -> Appended | MovedTo | TicketRefused:
        store = self.deps.store
        if self.ticket.status is TicketStatus.CLOSED:
            # the store may know better (reopened elsewhere); else the contact's rule decides
            self.ticket = await store.get_ticket(self.ticket_id) or self.ticket
        if self.ticket.status is TicketStatus.CLOSED:
            found = await store.find_or_create_ticket(
                self.ticket.tenant_id, self.ticket.session_id, self.ticket.contact_id,
                reopen_window=self.deps.reopen_window,
            )
            if found.ticket.id != self.ticket_id:
                if found.outcome is TicketOutcome.CREATED:
                    self._publish(TICKET_CREATED, found.ticket)
                return MovedTo(found.ticket)
            self._changed(found.ticket)
        if any(new.ticket_id != self.ticket_id for new in run):  # moved here from another ticket
            run = tuple(attrs.evolve(new, ticket_id=self.ticket_id) for new in run)
        try:
            results = await store.insert_messages(run)
        except (InvalidInput, WriteFailed) as exc:  # their content, not the ticket: refuse, do not crash
            return TicketRefused("invalid", str(exc))
        created = [(new, result.message_id) for new, result in zip(run, results) if isinstance(result, Inserted)]
        if created:
            self._appended(created)
        return Appended(tuple(results), self.ticket)

    def _appended(self, created: list[tuple[NewMessage, int]]) -> None:
        """Follow stored messages in the ticket (unread, last message: as the store's bump did)
        and publish each, with the ticket as it stood after that message."""
        ticket = self.ticket
        unread, last_message, last_at = ticket.unread, ticket.last_message, ticket.last_message_at or 0.0
        tenant_id, status = ticket.tenant_id, str(ticket.status)
        for new, message_id in created:
            unread += 0 if new.from_me else 1
            if last_at <= new.sent_at:
                last_message, last_at = new.body, new.sent_at
            payload = message_payload_of(new, message_id)
            payload["ticket"] = {"id": self.ticket_id, "unread": unread, "status": status}
            self.deps.publisher.emit(tenant_id, MESSAGE_CREATED, payload, ticket_id=self.ticket_id)
        self.ticket = attrs.evolve(ticket, unread=unread, last_message=last_message, last_message_at=last_at)

    # -- agent operations ---------------------------------------------------------

    async def _locked(self, operation) -> Ticket | TicketRefused:
        """Run a store operation under the ticket's fenced lock; refusals become values."""
        resource = f"ticket:{self.ticket_id}"
        bus = self.deps.bus
        lock = None
        with trio.move_on_after(LOCK_WAIT):
            while lock is None:
                try:
                    lock = await bus.acquire(resource, LOCK_TTL, owner=self.deps.node_id)
                except LockBusy:
                    await trio.sleep(LOCK_RETRY)
        if lock is None:
            return TicketRefused("busy", f"ticket {self.ticket_id} is being changed on another node")
        try:
            ticket = await operation(Fence(resource, lock.token))
        except Conflict as exc:
            self.ticket = await self.deps.store.get_ticket(self.ticket_id) or self.ticket
            return TicketRefused("conflict", str(exc))
        except NotFound as exc:
            return TicketRefused("not_found", str(exc))
        except (InvalidInput, WriteFailed) as exc:  # the request's content, not the ticket's state
            return TicketRefused("invalid", str(exc))
        finally:
            with trio.CancelScope(shield=True):
                await bus.release(lock)
        return self._changed(ticket)

    def _changed(self, ticket: Ticket) -> Ticket:
        before = self.ticket
        self.ticket = ticket
        if before is None or attrs.evolve(before, updated_at=ticket.updated_at) != ticket:
            self._publish(TICKET_UPDATED, ticket)
        return ticket

    def _publish(self, event: str, ticket: Ticket) -> None:
        self.deps.publisher.emit(ticket.tenant_id, event, ticket_payload(ticket), ticket_id=ticket.id)
