"""Tickets as actors, and the inbound message flow that feeds them (DESIGN §6).

* :class:`TicketActor` — one per open/pending (or just closed) ticket under
  ``/tenants/<tenant>/tickets/<id>``; its messages: :class:`AppendInbound`, :class:`Accept`,
  :class:`Transfer`, :class:`Close`, :class:`Reopen`, :class:`MarkTicketRead`,
  :class:`GetTicket`; replies :class:`Appended`, :class:`MovedTo`, :class:`TicketRefused` or the
  ticket.
* :class:`TicketDirectory` — starts ticket actors on demand, delivers across passivations.
* :class:`TicketInbound` — the store-backed InboundSink of the sessions (message kinds, and
  operations on stored messages through :mod:`._operations`; ``publish_change`` announces a change).
"""

from ._directory import TicketDirectory
from ._errors import TicketError, TicketUnavailable
from ._identity import is_status_or_broadcast
from ._inbound import TicketInbound, media_source
from ._messages import (
    Accept,
    Appended,
    AppendInbound,
    Close,
    GetTicket,
    MarkTicketRead,
    MovedTo,
    Reopen,
    TicketRefused,
    Transfer,
)
from ._operations import publish_change
from ._ticket import TicketActor, TicketDeps

__all__ = [
    "Accept",
    "AppendInbound",
    "Appended",
    "Close",
    "GetTicket",
    "MarkTicketRead",
    "MovedTo",
    "Reopen",
    "TicketActor",
    "TicketDeps",
    "TicketDirectory",
    "TicketError",
    "TicketInbound",
    "TicketRefused",
    "TicketUnavailable",
    "Transfer",
    "is_status_or_broadcast",
    "media_source",
    "publish_change",
]
