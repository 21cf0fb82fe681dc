"""The flows of one node, built from the settings and placed in the tree by ``Node.specs()``.

``/services/tickets`` hosts the :class:`~actors.tickets.TicketDirectory` (ticket actors live
under ``/tenants/<t>/tickets``), ``/services/outbox`` the outbox service, ``/services/media``
the media supervisor. :attr:`Flows.inbound` is the sessions' store-backed InboundSink.
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any

import attrs

from config import Settings
from supervisor import ActorRef, ActorStopped, ActorSystem, ChildNotFound, ChildSpec, MailboxFull, RestartLimiter

from ._publish import Publisher, no_publisher

if TYPE_CHECKING:
    from actors.media import MediaDeps
    from actors.outbox import OutboxDeps
    from actors.tickets import TicketDirectory, TicketInbound

# The tickets, outbox and media packages import this package's primitives (publisher, queue
# administration, Wakeup); this module composes them, so it imports them when it is called.

TICKETS_PATH = "/services/tickets"
OUTBOX_PATH = "/services/outbox"
MEDIA_PATH = "/services/media"
MEDIA_DISPATCHER_PATH = "/services/media/dispatcher"

OUTBOX_SHUTDOWN = 10.0
"""Grace for the outbox on shutdown: a send in flight finishes (or is re-queued at the next start)."""


@attrs.define(eq=False)
class Flows:
    """The ticket directory, the inbound sink, and the outbox and media services' dependencies."""

    directory: "TicketDirectory"
    inbound: "TicketInbound"
    outbox: "OutboxDeps"
    media: "MediaDeps"

    def attach(self, publisher: Publisher) -> None:
        """Publish through ``publisher`` (the node's hub, which exists only once the node does)."""
        self.directory.deps.publisher = publisher
        self.inbound.publisher = publisher
        self.outbox.publisher = publisher
        self.media.publisher = publisher

    def specs(self) -> list[ChildSpec]:
        """Children of ``/services``, in start order."""
        from actors.media import media_supervisor
        from actors.node import HostedWithSystem
        from actors.outbox import OutboxService

        return [
            ChildSpec("tickets", functools.partial(HostedWithSystem, self.directory.run)),
            ChildSpec("outbox", lambda: OutboxService(self.outbox), shutdown=OUTBOX_SHUTDOWN),
            ChildSpec("media", lambda: media_supervisor(self.media)),
        ]

    @staticmethod
    def outbox_ref(system: ActorSystem) -> ActorRef:
        return system.ref(OUTBOX_PATH)

    def session_deleted(self, system: ActorSystem, session_id: str) -> None:
        """``session_id`` was deleted: the inbound sink and the outbox forget what they kept of it
        (its tickets, its status pause). Each deleted session left those behind for ever
        (found with ``bench/soak.py``). Best effort: an outbox not running has nothing to forget."""
        from actors.outbox import SessionDeleted

        self.inbound.forget_session(session_id)
        with contextlib.suppress(ActorStopped, ChildNotFound, MailboxFull):
            self.outbox_ref(system).tell(SessionDeleted(session_id))

    @staticmethod
    def media_ref(system: ActorSystem) -> ActorRef:
        """The media dispatcher: it answers the media queue's administration messages."""
        return system.ref(MEDIA_DISPATCHER_PATH)


def build_flows(
    settings: Settings, store: Any, bus: Any, board: Any, limiter: RestartLimiter,
    publisher: Publisher = no_publisher, store_gate: Any = None,
) -> Flows:
    """Build the flows of a node (no I/O) on its Store, Bus and StatusBoard; the outbox and media
    services wait out a store outage at ``store_gate`` (the node's, shared with its sessions)."""
    from actors.media import MediaDeps
    from actors.outbox import OutboxDeps
    from actors.tickets import TicketDeps, TicketDirectory, TicketInbound

    tickets = settings.tickets
    directory = TicketDirectory(
        TicketDeps(store=store, bus=bus, idle_timeout=tickets.idle_timeout, reopen_window=tickets.reopen_window,
                   publisher=publisher, node_id=settings.node.node_id),
        limiter,
    )
    gated = {} if store_gate is None else {"store_gate": store_gate}
    media = MediaDeps(store=store, media_dir=settings.media.dir, max_bytes=settings.media.max_bytes,
                      concurrency=settings.media.concurrency, attempts=settings.media.attempts, publisher=publisher,
                      **gated)
    inbound = TicketInbound(store, directory, tickets.reopen_window, publisher=publisher, on_media=media.wake.set,
                            show_deleted_text=tickets.show_deleted_text)
    outbox = OutboxDeps(store=store, board=board, attempts=settings.outbox.attempts,
                        pacing_interval=settings.outbox.pacing_interval, pacing_jitter=settings.outbox.pacing_jitter,
                        publisher=publisher, bus=bus, **gated)
    return Flows(directory=directory, inbound=inbound, outbox=outbox, media=media)
